//! The orchestrator's answer as the extension takes it (`ProtobufUtils.ToOrchestratorAction` and
//! `RemoteOrchestratorContext` in Azure/azure-functions-durable-extension): the action kinds it supports, the fields
//! it keeps, and the checks whose failure fails the orchestration. What passes is handed to the backend in the
//! form the backend understands.

use durable_proto as proto;
use proto::orchestrator_action::OrchestratorActionType as A;
use proto::send_entity_message_action::EntityMessageType as M;

use super::dotnet::{Exception, parse_guid};
use super::entity_messages::{RELEASE_EVENT, REQUEST_EVENT, RequestMessage};

/// The custom status limit: 16 KB of UTF-16 (`RemoteOrchestratorContext.ValidateCustomStatusSize`).
const CUSTOM_STATUS_LIMIT_BYTES: usize = 16 * 1024;

/// The C# name of an action case, as `OrchestratorActionTypeCase` prints it.
fn case_name(action: &Option<A>) -> &'static str {
    match action {
        None => "None",
        Some(A::ScheduleTask(_)) => "ScheduleTask",
        Some(A::CreateSubOrchestration(_)) => "CreateSubOrchestration",
        Some(A::CreateTimer(_)) => "CreateTimer",
        Some(A::SendEvent(_)) => "SendEvent",
        Some(A::CompleteOrchestration(_)) => "CompleteOrchestration",
        Some(A::TerminateOrchestration(_)) => "TerminateOrchestration",
        Some(A::SendEntityMessage(_)) => "SendEntityMessage",
        Some(A::RewindOrchestration(_)) => "RewindOrchestration",
    }
}

fn not_supported(message: String) -> Exception {
    Exception::new("System.NotSupportedException", message)
}

fn bad_guid(text: &str) -> Exception {
    Exception::new(
        "System.FormatException",
        parse_guid(text).err().unwrap_or_default(),
    )
}

/// Checks the handler's response as the extension would and returns what to hand the backend; an error is the
/// exception that makes the extension fail the orchestration.
pub(crate) fn accept(
    response: proto::OrchestratorResponse,
) -> Result<proto::OrchestratorResponse, Exception> {
    if let Some(status) = &response.custom_status {
        let bytes = status.encode_utf16().count() * 2;
        if bytes > CUSTOM_STATUS_LIMIT_BYTES {
            return Err(Exception::new(
                "System.ArgumentException",
                format!(
                    "CustomStatus is too large: limit = 16 KB (UTF-16), actual = {:.2} KB.",
                    bytes as f64 / 1024.0
                ),
            ));
        }
    }
    let mut actions = Vec::with_capacity(response.actions.len());
    for action in response.actions {
        let id = action.id;
        let kind = match action.orchestrator_action_type {
            Some(A::ScheduleTask(a)) => A::ScheduleTask(proto::ScheduleTaskAction {
                name: a.name,
                version: a.version,
                input: a.input,
                tags: a.tags,
                // DurableTask.Core drops it and correlates with its own spans; the local host keeps it, so that
                // its backend hands it to the activity's invocation as the `traceparent` header.
                parent_trace_context: a.parent_trace_context,
            }),
            Some(A::CreateSubOrchestration(a)) => {
                A::CreateSubOrchestration(proto::CreateSubOrchestrationAction {
                    instance_id: a.instance_id,
                    name: a.name,
                    version: a.version,
                    input: a.input,
                    tags: a.tags,
                    parent_trace_context: a.parent_trace_context,
                })
            }
            Some(A::CreateTimer(a)) => {
                A::CreateTimer(proto::CreateTimerAction { fire_at: a.fire_at })
            }
            Some(A::SendEvent(a)) => legacy_entity_message(&a)?
                .map(A::SendEntityMessage)
                .unwrap_or(A::SendEvent(proto::SendEventAction {
                    instance: a.instance.map(|i| proto::OrchestrationInstance {
                        instance_id: i.instance_id,
                        execution_id: i.execution_id,
                    }),
                    name: a.name,
                    data: a.data,
                })),
            Some(A::CompleteOrchestration(a)) => {
                A::CompleteOrchestration(proto::CompleteOrchestrationAction {
                    orchestration_status: a.orchestration_status,
                    result: a.result,
                    details: a.details,
                    new_version: a.new_version,
                    // Only raised events survive a continue-as-new through the extension.
                    carryover_events: a
                        .carryover_events
                        .into_iter()
                        .filter(|e| {
                            matches!(
                                e.event_type,
                                Some(proto::history_event::EventType::EventRaised(_))
                            )
                        })
                        .collect(),
                    failure_details: a.failure_details,
                    tags: a.tags,
                })
            }
            Some(A::SendEntityMessage(a)) => A::SendEntityMessage(entity_message(a)?),
            other => {
                return Err(not_supported(format!(
                    "Received unsupported action type '{}'.",
                    case_name(&other)
                )));
            }
        };
        actions.push(proto::OrchestratorAction {
            id,
            orchestrator_action_type: Some(kind),
        });
    }
    Ok(proto::OrchestratorResponse {
        instance_id: response.instance_id,
        actions,
        custom_status: response.custom_status,
        ..Default::default()
    })
}

