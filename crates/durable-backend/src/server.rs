//! Starting and stopping the server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use crate::error::Error;
use crate::options::Options;
use crate::service::{Routes, Shared};
use crate::store::{SqliteStore, Store};

/// gRPC messages up to this size are accepted and sent (histories and .NET's 3.9 MB chunks fit).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A running backend. Dropping it without [`Handle::shutdown`] leaves the server running until the runtime ends.
#[derive(Debug)]
pub struct Handle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Handle {
    /// The address the server listens on (the real port when the options asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint to give SDKs, e.g. `http://127.0.0.1:8080`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting calls, ends open work-item streams and waits, then returns once the server has stopped.
    /// Everything acknowledged to a caller was committed before it was acknowledged.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        match self.server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Server(e.to_string())),
            Err(e) => Err(Error::Server(e.to_string())),
        }
    }
}

/// Opens the SQLite store named by the options and serves it.
pub async fn start(options: Options) -> Result<Handle, Error> {
    options.validate()?;
    let storage = options.storage.clone();
    let synchronous = options.synchronous;
    let batch = options.max_commit_batch;
    // Opening and migrating touch the disk: keep that off the async reactor.
    let store =
        tokio::task::spawn_blocking(move || SqliteStore::open(&storage, synchronous, batch))
            .await
            .map_err(|e| Error::Server(format!("the store could not be opened: {e}")))??;
    start_with_store(options, Arc::new(store)).await
}

/// Serves any [`Store`] implementation with these options (the storage options are ignored).
pub async fn start_with_store(options: Options, store: Arc<dyn Store>) -> Result<Handle, Error> {
    options.validate()?;
    let mut hubs = options.task_hubs.clone();
    hubs.push(options.default_hub.clone());
    store.ensure_hubs(hubs).await?;
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|source| Error::Bind {
            addr: options.bind,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: options.bind,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let shared = Shared::new(store, options, stopped.clone());
    let service = Routes::new(shared);
    let mut until_stopped = stopped;
    // Every call is a small request answered by a small response: without TCP_NODELAY, Nagle's algorithm holds
    // each one back until the peer's delayed ACK (about 40 ms), once per round trip.
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted
            && let Err(e) = stream.set_nodelay(true)
        {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        accepted
    });
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            // Notice workers that vanished without closing their connection, so their leases come back early.
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = until_stopped.wait_for(|stop| *stop).await;
            }),
    );
    tracing::info!(%local_addr, "durable backend listening");
    Ok(Handle {
        local_addr,
        stop,
        server,
    })
}
