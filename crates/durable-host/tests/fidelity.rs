//! The local host reacts to a handler's mistakes as the Functions host and the Durable extension do in Azure:
//! final failures are final (after exactly one invocation), only timeouts and a vanished handler are retried,
//! requests are rebuilt as the extension builds them, and extended sessions leave the history out.
//!
//! The handler is the `durable-host-fidelity-handler` program (`tests/bin/fidelity_handler.rs`), serving the
//! misbehaving functions of `fidelity/handler.rs`.

#[path = "fidelity/handler.rs"]
mod handler;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use durable_host::{BackendChoice, HostHandle, HostOptions};
use serde_json::{Value, json};

const ORCHESTRATORS: &[&str] = &[
    "Status500",
    "TextReply",
    "NullReturn",
    "Terminator",
    "ActivityFailures",
    "EntityCalls",
    "Sleepy",
    "Empty",
    "Session",
    "ApplyData",
    "Rewindable",
    "Forever",
    "SlowEntityCaller",
];

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// An app whose host.json carries `durable_task` as `extensions.durableTask` and `extra` at the top level.
fn app_dir(durable_task: Value, extra: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut host = json!({
        "version": "2.0",
        "customHandler": {"description": {"defaultExecutablePath": "not-used"}},
        "extensions": {"durableTask": durable_task},
    });
    if let (Some(host), Some(extra)) = (host.as_object_mut(), extra.as_object()) {
        host.extend(extra.clone());
    }
    write(d, "host.json", &host.to_string());
    for name in ORCHESTRATORS {
        write(
            d,
            &format!("{name}/function.json"),
            r#"{"bindings":[{"name":"context","type":"orchestrationTrigger","direction":"in"}]}"#,
        );
    }
    for name in ["Broken", "Echo", "SayHello", "Flaky"] {
        write(
            d,
            &format!("{name}/function.json"),
            r#"{"bindings":[{"name":"input","type":"activityTrigger","direction":"in"}]}"#,
        );
    }
    for name in ["Counter", "BrokenEntity", "SlowEntity"] {
        write(
            d,
            &format!("{name}/function.json"),
            r#"{"bindings":[{"name":"context","type":"entityTrigger","direction":"in"}]}"#,
        );
    }
    dir
}

async fn start(app: &Path) -> Result<(HostHandle, PathBuf)> {
    let log = app.join("requests.jsonl");
    let options = HostOptions::new(app)
        .with_port(0)
        .with_handler(env!("CARGO_BIN_EXE_durable-host-fidelity-handler"))
        .with_handler_env(handler::LOG_ENV, log.to_string_lossy())
        .with_backend(BackendChoice::EmbeddedInMemory)
        .with_timers(false);
    Ok((durable_host::start(options).await?, log))
}

struct Hooks {
    http: reqwest::Client,
    base: String,
}

impl Hooks {
    fn new(host: &HostHandle) -> Self {
        Hooks {
            http: reqwest::Client::new(),
            base: format!("http://{}/runtime/webhooks/durabletask", host.local_addr()),
        }
    }

    async fn start(&self, orchestrator: &str, id: &str) -> Result<()> {
        let started = self
            .http
            .post(format!("{}/orchestrators/{orchestrator}/{id}", self.base))
            .send()
            .await?;
        if started.status().as_u16() != 202 {
            bail!("start {orchestrator}: {}", started.status());
        }
        Ok(())
    }

    /// Polls the status until the instance is done (bounded).
    async fn done(&self, id: &str) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let response = self
                .http
                .get(format!("{}/instances/{id}", self.base))
                .send()
                .await?;
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
}

