//! The HTTP floor: what one bare HTTP/1.1 exchange between two processes costs on this machine, with the stacks
//! the custom-handler path uses (hyper's HTTP/1 client connections on the host's side, `axum::serve` with
//! `TCP_NODELAY` on the handler's) and nothing else: a fixed request body in, a fixed JSON reply out, no envelope
//! and no engine. The host path makes one such exchange per work item, as the Functions host does, so this is the
//! part of what that path adds over the direct worker that stays as long as both sides speak HTTP/1.1 over loopback
//! TCP with these stacks. It is measured at saturation (64 in flight, so wake-ups and writes are shared between
//! exchanges), which makes it a lower bound for an exchange of the path, which runs at a lower rate.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use tokio::io::AsyncBufReadExt as _;

/// The environment variable that makes this binary the floor's server, in a process of its own.
pub(crate) const SERVER_ENV: &str = "BENCH_HTTP_FLOOR_SERVER";

/// Exchanges measured, after a tenth as many that warm the connections up, and how many are in flight at once.
const EXCHANGES: usize = 50_000;
const CONCURRENCY: usize = 64;
/// A floor that takes longer than this is reported as not measured.
const LIMIT: Duration = Duration::from_secs(120);
/// About the sizes of this workload's invocations: an activity's request envelope and a turn's reply.
const REQUEST_BYTES: usize = 1024;
const REPLY_BYTES: usize = 512;

/// Serves `POST /Floor` on a free port of 127.0.0.1 and prints the port first; exits when its stdin closes, so
/// that it never outlives the benchmark.
pub(crate) fn serve() -> Result<()> {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use axum::serve::ListenerExt as _;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        println!("{}", listener.local_addr()?.port());
        let (open, close) = ("{\"ReturnValue\":\"", "\"}");
        let filler = "x".repeat(REPLY_BYTES - open.len() - close.len());
        let reply = Bytes::from(format!("{open}{filler}{close}"));
        let app = axum::Router::new().route(
            "/Floor",
            // The extractor reads the whole request body, as a handler does.
            axum::routing::post(move |_body: Bytes| {
                let reply = reply.clone();
                async move { ([(http::header::CONTENT_TYPE, "application/json")], reply) }
            }),
        );
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// Measures the floor against a server process of its own and prints it, or why it could not.
pub(crate) async fn print() {
    match tokio::time::timeout(LIMIT, measure()).await {
        Ok(Ok(line)) => println!("{line}"),
        Ok(Err(e)) => println!("HTTP floor: not measured ({e:#})"),
        Err(_) => println!("HTTP floor: not measured (it took more than {LIMIT:?})"),
    }
}

async fn measure() -> Result<String> {
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .env(SERVER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let server_pid = server.id().context("the floor's server has no pid")?;
    let mut first = String::new();
    tokio::io::BufReader::new(server.stdout.take().context("no stdout")?)
        .read_line(&mut first)
        .await?;
    let port: u16 = first
        .trim()
        .parse()
        .context("the floor's server did not print its port")?;
    let pool = Arc::new(Pool {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        idle: Mutex::new(Vec::new()),
    });
    pool.run(EXCHANGES / 10).await?;
    let cpu = || {
        Some((
            super::cpu_seconds(std::process::id())?,
            super::cpu_seconds(server_pid)?,
        ))
    };
    let before = cpu();
    let started = Instant::now();
    pool.run(EXCHANGES).await?;
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu();
    server.kill().await?;
    let per = |t: f64| t / EXCHANGES as f64 * 1e6;
    let ((client0, server0), (client1, server1)) = before
        .zip(after)
        .context("the processes' CPU time cannot be read here")?;
    Ok(format!(
        "HTTP floor (bare POST over loopback HTTP/1.1, {CONCURRENCY} in flight, {EXCHANGES} exchanges, \
         {REQUEST_BYTES}-byte request, {REPLY_BYTES}-byte reply): {:.0} us of CPU per exchange (client {:.0} + \
         server {:.0}), {:.0} exchanges/s",
        per(client1 - client0 + server1 - server0),
        per(client1 - client0),
        per(server1 - server0),
        EXCHANGES as f64 / seconds
    ))
}

/// Keep-alive connections to the server, each used by one exchange at a time.
struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Pool {
    /// Makes `n` exchanges, `CONCURRENCY` at a time, on the runtime's worker threads as the host's invocations run.
    async fn run(self: &Arc<Self>, n: usize) -> Result<()> {
        let pool = Arc::clone(self);
        let body = Bytes::from(vec![b'x'; REQUEST_BYTES]);
        tokio::spawn(async move {
            let answers: Vec<Result<()>> = futures::stream::iter(0..n)
                .map(|_| pool.exchange(body.clone()))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            answers.into_iter().collect::<Result<()>>()
        })
        .await?
    }

    async fn exchange(&self, body: Bytes) -> Result<()> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut sender = match pooled {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let request = http::Request::post("/Floor")
            .header(http::header::HOST, "127.0.0.1")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        // A pooled connection is ready once its task has finished with the previous answer.
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        if !response.status().is_success() {
            bail!("the floor's server answered {}", response.status());
        }
        let reply = response.into_body().collect().await?.to_bytes();
        if reply.len() != REPLY_BYTES {
            bail!("the floor's server answered {} bytes", reply.len());
        }
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sender);
        Ok(())
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }
}
