//! One trace from the start call to the last activity, through the gRPC worker and the embedded backend, over
//! several turns: every span in the starter's trace, each under the right parent, and none twice; and an entity
//! signal from inside the trace runs its operation in a span under it.

use std::collections::HashMap;
use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, OrchestrationContext, OrchestrationError,
    Registry, when_all,
};
use durable_grpc::{ConnectionOptions, DurableClient, StartOptions, Worker, WorkerOptions};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Main", |ctx: OrchestrationContext, _: ()| async move {
            // Three turns at least: the first schedules, results arrive over later turns, then a timer.
            let a = ctx.call_activity::<_, String>("Greet", "a");
            let b = ctx.call_activity::<_, String>("Greet", "b");
            let mut out = Vec::new();
            for r in when_all(vec![a, b]).await {
                out.push(r?);
            }
            out.push(
                ctx.call_sub_orchestrator::<_, String>("Child", "c", None)
                    .await?,
            );
            ctx.create_timer_after(Duration::from_millis(10)).await?;
            Ok::<_, OrchestrationError>(out)
        })
        .add_orchestrator(
            "Child",
            |ctx: OrchestrationContext, name: String| async move {
                Ok::<_, OrchestrationError>(ctx.call_activity::<_, String>("Greet", name).await?)
            },
        )
        .add_activity("Greet", |_ctx: ActivityContext, name: String| async move {
            Ok::<_, ActivityError>(format!("hello {name}"))
        })
        .add_entity(
            "Counter",
            Entity::<i64>::new().operation("add", |value: &mut i64, _ctx, n: i64| {
                *value += n;
                Ok::<_, EntityError>(*value)
            }),
        );
    registry
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_to_last_activity_is_one_connected_trace() -> anyhow::Result<()> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_id_generator(durable_telemetry::HistoryIdGenerator::default())
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    use opentelemetry::trace::TracerProvider as _;
    // Only our spans: the transports' own (h2, tonic) would be separate traces.
    let ours =
        tracing_subscriber::filter::Targets::new().with_target("durabletask", tracing::Level::INFO);
    let subscriber = tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("test"))
            .with_filter(ours),
    );
    tracing::subscriber::set_global_default(subscriber)?;

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
        .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
        .build()?
        .start();
    let client = DurableClient::new(&connection)?;
    let id = client
        .schedule_new_orchestration(
            "Main",
            &(),
            StartOptions::new().with_trace_parent(TRACEPARENT, Some("congo=t61rcWkgMzE")),
        )
        .await?;
    let done = client
        .wait_for_completion(&id, true, Duration::from_secs(60))
        .await?;
    assert_eq!(
        done.serialized_output.as_deref(),
        Some(r#"["hello a","hello b","hello c"]"#)
    );
    // A signal sent from inside the caller's trace carries the current span's context to the operation.
    let signal = tracing::info_span!(target: "durabletask", "signal");
    let caller = durable_core::trace::TraceParent::parse(TRACEPARENT).unwrap();
    durable_telemetry::set_parent(&signal, &caller, None);
    client
        .signal_entity("@counter@traced", "add", &2, None)
        .instrument(signal.clone())
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = client.get_entity("@counter@traced", true).await?;
        if state.and_then(|e| e.serialized_state).as_deref() == Some("2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the signal never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(signal);
    worker.shutdown().await?;
    backend.shutdown().await?;
    provider.force_flush()?;

    let spans = exporter.get_finished_spans()?;
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")?;
    let starter = SpanId::from_hex("00f067aa0ba902b7")?;
    for span in &spans {
        assert_eq!(
            span.span_context.trace_id(),
            trace_id,
            "{} is in another trace",
            span.name
        );
    }
    let by_id: HashMap<SpanId, &SpanData> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();
    assert_eq!(by_id.len(), spans.len(), "a span ID appears twice");
    let named = |name: &str, kind: SpanKind| -> Vec<&SpanData> {
        spans
            .iter()
            .filter(|s| s.name == name && s.span_kind == kind)
            .collect()
    };
    let parent_of = |span: &SpanData| by_id.get(&span.parent_span_id).copied();

    // The start: a PRODUCER under the caller's context.
    let [create] = named("create_orchestration:Main", SpanKind::Producer)[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(create.parent_span_id, starter);
    // The orchestration: one SERVER span, under the start, whatever the number of turns.
    let [main] = named("orchestration:Main", SpanKind::Server)[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(main.parent_span_id, create.span_context.span_id());
    assert_eq!(
        attr(main, "durabletask.task.instance_id").as_deref(),
        Some(id.as_str())
    );
    let turns = named("orchestration:Main:turn", SpanKind::Internal);
    assert!(turns.len() >= 3, "{} turns", turns.len());
    assert!(
        turns
            .iter()
            .all(|t| t.parent_span_id == main.span_context.span_id())
    );
    // Each call once: a CLIENT span under the orchestration, and the execution's SERVER span under it.
    let calls = named("activity:Greet", SpanKind::Client);
    let runs = named("activity:Greet", SpanKind::Server);
    assert_eq!((calls.len(), runs.len()), (3, 3), "{spans:#?}");
    for run in &runs {
        let call = parent_of(run).expect("an activity's parent is its call");
        assert_eq!(
            (call.name.as_ref(), call.span_kind.clone()),
            ("activity:Greet", SpanKind::Client)
        );
        assert_eq!(
            attr(run, "durabletask.task.task_id"),
            attr(call, "durabletask.task.task_id")
        );
    }
    let [sub_call] = named("orchestration:Child", SpanKind::Client)[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(sub_call.parent_span_id, main.span_context.span_id());
    let [child] = named("orchestration:Child", SpanKind::Server)[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(child.parent_span_id, sub_call.span_context.span_id());
    let under = |parent: &SpanData| {
        calls
            .iter()
            .filter(|c| c.parent_span_id == parent.span_context.span_id())
            .count()
    };
    assert_eq!((under(main), under(child)), (2, 1));
    let [timer] = named("orchestration:Main:timer", SpanKind::Internal)[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(timer.parent_span_id, main.span_context.span_id());
    // The signal's operation: a SERVER span under the span that sent it.
    let [signal] = named("signal", SpanKind::Internal)[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(signal.parent_span_id, starter);
    let [operation] = named("entity:counter:add", SpanKind::Server)[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(operation.parent_span_id, signal.span_context.span_id());
    assert_eq!(
        attr(operation, "durabletask.task.instance_id").as_deref(),
        Some("@counter@traced")
    );
    // The orchestration span covers its calls: it starts no later than the first one.
    assert!(main.start_time <= calls.iter().map(|c| c.start_time).min().unwrap());
    Ok(())
}
