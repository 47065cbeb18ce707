//! Worker versioning on the embedded backend: the same scenarios run by the Python SDK's worker and by ours give
//! the same outcomes (statuses, outputs, failure details), Strict filters route each version to its worker, and a
//! rejected orchestration is abandoned until a worker that accepts it takes it.

mod common;

use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
    VersionFailureStrategy, VersionMatchStrategy, Versioning,
};
use durable_grpc::{ConnectionOptions, DurableClient, StartOptions, Worker, WorkerOptions};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

async fn backend() -> durable_backend::Handle {
    durable_backend::start(
        durable_backend::Options::new()
            .in_memory()
            .with_bind("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .expect("backend starts")
}

fn registry(tag: &'static str) -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator(
        "Versioned",
        |ctx: OrchestrationContext, _: Value| async move {
            Ok::<_, OrchestrationError>(ctx.version())
        },
    )
    .add_orchestrator("Child", |ctx: OrchestrationContext, _: Value| async move {
        Ok::<_, OrchestrationError>(ctx.version())
    })
    .add_orchestrator("Parent", |ctx: OrchestrationContext, _: Value| async move {
        let child: Option<String> = ctx.call_sub_orchestrator("Child", (), None).await?;
        Ok::<_, OrchestrationError>(json!([ctx.version(), child]))
    })
    .add_orchestrator(
        "Tagged",
        move |ctx: OrchestrationContext, _: Value| async move {
            // An activity too: scheduled without a version, it must still reach a worker whose filters name one.
            let worker: String = ctx.call_activity("WhoRuns", ()).await?;
            let version = ctx.version().unwrap_or_default();
            Ok::<_, OrchestrationError>(format!("{tag}:{version}:{worker}"))
        },
    )
    .add_activity("WhoRuns", move |_ctx: ActivityContext, (): ()| async move {
        Ok::<_, ActivityError>(tag.to_owned())
    });
    r
}

fn scenarios() -> Value {
    json!([
        {"version": "1.0", "match": "STRICT", "failure": "FAIL",
         "starts": [["s1", "Versioned", "1.0"], ["s2", "Versioned", "2.0"], ["s3", "Versioned", "0.9"]]},
        {"version": "2.0", "match": "CURRENT_OR_OLDER", "failure": "FAIL",
         "starts": [["o1", "Versioned", "1.5"], ["o2", "Versioned", "2.0"], ["o3", "Versioned", "10.0"],
                    ["o4", "Versioned", null]]},
        {"version": "1.0", "default_version": "1.1", "match": "NONE", "failure": "REJECT",
         "starts": [["p1", "Parent", "1.0"]]}
    ])
}

fn versioning_of(scenario: &Value) -> Versioning {
    let match_strategy = match scenario["match"].as_str().unwrap() {
        "STRICT" => VersionMatchStrategy::Strict,
        "CURRENT_OR_OLDER" => VersionMatchStrategy::CurrentOrOlder,
        _ => VersionMatchStrategy::None,
    };
    let failure_strategy = match scenario["failure"].as_str().unwrap() {
        "FAIL" => VersionFailureStrategy::Fail,
        _ => VersionFailureStrategy::Reject,
    };
    Versioning::new(scenario["version"].as_str().unwrap())
        .default_version(scenario["default_version"].as_str().map(str::to_owned))
        .match_strategy(match_strategy)
        .failure_strategy(failure_strategy)
}

/// The scenarios with our worker: per instance [status, output, failure type, failure message].
async fn run_ours(endpoint: &str) -> Value {
    let connection = ConnectionOptions::new(endpoint).with_task_hub("default");
    let client = DurableClient::new(&connection).unwrap();
    let mut out = serde_json::Map::new();
    for scenario in scenarios().as_array().unwrap() {
        let mut registry = registry("rust");
        registry.set_versioning(versioning_of(scenario));
        let worker = Worker::builder()
            .connection(connection.clone())
            .registry(registry)
            .build()
            .unwrap()
            .start();
        let starts = scenario["starts"].as_array().unwrap();
        for start in starts {
            let mut options = StartOptions::new().with_instance_id(start[0].as_str().unwrap());
            if let Some(version) = start[2].as_str() {
                options = options.with_version(version);
            }
            client
                .schedule_new_orchestration(start[1].as_str().unwrap(), &(), options)
                .await
                .unwrap();
        }
        for start in starts {
            let id = start[0].as_str().unwrap();
            let done = client.wait_for_completion(id, true, LIMIT).await.unwrap();
            let output: Value = done
                .serialized_output
                .as_deref()
                .map_or(Value::Null, |s| serde_json::from_str(s).unwrap());
            let failure = done.failure_details.as_ref();
            out.insert(
                id.to_owned(),
                json!([
                    format!("{:?}", done.status).to_uppercase(),
                    output,
                    failure.map(|f| f.error_type.clone()),
                    failure.map(|f| f.message.clone()),
                ]),
            );
        }
        worker.shutdown().await.unwrap();
    }
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_worker_versions_orchestrations_as_the_python_sdk_does() {
    let ours_backend = backend().await;
    let ours = run_ours(&ours_backend.endpoint()).await;
    ours_backend.shutdown().await.unwrap();

    let strict = "The orchestration version '2.0' does not match the worker version '1.0'.";
    assert_eq!(ours["s1"], json!(["COMPLETED", "1.0", null, null]));
    assert_eq!(
        ours["s2"],
        json!(["FAILED", null, "VersionMismatch", strict])
    );
    assert_eq!(ours["s3"][0], "FAILED");
    assert_eq!(ours["o1"], json!(["COMPLETED", "1.5", null, null]));
    assert_eq!(ours["o2"], json!(["COMPLETED", "2.0", null, null]));
    assert_eq!(
        ours["o3"],
        json!([
            "FAILED",
            null,
            "VersionMismatch",
            "The orchestration version '10.0' is greater than the worker version '2.0'."
        ])
    );
    assert_eq!(ours["o4"], json!(["COMPLETED", null, null, null]));
    assert_eq!(ours["p1"], json!(["COMPLETED", ["1.0", "1.1"], null, null]));

    let Some(python) = common::python() else {
        return;
    };
    let theirs_backend = backend().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/versioning.py");
    let output = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new(python)
            .arg(script)
            .arg(scenarios().to_string())
            .env("DURABLE_ENDPOINT", theirs_backend.endpoint())
            .env("PYTHONUNBUFFERED", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python scenarios finish")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}\n{stderr}"));
    let theirs: Value = serde_json::from_str(line).unwrap();
    theirs_backend.shutdown().await.unwrap();
    assert_eq!(ours, theirs, "our worker and the Python SDK's disagree");
}

async fn tagged_worker(
    endpoint: &str,
    tag: &'static str,
    versioning: Versioning,
    filters: bool,
) -> durable_grpc::WorkerHandle {
    let mut registry = registry(tag);
    registry.set_versioning(versioning);
    Worker::builder()
        .connection(ConnectionOptions::new(endpoint).with_task_hub("default"))
        .registry(registry)
        .options(
            WorkerOptions::new()
                .with_work_item_filters(filters)
                .with_shutdown_grace(Duration::from_secs(5)),
        )
        .build()
        .unwrap()
        .start()
}

async fn start_and_wait(client: &DurableClient, id: &str, version: &str) -> String {
    client
        .schedule_new_orchestration(
            "Tagged",
            &(),
            StartOptions::new()
                .with_instance_id(id)
                .with_version(version),
        )
        .await
        .unwrap();
    client
        .wait_for_completion(id, true, LIMIT)
        .await
        .unwrap()
        .output::<String>()
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_filters_route_each_version_to_its_worker() {
    let backend = backend().await;
    // `Fail`, not `Reject`: a version delivered to the wrong worker would fail the instance, not be handed on.
    let strict = |v: &str| {
        Versioning::new(v)
            .match_strategy(VersionMatchStrategy::Strict)
            .failure_strategy(VersionFailureStrategy::Fail)
    };
    let a = tagged_worker(&backend.endpoint(), "A", strict("1.0"), true).await;
    let b = tagged_worker(&backend.endpoint(), "B", strict("2.0"), true).await;
    let client =
        DurableClient::new(&ConnectionOptions::new(backend.endpoint()).with_task_hub("default"))
            .unwrap();
    for round in 0..3 {
        assert_eq!(
            start_and_wait(&client, &format!("one-{round}"), "1.0").await,
            "A:1.0:A"
        );
        assert_eq!(
            start_and_wait(&client, &format!("two-{round}"), "2.0").await,
            "B:2.0:B"
        );
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    backend.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_orchestration_is_left_to_a_worker_that_accepts_it() {
    let backend = backend().await;
    let older = |v: &str| Versioning::new(v).match_strategy(VersionMatchStrategy::CurrentOrOlder);
    // No filters: every work item may reach either worker, and the old one must hand the new version back.
    let old = tagged_worker(&backend.endpoint(), "old", older("1.0"), false).await;
    let client =
        DurableClient::new(&ConnectionOptions::new(backend.endpoint()).with_task_hub("default"))
            .unwrap();
    assert_eq!(
        start_and_wait(&client, "before", "1.0").await,
        "old:1.0:old"
    );
    client
        .schedule_new_orchestration(
            "Tagged",
            &(),
            StartOptions::new()
                .with_instance_id("newer")
                .with_version("3.0"),
        )
        .await
        .unwrap();
    let new = tagged_worker(&backend.endpoint(), "new", older("3.0"), false).await;
    let done = client
        .wait_for_completion("newer", true, LIMIT)
        .await
        .unwrap();
    // Only the orchestration is judged by version: its activity may run on either worker.
    let output = done.output::<String>().unwrap().unwrap();
    assert!(output.starts_with("new:3.0:"), "{output}");
    old.shutdown().await.unwrap();
    new.shutdown().await.unwrap();
    backend.shutdown().await.unwrap();
}
