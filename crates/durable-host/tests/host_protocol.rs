//! The local host against a recording fake handler (the `durable-host-fake-handler` program): what it sends
//! to the handler, field for field against docs/FUNCTIONS-HOST.md, and what it answers over HTTP.

mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use durable_host::{BackendChoice, HostHandle, HostOptions};
use durable_proto as proto;
use prost::Message as _;
use serde_json::{Value, json};

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "host.json",
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"not-used"}},
            "extensions":{"durableTask":{"hubName":"%MY_HUB%"}}}"#,
    );
    write(
        d,
        "local.settings.json",
        r#"{"IsEncrypted":false,"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom","MY_HUB":"testhub","MY_SETTING":"v1"}}"#,
    );
    write(
        d,
        "HelloOrch/function.json",
        r#"{"bindings":[{"name":"context","type":"orchestrationTrigger","direction":"in"}]}"#,
    );
    write(
        d,
        "SayHello/function.json",
        r#"{"bindings":[{"name":"input","type":"activityTrigger","direction":"in"}]}"#,
    );
    write(
        d,
        "Counter/function.json",
        r#"{"bindings":[{"name":"context","type":"entityTrigger","direction":"in"}]}"#,
    );
    write(
        d,
        "HttpStart/function.json",
        r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous","methods":["post"],"route":"start/{name}/{id:int?}"},
                        {"name":"starter","type":"durableClient","direction":"in"},{"name":"res","type":"http","direction":"out"}]}"#,
    );
    write(
        d,
        "Secure/function.json",
        r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"function","methods":["get"]},
                        {"name":"$return","type":"http","direction":"out"}]}"#,
    );
    dir
}

async fn start_host(app: &Path, log: &Path, hang_marker: Option<&Path>) -> Result<HostHandle> {
    start_host_with(app, log, hang_marker, false).await
}

async fn start_host_with(
    app: &Path,
    log: &Path,
    hang_marker: Option<&Path>,
    timers: bool,
) -> Result<HostHandle> {
    let mut options = HostOptions::new(app)
        .with_port(0)
        .with_handler(env!("CARGO_BIN_EXE_durable-host-fake-handler"))
        .with_handler_env(support::LOG_ENV, log.to_string_lossy())
        .with_backend(BackendChoice::EmbeddedInMemory)
        .with_function_key("fkey")
        .with_master_key("mkey")
        .with_timers(timers);
    if let Some(marker) = hang_marker {
        options = options.with_handler_env(support::HANG_MARKER_ENV, marker.to_string_lossy());
    }
    Ok(durable_host::start(options).await?)
}

fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn requests_to(log: &Path, path: &str) -> Vec<Value> {
    records(log)
        .into_iter()
        .filter(|r| r["path"] == path)
        .collect()
}

