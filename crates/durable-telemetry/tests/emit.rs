//! Spans through an OpenTelemetry SDK pipeline: the engine's spans keep the IDs history gives them, a root trace
//! included.

use std::sync::OnceLock;

use durable_core::proto;
use durable_core::proto::history_event::EventType;
use durable_core::{OrchestrationContext, OrchestrationError, Registry};
use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

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
