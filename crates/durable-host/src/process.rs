//! The custom handler process: start it as the host does, wait until it answers, restart it when it dies.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{HostError, Result};

/// How to launch the handler.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) executable: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) working_dir: PathBuf,
    pub(crate) app_root: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) ready_timeout: Duration,
}

/// The running handler, shared by everything that invokes it.
#[derive(Debug)]
pub(crate) struct Handler {
    port: u16,
    pid: AtomicU32,
    ready: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
    /// How many times a handler process has ended; invocations compare it before and after a failed request to
    /// tell a process that went away from one that dropped a connection.
    exits: watch::Receiver<u64>,
    /// Asks the supervisor to kill the process (and start a new one): the exit count the request was made under
    /// (so that a request about a process that is already gone does not kill its successor), and the reason.
    restart: watch::Sender<Option<(u64, String)>>,
}

impl Handler {
    /// Starts the handler on a free port and waits until it answers on `/`; then keeps it alive in the
    /// background until [`Handler::stop`].
    pub(crate) async fn start(launch: Launch) -> Result<Arc<Handler>> {
        let worker_id = uuid::Uuid::new_v4().to_string();
        // The handler is on loopback: a proxy named in the environment (`HTTP_PROXY`...) is not for it.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| HostError::Handler(format!("HTTP client: {e}")))?;
        // The Functions host starts a worker that failed to start again, up to its error threshold of three
        // (azure-functions-host, the invocation dispatchers' `ErrorEventsThreshold`). Here each attempt also gets a
        // fresh port: the free port is only known free when it is picked, and a process that exits at once most
        // often found it taken in between.
        let mut attempt = 1;
        let (port, child) = loop {
            let port = free_port()?;
            let mut child = spawn(&launch, port, &worker_id)?;
            match wait_ready(&http, port, &mut child, launch.ready_timeout).await {
                Ok(()) => break (port, child),
                Err(e) => {
                    kill(&mut child).await;
                    if !matches!(e, NotReady::Exited(_)) || attempt == START_ATTEMPTS {
                        return Err(e.into());
                    }
                    tracing::warn!(attempt, "{e}; starting the handler again");
                    attempt += 1;
                }
            }
        };
        let (ready_tx, ready_rx) = watch::channel(false);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (exits_tx, exits_rx) = watch::channel(0u64);
        let (restart_tx, restart_rx) = watch::channel(None);
        let handler = Arc::new(Handler {
            port,
            pid: AtomicU32::new(child.id().unwrap_or(0)),
            ready: ready_rx,
            shutdown: shutdown_tx,
            exits: exits_rx,
            restart: restart_tx,
        });
        tracing::info!(port, pid = child.id(), "custom handler is ready");
        let _ = ready_tx.send(true);
        tokio::spawn(supervise(
            Arc::clone(&handler),
            launch,
            worker_id,
            child,
            http,
            Signals {
                ready: ready_tx,
                exits: exits_tx,
                restart: restart_rx,
                shutdown: shutdown_rx,
            },
        ));
        Ok(handler)
    }

    /// The loopback port the handler listens on (the same for every process the supervisor starts).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Where the handler listens.
    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The handler's current process id (0 while it is being restarted).
    pub(crate) fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until the handler is up; false when it did not come back in time.
    pub(crate) async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.ready.clone();
        tokio::time::timeout(timeout, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops the handler for good.
    pub(crate) fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// How many handler processes have ended so far.
    pub(crate) fn exits(&self) -> u64 {
        *self.exits.borrow()
    }

    /// Whether the process that was running when `exits` was read has ended, waiting up to `grace` for the news:
    /// a connection broken by a dying process can be noticed a moment before the process's exit is.
    pub(crate) async fn exited_since(&self, exits: u64, grace: Duration) -> bool {
        let mut rx = self.exits.clone();
        tokio::time::timeout(grace, rx.wait_for(|n| *n != exits))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Kills the process that was running when `exits` was read, so that a new one starts, as the host does after a
    /// function timeout. Nothing happens when that process has already gone.
    pub(crate) fn restart(&self, exits: u64, reason: String) {
        let _ = self.restart.send(Some((exits, reason)));
    }
}

/// How many times a handler that exits before it is ready is started, in all.
const START_ATTEMPTS: u32 = 3;

/// What the supervisor reports and listens to.
struct Signals {
    ready: watch::Sender<bool>,
    exits: watch::Sender<u64>,
    restart: watch::Receiver<Option<(u64, String)>>,
    shutdown: watch::Receiver<bool>,
}

fn free_port() -> Result<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| HostError::Bind { addr, source })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| HostError::Bind { addr, source })
}

fn spawn(launch: &Launch, port: u16, worker_id: &str) -> Result<Child> {
    let mut command = Command::new(&launch.executable);
    command
        .args(&launch.args)
        .current_dir(&launch.working_dir)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", worker_id)
        .env("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
        .env("FUNCTIONS_HTTPWORKER_ID", worker_id)
        .env("FUNCTIONS_APP_ROOT_PATH", &launch.app_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // A process group of its own, so that stopping the handler also stops what it started (a `bash start.sh` or
    // `npm start` wrapper would otherwise leave the real server running, holding the port).
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn().map_err(|e| {
        HostError::Handler(format!("cannot start {}: {e}", launch.executable.display()))
    })?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err));
    }
    Ok(child)
}

