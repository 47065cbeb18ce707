//! Queue triggers and queue output bindings against a real Azurite, with a real handler (`durable_handler`): the
//! invocation format and its metadata, deletion on success, retries and the poison queue, output bindings of queue,
//! HTTP and timer functions, and every `extensions.queues` setting of `host.json`.
//!
//! The handler is this test binary run again as a child process, with `DURABLE_QUEUE_TEST_LOG` set: the binary has
//! its own `main` (`harness = false`), which serves the handler then and runs the tests otherwise.

mod azurite;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use azurite::{Azurite, b64};
use durable_core::Registry;
use durable_handler::{
    AuthLevel, FunctionApp, FunctionError, HttpResponse, HttpTrigger, InvocationContext,
    OutputBinding, QueueTrigger, TimerTrigger,
};
use durable_host::{BackendChoice, HostOptions};
use durable_testkit::harness::Test;
use serde_json::{Value, json};

const HANDLER_ENV: &str = "DURABLE_QUEUE_TEST_LOG";
const GATE_ENV: &str = "DURABLE_QUEUE_TEST_GATE";

/// Appends what a function saw to the log the test reads.
fn record(function: &str, message: &Value, ctx: &InvocationContext) {
    use std::io::Write as _;
    let Some(log) = std::env::var_os(HANDLER_ENV) else {
        return;
    };
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let line = json!({ "function": function, "message": message, "metadata": ctx.metadata(), "at_ms": at });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    // One write per record: concurrent invocations append to the same file, and a record formatted straight into
    // it would go out in many small writes that interleave with another's, leaving neither line readable.
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

fn function_app() -> durable_handler::Handler {
    FunctionApp::new(Registry::new())
        .queue(
            "Orders",
            QueueTrigger::new("orders"),
            |message: Value, ctx: InvocationContext| async move {
                record("Orders", &message, &ctx);
                let text = message.as_str().unwrap_or_default();
                if text == "fail" {
                    return Err(FunctionError::msg("failing on purpose"));
                }
                if text.starts_with("gate") {
                    // Held until the test opens the gate.
                    let gate = PathBuf::from(std::env::var_os(GATE_ENV).unwrap_or_default());
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                    while !gate.exists() && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Ok(())
            },
        )
        .queue(
            "Fanout",
            QueueTrigger::new("fanout-in").output(OutputBinding::queue("out", "fanout-out")),
            |message: Value, ctx: InvocationContext| async move {
                record("Fanout", &message, &ctx);
                ctx.push_output("out", "a")?;
                ctx.push_output("out", json!({ "n": 1 }))?;
                ctx.push_output("out", 2)?;
                Ok(())
            },
        )
        .http(
            "Send",
            HttpTrigger::new()
                .route("send")
                .methods(["post"])
                .auth_level(AuthLevel::Anonymous)
                .output(OutputBinding::queue("q", "http-out")),
            |req, ctx: InvocationContext| async move {
                ctx.set_output("q", &req.body)?;
                Ok(HttpResponse::text("queued"))
            },
        )
        .timer(
            "Tick",
            TimerTrigger::new("0 0 0 1 1 *")
                .run_on_startup(true)
                .output(OutputBinding::queue("q", "timer-out")),
            |_info, ctx: InvocationContext| async move {
                ctx.set_output("q", "tick")?;
                Ok(())
            },
        )
        .build()
        .unwrap()
}

fn main() -> std::process::ExitCode {
    if std::env::var_os(HANDLER_ENV).is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime
            .block_on(durable_handler::serve(function_app()))
            .unwrap();
        return std::process::ExitCode::SUCCESS;
    }
    durable_testkit::harness::run(&[
        Test::new(
            "defaults_metadata_poison_and_outputs_of_every_trigger_kind",
            || {
                durable_testkit::harness::block_on(
                    defaults_metadata_poison_and_outputs_of_every_trigger_kind(),
                )
            },
        ),
        Test::new("host_json_queue_settings_are_applied", || {
            durable_testkit::harness::block_on(host_json_queue_settings_are_applied())
        }),
        Test::new(
            "bad_queue_settings_stop_the_start_with_a_clear_error",
            || {
                durable_testkit::harness::block_on(
                    bad_queue_settings_stop_the_start_with_a_clear_error(),
                )
            },
        ),
    ])
}

struct App {
    dir: tempfile::TempDir,
    log: PathBuf,
    gate: PathBuf,
}

fn app(azurite: &Azurite, queues: Value) -> Result<App> {
    let dir = tempfile::tempdir()?;
    let mut host = json!({ "version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "not-used"}} });
    if !queues.is_null() {
        host["extensions"] = json!({ "queues": queues });
    }
    std::fs::write(dir.path().join("host.json"), host.to_string())?;
    std::fs::write(
        dir.path().join("local.settings.json"),
        json!({ "Values": { "AzureWebJobsStorage": azurite.connection_string() } }).to_string(),
    )?;
    function_app().write_function_files(dir.path())?;
    let log = dir.path().join("invocations.jsonl");
    let gate = dir.path().join("gate-open");
    Ok(App { dir, log, gate })
}

async fn start_host(app: &App) -> Result<durable_host::HostHandle> {
    Ok(durable_host::start(
        HostOptions::new(app.dir.path())
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_handler_env(HANDLER_ENV, app.log.to_string_lossy())
            .with_handler_env(GATE_ENV, app.gate.to_string_lossy())
            .with_backend(BackendChoice::EmbeddedInMemory),
    )
    .await?)
}

fn records(log: &Path, function: &str, message: impl Into<Value>) -> Vec<Value> {
    let message = message.into();
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["function"] == function && r["message"] == message)
        .collect()
}

async fn wait_records(
    log: &Path,
    function: &str,
    message: impl Into<Value>,
    count: usize,
) -> Result<Vec<Value>> {
    let message = message.into();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = records(log, function, message.clone());
        if found.len() >= count {
            return Ok(found);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{function} saw {message:?} {} times, expected {count}",
                found.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn defaults_metadata_poison_and_outputs_of_every_trigger_kind() -> Result<()> {
    let Some(azurite) = Azurite::start(&[], None).await? else {
        return Ok(());
    };
    azurite.create_queue("orders").await?;
    azurite.create_queue("fanout-in").await?;
    azurite.put("orders", &b64(r#"{"order":7}"#)).await?;
    azurite.put("orders", &b64("fail")).await?;
    // Not base64, as the default encoding requires: poisoned without an invocation.
    azurite.put("orders", "not base64!").await?;
    azurite.put("fanout-in", &b64("go")).await?;
    let app = app(&azurite, Value::Null)?;
    let host = start_host(&app).await?;

    // A JSON message arrives as its JSON, with the metadata the host sends, and is deleted after success.
    let ok = wait_records(&app.log, "Orders", json!({ "order": 7 }), 1).await?;
    let metadata = &ok[0]["metadata"];
    assert_eq!(metadata["DequeueCount"], "1");
    assert!(
        metadata["Id"]
            .as_str()
            .is_some_and(|id| id.starts_with('"') && id.len() > 2)
    );
    assert!(
        metadata["PopReceipt"]
            .as_str()
            .is_some_and(|p| p.starts_with('"'))
    );
    for time in ["InsertionTime", "ExpirationTime", "NextVisibleTime"] {
        let text = metadata[time].as_str().unwrap_or_default();
        assert!(
            text.ends_with("+00:00") && text.as_bytes().get(10) == Some(&b'T'),
            "{time}: {text}"
        );
    }
    assert_eq!(metadata["sys"]["MethodName"], "Orders");
    // The JSON message lends its properties to the binding data.
    assert_eq!(metadata["order"], "\"7\"");

    // A failing message is tried maxDequeueCount (5) times, then moved, as stored, to orders-poison.
    let failed = wait_records(&app.log, "Orders", "fail", 5).await?;
    let counts: Vec<&Value> = failed
        .iter()
        .map(|r| &r["metadata"]["DequeueCount"])
        .collect();
    assert_eq!(counts, ["1", "2", "3", "4", "5"]);
    azurite
        .wait_for("orders-poison", &["not base64!".into(), b64("fail")])
        .await?;
    azurite.wait_for("orders", &[]).await?;
    assert!(records(&app.log, "Orders", "not base64!").is_empty());
    assert_eq!(
        records(&app.log, "Orders", "fail").len(),
        5,
        "no sixth attempt"
    );

    // Output bindings: several messages from a queue function (created queue, base64 like the host), the
    // HTTP function's and the timer's (runOnStartup) single message.
    azurite
        .wait_for("fanout-out", &[b64("a"), b64("{\n  \"n\": 1\n}"), b64("2")])
        .await?;
    let http = reqwest::Client::new();
    let reply = http
        .post(format!("http://{}/api/send", host.local_addr()))
        .body("hello queue")
        .send()
        .await?;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await?, "queued");
    azurite.wait_for("http-out", &[b64("hello queue")]).await?;
    azurite.wait_for("timer-out", &[b64("tick")]).await?;
    assert_eq!(records(&app.log, "Fanout", "go").len(), 1);

    host.stop().await?;
    azurite.stop().await
}

async fn host_json_queue_settings_are_applied() -> Result<()> {
    let Some(azurite) = Azurite::start(&[], None).await? else {
        return Ok(());
    };
    azurite.create_queue("orders").await?;
    azurite.create_queue("fanout-in").await?;
    // messageEncoding none: messages are their text on the wire.
    for i in 1..=5 {
        azurite.put("orders", &format!("gate-{i}")).await?;
    }
    azurite.put("fanout-in", "go").await?;
    let app = app(
        &azurite,
        json!({
            "batchSize": 2, "newBatchThreshold": 0, "maxDequeueCount": 2, "visibilityTimeout": "00:00:03",
            "messageEncoding": "none", "maxPollingInterval": "00:00:03"
        }),
    )?;
    let host = start_host(&app).await?;

    // batchSize 2 and newBatchThreshold 0: two messages are in flight, held by the handler, and the other
    // three stay in the queue until both are done.
    wait_records(&app.log, "Orders", "gate-1", 1).await?;
    wait_records(&app.log, "Orders", "gate-2", 1).await?;
    let waiting: Vec<String> = (3..=5).map(|i| format!("gate-{i}")).collect();
    assert_eq!(azurite.peek("orders").await?, waiting);
    std::fs::write(&app.gate, b"open")?;
    for i in 3..=5 {
        wait_records(&app.log, "Orders", format!("gate-{i}"), 1).await?;
    }
    azurite.wait_for("orders", &[]).await?;
    for i in 1..=5 {
        assert_eq!(records(&app.log, "Orders", format!("gate-{i}")).len(), 1);
    }

    // Outputs are written in the configured encoding too.
    azurite
        .wait_for(
            "fanout-out",
            &["a".into(), "{\n  \"n\": 1\n}".into(), "2".into()],
        )
        .await?;

    // maxDequeueCount 2, and visibilityTimeout 3 s between the attempts.
    azurite.put("orders", "fail").await?;
    let failed = wait_records(&app.log, "Orders", "fail", 2).await?;
    azurite.wait_for("orders-poison", &["fail".into()]).await?;
    assert_eq!(records(&app.log, "Orders", "fail").len(), 2);
    let gap = failed[1]["at_ms"].as_u64().unwrap() - failed[0]["at_ms"].as_u64().unwrap();
    assert!(gap >= 3000, "the retry came {gap} ms after the failure");

    // maxPollingInterval 3 s: once the queue is empty the waits between polls grow until they are the maximum,
    // which is longer than the local default of 2 s. (While messages keep coming the host polls at once.)
    let idle_since = time::OffsetDateTime::now_utc();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let polls: Vec<_> = azurite
            .polls("orders")
            .into_iter()
            .filter(|at| *at > idle_since)
            .collect();
        let gaps: Vec<Duration> = polls
            .windows(2)
            .map(|w| (w[1] - w[0]).try_into().unwrap_or_default())
            .collect();
        assert!(
            gaps.iter().all(|g| *g >= Duration::from_millis(90)),
            "polls closer than the 100 ms minimum: {gaps:?}"
        );
        let settled = gaps.len() >= 3
            && gaps[gaps.len() - 3..]
                .iter()
                .all(|g| *g >= Duration::from_millis(2950));
        if settled {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "polling never settled at maxPollingInterval: {gaps:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    host.stop().await?;
    azurite.stop().await
}

async fn bad_queue_settings_stop_the_start_with_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("host.json"),
        json!({ "version": "2.0", "extensions": { "queues": { "batchSize": 64 } } }).to_string(),
    )?;
    std::fs::write(
        dir.path().join("local.settings.json"),
        json!({ "Values": { "AzureWebJobsStorage": "UseDevelopmentStorage=true" } }).to_string(),
    )?;
    function_app().write_function_files(dir.path())?;
    let options = || {
        HostOptions::new(dir.path())
            .with_port(0)
            .with_handler("/bin/false")
            .with_backend(BackendChoice::EmbeddedInMemory)
    };
    let error = durable_host::start(options())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("batchSize") && error.contains("host.json"),
        "{error}"
    );

    std::fs::write(dir.path().join("host.json"), r#"{"version":"2.0"}"#)?;
    std::fs::write(dir.path().join("local.settings.json"), r#"{"Values":{}}"#)?;
    let error = durable_host::start(options())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("AzureWebJobsStorage"), "{error}");
    Ok(())
}
