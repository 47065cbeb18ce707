// Shared by the export tests: a finished orchestration and an activity under it, through `init`'s subscriber.

#![allow(dead_code, unreachable_pub)]

use durable_core::proto;
use durable_core::proto::history_event::EventType;
use durable_core::{OrchestrationContext, OrchestrationError, Registry};

pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Runs a one-turn orchestration through the engine and emits its spans, then an activity span under the
/// orchestration; returns the orchestration span's ID.
pub fn produce_spans() -> String {
    let mut registry = Registry::new();
    registry.add_orchestrator("Export", |_ctx: OrchestrationContext, _: ()| async move {
        Ok::<_, OrchestrationError>(1)
    });
    let request = proto::OrchestratorRequest {
        instance_id: "export-1".into(),
        new_events: vec![proto::HistoryEvent {
            event_id: -1,
            timestamp: Some(std::time::SystemTime::now().into()),
            event_type: Some(EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name: "Export".into(),
                orchestration_instance: Some(proto::OrchestrationInstance {
                    instance_id: "export-1".into(),
                    execution_id: Some("e1".into()),
                }),
                parent_trace_context: Some(proto::TraceContext {
                    trace_parent: TRACEPARENT.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    let response = registry.execute_orchestrator(&request);
    let trace = durable_core::trace::turn_trace(&request, &response).unwrap();
    trace.spans.iter().for_each(durable_telemetry::emit);
    let activity = proto::ActivityRequest {
        name: "Work".into(),
        task_id: 7,
        orchestration_instance: Some(proto::OrchestrationInstance {
            instance_id: "export-1".into(),
            execution_id: None,
        }),
        parent_trace_context: Some(trace.orchestration.to_proto(None)),
        ..Default::default()
    };
    durable_telemetry::activity_span(&activity).in_scope(|| tracing::info!("working"));
    trace.orchestration.span_id_hex()
}