async fn forward_lines(stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match split_log_line(&line) {
            Some(("ERROR", rest)) => tracing::error!(target: "handler", "[handler] {rest}"),
            Some(("WARN", rest)) => tracing::warn!(target: "handler", "[handler] {rest}"),
            Some(("DEBUG" | "TRACE", rest)) => {
                tracing::debug!(target: "handler", "[handler] {rest}")
            }
            Some((_, rest)) => tracing::info!(target: "handler", "[handler] {rest}"),
            None => tracing::info!(target: "handler", "[handler] {line}"),
        }
    }
}

/// A handler that logs with `tracing_subscriber::fmt` writes `<RFC 3339 time> <LEVEL> <message>`; the host's own
/// logger adds a time and level again, so the handler's are taken off and its level kept.
fn split_log_line(line: &str) -> Option<(&str, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let looks_like_time = time.len() >= 20
        && time.as_bytes()[4] == b'-'
        && time.as_bytes()[10] == b'T'
        && time.ends_with('Z');
    if !looks_like_time {
        return None;
    }
    let rest = rest.trim_start();
    let (level, message) = rest.split_once(' ')?;
    matches!(level, "ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE")
        .then(|| (level, message.trim_start()))
}

/// Why a handler process never answered.
#[derive(Debug)]
enum NotReady {
    Exited(std::process::ExitStatus),
    Silent { url: String, timeout: Duration },
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Exited(status) => {
                write!(f, "the handler exited before it was ready ({status})")
            }
            NotReady::Silent { url, timeout } => write!(f, "no answer on {url} within {timeout:?}"),
        }
    }
}

impl From<NotReady> for HostError {
    fn from(e: NotReady) -> Self {
        HostError::Handler(e.to_string())
    }
}

/// Polls `/` until any HTTP answer, like `DefaultHttpWorkerService.IsWorkerReady`.
async fn wait_ready(
    http: &reqwest::Client,
    port: u16,
    child: &mut Child,
    timeout: Duration,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + timeout;
    let url = format!("http://127.0.0.1:{port}/");
    loop {
        if http.get(&url).send().await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotReady::Exited(status));
        }
        if Instant::now() >= deadline {
            return Err(NotReady::Silent { url, timeout });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn supervise(
    handler: Arc<Handler>,
    launch: Launch,
    worker_id: String,
    mut child: Child,
    http: reqwest::Client,
    signals: Signals,
) {
    let Signals {
        ready,
        exits,
        mut restart,
        mut shutdown,
    } = signals;
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            status = child.wait() => {
                let _ = ready.send(false);
                handler.pid.store(0, Ordering::SeqCst);
                exits.send_modify(|n| *n += 1);
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                tracing::warn!("custom handler exited ({status}); restarting it");
            }
            Ok(()) = restart.changed() => {
                let request = restart.borrow_and_update().clone();
                let Some((at, reason)) = request else { continue };
                if at != *exits.borrow() {
                    // The process the request was about has already been replaced.
                    continue;
                }
                tracing::warn!(target: "host", "{reason}");
                let _ = ready.send(false);
                kill(&mut child).await;
                handler.pid.store(0, Ordering::SeqCst);
                exits.send_modify(|n| *n += 1);
            }
            _ = stopped(&mut shutdown) => {
                kill(&mut child).await;
                let _ = ready.send(false);
                exits.send_modify(|n| *n += 1);
                return;
            }
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            let started = spawn(&launch, handler.port, &worker_id);
            match started {
                Ok(mut next) => {
                    handler.pid.store(next.id().unwrap_or(0), Ordering::SeqCst);
                    match wait_ready(&http, handler.port, &mut next, launch.ready_timeout).await {
                        Ok(()) => {
                            tracing::info!(pid = next.id(), "custom handler restarted and ready");
                            // Timeouts of the old process that were reported while this one started are settled.
                            drop(restart.borrow_and_update());
                            let _ = ready.send(true);
                            backoff = Duration::from_millis(100);
                            child = next;
                            break;
                        }
                        Err(e) => {
                            kill(&mut next).await;
                            tracing::error!("custom handler restart failed: {e}");
                        }
                    }
                }
                Err(e) => tracing::error!("{e}"),
            }
            // A handler that cannot start should not spin a core; the wait grows to 10 s.
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped(&mut shutdown) => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}

/// Kills the handler and everything in its process group, and reaps it.
async fn kill(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32))
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

/// Resolves once `rx` turns true (or its sender is gone), holding no borrow of the value across awaits.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::split_log_line;

    #[test]
    fn the_handlers_own_time_and_level_are_taken_off() {
        assert_eq!(
            split_log_line("2026-11-25T19:11:58.915610Z  INFO greeted 3 cities instance_id=\"x\""),
            Some(("INFO", "greeted 3 cities instance_id=\"x\""))
        );
        assert_eq!(
            split_log_line("2026-11-25T19:11:58Z  WARN careful"),
            Some(("WARN", "careful"))
        );
        assert_eq!(split_log_line("plain output from the handler"), None);
        assert_eq!(split_log_line("2026-11-25T19:11:58Z something else"), None);
    }
}
