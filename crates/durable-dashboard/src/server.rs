//! The dashboard on a port of its own, for programs that serve nothing else over HTTP (the `durable-backend`
//! command, tests).

use std::net::SocketAddr;

use durable_grpc::DurableClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::DashboardError;
use crate::options::DashboardOptions;

/// A running dashboard server. [`DashboardServer::shutdown`] stops it; dropping it stops it too, without waiting.
#[derive(Debug)]
pub struct DashboardServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Serves [`router`](crate::router) at the root of `bind` (port 0 picks a free port) until shut down.
pub async fn start(
    bind: SocketAddr,
    client: DurableClient,
    options: DashboardOptions,
) -> Result<DashboardServer, DashboardError> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| DashboardError::Bind { addr: bind, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| DashboardError::Bind { addr: bind, source })?;
    let app = crate::router(client, options);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(target: "dashboard", "dashboard server: {e}");
        }
    });
    Ok(DashboardServer {
        local_addr,
        stop,
        task: Some(task),
    })
}

impl DashboardServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://localhost:<port>/` when listening on loopback or on every address, else `http://<ip>:<port>/`.
    pub fn url(&self) -> String {
        let ip = self.local_addr.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            format!("http://localhost:{}/", self.local_addr.port())
        } else {
            format!("http://{}/", self.local_addr)
        }
    }

    /// Stops accepting connections, lets requests in flight finish, and returns once the server has stopped.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DashboardServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
