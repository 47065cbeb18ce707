//! Trace contexts the backend keeps beside history: the orchestration span a worker returns
//! (`OrchestratorResponse.orchestrationTraceContext`) is handed back with the next turns of the same execution, as
//! the scheduler does, and a new execution starts without it; a signal's `parentTraceContext` reaches the entity
//! operation as its `traceContext`.

mod common;

use common::raw;
use common::work::{next, orchestration, stream, turn};
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::*;

fn traced(mut response: OrchestratorResponse, span_id: &str) -> OrchestratorResponse {
    response.orchestration_trace_context = Some(OrchestrationTraceContext {
        span_id: Some(span_id.into()),
        span_start_time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
    });
    response
}

/// Wakes the waiting orchestration `traced` with the event it waits for.
async fn go(client: &mut raw::Client) {
    client
        .raise_event(RaiseEventRequest {
            instance_id: "traced".into(),
            name: "go".into(),
            input: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_orchestration_span_comes_back_for_the_same_execution_only() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("traced", "o", "0"))
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let first = next(&mut s).await;
    assert_eq!(orchestration(&first).orchestration_trace_context, None);
    // The first turn waits for an event and names its span.
    client
        .complete_orchestrator_task(traced(turn(&first, vec![]), "00f067aa0ba902b7"))
        .await
        .unwrap();
    // Each later turn hands back what the previous one returned: the same span again (stored once), then
    // another one (stored over it).
    for (returned_before, span) in [
        ("00f067aa0ba902b7", "00f067aa0ba902b7"),
        ("00f067aa0ba902b7", "53995c3f42cd8ad8"),
        ("53995c3f42cd8ad8", "53995c3f42cd8ad8"),
    ] {
        go(&mut client).await;
        let work = next(&mut s).await;
        let carried = orchestration(&work)
            .orchestration_trace_context
            .clone()
            .unwrap();
        assert_eq!(carried.span_id.as_deref(), Some(returned_before));
        assert_eq!(
            carried.span_start_time.map(|t| (t.seconds, t.nanos)),
            Some((1_700_000_000, 5))
        );
        client
            .complete_orchestrator_task(traced(turn(&work, vec![]), span))
            .await
            .unwrap();
    }
    go(&mut client).await;
    let second = next(&mut s).await;
    assert_eq!(
        orchestration(&second)
            .orchestration_trace_context
            .as_ref()
            .and_then(|t| t.span_id.as_deref()),
        Some("53995c3f42cd8ad8")
    );

    // Continued as new: the next execution is a new span.
    let can = raw::action(
        0,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::ContinuedAsNew as i32,
            result: Some("1".into()),
            ..Default::default()
        }),
    );
    client
        .complete_orchestrator_task(traced(turn(&second, vec![can]), "00f067aa0ba902b7"))
        .await
        .unwrap();
    let third = next(&mut s).await;
    assert_ne!(
        orchestration(&third).execution_id,
        orchestration(&second).execution_id
    );
    assert_eq!(orchestration(&third).orchestration_trace_context, None);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signals_trace_context_reaches_the_entity_operation() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let traced = TraceContext {
        trace_parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        trace_state: Some("congo=t61rcWkgMzE".into()),
        ..Default::default()
    };
    for (request_id, parent) in [("r1", Some(traced.clone())), ("r2", None)] {
        client
            .signal_entity(SignalEntityRequest {
                instance_id: "@Counter@k".into(),
                name: "add".into(),
                input: Some("1".into()),
                request_id: request_id.into(),
                parent_trace_context: parent,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    let Some(work_item::Request::EntityRequest(batch)) = &item.request else {
        panic!("not an entity batch: {item:?}")
    };
    let contexts: Vec<_> = batch
        .operations
        .iter()
        .map(|op| (op.request_id.as_str(), op.trace_context.clone()))
        .collect();
    assert_eq!(contexts, [("r1", Some(traced)), ("r2", None)]);
    backend.shutdown().await.unwrap();
}
