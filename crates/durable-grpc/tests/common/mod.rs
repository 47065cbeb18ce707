//! Test helpers: the Python SDK's reference server as a child process, and bounded polling.
#![allow(dead_code, unreachable_pub)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use durable_testkit::Spawned;
use std::time::{Duration, Instant};

/// The Python interpreter with durabletask installed, or `None` (after printing why) when the test should skip.
pub fn python() -> Option<PathBuf> {
    durable_testkit::python()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

const SERVER_SCRIPT: &str = r#"
import sys
from durabletask.testing.in_memory_backend import create_test_backend
backend = create_test_backend(port=int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
backend.stop()
"#;

/// `durabletask.testing.in_memory_backend` in its own process; killed on drop.
pub struct PythonServer {
    child: Spawned,
    pub port: u16,
}

impl PythonServer {
    /// Starts the server on `port` (0: a free one) and waits until it accepts connections.
    pub fn start(python: &PathBuf, port: u16) -> Self {
        let port = if port == 0 { free_port() } else { port };
        let mut child = Spawned::start(
            Command::new(python)
                .args(["-c", SERVER_SCRIPT, &port.to_string()])
                .stdin(Stdio::piped()),
        )
        .expect("start the Python reference server");
        if let Err(e) = child.wait_for_stdout(Duration::from_secs(60), |line| {
            (line.trim() == "ready").then_some(())
        }) {
            panic!("the reference server did not start: {e}");
        }
        let server = Self { child, port };
        wait_until(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the process and waits for it, so the port is free again.
    pub fn stop(self) {
        // Dropping the child kills it and waits for it.
        drop(self);
    }
}

/// Polls `condition` until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async version of [`wait_until`] for conditions that need the client.
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
