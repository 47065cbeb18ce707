//! The `durable-host` command holding a custom handler nobody here wrote: `tests/python/handler.py`, a Python
//! handler whose orchestrations and activities run in Microsoft's own replay engine (the `durabletask` package).
//! Each test writes an app folder the way a Functions developer would (host.json naming the interpreter and the
//! script, one function.json folder per function), runs the binary on it as `func start` would be run, starts
//! orchestrations through the management webhooks and checks what they return.
//!
//! Python comes from `DURABLE_PYTHON` or `<workspace>/.venv/bin/python` (`scripts/setup-python.sh`); without it
//! the tests say `skipped` and pass, except under the verify script or CI, where they fail (`durable_testkit`).
#![cfg(unix)]

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use durable_testkit::Spawned;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// A Functions app folder for the Python handler: the interpreter is the handler executable and the script its
/// argument, as a Python custom handler is deployed.
fn python_app(python: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/handler.py"),
        d.join("handler.py"),
    )
    .unwrap();
    let host_json = json!({
        "version": "2.0",
        "customHandler": {
            "description": { "defaultExecutablePath": python, "arguments": ["handler.py"] }
        },
        "extensions": { "durableTask": { "hubName": "pythonhub" } }
    });
    write(d, "host.json", &host_json.to_string());
    write(
        d,
        "local.settings.json",
        r#"{"IsEncrypted":false,"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom"}}"#,
    );
    for orchestrator in ["Chain", "FanOutFanIn", "Timer", "CatchFailure", "Broken"] {
        write(
            d,
            &format!("{orchestrator}/function.json"),
            r#"{"bindings":[{"name":"context","type":"orchestrationTrigger","direction":"in"}]}"#,
        );
    }
    for activity in ["SayHello", "Square", "Fail"] {
        write(
            d,
            &format!("{activity}/function.json"),
            r#"{"bindings":[{"name":"input","type":"activityTrigger","direction":"in"}]}"#,
        );
    }
    dir
}

/// The `durable-host` binary as a child process in its own process group, so that it and the handler it starts
/// can be stopped together whatever happens to the test.
struct HostProcess {
    child: Spawned,
    base_url: String,
}

impl HostProcess {
    /// Runs `durable-host --app-dir <app> --in-memory <extra...>` (without `--in-memory` when `extra` names a
    /// `--db`).
    fn start(app: &Path, extra: &[&str]) -> Result<HostProcess> {
        use std::os::unix::process::CommandExt as _;
        let storage: &[&str] = if extra.contains(&"--db") {
            &[]
        } else {
            &["--in-memory"]
        };
        let mut child = Spawned::start(
            Command::new(env!("CARGO_BIN_EXE_durable-host"))
                .arg("--app-dir")
                .arg(app)
                .args(storage)
                .args(extra)
                .env("RUST_LOG", "info")
                .env_remove("DURABLE_TASK_SCHEDULER_CONNECTION_STRING")
                .stdin(Stdio::null())
                .process_group(0),
        )
        .context("cannot run durable-host")?;
        let base_url = child
            .wait_for_stdout(LIMIT, |line| {
                line.strip_prefix("durable-host listening on ")
                    .map(|url| url.trim().to_owned())
            })
            .map_err(|e| anyhow::anyhow!("durable-host did not say where it listens: {e}"))?;
        Ok(HostProcess { child, base_url })
    }

    fn hooks(&self) -> String {
        format!("{}/runtime/webhooks/durabletask", self.base_url)
    }

    fn output(&self) -> String {
        self.child.output()
    }

    /// The handler's process id, from the line it logs when it listens (the host passes its output on).
    fn handler_pid(&self) -> Option<u32> {
        self.output().lines().find_map(|line| {
            let rest = &line[line.find("handler pid ")? + "handler pid ".len()..];
            rest.split(' ').next()?.parse().ok()
        })
    }

    /// SIGTERM, as a process manager stops it, and the exit status (bounded wait).
    fn terminate(&mut self) -> Result<ExitStatus> {
        self.child.terminate(LIMIT).map_err(anyhow::Error::msg)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if self.child.wait(Duration::ZERO).is_err() {
            let _ = self.terminate();
        }
        // Whatever is left of the group (a handler that outlived the host) goes too.
        signal("-KILL", &format!("-{}", self.child.id()));
    }
}

fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stderr(Stdio::null())
        .status();
}

/// Whether a process is still there (a zombie waiting for its new parent counts as gone).
fn alive(pid: u32) -> bool {
    Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .output()
        .is_ok_and(|out| {
            let stat = String::from_utf8_lossy(&out.stdout);
            out.status.success() && !stat.trim().is_empty() && !stat.trim().starts_with('Z')
        })
}

