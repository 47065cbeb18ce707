//! The orchestrator request as the Durable extension builds it.
//!
//! The extension never forwards the backend's request: DurableTask.Core hands it the history as its own event
//! objects, and `OrchestrationTriggerAttributeBindingProvider` builds a fresh `OrchestratorRequest` from them with
//! `ProtobufUtils.ToHistoryEventProto` (Azure/azure-functions-durable-extension). So the handler gets only
//! `instanceId`, `pastEvents`, `newEvents`, `entityParameters` and `properties` (never `executionId`, history
//! streaming or trace context), each event carries only the fields DurableTask.Core keeps, and entity calls
//! appear as `EventSent` / `EventRaised`. This module makes that request out of the backend's.

use std::collections::HashMap;

use durable_proto as proto;
use prost_types::Value;
use prost_types::value::Kind;
use proto::history_event::EventType;

use super::entity_messages::{
    self as messages, BATCH_FAILED, LOCK_ACQUISITION_COMPLETED, RELEASE_EVENT, RequestMessage,
};
use super::failures::is_batch_failure;

/// `properties` keys of the extension's `RemoteInstanceConfiguration` and entity options.
pub(crate) mod keys {
    pub(crate) const SLEEP: &str = "HttpDefaultAsyncRequestSleepTimeMilliseconds";
    pub(crate) const INCLUDE_STATE: &str = "IncludeState";
    pub(crate) const IS_EXTENDED_SESSION: &str = "IsExtendedSession";
    pub(crate) const SESSION_IDLE_TIMEOUT: &str = "ExtendedSessionIdleTimeoutInSeconds";
    pub(crate) const DEFAULT_VERSION: &str = "defaultVersion";
    pub(crate) const ROLLBACK: &str = "RollbackEntityOperationsOnExceptions";
}

/// The extension's default for `HttpDefaultAsyncRequestSleepTimeMilliseconds` (durable HTTP polling).
const DEFAULT_HTTP_SLEEP_MS: f64 = 30_000.0;

/// What the host.json `durableTask` section contributes to every request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestSettings {
    pub(crate) default_version: Option<String>,
    /// `extendedSessionIdleTimeoutInSeconds` when `extendedSessionsEnabled` is on.
    pub(crate) extended_session_idle_seconds: Option<u32>,
    pub(crate) rollback_entity_operations_on_exceptions: bool,
}

/// Where a turn stands in an extended session (DurableTask.Core's `WorkItemMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTurn {
    /// The turn continues a session, so the worker is expected to hold the history already.
    pub(crate) is_extended_session: bool,
    /// Whether the history (or the entity's state) is included.
    pub(crate) include_state: bool,
}

impl SessionTurn {
    /// A turn outside any session: everything included.
    pub(crate) const FULL: SessionTurn = SessionTurn {
        is_extended_session: false,
        include_state: true,
    };
}