/// The checks the conversion of a `SendEntityMessage` into a `SendEvent` makes: request and critical-section IDs
/// must be GUIDs, the lock set must hold entity IDs and the position must be inside it.
fn entity_message(
    action: proto::SendEntityMessageAction,
) -> Result<proto::SendEntityMessageAction, Exception> {
    match &action.entity_message_type {
        Some(M::EntityOperationCalled(c)) => {
            parse_guid(&c.request_id).map_err(|_| bad_guid(&c.request_id))?;
        }
        Some(M::EntityOperationSignaled(s)) => {
            parse_guid(&s.request_id).map_err(|_| bad_guid(&s.request_id))?;
        }
        Some(M::EntityLockRequested(l)) => {
            parse_guid(&l.critical_section_id).map_err(|_| bad_guid(&l.critical_section_id))?;
            if let Some(bad) = l.lock_set.iter().find(|id| !is_entity_id(id)) {
                return Err(Exception::new(
                    "System.ArgumentException",
                    format!(
                        "Entity ID '{bad}' is not a valid entity instance ID (expected @name@key)."
                    ),
                ));
            }
            let inside = usize::try_from(l.position).is_ok_and(|p| p < l.lock_set.len());
            if !inside {
                return Err(Exception::new(
                    "System.ArgumentOutOfRangeException",
                    "Index was out of range. Must be non-negative and less than the size of the collection. \
                     (Parameter 'index')",
                ));
            }
        }
        Some(M::EntityUnlockSent(u)) => {
            parse_guid(&u.critical_section_id).map_err(|_| bad_guid(&u.critical_section_id))?;
        }
        None => {
            return Err(not_supported(
                "Deserialization of SendEntityMessage action type 'None' is not supported.".into(),
            ));
        }
    }
    Ok(action)
}

fn is_entity_id(id: &str) -> bool {
    id.strip_prefix('@')
        .and_then(|rest| rest.split_once('@'))
        .is_some_and(|(name, _)| !name.is_empty())
}