/// Starts an orchestration through the management webhook and returns its status URL.
async fn start(
    http: &reqwest::Client,
    host: &HostProcess,
    name: &str,
    id: &str,
    input: Option<Value>,
) -> Result<String> {
    let mut request = http.post(format!("{}/orchestrators/{name}/{id}", host.hooks()));
    if let Some(input) = input {
        request = request
            .header("content-type", "application/json")
            .body(input.to_string());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    if status != 202 {
        bail!("starting {name}: {status} {body}");
    }
    assert_eq!(body["id"], id);
    body["statusQueryGetUri"]
        .as_str()
        .map(str::to_owned)
        .context("statusQueryGetUri")
}

/// Polls the status URL until the instance is done (bounded).
async fn wait_done(http: &reqwest::Client, host: &HostProcess, url: &str) -> Result<Value> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let response = http.get(url).send().await?;
        let code = response.status().as_u16();
        let body: Value = response.json().await?;
        match code {
            200 => return Ok(body),
            202 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => bail!("{url}: {code} {body}\n{}", host.output()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_fan_out_and_timer_run_on_microsofts_engine() -> Result<()> {
    let Some(python) = durable_testkit::python() else {
        return Ok(());
    };
    let app = python_app(&python);
    // A file, so that the recorded histories can be read once the host is gone.
    let db = app.path().join("recorded.db");
    let db_arg = db.to_string_lossy().into_owned();
    let mut host = HostProcess::start(app.path(), &["--port", "0", "--db", &db_arg])?;
    let http = reqwest::Client::new();

    let chain = start(
        &http,
        &host,
        "Chain",
        "chain-1",
        Some(json!(["Tokyo", "Seattle", "London"])),
    )
    .await?;
    let fan = start(
        &http,
        &host,
        "FanOutFanIn",
        "fan-1",
        Some(json!([1, 2, 3, 4, 5])),
    )
    .await?;
    let timer = start(&http, &host, "Timer", "timer-1", Some(json!(1))).await?;

    let done = wait_done(&http, &host, &chain).await?;
    assert_eq!(done["runtimeStatus"], "Completed", "{done}");
    assert_eq!(done["name"], "Chain");
    assert_eq!(
        done["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );

    let done = wait_done(&http, &host, &fan).await?;
    assert_eq!(done["runtimeStatus"], "Completed", "{done}");
    assert_eq!(
        done["output"],
        json!({ "squares": [1, 4, 9, 16, 25], "sum": 55 })
    );

    let done = wait_done(&http, &host, &timer).await?;
    assert_eq!(done["runtimeStatus"], "Completed", "{done}");
    assert_eq!(done["output"]["instance"], "timer-1");
    // The orchestrator's clock is the history's: after the timer it reads the turn that the timer woke.
    let waited = done["output"]["waited"].as_f64().context("waited")?;
    assert!(waited >= 1.0, "woke {waited} s after a 1 s timer");

    // The chain's history: one activity after the other, each result recorded once.
    let separator = if chain.contains('?') { '&' } else { '?' };
    let history: Value = http
        .get(format!(
            "{chain}{separator}showHistory=true&showHistoryOutput=true"
        ))
        .send()
        .await?
        .json()
        .await?;
    let results: Vec<&Value> = history["historyEvents"]
        .as_array()
        .context("historyEvents")?
        .iter()
        .filter(|e| e["EventType"] == "TaskCompleted")
        .map(|e| &e["Result"])
        .collect();
    assert_eq!(
        results,
        [
            &json!("Hello Tokyo!"),
            &json!("Hello Seattle!"),
            &json!("Hello London!")
        ]
    );

    // SIGTERM stops the host, and the handler with it.
    let handler = host.handler_pid().context("the handler logged no pid")?;
    assert!(alive(handler), "the handler should run while the host does");
    let status = host.terminate()?;
    assert!(status.success(), "{status}\n{}", host.output());
    let deadline = Instant::now() + LIMIT;
    while alive(handler) {
        assert!(
            Instant::now() < deadline,
            "the handler (pid {handler}) outlived the host"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The timer fired no earlier than its fire time, by the backend's own record: the turn that delivered it was
    // dispatched at or after the time the orchestration asked for.
    let backend = durable_backend::start(
        durable_backend::Options::new()
            .with_db_path(&db)
            .with_bind(([127, 0, 0, 1], 0).into()),
    )
    .await?;
    let client = durable_grpc::DurableClient::new(
        &durable_grpc::ConnectionOptions::new(backend.endpoint()).with_task_hub("pythonhub"),
    )?;
    let history = client.get_history("timer-1").await?;
    let timers = durable_testkit::fired_timers(&history).map_err(anyhow::Error::msg)?;
    assert_eq!(timers.len(), 1, "{history:?}");
    backend.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_reach_the_orchestrator_and_the_instance() -> Result<()> {
    let Some(python) = durable_testkit::python() else {
        return Ok(());
    };
    let app = python_app(&python);
    let host = HostProcess::start(app.path(), &["--port", "0"])?;
    let http = reqwest::Client::new();

    // An activity that raises: the handler answers 500, and the orchestrator sees a task failure it can catch.
    let caught = start(&http, &host, "CatchFailure", "catch-1", None).await?;
    // An orchestrator that raises: Microsoft's engine completes the instance as failed.
    let broken = start(&http, &host, "Broken", "broken-1", None).await?;

    let done = wait_done(&http, &host, &caught).await?;
    assert_eq!(done["runtimeStatus"], "Completed", "{done}");
    assert_eq!(done["output"]["caught"], true, "{done}");
    assert!(
        done["output"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{done}"
    );

    let done = wait_done(&http, &host, &broken).await?;
    assert_eq!(done["runtimeStatus"], "Failed", "{done}");
    assert_eq!(done["output"], "this orchestrator always fails", "{done}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_port_flag_the_local_settings_port_is_used() -> Result<()> {
    let Some(python) = durable_testkit::python() else {
        return Ok(());
    };
    let app = python_app(&python);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    write(
        app.path(),
        "local.settings.json",
        &json!({ "Values": { "FUNCTIONS_WORKER_RUNTIME": "custom" }, "Host": { "LocalHttpPort": port } })
            .to_string(),
    );
    let host = HostProcess::start(app.path(), &[])?;
    assert_eq!(host.base_url, format!("http://localhost:{port}"));

    let http = reqwest::Client::new();
    let chain = start(&http, &host, "Chain", "chain-port", Some(json!(["Oslo"]))).await?;
    let done = wait_done(&http, &host, &chain).await?;
    assert_eq!(done["output"], json!(["Hello Oslo!"]), "{done}");
    Ok(())
}