/// The output of an orchestration the extension failed: `{"message", "details"}`.
fn failure_output(status: &Value) -> (String, String) {
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    let output = &status["output"];
    (
        output["message"].as_str().unwrap_or_default().to_owned(),
        output["details"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_orchestrator_invocation_fails_the_instance_after_one_invocation() -> Result<()> {
    let app = app_dir(json!({}), json!({}));
    let (host, log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    let cases = [
        (
            "Status500",
            "System.Net.Http.HttpRequestException: Response status code does not indicate success: 500 \
             (Internal Server Error).",
        ),
        (
            "TextReply",
            "System.InvalidOperationException: Invalid HttpResponseMessage",
        ),
        (
            "NullReturn",
            "System.InvalidOperationException: The function invocation resulted in a null response.",
        ),
        (
            "Terminator",
            "System.NotSupportedException: Received unsupported action type 'TerminateOrchestration'.",
        ),
    ];
    for (name, _) in cases {
        hooks.start(name, &format!("{name}-1")).await?;
    }
    for (name, cause) in cases {
        let status = hooks.done(&format!("{name}-1")).await?;
        let (message, details) = failure_output(&status);
        assert_eq!(
            message,
            format!("Function '{name}' failed with an unhandled exception.")
        );
        assert!(
            details.starts_with(&format!(
                "Microsoft.Azure.WebJobs.Host.FunctionInvocationException: Exception while executing function: \
                 Functions.{name}\n ---> {cause}"
            )),
            "{name}: {details}"
        );
        // Final: the instance is done, and the handler was asked exactly once.
        assert_eq!(
            handler::requests_to(&log, name).len(),
            1,
            "{name} was retried"
        );
    }
    // No failure details: the extension records only the output.
    let client = durable_grpc::DurableClient::new(&durable_grpc::ConnectionOptions::new(
        host.backend_endpoint(),
    ))?;
    let stored = client
        .get_instance("Status500-1", true)
        .await?
        .context("stored")?;
    assert!(stored.failure_details.is_none(), "{stored:?}");
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_failures_are_task_failures_with_the_hosts_details() -> Result<()> {
    let app = app_dir(json!({}), json!({}));
    let (host, log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    hooks.start("ActivityFailures", "act-1").await?;
    let status = hooks.done("act-1").await?;
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    let broken = &status["output"]["broken"];
    assert_eq!(
        broken["errorType"],
        "Microsoft.Azure.WebJobs.Host.FunctionInvocationException"
    );
    assert_eq!(
        broken["errorMessage"],
        "Exception while executing function: Functions.Broken"
    );
    assert_eq!(broken["isNonRetriable"], false);
    assert_eq!(
        broken["inner"]["errorType"],
        "System.Net.Http.HttpRequestException"
    );
    assert_eq!(
        broken["inner"]["errorMessage"],
        "Response status code does not indicate success: 500 (Internal Server Error)."
    );
    // A function that does not exist fails the task without any details, as the extension's TaskFailed does.
    assert_eq!(status["output"]["missing"], Value::Null);
    assert_eq!(handler::requests_to(&log, "Broken").len(), 1);
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_calls_reach_the_handler_as_events_and_a_failed_batch_fails_its_calls() -> Result<()>
{
    let app = app_dir(json!({}), json!({}));
    let (host, log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    hooks.start("EntityCalls", "ent-1").await?;
    let status = hooks.done("ent-1").await?;
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    let output = &status["output"];
    // Never the scheduler's own entity events: DurableTask.Core's EventSent / EventRaised.
    assert_eq!(output["native"], 0);
    let sent = output["sent"].as_array().context("sent")?;
    let to_counter = sent
        .iter()
        .find(|s| s["instanceId"] == "@counter@k")
        .context("an EventSent to the counter")?;
    assert_eq!(to_counter["name"], "op");
    assert_eq!(to_counter["input"]["op"], "add");
    assert_eq!(to_counter["input"]["input"], "5");
    assert_eq!(to_counter["input"]["parent"], "ent-1");
    assert_eq!(to_counter["input"]["IsLockRequest"], false);
    assert_eq!(output["counter"], json!({ "result": "5" }));
    // The broken entity's whole batch failed: the call's answer says so in DurableTask.Core's words.
    let broken = &output["broken"];
    assert_eq!(broken["exceptionType"], "entity dispatch failed");
    assert_eq!(
        broken["result"],
        "Invocation of function 'brokenentity' failed with an exception."
    );
    assert_eq!(
        broken["failureDetails"]["ErrorType"],
        "FunctionInvocationFailed"
    );
    assert_eq!(broken["failureDetails"]["IsNonRetriable"], true);
    assert_eq!(
        broken["failureDetails"]["InnerFailure"]["InnerFailure"]["ErrorType"],
        "System.Net.Http.HttpRequestException"
    );
    assert_eq!(handler::requests_to(&log, "BrokenEntity").len(), 1);
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_or_never_completed_invocation_restarts_the_handler_and_runs_again()
-> Result<()> {
    let app = app_dir(json!({}), json!({ "functionTimeout": "00:00:03" }));
    let (host, log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    hooks.start("Sleepy", "sleepy-1").await?;
    let status = hooks.done("sleepy-1").await?;
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "awake");
    assert_eq!(handler::requests_to(&log, "Sleepy").len(), 2);
    let after_sleepy = handler::pids(&log).len();
    assert!(
        after_sleepy >= 2,
        "the handler was restarted after the timeout"
    );

    // A 200 with an empty body never completes in the host either: it waits for the timeout, then runs again.
    hooks.start("Empty", "empty-1").await?;
    let status = hooks.done("empty-1").await?;
    assert_eq!(status["output"], "filled");
    assert_eq!(handler::requests_to(&log, "Empty").len(), 2);
    let after_empty = handler::pids(&log).len();
    assert!(after_empty > after_sleepy);

    // An entity batch that times out is not run again: the extension fails the batch (and the host still restarts
    // the handler).
    hooks.start("SlowEntityCaller", "slow-1").await?;
    let status = hooks.done("slow-1").await?;
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    let answer = &status["output"];
    assert_eq!(
        answer["exceptionType"], "entity dispatch failed",
        "{answer}"
    );
    assert_eq!(
        answer["failureDetails"]["ErrorType"],
        "FunctionInvocationFailed"
    );
    assert_eq!(
        answer["failureDetails"]["InnerFailure"]["ErrorType"],
        "Microsoft.Azure.WebJobs.Host.FunctionTimeoutException"
    );
    assert_eq!(
        answer["failureDetails"]["InnerFailure"]["ErrorMessage"],
        "Timeout value of 00:00:03 was exceeded by function: Functions.SlowEntity"
    );
    assert_eq!(handler::requests_to(&log, "SlowEntity").len(), 1);
    assert!(handler::pids(&log).len() > after_empty);
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_starts_follow_the_hosts_version_and_replacement_rules() -> Result<()> {
    let app = app_dir(
        json!({ "defaultVersion": "2.0", "overridableExistingInstanceStates": "NonRunningStates" }),
        json!({}),
    );
    let (host, _log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    hooks.start("Forever", "forever-1").await?;
    let client = durable_grpc::DurableClient::new(&durable_grpc::ConnectionOptions::new(
        host.backend_endpoint(),
    ))?;
    let first = client
        .get_instance("forever-1", false)
        .await?
        .context("started")?;
    assert_eq!(first.version.as_deref(), Some("2.0"));
    // A running instance is not replaced under NonRunningStates.
    let again = hooks
        .http
        .post(format!("{}/orchestrators/Forever/forever-1", hooks.base))
        .send()
        .await?;
    assert_ne!(again.status().as_u16(), 202);
    let after = client
        .get_instance("forever-1", false)
        .await?
        .context("still there")?;
    assert_eq!(after.created_at, first.created_at);
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_sessions_leave_the_history_out_until_the_handler_asks_for_it() -> Result<()> {
    let app = app_dir(
        json!({ "extendedSessionsEnabled": true, "extendedSessionIdleTimeoutInSeconds": 60 }),
        json!({}),
    );
    let (host, log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    hooks.start("Session", "session-1").await?;
    let status = hooks.done("session-1").await?;
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "Hello Oslo!");
    let turns: Vec<durable_proto::OrchestratorRequest> = handler::requests_to(&log, "Session")
        .iter()
        .map(|r| {
            prost::Message::decode(
                handler::decode_payload(&r["body"]["Data"]["context"]).as_slice(),
            )
            .unwrap()
        })
        .collect();
    let include: Vec<Option<bool>> = turns
        .iter()
        .map(|t| {
            match t
                .properties
                .get("IncludeState")
                .and_then(|v| v.kind.clone())
            {
                Some(prost_types::value::Kind::BoolValue(b)) => Some(b),
                _ => None,
            }
        })
        .collect();
    // The first turn in full, the next one without its past (refused), then again in full.
    assert_eq!(include, [Some(true), Some(false), Some(true)]);
    assert!(turns[1].past_events.is_empty());
    assert!(!turns[2].past_events.is_empty());
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_activity_input_becomes_binding_data() -> Result<()> {
    let app = app_dir(json!({}), json!({}));
    let (host, _log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    hooks.start("ApplyData", "apply-1").await?;
    let status = hooks.done("apply-1").await?;
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    let metadata = &status["output"];
    // The input's `InstanceId` took the place of the orchestration's, under the binding data's own spelling.
    assert_eq!(metadata["instanceId"], "\"not-the-orchestration\"");
    assert!(metadata.get("InstanceId").is_none());
    assert_eq!(metadata["flag"], "\"True\"");
    assert_eq!(metadata["count"], "\"3\"");
    assert_eq!(metadata["when"], "\"06/01/2025 12:00:00\"");
    assert_eq!(metadata["nested"], json!({ "a": 1 }));
    assert_eq!(metadata["sys"], "\"overwritten\"");
    for skipped in ["list", "nothing", "myTrigger"] {
        assert!(metadata.get(skipped).is_none(), "{skipped} in {metadata}");
    }
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_is_done_by_the_host_and_the_handler_only_replays() -> Result<()> {
    let app = app_dir(json!({}), json!({}));
    let (host, log) = start(app.path()).await?;
    let hooks = Hooks::new(&host);
    hooks.start("Rewindable", "rewind-1").await?;
    let failed = hooks.done("rewind-1").await?;
    assert_eq!(failed["runtimeStatus"], "Failed", "{failed}");
    let rewound = hooks
        .http
        .post(format!(
            "{}/instances/rewind-1/rewind?reason=again",
            hooks.base
        ))
        .send()
        .await?;
    assert_eq!(rewound.status().as_u16(), 202);
    // Had the rewind request reached the handler, it would have seen its failure again and failed again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = hooks.done("rewind-1").await?;
        if status["runtimeStatus"] != "Failed" || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "steady");
    assert_eq!(handler::requests_to(&log, "Flaky").len(), 2);
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_host_stops_a_wrapped_handler_too() -> Result<()> {
    // A handler started through a shell that stays its parent, as `bash start.sh` or `npm start` do.
    let app = app_dir(json!({}), json!({}));
    let log = app.path().join("requests.jsonl");
    let command = format!(
        "'{}'; exit 0",
        env!("CARGO_BIN_EXE_durable-host-fidelity-handler")
    );
    let host = durable_host::start(
        HostOptions::new(app.path())
            .with_port(0)
            .with_handler("/bin/sh")
            .with_handler_args(["-c", command.as_str()])
            .with_handler_env(handler::LOG_ENV, log.to_string_lossy())
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_timers(false),
    )
    .await?;
    let server = *handler::pids(&log)
        .first()
        .context("the handler's own pid")?;
    assert_ne!(
        u64::from(host.handler_pid()),
        server,
        "the shell is the host's child"
    );
    host.stop().await?;
    let alive = || {
        std::process::Command::new("kill")
            .args(["-0", &server.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while alive() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the handler outlived its host behind the shell"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