/// A `SendEvent` to an entity carrying a DurableTask.Core request: what handlers written for older extensions emit
/// for entity calls. DurableTask.Core delivers it to the entity like any request; the embedded backend takes entity
/// messages in their own action, so it is handed over as one.
fn legacy_entity_message(
    action: &proto::SendEventAction,
) -> Result<Option<proto::SendEntityMessageAction>, Exception> {
    let target = action
        .instance
        .as_ref()
        .map(|i| i.instance_id.as_str())
        .unwrap_or_default();
    let is_request = action.name == REQUEST_EVENT || action.name.starts_with("op@");
    if !is_entity_id(target) || !(is_request || action.name == RELEASE_EVENT) {
        return Ok(None);
    }
    let Some(message) = action.data.as_deref().and_then(RequestMessage::from_json) else {
        return Ok(None);
    };
    let kind = if action.name == RELEASE_EVENT {
        M::EntityUnlockSent(proto::EntityUnlockSentEvent {
            critical_section_id: message.id,
            parent_instance_id: message.parent_instance_id,
            target_instance_id: Some(target.to_owned()),
        })
    } else if let Some(lock_set) = message.lock_set {
        M::EntityLockRequested(proto::EntityLockRequestedEvent {
            critical_section_id: message.id,
            lock_set,
            position: message.position,
            parent_instance_id: message.parent_instance_id,
        })
    } else if message.is_signal {
        M::EntityOperationSignaled(proto::EntityOperationSignaledEvent {
            request_id: message.id,
            operation: message.operation.unwrap_or_default(),
            scheduled_time: message.scheduled_time,
            input: message.input,
            target_instance_id: Some(target.to_owned()),
        })
    } else {
        M::EntityOperationCalled(proto::EntityOperationCalledEvent {
            request_id: message.id,
            operation: message.operation.unwrap_or_default(),
            scheduled_time: message.scheduled_time,
            input: message.input,
            parent_instance_id: message.parent_instance_id,
            parent_execution_id: message.parent_execution_id,
            target_instance_id: Some(target.to_owned()),
        })
    };
    entity_message(proto::SendEntityMessageAction {
        entity_message_type: Some(kind),
    })
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(actions: Vec<A>) -> proto::OrchestratorResponse {
        proto::OrchestratorResponse {
            instance_id: "i1".into(),
            actions: actions
                .into_iter()
                .enumerate()
                .map(|(i, a)| proto::OrchestratorAction {
                    id: i as i32,
                    orchestrator_action_type: Some(a),
                })
                .collect(),
            completion_token: "token".into(),
            requires_history: true,
            ..Default::default()
        }
    }

    #[test]
    fn supported_actions_keep_only_the_extensions_fields() {
        let accepted = accept(response(vec![
            A::ScheduleTask(proto::ScheduleTaskAction {
                name: "SayHello".into(),
                input: Some("\"x\"".into()),
                parent_trace_context: Some(proto::TraceContext {
                    trace_parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            A::CreateTimer(proto::CreateTimerAction {
                fire_at: Some(Default::default()),
            }),
        ]))
        .unwrap();
        assert_eq!(accepted.completion_token, "");
        assert!(!accepted.requires_history);
        let Some(A::ScheduleTask(task)) = &accepted.actions[0].orchestrator_action_type else {
            panic!("not ScheduleTask")
        };
        // Kept for the local backend, which turns it into the activity invocation's `traceparent`.
        assert_eq!(
            task.parent_trace_context
                .as_ref()
                .map(|c| c.trace_parent.as_str()),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(task.name, "SayHello");
        assert_eq!(accepted.actions[1].id, 1);
    }

    #[test]
    fn unsupported_actions_and_bad_ids_are_refused_with_the_extensions_text() {
        let terminate = accept(response(vec![
            A::TerminateOrchestration(Default::default()),
        ]));
        assert_eq!(
            terminate.unwrap_err().message,
            "Received unsupported action type 'TerminateOrchestration'."
        );
        let none = proto::OrchestratorResponse {
            actions: vec![proto::OrchestratorAction {
                id: 0,
                orchestrator_action_type: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            accept(none).unwrap_err().message,
            "Received unsupported action type 'None'."
        );
        let bad = accept(response(vec![A::SendEntityMessage(
            proto::SendEntityMessageAction {
                entity_message_type: Some(M::EntityOperationCalled(
                    proto::EntityOperationCalledEvent {
                        request_id: "not a guid".into(),
                        ..Default::default()
                    },
                )),
            },
        )]));
        assert_eq!(bad.unwrap_err().type_name, "System.FormatException");
        let big = proto::OrchestratorResponse {
            custom_status: Some("x".repeat(8 * 1024 + 1)),
            ..Default::default()
        };
        assert_eq!(
            accept(big).unwrap_err().message,
            "CustomStatus is too large: limit = 16 KB (UTF-16), actual = 16.00 KB."
        );
    }

    #[test]
    fn a_legacy_entity_event_becomes_an_entity_message() {
        let id = "4f0b8c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f";
        let message = RequestMessage {
            operation: Some("add".into()),
            input: Some("1".into()),
            id: id.into(),
            parent_instance_id: Some("i1".into()),
            ..Default::default()
        };
        let accepted = accept(response(vec![A::SendEvent(proto::SendEventAction {
            instance: Some(proto::OrchestrationInstance {
                instance_id: "@counter@k".into(),
                execution_id: None,
            }),
            name: "op".into(),
            data: Some(message.to_json()),
        })]))
        .unwrap();
        let Some(A::SendEntityMessage(sent)) = &accepted.actions[0].orchestrator_action_type else {
            panic!("not an entity message")
        };
        let Some(M::EntityOperationCalled(call)) = &sent.entity_message_type else {
            panic!("not a call")
        };
        assert_eq!(call.request_id, id);
        assert_eq!(call.target_instance_id.as_deref(), Some("@counter@k"));
        // An ordinary event to an orchestration stays an event.
        let plain = accept(response(vec![A::SendEvent(proto::SendEventAction {
            instance: Some(proto::OrchestrationInstance {
                instance_id: "other".into(),
                execution_id: None,
            }),
            name: "op".into(),
            data: Some(message.to_json()),
        })]))
        .unwrap();
        assert!(matches!(
            plain.actions[0].orchestrator_action_type,
            Some(A::SendEvent(_))
        ));
    }
}
