//! Trace context between our engine and Microsoft's Python SDK (durabletask 1.12.0 with OpenTelemetry), both
//! workers on one embedded backend: a Python activity that our orchestration scheduled runs under the CLIENT span
//! our engine made for it, and our activity that a Python orchestration scheduled runs under the context Python
//! wrote, each in the starter's trace.
//!
//! `durable_testkit::python_with` finds a Python with the SDK and `opentelemetry-sdk`; without one the test says
//! `skipped` and passes, except under the verify script (`DURABLE_REQUIRE_PEERS`) or CI, where it fails.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, StartOptions, Worker, WorkerOptions};
use durable_testkit::Spawned;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::Value;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

const RUST_STARTS: &str = "11111111111111111111111111111111";
const PYTHON_STARTS: &str = "22222222222222222222222222222222";
const CALLER: &str = "00f067aa0ba902b7";
/// How long the Python worker may take to start, print or exit; only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(60);

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator(
            "RustMain",
            |ctx: OrchestrationContext, name: String| async move {
                Ok::<_, OrchestrationError>(
                    ctx.call_activity::<_, String>("py_activity", name).await?,
                )
            },
        )
        .add_activity(
            "RustActivity",
            |_ctx: ActivityContext, name: String| async move {
                Ok::<_, ActivityError>(format!("rust {name}"))
            },
        );
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_reads_our_trace_context_and_we_read_its() -> anyhow::Result<()> {
    let Some(python) = durable_testkit::python_with(&["durabletask", "opentelemetry.sdk"]) else {
        return Ok(());
    };
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_id_generator(durable_telemetry::HistoryIdGenerator::default())
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    use opentelemetry::trace::TracerProvider as _;
    let ours =
        tracing_subscriber::filter::Targets::new().with_target("durabletask", tracing::Level::INFO);
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .with_filter(ours),
        ),
    )?;

    let dir = tempfile::tempdir()?;
    let backend = durable_backend::start(
        durable_backend::Options::new()
            .with_db_path(dir.path().join("hub.db"))
            .with_bind("127.0.0.1:0".parse()?),
    )
    .await?;
    let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("default");
    let worker = Worker::builder()
        .connection(connection.clone())
        .registry(registry())
        // Only what this worker knows: the Python worker takes the rest.
        .options(
            WorkerOptions::new()
                .with_shutdown_grace(Duration::from_secs(5))
                .with_work_item_filters(true),
        )
        .build()?
        .start();
    let address = backend.endpoint().trim_start_matches("http://").to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/traced_worker.py");
    let mut child = Spawned::start(
        Command::new(&python)
            .args([script, &address])
            .stdin(Stdio::piped()),
    )?;
    child
        .wait_for_stdout(LIMIT, |line| (line == "ready").then_some(()))
        .map_err(anyhow::Error::msg)?;

    let client = DurableClient::new(&connection)?;
    let rust_id = client
        .schedule_new_orchestration(
            "RustMain",
            "a",
            StartOptions::new().with_trace_parent(&format!("00-{RUST_STARTS}-{CALLER}-01"), None),
        )
        .await?;
    let python_id = client
        .schedule_new_orchestration(
            "py_orch",
            "b",
            StartOptions::new().with_trace_parent(&format!("00-{PYTHON_STARTS}-{CALLER}-01"), None),
        )
        .await?;
    for (id, expected) in [(&rust_id, "\"py a\""), (&python_id, "\"rust b\"")] {
        let done = client
            .wait_for_completion(id, true, Duration::from_secs(60))
            .await?;
        assert_eq!(
            done.serialized_output.as_deref(),
            Some(expected),
            "{done:?}"
        );
    }

    child.stdin().expect("piped stdin").write_all(b"done\n")?;
    let mut python_spans = Vec::new();
    loop {
        let line = child
            .wait_for_stdout(LIMIT, |line| Some(line.to_owned()))
            .map_err(anyhow::Error::msg)?;
        if line == "end" {
            break;
        }
        python_spans.push(serde_json::from_str::<Value>(&line)?);
    }
    child.wait(LIMIT).map_err(anyhow::Error::msg)?;
    let stderr = child.stderr();
    assert!(
        !stderr.contains("Traceback"),
        "the Python worker failed:\n{stderr}"
    );
    worker.shutdown().await?;
    backend.shutdown().await?;
    provider.force_flush()?;
    let rust_spans = exporter.get_finished_spans()?;

    let python_span = |name: &str, kind: &str| -> Vec<&Value> {
        python_spans
            .iter()
            .filter(|s| s["name"] == name && s["kind"] == kind)
            .collect()
    };
    let rust_span = |name: &str, kind: SpanKind| {
        rust_spans
            .iter()
            .filter(|s| s.name == name && s.span_kind == kind)
            .collect::<Vec<_>>()
    };

    // Ours → Python: the Python activity runs under the CLIENT span our engine made for the call.
    let [call] = rust_span("activity:py_activity", SpanKind::Client)[..] else {
        panic!("{rust_spans:#?}")
    };
    assert_eq!(call.span_context.trace_id().to_string(), RUST_STARTS);
    let [rust_main] = rust_span("orchestration:RustMain", SpanKind::Server)[..] else {
        panic!("{rust_spans:#?}")
    };
    assert_eq!(call.parent_span_id, rust_main.span_context.span_id());
    let [run] = python_span("activity:py_activity", "SERVER")[..] else {
        panic!("{python_spans:#?}")
    };
    assert_eq!(run["trace_id"], RUST_STARTS);
    assert_eq!(run["parent"], call.span_context.span_id().to_string());

    // Python → ours: our activity runs under the context the Python orchestration wrote, in the starter's trace,
    // and that context is one of the spans Python recorded for its orchestration.
    let python_ids: HashMap<&str, &Value> = python_spans
        .iter()
        .filter(|s| s["trace_id"] == PYTHON_STARTS)
        .map(|s| (s["span_id"].as_str().unwrap(), s))
        .collect();
    let [orchestration] = python_span("orchestration:py_orch", "SERVER")[..] else {
        panic!("{python_spans:#?}")
    };
    let [create] = rust_span("create_orchestration:py_orch", SpanKind::Producer)[..] else {
        panic!("{rust_spans:#?}")
    };
    assert_eq!(orchestration["trace_id"], PYTHON_STARTS);
    assert_eq!(
        orchestration["parent"],
        create.span_context.span_id().to_string()
    );
    let [ours] = rust_span("activity:RustActivity", SpanKind::Server)[..] else {
        panic!("{rust_spans:#?}")
    };
    assert_eq!(ours.span_context.trace_id().to_string(), PYTHON_STARTS);
    // Its parent is the CLIENT span Python emitted for the call, itself under Python's orchestration span.
    let parent = python_ids
        .get(ours.parent_span_id.to_string().as_str())
        .unwrap_or_else(|| {
            panic!("our activity's parent is none of Python's spans: {python_spans:#?}")
        });
    assert_eq!(
        (&parent["name"], &parent["kind"]),
        (
            &Value::from("activity:RustActivity"),
            &Value::from("CLIENT")
        ),
        "{parent}"
    );
    assert_eq!(parent["parent"], orchestration["span_id"]);
    Ok(())
}
