//! Spans through an OpenTelemetry SDK pipeline: the engine's spans keep the IDs history gives them (a root trace
//! included), and each entity operation runs in its own span under the context it carries.

use std::sync::OnceLock;

use durable_core::proto;
use durable_core::proto::history_event::EventType;
use durable_core::{Entity, EntityError, OrchestrationContext, OrchestrationError, Registry};
use opentelemetry::trace::{SpanKind, Status, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

/// One provider for the test binary (the global tracer is process-wide); each test looks at its own trace.
fn pipeline() -> &'static (SdkTracerProvider, InMemorySpanExporter) {
    static PIPELINE: OnceLock<(SdkTracerProvider, InMemorySpanExporter)> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(durable_telemetry::HistoryIdGenerator::default())
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        (provider, exporter)
    })
}

fn spans_of(trace_id: TraceId) -> Vec<SpanData> {
    let (provider, exporter) = pipeline();
    provider.force_flush().unwrap();
    exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .collect()
}

#[test]
fn an_orchestration_without_a_parent_is_the_root_of_its_derived_trace() {
    pipeline();
    let mut registry = Registry::new();
    registry.add_orchestrator("Root", |_ctx: OrchestrationContext, _: ()| async move {
        Ok::<_, OrchestrationError>(())
    });
    let request = proto::OrchestratorRequest {
        instance_id: "root-1".into(),
        new_events: vec![proto::HistoryEvent {
            event_id: -1,
            timestamp: Some(std::time::SystemTime::now().into()),
            event_type: Some(EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name: "Root".into(),
                orchestration_instance: Some(proto::OrchestrationInstance {
                    instance_id: "root-1".into(),
                    execution_id: Some("e1".into()),
                }),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    let response = registry.execute_orchestrator(&request);
    let trace = durable_core::trace::turn_trace(&request, &response).unwrap();
    trace.spans.iter().for_each(durable_telemetry::emit);

    // The SDK asks for a trace ID only for a root span, after the span ID: both must be history's.
    let trace_id = TraceId::from_bytes(trace.orchestration.trace_id);
    let spans = spans_of(trace_id);
    let [root] = &spans[..] else {
        panic!("expected the orchestration span in the derived trace, got {spans:#?}")
    };
    assert_eq!(root.name, "orchestration:Root");
    assert_eq!(root.span_kind, SpanKind::Server);
    assert_eq!(
        root.span_context.span_id().to_bytes(),
        trace.orchestration.span_id
    );
    assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[test]
fn each_entity_operation_runs_in_its_own_span_under_its_context() {
    let (provider, _) = pipeline();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let mut registry = Registry::new();
    registry.add_entity(
        "Counter",
        Entity::<i64>::new().operation("add", |value: &mut i64, _ctx, n: i64| {
            *value += n;
            Ok::<_, EntityError>(*value)
        }),
    );
    let signal = |operation: &str, parent: &str| proto::OperationRequest {
        operation: operation.into(),
        request_id: format!("{operation}-{parent}"),
        input: Some("2".into()),
        trace_context: Some(proto::TraceContext {
            trace_parent: format!("00-5bf92f3577b34da6a3ce929d0e0e4736-{parent}-01"),
            ..Default::default()
        }),
    };
    let request = proto::EntityBatchRequest {
        instance_id: "@counter@mine".into(),
        entity_state: Some("1".into()),
        operations: vec![
            signal("add", "00000000000000a1"),
            signal("nope", "00000000000000a2"),
        ],
        ..Default::default()
    };
    let result = tracing::subscriber::with_default(subscriber, || {
        registry.execute_entity_batch_traced(&request, None, &|op| {
            durable_telemetry::entity_operation_span(&request.instance_id, op)
        })
    });
    assert_eq!(result.entity_state.as_deref(), Some("3"));

    let spans = spans_of(TraceId::from_hex("5bf92f3577b34da6a3ce929d0e0e4736").unwrap());
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} in {spans:#?}"))
    };
    let add = find("entity:counter:add");
    assert_eq!(add.span_kind, SpanKind::Server);
    assert_eq!(add.parent_span_id.to_string(), "00000000000000a1");
    assert_eq!(add.status, Status::Unset);
    assert!(add.attributes.iter().any(|kv| {
        kv.key.as_str() == "durabletask.task.instance_id" && kv.value.as_str() == "@counter@mine"
    }));
    let nope = find("entity:counter:nope");
    assert_eq!(nope.parent_span_id.to_string(), "00000000000000a2");
    assert!(
        matches!(&nope.status, Status::Error { description } if description.contains("nope")),
        "{:?}",
        nope.status
    );
    assert_eq!(spans.len(), 2, "{spans:#?}");
}
