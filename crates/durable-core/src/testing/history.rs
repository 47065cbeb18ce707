//! What a backend writes to history, for tests that build an orchestrator request by hand.
//!
//! [`OrchestrationHarness`](super::OrchestrationHarness) and [`InProcessRuntime`](super::InProcessRuntime) build
//! their histories with these; a test that calls [`Registry::execute_orchestrator`](crate::Registry::execute_orchestrator)
//! directly can too. Events are in the shape the Durable Task Scheduler records them: a "scheduled" event per
//! action, under the action's id ([`confirmation`]), and results that name the id they answer. Inputs, outputs and
//! results are JSON text. Events carry no timestamp unless they say otherwise.
//!
//! ```
//! use durable_core::testing::history;
//! use durable_core::{OffsetDateTime, proto};
//!
//! let t0 = OffsetDateTime::UNIX_EPOCH;
//! let request = proto::OrchestratorRequest {
//!     instance_id: "order-1".into(),
//!     past_events: vec![
//!         history::orchestrator_started(t0),
//!         history::execution_started("order-1", "e1", "Checkout", Some("42")),
//!         history::task_scheduled(0, "Charge"),
//!         history::orchestrator_completed(),
//!     ],
//!     new_events: vec![
//!         history::orchestrator_started(t0),
//!         history::task_completed(0, Some(r#""paid""#)),
//!     ],
//!     ..Default::default()
//! };
//! # let _ = request;
//! ```

use serde::Serialize;
use time::OffsetDateTime;

use super::TestingError;
use crate::errors::FailureDetails;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::proto::send_entity_message_action::EntityMessageType;
use crate::time_util;

/// An event with `event_id` (the sequence number of the action a "scheduled" event confirms, else `-1`).
pub fn event(event_id: i32, event_type: EventType) -> proto::HistoryEvent {
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

/// `OrchestratorStarted`, which leads every turn's new events; its time is the orchestration's clock for the turn.
pub fn orchestrator_started(at: OffsetDateTime) -> proto::HistoryEvent {
    stamped(EventType::OrchestratorStarted(Default::default()), at)
}

/// `OrchestratorCompleted`, which a backend appends after a turn's confirmations.
pub fn orchestrator_completed() -> proto::HistoryEvent {
    event(-1, EventType::OrchestratorCompleted(Default::default()))
}

/// `ExecutionStarted` for execution `execution_id` of instance `instance_id`, running orchestrator `name`.
pub fn execution_started(
    instance_id: &str,
    execution_id: &str,
    name: &str,
    input: Option<&str>,
) -> proto::HistoryEvent {
    event(
        -1,
        EventType::ExecutionStarted(proto::ExecutionStartedEvent {
            name: name.to_string(),
            input: input.map(str::to_string),
            orchestration_instance: Some(proto::OrchestrationInstance {
                instance_id: instance_id.to_string(),
                execution_id: Some(execution_id.to_string()),
            }),
            ..Default::default()
        }),
    )
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

/// `TaskScheduled`: the call of activity `name` that action `task_id` made was recorded.
pub fn task_scheduled(task_id: i32, name: &str) -> proto::HistoryEvent {
    event(
        task_id,
        EventType::TaskScheduled(proto::TaskScheduledEvent {
            name: name.to_string(),
            ..Default::default()
        }),
    )
}

/// `TaskCompleted`: activity call `task_id` returned `result`.
pub fn task_completed(task_id: i32, result: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id: task_id,
            result: result.map(str::to_string),
        }),
    )
}

/// `TaskFailed`: activity call `task_id` failed.
pub fn task_failed(task_id: i32, details: &FailureDetails) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id: task_id,
            failure_details: Some(details.to_proto()),
        }),
    )
}

/// `SubOrchestrationInstanceCompleted`: sub-orchestration call `task_id` returned `result`.
pub fn sub_orchestration_completed(task_id: i32, result: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::SubOrchestrationInstanceCompleted(
            proto::SubOrchestrationInstanceCompletedEvent {
                task_scheduled_id: task_id,
                result: result.map(str::to_string),
            },
        ),
    )
}

/// `SubOrchestrationInstanceFailed`: sub-orchestration call `task_id` failed.
pub fn sub_orchestration_failed(task_id: i32, details: &FailureDetails) -> proto::HistoryEvent {
    event(
        -1,
        EventType::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
            task_scheduled_id: task_id,
            failure_details: Some(details.to_proto()),
        }),
    )
}

/// `TimerCreated`: timer action `timer_id`, due at `fire_at`, was recorded.
pub fn timer_created(timer_id: i32, fire_at: OffsetDateTime) -> proto::HistoryEvent {
    event(
        timer_id,
        EventType::TimerCreated(proto::TimerCreatedEvent {
            fire_at: Some(time_util::to_timestamp(fire_at)),
        }),
    )
}

/// `TimerFired`: timer `timer_id`, due at `fire_at`, fired.
pub fn timer_fired(timer_id: i32, fire_at: OffsetDateTime) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TimerFired(proto::TimerFiredEvent {
            fire_at: Some(time_util::to_timestamp(fire_at)),
            timer_id,
        }),
    )
}

/// `EventRaised`: an external event `name` arrived with `input`.
pub fn event_raised(name: &str, input: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EventRaised(proto::EventRaisedEvent {
            name: name.to_string(),
            input: input.map(str::to_string),
        }),
    )
}

/// `EventSent`: event action `event_id`, sending `name` to `instance_id`, was recorded.
pub fn event_sent(
    event_id: i32,
    instance_id: &str,
    name: &str,
    input: Option<&str>,
) -> proto::HistoryEvent {
    event(
        event_id,
        EventType::EventSent(proto::EventSentEvent {
            instance_id: instance_id.to_string(),
            name: name.to_string(),
            input: input.map(str::to_string),
        }),
    )
}

/// `ExecutionSuspended`: the instance was suspended.
pub fn suspended() -> proto::HistoryEvent {
    event(-1, EventType::ExecutionSuspended(Default::default()))
}

/// `ExecutionResumed`: the instance was resumed.
pub fn resumed() -> proto::HistoryEvent {
    event(-1, EventType::ExecutionResumed(Default::default()))
}

/// `ExecutionTerminated`: the instance was terminated, with `output` as its output.
pub fn terminated(output: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::ExecutionTerminated(proto::ExecutionTerminatedEvent {
            input: output.map(str::to_string),
            recurse: false,
        }),
    )
}

/// `EntityOperationCompleted`: the entity call `request_id` returned `output`.
pub fn entity_completed(request_id: &str, output: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityOperationCompleted(proto::EntityOperationCompletedEvent {
            request_id: request_id.to_string(),
            output: output.map(str::to_string),
        }),
    )
}

/// `EntityOperationFailed`: the entity call `request_id` failed.
pub fn entity_failed(request_id: &str, details: &FailureDetails) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityOperationFailed(proto::EntityOperationFailedEvent {
            request_id: request_id.to_string(),
            failure_details: Some(details.to_proto()),
        }),
    )
}

/// `EntityLockGranted`: every lock of critical section `critical_section_id` is held.
pub fn lock_granted(critical_section_id: &str) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityLockGranted(proto::EntityLockGrantedEvent {
            critical_section_id: critical_section_id.to_string(),
        }),
    )
}

/// The event a backend appends to history for `action` once its turn is committed: the "scheduled" event, under
/// the action's id, for what it schedules or sends. `None` for a completion, a termination or a rewind, which end
/// or rewrite the execution rather than add to it.
pub fn confirmation(action: &proto::OrchestratorAction) -> Option<proto::HistoryEvent> {
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
