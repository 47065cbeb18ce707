//! Shared helpers for the integration tests: an in-process backend and a runner for Python SDK scripts.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use durable_backend::{Handle, Options};

/// Starts an in-memory backend on 127.0.0.1 with a free port.
pub async fn backend(options: Options) -> Handle {
    durable_backend::start(options.with_bind("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("backend starts")
}

pub fn memory() -> Options {
    Options::new().in_memory()
}

/// The interpreter with the Durable Task SDKs, or `None` (after saying so) when this machine has none.
/// Under the verify script or CI a missing interpreter is a failure, not a skip.
pub fn python() -> Option<PathBuf> {
    durable_testkit::python()
}

/// Runs a Python script (the shared prelude first) against `endpoint`/`hub` and returns the JSON object it
/// printed on its `RESULT ` line. Panics with the script's output when it fails or runs past `limit`.
pub async fn run_python(
    python: &PathBuf,
    script: &str,
    endpoint: &str,
    hub: &str,
    limit: Duration,
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.py");
    let source = format!("{}\n{}", include_str!("../python/prelude.py"), script);
    std::fs::write(&path, source).unwrap();
    let child = tokio::process::Command::new(python)
        .arg(&path)
        .env("DURABLE_ENDPOINT", endpoint)
        .env("DURABLE_HUB", hub)
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output.expect("python runs"),
        Err(_) => panic!("the Python scenario did not finish within {limit:?}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"));
    serde_json::from_str(line).expect("RESULT is JSON")
}
pub mod raw;
pub mod work;