fn number(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn boolean(b: bool) -> Value {
    Value {
        kind: Some(Kind::BoolValue(b)),
    }
}

fn session_properties(settings: &RequestSettings, turn: SessionTurn) -> HashMap<String, Value> {
    let mut properties = HashMap::new();
    if let Some(idle) = settings.extended_session_idle_seconds {
        properties.insert(keys::INCLUDE_STATE.into(), boolean(turn.include_state));
        properties.insert(
            keys::IS_EXTENDED_SESSION.into(),
            boolean(turn.is_extended_session),
        );
        properties.insert(keys::SESSION_IDLE_TIMEOUT.into(), number(f64::from(idle)));
    }
    properties
}

/// The request the handler receives for an orchestrator turn.
pub(crate) fn orchestrator_request(
    backend: &proto::OrchestratorRequest,
    settings: &RequestSettings,
    turn: SessionTurn,
) -> proto::OrchestratorRequest {
    let mut properties = session_properties(settings, turn);
    properties.insert(keys::SLEEP.into(), number(DEFAULT_HTTP_SLEEP_MS));
    if let Some(version) = &settings.default_version {
        properties.insert(
            keys::DEFAULT_VERSION.into(),
            Value {
                kind: Some(Kind::StringValue(version.clone())),
            },
        );
    }
    proto::OrchestratorRequest {
        instance_id: backend.instance_id.clone(),
        past_events: if turn.include_state {
            backend.past_events.iter().map(history_event).collect()
        } else {
            Vec::new()
        },
        new_events: backend.new_events.iter().map(history_event).collect(),
        entity_parameters: backend.entity_parameters,
        properties,
        ..Default::default()
    }
}

/// The request the handler receives for an entity batch: the backend's operations, with the entity's state left
/// out inside an extended session, and the extension's entity options.
pub(crate) fn entity_request(
    backend: &proto::EntityBatchRequest,
    settings: &RequestSettings,
    turn: SessionTurn,
) -> proto::EntityBatchRequest {
    let mut properties = session_properties(settings, turn);
    properties.insert(
        keys::ROLLBACK.into(),
        boolean(settings.rollback_entity_operations_on_exceptions),
    );
    proto::EntityBatchRequest {
        instance_id: backend.instance_id.clone(),
        entity_state: if turn.include_state {
            backend.entity_state.clone()
        } else {
            None
        },
        operations: backend
            .operations
            .iter()
            .map(|op| proto::OperationRequest {
                operation: op.operation.clone(),
                request_id: op.request_id.clone(),
                input: op.input.clone(),
                trace_context: op.trace_context.clone(),
            })
            .collect(),
        properties,
    }
}

fn trace_context(context: &Option<proto::TraceContext>) -> Option<proto::TraceContext> {
    context.as_ref().map(|c| proto::TraceContext {
        trace_parent: c.trace_parent.clone(),
        trace_state: c.trace_state.clone(),
        ..Default::default()
    })
}

fn instance(i: &Option<proto::OrchestrationInstance>) -> Option<proto::OrchestrationInstance> {
    Some(proto::OrchestrationInstance {
        instance_id: i
            .as_ref()
            .map(|i| i.instance_id.clone())
            .unwrap_or_default(),
        execution_id: i.as_ref().and_then(|i| i.execution_id.clone()),
    })
}

/// A TaskFailed that carries no failure details in Azure (an activity function that does not exist) is recorded
/// with an empty error type, since the protocol between worker and backend has no other way to say "failed" than
/// failure details; the extension's rendering leaves the details out again.
fn failure_details(
    details: &Option<proto::TaskFailureDetails>,
) -> Option<proto::TaskFailureDetails> {
    details.clone().filter(|d| !d.error_type.is_empty())
}

/// One history event as `ToHistoryEventProto` renders DurableTask.Core's version of it.
pub(crate) fn history_event(event: &proto::HistoryEvent) -> proto::HistoryEvent {
    use EventType as E;
    let kind = event.event_type.as_ref().map(|kind| match kind {
        E::ExecutionStarted(e) => E::ExecutionStarted(proto::ExecutionStartedEvent {
            name: e.name.clone(),
            version: e.version.clone(),
            input: e.input.clone(),
            orchestration_instance: instance(&e.orchestration_instance),
            parent_instance: e
                .parent_instance
                .as_ref()
                .map(|p| proto::ParentInstanceInfo {
                    task_scheduled_id: p.task_scheduled_id,
                    name: p.name.clone(),
                    version: p.version.clone(),
                    orchestration_instance: instance(&p.orchestration_instance),
                }),
            scheduled_start_timestamp: e.scheduled_start_timestamp,
            parent_trace_context: trace_context(&e.parent_trace_context),
            orchestration_span_id: None,
            tags: e.tags.clone(),
        }),
        E::ExecutionCompleted(e) => E::ExecutionCompleted(proto::ExecutionCompletedEvent {
            orchestration_status: e.orchestration_status,
            result: e.result.clone(),
            failure_details: failure_details(&e.failure_details),
        }),
        E::ExecutionTerminated(e) => E::ExecutionTerminated(proto::ExecutionTerminatedEvent {
            input: e.input.clone(),
            recurse: false,
        }),
        E::TaskScheduled(e) => E::TaskScheduled(proto::TaskScheduledEvent {
            name: e.name.clone(),
            version: e.version.clone(),
            input: e.input.clone(),
            tags: e.tags.clone(),
            ..Default::default()
        }),
        E::TaskCompleted(e) => E::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id: e.task_scheduled_id,
            result: e.result.clone(),
        }),
        E::TaskFailed(e) => E::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id: e.task_scheduled_id,
            failure_details: failure_details(&e.failure_details),
        }),
        E::SubOrchestrationInstanceCreated(e) => {
            E::SubOrchestrationInstanceCreated(proto::SubOrchestrationInstanceCreatedEvent {
                instance_id: e.instance_id.clone(),
                name: e.name.clone(),
                version: e.version.clone(),
                input: e.input.clone(),
                ..Default::default()
            })
        }
        E::SubOrchestrationInstanceCompleted(e) => {
            E::SubOrchestrationInstanceCompleted(proto::SubOrchestrationInstanceCompletedEvent {
                task_scheduled_id: e.task_scheduled_id,
                result: e.result.clone(),
            })
        }
        E::SubOrchestrationInstanceFailed(e) => {
            E::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
                task_scheduled_id: e.task_scheduled_id,
                failure_details: failure_details(&e.failure_details),
            })
        }
        E::TimerCreated(e) => E::TimerCreated(proto::TimerCreatedEvent { fire_at: e.fire_at }),
        E::TimerFired(e) => E::TimerFired(proto::TimerFiredEvent {
            fire_at: e.fire_at,
            timer_id: e.timer_id,
        }),
        E::OrchestratorStarted(_) => {
            E::OrchestratorStarted(proto::OrchestratorStartedEvent::default())
        }
        E::OrchestratorCompleted(_) => {
            E::OrchestratorCompleted(proto::OrchestratorCompletedEvent::default())
        }
        E::EventSent(e) => E::EventSent(proto::EventSentEvent {
            instance_id: e.instance_id.clone(),
            name: e.name.clone(),
            input: e.input.clone(),
        }),
        E::EventRaised(e) => E::EventRaised(proto::EventRaisedEvent {
            name: e.name.clone(),
            input: e.input.clone(),
        }),
        E::GenericEvent(e) => E::GenericEvent(proto::GenericEvent {
            data: e.data.clone(),
        }),
        E::HistoryState(e) => E::HistoryState(e.clone()),
        E::ContinueAsNew(e) => E::ContinueAsNew(proto::ContinueAsNewEvent {
            input: e.input.clone(),
        }),
        E::ExecutionSuspended(e) => E::ExecutionSuspended(proto::ExecutionSuspendedEvent {
            input: e.input.clone(),
        }),
        E::ExecutionResumed(e) => E::ExecutionResumed(proto::ExecutionResumedEvent {
            input: e.input.clone(),
        }),
        E::ExecutionRewound(_) => E::ExecutionRewound(proto::ExecutionRewoundEvent::default()),
        E::EntityOperationCalled(e) => {
            let message = RequestMessage {
                operation: Some(e.operation.clone()),
                input: e.input.clone(),
                id: e.request_id.clone(),
                parent_instance_id: e.parent_instance_id.clone(),
                parent_execution_id: e.parent_execution_id.clone(),
                scheduled_time: e.scheduled_time,
                ..Default::default()
            };
            sent(
                e.target_instance_id.clone().unwrap_or_default(),
                messages::request_event_name(e.scheduled_time.as_ref()),
                &message,
            )
        }
        E::EntityOperationSignaled(e) => {
            let message = RequestMessage {
                operation: Some(e.operation.clone()),
                is_signal: true,
                input: e.input.clone(),
                id: e.request_id.clone(),
                scheduled_time: e.scheduled_time,
                ..Default::default()
            };
            sent(
                e.target_instance_id.clone().unwrap_or_default(),
                messages::request_event_name(e.scheduled_time.as_ref()),
                &message,
            )
        }
        E::EntityLockRequested(e) => {
            let message = RequestMessage {
                id: e.critical_section_id.clone(),
                parent_instance_id: e.parent_instance_id.clone(),
                lock_set: Some(e.lock_set.clone()),
                position: e.position,
                ..Default::default()
            };
            let target = usize::try_from(e.position)
                .ok()
                .and_then(|p| e.lock_set.get(p))
                .cloned()
                .unwrap_or_default();
            sent(target, messages::REQUEST_EVENT.to_owned(), &message)
        }
        E::EntityUnlockSent(e) => {
            let message = RequestMessage {
                id: e.critical_section_id.clone(),
                parent_instance_id: e.parent_instance_id.clone(),
                ..Default::default()
            };
            sent(
                e.target_instance_id.clone().unwrap_or_default(),
                RELEASE_EVENT.to_owned(),
                &message,
            )
        }
        E::EntityOperationCompleted(e) => raised(
            &e.request_id,
            messages::response_json(e.output.as_deref(), None, None),
        ),
        E::EntityOperationFailed(e) => {
            let details = e.failure_details.clone().unwrap_or_default();
            let json = if is_batch_failure(&details) {
                messages::response_json(
                    Some(&details.error_message),
                    Some(BATCH_FAILED),
                    Some(&details),
                )
            } else {
                messages::response_json(None, None, Some(&details))
            };
            raised(&e.request_id, json)
        }
        E::EntityLockGranted(e) => raised(
            &e.critical_section_id,
            messages::response_json(Some(LOCK_ACQUISITION_COMPLETED), None, None),
        ),
    });
    proto::HistoryEvent {
        event_id: event.event_id,
        timestamp: event.timestamp,
        event_type: kind,
    }
}