/// Polls the status URL until the instance is done (bounded).
async fn wait_done(http: &reqwest::Client, url: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = http.get(url).send().await?;
        let code = response.status().as_u16();
        let body: Value = response.json().await?;
        if code == 200 {
            return Ok(body);
        }
        if code != 202 {
            bail!("status {code}: {body}");
        }
        if tokio::time::Instant::now() > deadline {
            bail!("still running at the deadline: {body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_host_headers(request: &Value, function: &str) {
    let headers = &request["headers"];
    let id = headers["x-azure-functions-invocationid"]
        .as_str()
        .unwrap_or_default();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "invocation id {id:?}");
    assert!(
        headers["x-azure-functions-hostversion"]
            .as_str()
            .is_some_and(|v| v.starts_with("4."))
    );
    assert!(
        headers["user-agent"]
            .as_str()
            .is_some_and(|v| v.starts_with("Azure-Functions-Host/"))
    );
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(request["method"], "POST");
    let sys = &request["body"]["Metadata"]["sys"];
    assert_eq!(sys["MethodName"], function);
    assert!(uuid::Uuid::parse_str(sys["RandGuid"].as_str().unwrap()).is_ok());
    let now = sys["UtcNow"].as_str().unwrap();
    assert!(
        now.len() == 28 && now.ends_with('Z') && now.as_bytes()[10] == b'T',
        "UtcNow {now:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_invocations_use_the_host_format() -> Result<()> {
    let app = app_dir();
    let log = app.path().join("requests.jsonl");
    let host = start_host(app.path(), &log, None).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", host.local_addr());
    let hooks = format!("{base}/runtime/webhooks/durabletask");

    // The handler's environment.
    let env = &records(&log)[0]["env"];
    let port = env["FUNCTIONS_CUSTOMHANDLER_PORT"]
        .as_str()
        .context("port")?;
    assert_eq!(env["FUNCTIONS_HTTPWORKER_PORT"], port);
    assert!(
        uuid::Uuid::parse_str(env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"].as_str().unwrap()).is_ok()
    );
    assert_eq!(env["FUNCTIONS_APP_ROOT_PATH"], app.path().to_str().unwrap());
    assert_eq!(env["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(env["MY_SETTING"], "v1");
    assert_eq!(host.task_hub(), "testhub");

    // Start through the webhook: 202, Location, the management links.
    let started = http
        .post(format!("{hooks}/orchestrators/HelloOrch/inst1"))
        .body("\"x\"")
        .send()
        .await?;
    assert_eq!(started.status().as_u16(), 202);
    let location = started.headers()["location"].to_str()?.to_owned();
    let links: Value = started.json().await?;
    assert_eq!(links["id"], "inst1");
    assert_eq!(links["statusQueryGetUri"], location);
    assert!(
        location.contains("/runtime/webhooks/durabletask/instances/inst1?taskHub=testhub"),
        "{location}"
    );
    assert!(
        links["sendEventPostUri"]
            .as_str()
            .unwrap()
            .contains("/instances/inst1/raiseEvent/{eventName}?")
    );

    let done = wait_done(&http, &format!("{hooks}/instances/inst1")).await?;
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(done["name"], "HelloOrch");
    assert_eq!(done["instanceId"], "inst1");
    assert_eq!(done["input"], "x");
    assert_eq!(done["output"], "Hello Tokyo!");
    let created = done["createdTime"].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z'), "{created}");

    // The orchestrator requests: Data.context is a JSON string of a JSON string of base64(OrchestratorRequest).
    let turns = requests_to(&log, "/HelloOrch");
    assert!(turns.len() >= 2, "two turns at least, got {}", turns.len());
    for turn in &turns {
        assert_host_headers(turn, "HelloOrch");
        let body = &turn["body"];
        assert_eq!(
            body["Data"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["context"]
        );
        assert_eq!(
            body["Metadata"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["sys"]
        );
        let request = proto::OrchestratorRequest::decode(
            support::decode_payload(&body["Data"]["context"]).as_slice(),
        )?;
        assert_eq!(request.instance_id, "inst1");
        // Built afresh as the extension builds it: no execution ID, no streaming, no trace context.
        assert_eq!(request.execution_id, None);
        assert!(!request.requires_history_streaming);
        assert_eq!(request.orchestration_trace_context, None);
        assert!(
            request
                .properties
                .contains_key("HttpDefaultAsyncRequestSleepTimeMilliseconds")
        );
    }

    // The activity request, three layers deep, with instanceId and data in Metadata.
    let activity = &requests_to(&log, "/SayHello")[0];
    assert_host_headers(activity, "SayHello");
    assert_eq!(
        activity["body"]["Data"],
        json!({ "input": "\"\\\"Tokyo\\\"\"" })
    );
    let metadata = &activity["body"]["Metadata"];
    assert_eq!(metadata["instanceId"], "\"inst1\"");
    assert_eq!(metadata["input"], "\"\\\"Tokyo\\\"\"");
    assert_eq!(metadata["data"], "\"Tokyo\"");

    // History, with the activity's name folded into its completion.
    let history: Value = http
        .get(format!(
            "{hooks}/instances/inst1?showHistory=true&showHistoryOutput=true"
        ))
        .send()
        .await?
        .json()
        .await?;
    let events = history["historyEvents"]
        .as_array()
        .context("historyEvents")?;
    let completed = events
        .iter()
        .find(|e| e["EventType"] == "TaskCompleted")
        .context("TaskCompleted")?;
    assert_eq!(completed["FunctionName"], "SayHello");
    assert_eq!(completed["Result"], "Hello Tokyo!");
    assert!(events.iter().all(|e| e["EventType"] != "TaskScheduled"));

    // Management API status codes.
    assert_eq!(
        http.get(format!("{hooks}/instances/nope"))
            .send()
            .await?
            .status()
            .as_u16(),
        404
    );
    let raised = http
        .post(format!("{hooks}/instances/inst1/raiseEvent/Approval"))
        .body("true")
        .send()
        .await?;
    assert_eq!(raised.status().as_u16(), 410);
    let bad = http
        .post(format!("{hooks}/orchestrators/HelloOrch"))
        .body("{not json")
        .send()
        .await?;
    assert_eq!(bad.status().as_u16(), 400);
    let unknown = http
        .post(format!("{hooks}/orchestrators/NoSuchOrch"))
        .send()
        .await?;
    assert_eq!(unknown.status().as_u16(), 400);

    // A second instance, then a paged list.
    let second = http
        .post(format!("{hooks}/orchestrators/HelloOrch/inst2"))
        .send()
        .await?;
    assert_eq!(second.status().as_u16(), 202);
    wait_done(&http, &format!("{hooks}/instances/inst2")).await?;
    let page = http
        .get(format!("{hooks}/instances?top=1&runtimeStatus=Completed"))
        .send()
        .await?;
    let token = page
        .headers()
        .get("x-ms-continuation-token")
        .map(|v| v.to_str().unwrap().to_owned());
    let first: Value = page.json().await?;
    assert_eq!(first.as_array().unwrap().len(), 1);
    let token = token.context("a continuation token after the first of two")?;
    let next: Value = http
        .get(format!("{hooks}/instances?top=1&runtimeStatus=Completed"))
        .header("x-ms-continuation-token", token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(next.as_array().unwrap().len(), 1);
    assert_ne!(first[0]["instanceId"], next[0]["instanceId"]);

    // Entities: signal through the webhook, read the state back, and check the batch the handler got.
    let signal = http
        .post(format!("{hooks}/entities/Counter/k1?op=add"))
        .body("5")
        .send()
        .await?;
    assert_eq!(signal.status().as_u16(), 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = http
            .get(format!("{hooks}/entities/Counter/k1"))
            .send()
            .await?;
        if state.status().as_u16() == 200 {
            assert_eq!(state.json::<Value>().await?, json!(5));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the entity never got its state"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let batch = &requests_to(&log, "/Counter")[0];
    assert_host_headers(batch, "Counter");
    let request = proto::EntityBatchRequest::decode(
        support::decode_payload(&batch["body"]["Data"]["context"]).as_slice(),
    )?;
    assert_eq!(request.instance_id, "@counter@k1");
    assert_eq!(request.operations[0].operation, "add");
    assert_eq!(request.operations[0].input.as_deref(), Some("5"));

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_triggers_are_wrapped_routed_and_keyed() -> Result<()> {
    let app = app_dir();
    let log = app.path().join("requests.jsonl");
    let host = start_host(app.path(), &log, None).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", host.local_addr());

    let response = http
        .post(format!("{base}/api/start/HelloOrch/42?x=1&x=2"))
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(response.headers()["x-test"], "1");
    assert_eq!(response.text().await?, "started");

    let request = &requests_to(&log, "/HttpStart")[0];
    assert_host_headers(request, "HttpStart");
    let req = &request["body"]["Data"]["req"];
    assert!(
        req["Url"]
            .as_str()
            .unwrap()
            .ends_with("/api/start/HelloOrch/42?x=1&x=2"),
        "{}",
        req["Url"]
    );
    assert_eq!(req["Method"], "POST");
    assert_eq!(req["Query"], json!({ "x": "1,2" }));
    assert_eq!(req["Params"], json!({ "name": "HelloOrch", "id": "42" }));
    assert_eq!(req["Body"], r#"{"a":1}"#);
    assert_eq!(req["Headers"]["Content-Type"], json!(["application/json"]));
    assert_eq!(req["Identities"], json!([]));
    // The durableClient binding: a .NET string of the client payload, so its JSON text is itself a JSON string.
    let layer: String = serde_json::from_str(
        request["body"]["Data"]["starter"]
            .as_str()
            .context("starter")?,
    )?;
    let starter: Value = serde_json::from_str(&layer)?;
    assert_eq!(starter["taskHubName"], "testhub");
    assert_eq!(starter["rpcBaseUrl"], host.client_endpoint());
    assert_eq!(
        starter["httpBaseUrl"],
        format!("{}/runtime/webhooks/durabletask", host.base_url())
    );
    assert_eq!(starter["connectionName"], Value::Null);
    assert_eq!(starter["requiredQueryStringParameters"], "");
    assert_eq!(request["body"]["Metadata"]["name"], "\"HelloOrch\"");

    // Constraints and methods.
    assert_eq!(
        http.post(format!("{base}/api/start/HelloOrch/abc"))
            .send()
            .await?
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        http.get(format!("{base}/api/start/HelloOrch"))
            .send()
            .await?
            .status()
            .as_u16(),
        405
    );

    // Function-level keys.
    assert_eq!(
        http.get(format!("{base}/api/Secure"))
            .send()
            .await?
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        http.get(format!("{base}/api/Secure?code=wrong"))
            .send()
            .await?
            .status()
            .as_u16(),
        401
    );
    let by_query = http
        .get(format!("{base}/api/Secure?code=fkey"))
        .send()
        .await?;
    assert_eq!(by_query.status().as_u16(), 200);
    assert_eq!(by_query.text().await?, "secret");
    let by_header = http
        .get(format!("{base}/api/Secure"))
        .header("x-functions-key", "mkey")
        .send()
        .await?;
    assert_eq!(by_header.status().as_u16(), 200);

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_handler_is_restarted_and_its_work_item_retried() -> Result<()> {
    let app = app_dir();
    let log = app.path().join("requests.jsonl");
    let marker = app.path().join("hung-once");
    let host = start_host(app.path(), &log, Some(&marker)).await?;
    let http = reqwest::Client::new();
    let hooks = format!("http://{}/runtime/webhooks/durabletask", host.local_addr());

    let first_pid = host.handler_pid();
    let started = http
        .post(format!("{hooks}/orchestrators/HelloOrch/crash1"))
        .send()
        .await?;
    assert_eq!(started.status().as_u16(), 202);
    // The first activity invocation hangs; kill the handler while the host waits for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while requests_to(&log, "/SayHello").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the activity was never invoked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-9", &first_pid.to_string()])
        .status()?;
    assert!(status.success());

    let done = wait_done(&http, &format!("{hooks}/instances/crash1")).await?;
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(done["output"], "Hello Tokyo!");
    let pids: Vec<u64> = records(&log)
        .iter()
        .filter_map(|r| r["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 2, "one restart: {pids:?}");
    assert_ne!(host.handler_pid(), first_pid);
    assert!(
        requests_to(&log, "/SayHello").len() >= 2,
        "the activity was retried"
    );

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_exits_at_start_is_started_again_up_to_three_times() -> Result<()> {
    let starts = |dir: &Path| std::fs::read_to_string(dir.join("starts")).map_or(0, |t| t.len());
    let options = |app: &Path, exits: usize| {
        HostOptions::new(app)
            .with_port(0)
            .with_handler(env!("CARGO_BIN_EXE_durable-host-fake-handler"))
            .with_handler_env(support::LOG_ENV, app.join("log.jsonl").to_string_lossy())
            .with_handler_env(
                support::EXIT_EARLY_ENV,
                format!("{exits}:{}", app.join("starts").display()),
            )
            .with_backend(BackendChoice::EmbeddedInMemory)
    };

    // Two early exits: the third start serves.
    let app = app_dir();
    let host = durable_host::start(options(app.path(), 2)).await?;
    assert_eq!(starts(app.path()), 3);
    // Only the third process got as far as serving (the fake handler records its start first thing).
    let served: Vec<Value> = records(&app.path().join("log.jsonl"))
        .into_iter()
        .filter(|r| r.get("env").is_some())
        .collect();
    assert_eq!(served.len(), 1, "{served:?}");
    host.stop().await?;

    // Three: the start fails, and says why.
    let app = app_dir();
    let err = durable_host::start(options(app.path(), 3))
        .await
        .err()
        .context("the host started with a handler that never did")?;
    assert_eq!(starts(app.path()), 3);
    assert!(
        err.to_string().contains("exited before it was ready"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_host_json_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = durable_host::start(HostOptions::new(dir.path()).with_port(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("host.json"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_run_on_startup_with_a_timer_info() -> Result<()> {
    let app = app_dir();
    // Once a year, and once at start.
    write(
        app.path(),
        "Tick/function.json",
        r#"{"bindings":[{"name":"timer","type":"timerTrigger","direction":"in","schedule":"0 0 0 1 1 *","runOnStartup":true}]}"#,
    );
    let log = app.path().join("requests.jsonl");
    let host = start_host_with(app.path(), &log, None, true).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while requests_to(&log, "/Tick").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the timer never fired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tick = &requests_to(&log, "/Tick")[0];
    assert_host_headers(tick, "Tick");
    let info = &tick["body"]["Data"]["timer"];
    assert_eq!(info["IsPastDue"], false);
    assert_eq!(info["Schedule"], json!({ "AdjustForDST": true }));
    assert_eq!(info["ScheduleStatus"], Value::Null);
    host.stop().await?;
    assert_eq!(requests_to(&log, "/Tick").len(), 1, "only the start-up run");
    Ok(())
}

#[tokio::test]
async fn a_bad_timer_schedule_stops_the_start() {
    let app = app_dir();
    write(
        app.path(),
        "Tick/function.json",
        r#"{"bindings":[{"name":"timer","type":"timerTrigger","direction":"in","schedule":"every minute"}]}"#,
    );
    let log = app.path().join("requests.jsonl");
    let err = start_host(app.path(), &log, None).await.unwrap_err();
    assert!(err.to_string().contains("Tick"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_and_create_and_wait() -> Result<()> {
    let app = app_dir();
    write(
        app.path(),
        "host.json",
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"x"},"enableForwardingHttpRequest":true}}"#,
    );
    write(
        app.path(),
        "Fwd/function.json",
        r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous","route":"fwd/{x}"},
                        {"name":"res","type":"http","direction":"out"}]}"#,
    );
    let log = app.path().join("requests.jsonl");
    let host = start_host(app.path(), &log, None).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", host.local_addr());

    // One HTTP input and one HTTP output: the raw request goes to the same path, and its answer comes back as is.
    let reply = http
        .put(format!("{base}/api/fwd/1?q=2"))
        .header("x-custom", "yes")
        .body("raw body")
        .send()
        .await?;
    assert_eq!(reply.status().as_u16(), 201);
    assert_eq!(reply.text().await?, "forwarded PUT raw body");
    let forwarded = &requests_to(&log, "/api/fwd/1?q=2")[0];
    assert_eq!(forwarded["method"], "PUT");
    assert_eq!(forwarded["headers"]["x-custom"], "yes");
    assert!(forwarded["headers"]["x-azure-functions-invocationid"].is_string());
    assert_eq!(forwarded["body"], "raw body");
    // A starter has a second input (durableClient): never forwarded, always wrapped.
    let wrapped = http
        .post(format!("{base}/api/start/HelloOrch"))
        .send()
        .await?;
    assert_eq!(wrapped.status().as_u16(), 202);
    assert_eq!(requests_to(&log, "/HttpStart").len(), 1);

    // Create-and-wait: the output itself when the instance finishes within `timeout` seconds.
    let hooks = format!("{base}/runtime/webhooks/durabletask");
    let waited = http
        .post(format!("{hooks}/orchestrators/HelloOrch/w1?timeout=60"))
        .send()
        .await?;
    assert_eq!(waited.status().as_u16(), 200);
    assert_eq!(waited.json::<Value>().await?, json!("Hello Tokyo!"));

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_handler() -> Result<()> {
    let app = app_dir();
    let log = app.path().join("requests.jsonl");
    let host = start_host(app.path(), &log, None).await?;
    let pid = host.handler_pid().to_string();
    let alive = |pid: &str| {
        std::process::Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(alive(&pid));
    drop(host);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while alive(&pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the handler outlived its host"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_named_by_connection_string_is_used_instead_of_the_embedded_backend()
-> Result<()> {
    // A separately running scheduler (the embedded backend standing in for the emulator).
    let scheduler = durable_backend::start(
        durable_backend::Options::new()
            .in_memory()
            .with_bind(([127, 0, 0, 1], 0).into()),
    )
    .await?;
    let app = app_dir();
    let log = app.path().join("requests.jsonl");
    let host = durable_host::start(
        HostOptions::new(app.path())
            .with_port(0)
            .with_handler(env!("CARGO_BIN_EXE_durable-host-fake-handler"))
            .with_handler_env(support::LOG_ENV, log.to_string_lossy())
            .with_timers(false)
            .with_backend(BackendChoice::ConnectionString(format!(
                "Endpoint={};Authentication=None",
                scheduler.endpoint()
            ))),
    )
    .await?;
    assert_eq!(host.backend_endpoint(), scheduler.endpoint());
    let http = reqwest::Client::new();
    let hooks = format!("http://{}/runtime/webhooks/durabletask", host.local_addr());
    let started = http
        .post(format!("{hooks}/orchestrators/HelloOrch/remote1"))
        .send()
        .await?;
    assert_eq!(started.status().as_u16(), 202);
    let done = wait_done(&http, &format!("{hooks}/instances/remote1")).await?;
    assert_eq!(done["output"], "Hello Tokyo!");

    // The instance lives in the scheduler, in the app's task hub.
    let client = durable_grpc::DurableClient::new(
        &durable_grpc::ConnectionOptions::new(scheduler.endpoint()).with_task_hub("testhub"),
    )?;
    let stored = client
        .get_instance("remote1", true)
        .await?
        .context("stored in the scheduler")?;
    assert_eq!(
        stored.serialized_output.as_deref(),
        Some("\"Hello Tokyo!\"")
    );

    host.stop().await?;
    scheduler.shutdown().await?;
    Ok(())
}
