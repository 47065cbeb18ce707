//! The scheduler's V2 entity work item as an old-style batch.
//!
//! The engine exposes the same conversion (`durable_core::entity_batch_from_v2`); this copy keeps the worker
//! usable with executors that are not the engine, and is replaced by the engine's once both agree on it.

use durable_proto as proto;
use proto::history_event::EventType;

/// Splits a V2 request into the batch to execute and the routing info the scheduler wants back.
pub(crate) fn batch_from_v2(
    request: &proto::EntityRequest,
) -> (proto::EntityBatchRequest, Vec<proto::OperationInfo>) {
    let mut operations = Vec::with_capacity(request.operation_requests.len());
    let mut infos = Vec::with_capacity(request.operation_requests.len());
    for event in &request.operation_requests {
        match &event.event_type {
            Some(EventType::EntityOperationSignaled(signal)) => {
                operations.push(proto::OperationRequest {
                    operation: signal.operation.clone(),
                    request_id: signal.request_id.clone(),
                    input: signal.input.clone(),
                    trace_context: None,
                });
                infos.push(proto::OperationInfo {
                    request_id: signal.request_id.clone(),
                    response_destination: None,
                });
            }
            Some(EventType::EntityOperationCalled(call)) => {
                operations.push(proto::OperationRequest {
                    operation: call.operation.clone(),
                    request_id: call.request_id.clone(),
                    input: call.input.clone(),
                    trace_context: None,
                });
                infos.push(proto::OperationInfo {
                    request_id: call.request_id.clone(),
                    response_destination: call.parent_instance_id.clone().map(|instance_id| {
                        proto::OrchestrationInstance {
                            instance_id,
                            execution_id: call.parent_execution_id.clone(),
                        }
                    }),
                });
            }
            // Anything else is not an operation; the scheduler never sends it here.
            _ => {}
        }
    }
    let batch = proto::EntityBatchRequest {
        instance_id: request.instance_id.clone(),
        entity_state: request.entity_state.clone(),
        operations,
        properties: Default::default(),
    };
    (batch, infos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_route_back_and_signals_do_not() {
        let request = proto::EntityRequest {
            instance_id: "@counter@a".into(),
            execution_id: String::new(),
            entity_state: Some("1".into()),
            operation_requests: vec![
                proto::HistoryEvent {
                    event_id: -1,
                    timestamp: None,
                    event_type: Some(EventType::EntityOperationSignaled(
                        proto::EntityOperationSignaledEvent {
                            request_id: "r1".into(),
                            operation: "add".into(),
                            input: Some("2".into()),
                            ..Default::default()
                        },
                    )),
                },
                proto::HistoryEvent {
                    event_id: -1,
                    timestamp: None,
                    event_type: Some(EventType::EntityOperationCalled(
                        proto::EntityOperationCalledEvent {
                            request_id: "r2".into(),
                            operation: "get".into(),
                            parent_instance_id: Some("orch".into()),
                            parent_execution_id: Some("e1".into()),
                            ..Default::default()
                        },
                    )),
                },
            ],
        };
        let (batch, infos) = batch_from_v2(&request);
        assert_eq!(batch.instance_id, "@counter@a");
        assert_eq!(batch.entity_state.as_deref(), Some("1"));
        let ops: Vec<_> = batch
            .operations
            .iter()
            .map(|o| (o.operation.as_str(), o.request_id.as_str()))
            .collect();
        assert_eq!(ops, [("add", "r1"), ("get", "r2")]);
        assert!(infos[0].response_destination.is_none());
        let dest = infos[1].response_destination.as_ref().unwrap();
        assert_eq!(
            (dest.instance_id.as_str(), dest.execution_id.as_deref()),
            ("orch", Some("e1"))
        );
    }
}