fn sent(target: String, name: String, message: &RequestMessage) -> EventType {
    EventType::EventSent(proto::EventSentEvent {
        instance_id: target,
        name,
        input: Some(message.to_json()),
    })
}

fn raised(name: &str, input: String) -> EventType {
    EventType::EventRaised(proto::EventRaisedEvent {
        name: name.to_owned(),
        input: Some(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i32, kind: EventType) -> proto::HistoryEvent {
        proto::HistoryEvent {
            event_id: id,
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_748_779_200,
                nanos: 0,
            }),
            event_type: Some(kind),
        }
    }

    fn started() -> proto::HistoryEvent {
        ev(
            -1,
            EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name: "Orch".into(),
                input: Some("1".into()),
                orchestration_instance: Some(proto::OrchestrationInstance {
                    instance_id: "i1".into(),
                    execution_id: Some("e1".into()),
                }),
                orchestration_span_id: Some("span".into()),
                parent_trace_context: Some(proto::TraceContext {
                    trace_parent: "00-abc-def-01".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        )
    }

    #[test]
    fn the_request_has_only_what_the_extension_sets() {
        let backend = proto::OrchestratorRequest {
            instance_id: "i1".into(),
            execution_id: Some("e1".into()),
            past_events: vec![started()],
            new_events: vec![ev(-1, EventType::OrchestratorStarted(Default::default()))],
            requires_history_streaming: true,
            orchestration_trace_context: Some(Default::default()),
            entity_parameters: Some(proto::OrchestratorEntityParameters {
                entity_message_reorder_window: Some(prost_types::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
            }),
            ..Default::default()
        };
        let settings = RequestSettings {
            default_version: Some("2.0".into()),
            ..Default::default()
        };
        let request = orchestrator_request(&backend, &settings, SessionTurn::FULL);
        assert_eq!(request.execution_id, None);
        assert!(!request.requires_history_streaming);
        assert_eq!(request.orchestration_trace_context, None);
        assert_eq!(request.entity_parameters, backend.entity_parameters);
        assert_eq!(request.properties[keys::SLEEP], number(30_000.0));
        assert_eq!(
            request.properties[keys::DEFAULT_VERSION].kind,
            Some(Kind::StringValue("2.0".into()))
        );
        assert!(!request.properties.contains_key(keys::INCLUDE_STATE));
        let Some(EventType::ExecutionStarted(s)) = &request.past_events[0].event_type else {
            panic!("not ExecutionStarted")
        };
        assert_eq!(s.orchestration_span_id, None);
        assert_eq!(
            s.parent_trace_context.as_ref().unwrap().trace_parent,
            "00-abc-def-01"
        );
        assert_eq!(s.input.as_deref(), Some("1"));
    }

    #[test]
    fn a_session_turn_leaves_the_past_out() {
        let backend = proto::OrchestratorRequest {
            instance_id: "i1".into(),
            past_events: vec![started()],
            ..Default::default()
        };
        let settings = RequestSettings {
            extended_session_idle_seconds: Some(30),
            ..Default::default()
        };
        let turn = SessionTurn {
            is_extended_session: true,
            include_state: false,
        };
        let request = orchestrator_request(&backend, &settings, turn);
        assert!(request.past_events.is_empty());
        assert_eq!(request.properties[keys::INCLUDE_STATE], boolean(false));
        assert_eq!(request.properties[keys::IS_EXTENDED_SESSION], boolean(true));
        assert_eq!(request.properties[keys::SESSION_IDLE_TIMEOUT], number(30.0));
    }

    #[test]
    fn entity_calls_become_sent_and_raised_events() {
        let request_id = "4f0b8c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f";
        let called = history_event(&ev(
            3,
            EventType::EntityOperationCalled(proto::EntityOperationCalledEvent {
                request_id: request_id.into(),
                operation: "add".into(),
                input: Some("5".into()),
                parent_instance_id: Some("i1".into()),
                parent_execution_id: Some("e1".into()),
                target_instance_id: Some("@counter@k".into()),
                ..Default::default()
            }),
        ));
        assert_eq!(called.event_id, 3);
        let Some(EventType::EventSent(sent)) = called.event_type else {
            panic!("not EventSent")
        };
        assert_eq!(sent.instance_id, "@counter@k");
        assert_eq!(sent.name, "op");
        let message = RequestMessage::from_json(sent.input.as_deref().unwrap()).unwrap();
        assert_eq!(message.id, request_id);
        assert_eq!(message.parent_execution_id.as_deref(), Some("e1"));

        let done = history_event(&ev(
            -1,
            EventType::EntityOperationCompleted(proto::EntityOperationCompletedEvent {
                request_id: request_id.into(),
                output: Some("6".into()),
            }),
        ));
        let Some(EventType::EventRaised(raised)) = done.event_type else {
            panic!("not EventRaised")
        };
        assert_eq!(raised.name, request_id);
        assert_eq!(raised.input.as_deref(), Some(r#"{"result":"6"}"#));

        let granted = history_event(&ev(
            -1,
            EventType::EntityLockGranted(proto::EntityLockGrantedEvent {
                critical_section_id: "cs".into(),
            }),
        ));
        let Some(EventType::EventRaised(raised)) = granted.event_type else {
            panic!("not EventRaised")
        };
        assert_eq!(
            raised.input.as_deref(),
            Some(r#"{"result":"Lock Acquisition Completed"}"#)
        );

        let lock = history_event(&ev(
            4,
            EventType::EntityLockRequested(proto::EntityLockRequestedEvent {
                critical_section_id: "cs".into(),
                lock_set: vec!["@a@1".into(), "@b@2".into()],
                position: 0,
                parent_instance_id: Some("i1".into()),
            }),
        ));
        let Some(EventType::EventSent(sent)) = lock.event_type else {
            panic!("not EventSent")
        };
        assert_eq!(sent.instance_id, "@a@1");
        let unlock = history_event(&ev(
            5,
            EventType::EntityUnlockSent(proto::EntityUnlockSentEvent {
                critical_section_id: "cs".into(),
                parent_instance_id: Some("i1".into()),
                target_instance_id: Some("@b@2".into()),
            }),
        ));
        let Some(EventType::EventSent(sent)) = unlock.event_type else {
            panic!("not EventSent")
        };
        assert_eq!(
            (sent.instance_id.as_str(), sent.name.as_str()),
            ("@b@2", "release")
        );
    }

    #[test]
    fn a_failure_without_a_type_has_no_details() {
        let failed = history_event(&ev(
            -1,
            EventType::TaskFailed(proto::TaskFailedEvent {
                task_scheduled_id: 0,
                failure_details: Some(proto::TaskFailureDetails {
                    error_message: "The function 'X' doesn't exist".into(),
                    ..Default::default()
                }),
            }),
        ));
        let Some(EventType::TaskFailed(f)) = failed.event_type else {
            panic!("not TaskFailed")
        };
        assert_eq!(f.failure_details, None);
    }
}
