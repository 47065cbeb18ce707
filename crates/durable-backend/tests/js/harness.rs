//! The harness of the JavaScript interop tests (`tests/js_interop.rs`): finds node and the SDK, starts a backend,
//! runs a scenario script and collects the checks it prints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use durable_backend::{Handle, Options};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Bound on one scenario script, start to exit; the scripts also stop themselves a little earlier.
pub(crate) const SCRIPT_LIMIT: Duration = Duration::from_secs(180);
/// Bound on the backend's graceful shutdown once the script is gone.
pub(crate) const SHUTDOWN_LIMIT: Duration = Duration::from_secs(20);
/// The hub the scenarios name in their `taskhub` header.
pub(crate) const HUB: &str = "js";

/// The `node` to run the scenarios with, once the SDK is known to be installed, or `None` (after saying why)
/// when this machine lacks either (a failure under the verify script or CI).
pub(crate) fn javascript() -> Option<PathBuf> {
    let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    durable_testkit::node_with_package(&js_dir, "@microsoft/durabletask-js")
}

/// What one scenario printed, by check name.
pub(crate) struct Checks {
    values: HashMap<String, Value>,
    transcript: String,
}

impl Checks {
    pub(crate) fn get(&self, name: &str) -> &Value {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("the scenario reported no `{name}`:\n{}", self.transcript))
    }
}

/// A backend with `options` on 127.0.0.1, port 0, with a fresh SQLite file that lives as long as the returned
/// directory.
pub(crate) async fn backend(options: Options) -> (Handle, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = options
        .with_db_path(dir.path().join("backend.db"))
        .with_bind("127.0.0.1:0".parse().expect("address"));
    let handle = durable_backend::start(options)
        .await
        .expect("backend starts");
    (handle, dir)
}

/// Runs `tests/js/scenarios/<name>.js` against `endpoint` and collects its checks. A script that prints
/// `{"pause": NAME}` waits for a line on its stdin; `on_pause(NAME)` runs first (e.g. to restart the backend).
/// Panics with the script's output when it fails, reports nothing, or runs past the limit.
pub(crate) async fn run_scenario(
    node: &Path,
    name: &str,
    endpoint: &str,
    hub: Option<&str>,
    mut on_pause: impl AsyncFnMut(&str),
) -> Checks {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/js/scenarios")
        .join(format!("{name}.js"));
    let address = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("unexpected endpoint {endpoint}"));
    let limit_ms = (SCRIPT_LIMIT - Duration::from_secs(10))
        .as_millis()
        .to_string();
    let mut child = tokio::process::Command::new(node)
        .arg(&script)
        .env("DURABLE_ADDRESS", address)
        .env("DURABLE_HUB", hub.unwrap_or(""))
        .env("DURABLE_JS_LIMIT_MS", limit_ms)
        .kill_on_drop(true)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut printed = String::new();
    let mut values = HashMap::new();
    let mut duplicates = Vec::new();
    let run = async {
        while let Some(line) = stdout.next_line().await.expect("read the script's stdout") {
            printed.push_str(&line);
            printed.push('\n');
            let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(Value::String(pause)) = record.remove("pause") {
                on_pause(&pause).await;
                stdin
                    .write_all(b"resume\n")
                    .await
                    .expect("resume the script");
                stdin.flush().await.expect("resume the script");
            } else if let (Some(Value::String(check)), Some(value)) =
                (record.remove("check"), record.remove("value"))
                && values.insert(check.clone(), value).is_some()
            {
                duplicates.push(check);
            }
        }
        child.wait().await.expect("node runs")
    };
    let status = tokio::time::timeout(SCRIPT_LIMIT, run).await;
    if status.is_err() {
        // Its stderr only closes once it is gone.
        let _ = child.start_kill();
    }
    let transcript = format!(
        "--- stdout\n{printed}\n--- stderr\n{}",
        stderr.await.unwrap_or_default()
    );
    let Ok(status) = status else {
        panic!("the {name} scenario did not finish within {SCRIPT_LIMIT:?}:\n{transcript}");
    };
    assert!(
        status.success(),
        "the {name} scenario failed ({status}):\n{transcript}"
    );
    assert!(
        duplicates.is_empty(),
        "reported more than once: {duplicates:?}\n{transcript}"
    );
    let checks = Checks { values, transcript };
    assert_eq!(checks.get("done"), &json!(true));
    checks
}

/// Starts a backend, runs the scenario against it, and checks the backend still stops promptly afterwards.
pub(crate) async fn scenario(name: &str, hub: Option<&str>) -> Option<Checks> {
    scenario_with(Options::new(), name, hub).await
}

/// [`scenario`] on a backend started with `options`.
pub(crate) async fn scenario_with(
    options: Options,
    name: &str,
    hub: Option<&str>,
) -> Option<Checks> {
    let node = javascript()?;
    let (backend, _dir) = backend(options).await;
    let checks = run_scenario(
        &node,
        name,
        &backend.endpoint(),
        hub,
        async |pause: &str| {
            panic!("the {name} scenario paused for {pause:?}, which this test does not expect")
        },
    )
    .await;
    tokio::time::timeout(SHUTDOWN_LIMIT, backend.shutdown())
        .await
        .unwrap_or_else(|_| {
            panic!("the backend did not stop within {SHUTDOWN_LIMIT:?} after {name}")
        })
        .expect("backend stops cleanly");
    Some(checks)
}
