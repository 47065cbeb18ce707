//! What a backend writes to history: the events both the harness and the in-process runtime append, in the shape
//! the Durable Task Scheduler records them (one "scheduled" event per action, under the action's id).

use serde::Serialize;
use time::OffsetDateTime;

use super::TestingError;
use crate::errors::FailureDetails;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::proto::send_entity_message_action::EntityMessageType;
use crate::time_util;

pub(crate) fn event(event_id: i32, event_type: EventType) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id,
        timestamp: None,
        event_type: Some(event_type),
    }
}

pub(crate) fn stamped(event_type: EventType, at: OffsetDateTime) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id: -1,
        timestamp: Some(time_util::to_timestamp(at)),
        event_type: Some(event_type),
    }
}

pub(crate) fn orchestrator_started(at: OffsetDateTime) -> proto::HistoryEvent {
    stamped(EventType::OrchestratorStarted(Default::default()), at)
}

pub(crate) fn orchestrator_completed() -> proto::HistoryEvent {
    event(-1, EventType::OrchestratorCompleted(Default::default()))
}

/// The JSON text of a value, as inputs, outputs and event data travel.
pub(crate) fn to_json<T: Serialize + ?Sized>(
    what: &str,
    value: &T,
) -> Result<String, TestingError> {
    serde_json::to_string(value).map_err(|e| TestingError::Json {
        what: what.to_string(),
        message: e.to_string(),
    })
}

pub(crate) fn task_completed(task_id: i32, result: Option<String>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id: task_id,
            result,
        }),
    )
}

pub(crate) fn task_failed(task_id: i32, details: &FailureDetails) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id: task_id,
            failure_details: Some(details.to_proto()),
        }),
    )
}

pub(crate) fn sub_orchestration_completed(
    task_id: i32,
    result: Option<String>,
) -> proto::HistoryEvent {
    event(
        -1,
        EventType::SubOrchestrationInstanceCompleted(
            proto::SubOrchestrationInstanceCompletedEvent {
                task_scheduled_id: task_id,
                result,
            },
        ),
    )
}

pub(crate) fn sub_orchestration_failed(
    task_id: i32,
    details: &FailureDetails,
) -> proto::HistoryEvent {
    event(
        -1,
        EventType::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
            task_scheduled_id: task_id,
            failure_details: Some(details.to_proto()),
        }),
    )
}

pub(crate) fn timer_fired(timer_id: i32, fire_at: OffsetDateTime) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TimerFired(proto::TimerFiredEvent {
            fire_at: Some(time_util::to_timestamp(fire_at)),
            timer_id,
        }),
    )
}

pub(crate) fn event_raised(name: &str, input: Option<String>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EventRaised(proto::EventRaisedEvent {
            name: name.to_string(),
            input,
        }),
    )
}

pub(crate) fn entity_completed(request_id: &str, output: Option<String>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityOperationCompleted(proto::EntityOperationCompletedEvent {
            request_id: request_id.to_string(),
            output,
        }),
    )
}

pub(crate) fn entity_failed(
    request_id: &str,
    details: proto::TaskFailureDetails,
) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityOperationFailed(proto::EntityOperationFailedEvent {
            request_id: request_id.to_string(),
            failure_details: Some(details),
        }),
    )
}

pub(crate) fn lock_granted(critical_section_id: &str) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityLockGranted(proto::EntityLockGrantedEvent {
            critical_section_id: critical_section_id.to_string(),
        }),
    )
}

/// The "scheduled" event a backend appends for an action (event id = action id), or none for a completion.
pub(crate) fn confirmation(action: &proto::OrchestratorAction) -> Option<proto::HistoryEvent> {
    let event_type = match action.orchestrator_action_type.as_ref()? {
        OrchestratorActionType::ScheduleTask(t) => {
            EventType::TaskScheduled(proto::TaskScheduledEvent {
                name: t.name.clone(),
                version: t.version.clone(),
                input: t.input.clone(),
                tags: t.tags.clone(),
                ..Default::default()
            })
        }
        OrchestratorActionType::CreateSubOrchestration(s) => {
            EventType::SubOrchestrationInstanceCreated(
                proto::SubOrchestrationInstanceCreatedEvent {
                    instance_id: s.instance_id.clone(),
                    name: s.name.clone(),
                    version: s.version.clone(),
                    input: s.input.clone(),
                    ..Default::default()
                },
            )
        }
        OrchestratorActionType::CreateTimer(t) => {
            EventType::TimerCreated(proto::TimerCreatedEvent { fire_at: t.fire_at })
        }
        OrchestratorActionType::SendEvent(e) => EventType::EventSent(proto::EventSentEvent {
            instance_id: e
                .instance
                .as_ref()
                .map(|i| i.instance_id.clone())
                .unwrap_or_default(),
            name: e.name.clone(),
            input: e.data.clone(),
        }),
        OrchestratorActionType::SendEntityMessage(m) => match m.entity_message_type.as_ref()? {
            EntityMessageType::EntityOperationCalled(c) => {
                EventType::EntityOperationCalled(c.clone())
            }
            EntityMessageType::EntityOperationSignaled(s) => {
                EventType::EntityOperationSignaled(s.clone())
            }
            EntityMessageType::EntityLockRequested(l) => EventType::EntityLockRequested(l.clone()),
            EntityMessageType::EntityUnlockSent(u) => EventType::EntityUnlockSent(u.clone()),
        },
        OrchestratorActionType::CompleteOrchestration(_)
        | OrchestratorActionType::TerminateOrchestration(_)
        | OrchestratorActionType::RewindOrchestration(_) => return None,
    };
    Some(event(action.id, event_type))
}

pub(crate) fn timestamp(ts: Option<&prost_types::Timestamp>) -> Option<OffsetDateTime> {
    ts.and_then(time_util::from_timestamp)
}
