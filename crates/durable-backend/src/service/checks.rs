//! What a worker's completion may contain. The same limits as for client requests apply to every ID and payload a
//! completion carries (with the same messages), checked before anything is stored. A completion that breaks one is
//! not refused: the work item fails as a whole (the orchestration, the activity task or the entity batch), so the
//! lease ends, nothing of the bad completion is applied, and the author learns why.

use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::*;
use tonic::Status;

use super::validate;

/// The failure's `errorType` when a payload is over the limit.
pub(super) const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
/// The failure's `errorType` when an action names an invalid instance or entity, or is malformed.
pub(super) const INVALID_ACTION: &str = "InvalidAction";

/// Why a completion cannot be applied as sent.
#[derive(Debug)]
pub(super) struct Rejection {
    pub(super) error_type: &'static str,
    pub(super) message: String,
}

impl Rejection {
    fn new(error_type: &'static str, status: Status) -> Self {
        Rejection {
            error_type,
            message: status.message().to_owned(),
        }
    }

    /// The failure recorded for the work item.
    pub(super) fn failure(&self) -> TaskFailureDetails {
        TaskFailureDetails {
            error_type: self.error_type.to_owned(),
            error_message: self.message.clone(),
            is_non_retriable: true,
            ..TaskFailureDetails::default()
        }
    }
}

fn payload(what: &str, value: Option<&String>, limit: usize) -> Result<(), Rejection> {
    validate::payload(what, value, limit).map_err(|s| Rejection::new(PAYLOAD_TOO_LARGE, s))
}

fn failure(what: &str, value: Option<&TaskFailureDetails>, limit: usize) -> Result<(), Rejection> {
    validate::failure_details(what, value, limit).map_err(|s| Rejection::new(PAYLOAD_TOO_LARGE, s))
}

fn instance(what: &str, id: &str) -> Result<(), Rejection> {
    validate::instance_id_of(what, id).map_err(|s| Rejection::new(INVALID_ACTION, s))
}

fn entity(id: Option<&str>) -> Result<(), Rejection> {
    validate::entity_id(id.unwrap_or_default()).map_err(|s| Rejection::new(INVALID_ACTION, s))
}

/// An orchestrator turn (all chunks merged). `instance_id` is the leased instance: a sub-orchestration without an
/// ID gets `<instance_id>:<action id as 4 hex digits>` here, so the generated ID is checked like any other.
pub(super) fn orchestrator_turn(
    r: &mut OrchestratorResponse,
    instance_id: &str,
    limit: usize,
) -> Result<(), Rejection> {
    payload("custom status", r.custom_status.as_ref(), limit)?;
    for action in &mut r.actions {
        let id = action.id;
        let Some(kind) = action.orchestrator_action_type.as_mut() else {
            continue;
        };
        match kind {
            OrchestratorActionType::ScheduleTask(a) => {
                payload("activity input", a.input.as_ref(), limit)?;
            }
            OrchestratorActionType::CreateSubOrchestration(a) => {
                if a.instance_id.is_empty() {
                    a.instance_id = format!("{instance_id}:{id:04x}");
                }
                instance("sub-orchestration instance ID", &a.instance_id)?;
                payload("sub-orchestration input", a.input.as_ref(), limit)?;
            }
            OrchestratorActionType::CreateTimer(_) => {}
            OrchestratorActionType::SendEvent(a) => {
                let target = a.instance.as_ref().map(|i| i.instance_id.as_str());
                instance("event target instance ID", target.unwrap_or_default())?;
                payload("event data", a.data.as_ref(), limit)?;
            }
            OrchestratorActionType::CompleteOrchestration(a) => {
                payload("orchestration output", a.result.as_ref(), limit)?;
                failure("orchestration failure", a.failure_details.as_ref(), limit)?;
                for carried in &a.carryover_events {
                    event("carried-over event", carried, limit)?;
                }
            }
            OrchestratorActionType::TerminateOrchestration(a) => {
                instance("termination target instance ID", &a.instance_id)?;
                payload("termination reason", a.reason.as_ref(), limit)?;
            }
            OrchestratorActionType::SendEntityMessage(a) => entity_message(a, limit)?,
            OrchestratorActionType::RewindOrchestration(a) => {
                for e in &a.new_history {
                    event("rewound history event", e, limit)?;
                }
            }
        }
    }
    Ok(())
}

fn entity_message(a: &SendEntityMessageAction, limit: usize) -> Result<(), Rejection> {
    match &a.entity_message_type {
        Some(EntityMessageType::EntityOperationSignaled(m)) => {
            entity(m.target_instance_id.as_deref())?;
            payload("entity operation input", m.input.as_ref(), limit)
        }
        Some(EntityMessageType::EntityOperationCalled(m)) => {
            entity(m.target_instance_id.as_deref())?;
            payload("entity operation input", m.input.as_ref(), limit)
        }
        Some(EntityMessageType::EntityLockRequested(m)) => {
            for id in &m.lock_set {
                entity(Some(id))?;
            }
            let in_set = usize::try_from(m.position).is_ok_and(|p| p < m.lock_set.len());
            if !in_set {
                return Err(Rejection::new(
                    INVALID_ACTION,
                    Status::invalid_argument(format!(
                        "the lock request's position {} is outside its lock set of {} entities",
                        m.position,
                        m.lock_set.len()
                    )),
                ));
            }
            Ok(())
        }
        Some(EntityMessageType::EntityUnlockSent(m)) => entity(m.target_instance_id.as_deref()),
        None => Ok(()),
    }
}

/// The payloads (and sub-orchestration IDs) of a history event a worker hands back to be stored.
fn event(what: &str, e: &HistoryEvent, limit: usize) -> Result<(), Rejection> {
    let label = |field: &str| format!("{what}'s {field}");
    let (field, value): (&str, Option<&String>) = match &e.event_type {
        Some(EventType::ExecutionStarted(x)) => ("input", x.input.as_ref()),
        Some(EventType::ExecutionCompleted(x)) => {
            failure(&label("failure"), x.failure_details.as_ref(), limit)?;
            ("result", x.result.as_ref())
        }
        Some(EventType::ExecutionTerminated(x)) => ("reason", x.input.as_ref()),
        Some(EventType::TaskScheduled(x)) => ("input", x.input.as_ref()),
        Some(EventType::TaskCompleted(x)) => ("result", x.result.as_ref()),
        Some(EventType::TaskFailed(x)) => {
            return failure(&label("failure"), x.failure_details.as_ref(), limit);
        }
        Some(EventType::SubOrchestrationInstanceCreated(x)) => {
            instance("sub-orchestration instance ID", &x.instance_id)?;
            ("input", x.input.as_ref())
        }
        Some(EventType::SubOrchestrationInstanceCompleted(x)) => ("result", x.result.as_ref()),
        Some(EventType::SubOrchestrationInstanceFailed(x)) => {
            return failure(&label("failure"), x.failure_details.as_ref(), limit);
        }
        Some(EventType::EventSent(x)) => ("data", x.input.as_ref()),
        Some(EventType::EventRaised(x)) => ("data", x.input.as_ref()),
        Some(EventType::GenericEvent(x)) => ("data", x.data.as_ref()),
        Some(EventType::ContinueAsNew(x)) => ("input", x.input.as_ref()),
        Some(EventType::ExecutionSuspended(x)) => ("reason", x.input.as_ref()),
        Some(EventType::ExecutionResumed(x)) => ("reason", x.input.as_ref()),
        Some(EventType::EntityOperationSignaled(x)) => ("input", x.input.as_ref()),
        Some(EventType::EntityOperationCalled(x)) => ("input", x.input.as_ref()),
        Some(EventType::EntityOperationCompleted(x)) => ("output", x.output.as_ref()),
        Some(EventType::EntityOperationFailed(x)) => {
            return failure(&label("failure"), x.failure_details.as_ref(), limit);
        }
        Some(EventType::ExecutionRewound(x)) => ("reason", x.reason.as_ref()),
        _ => return Ok(()),
    };
    payload(&label(field), value, limit)
}

/// An activity's result or failure.
pub(super) fn activity(r: &ActivityResponse, limit: usize) -> Result<(), Rejection> {
    payload("activity result", r.result.as_ref(), limit)?;
    failure("activity failure", r.failure_details.as_ref(), limit)
}

/// An entity batch: the new state, each operation's result, and the signals and orchestrations it starts.
pub(super) fn entity_batch(r: &EntityBatchResult, limit: usize) -> Result<(), Rejection> {
    payload("entity state", r.entity_state.as_ref(), limit)?;
    failure("entity batch failure", r.failure_details.as_ref(), limit)?;
    for result in &r.results {
        match &result.result_type {
            Some(operation_result::ResultType::Success(s)) => {
                payload("entity operation result", s.result.as_ref(), limit)?
            }
            Some(operation_result::ResultType::Failure(f)) => failure(
                "entity operation failure",
                f.failure_details.as_ref(),
                limit,
            )?,
            None => {}
        }
    }
    for action in &r.actions {
        match &action.operation_action_type {
            Some(operation_action::OperationActionType::SendSignal(s)) => {
                entity(Some(&s.instance_id))?;
                payload("entity operation input", s.input.as_ref(), limit)?;
            }
            Some(operation_action::OperationActionType::StartNewOrchestration(s)) => {
                if !s.instance_id.is_empty() {
                    instance("orchestration instance ID", &s.instance_id)?;
                }
                payload("orchestration input", s.input.as_ref(), limit)?;
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(actions: Vec<OrchestratorActionType>) -> OrchestratorResponse {
        OrchestratorResponse {
            actions: actions
                .into_iter()
                .enumerate()
                .map(|(n, kind)| OrchestratorAction {
                    id: i32::try_from(n).unwrap(),
                    orchestrator_action_type: Some(kind),
                })
                .collect(),
            ..OrchestratorResponse::default()
        }
    }

    #[test]
    fn generated_child_ids_are_filled_in_and_checked() {
        let child =
            OrchestratorActionType::CreateSubOrchestration(CreateSubOrchestrationAction::default());
        let mut r = turn(vec![child.clone()]);
        orchestrator_turn(&mut r, "parent", 10).unwrap();
        let Some(OrchestratorActionType::CreateSubOrchestration(a)) =
            &r.actions[0].orchestrator_action_type
        else {
            unreachable!()
        };
        assert_eq!(a.instance_id, "parent:0000");
        let refused = orchestrator_turn(&mut turn(vec![child]), &"p".repeat(96), 10).unwrap_err();
        assert_eq!(refused.error_type, INVALID_ACTION);
        assert!(
            refused.message.contains("101 characters"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn lock_requests_must_point_into_their_lock_set() {
        let lock = |position: i32, lock_set: Vec<&str>| {
            OrchestratorActionType::SendEntityMessage(SendEntityMessageAction {
                entity_message_type: Some(EntityMessageType::EntityLockRequested(
                    EntityLockRequestedEvent {
                        lock_set: lock_set.into_iter().map(str::to_owned).collect(),
                        position,
                        ..EntityLockRequestedEvent::default()
                    },
                )),
            })
        };
        assert!(orchestrator_turn(&mut turn(vec![lock(0, vec!["@a@1"])]), "p", 10).is_ok());
        for bad in [
            lock(1, vec!["@a@1"]),
            lock(-1, vec!["@a@1"]),
            lock(0, vec![]),
            lock(0, vec!["a"]),
        ] {
            let refused = orchestrator_turn(&mut turn(vec![bad]), "p", 10).unwrap_err();
            assert_eq!(refused.error_type, INVALID_ACTION);
        }
    }

    #[test]
    fn oversized_failures_and_rewound_histories_are_caught() {
        let huge = TaskFailureDetails {
            error_message: "m".repeat(100),
            ..TaskFailureDetails::default()
        };
        let refused = activity(
            &ActivityResponse {
                failure_details: Some(huge),
                ..ActivityResponse::default()
            },
            50,
        )
        .unwrap_err();
        assert_eq!(refused.error_type, PAYLOAD_TOO_LARGE);
        assert!(
            refused.message.starts_with("the activity failure is"),
            "{}",
            refused.message
        );

        let rewind = |event_type| {
            OrchestratorActionType::RewindOrchestration(RewindOrchestrationAction {
                new_history: vec![HistoryEvent {
                    event_id: 0,
                    timestamp: None,
                    event_type: Some(event_type),
                }],
            })
        };
        let big_result = EventType::TaskCompleted(TaskCompletedEvent {
            result: Some("r".repeat(51)),
            ..TaskCompletedEvent::default()
        });
        let refused = orchestrator_turn(&mut turn(vec![rewind(big_result)]), "p", 50).unwrap_err();
        assert_eq!(
            refused.message,
            "the rewound history event's result is 51 bytes; the payload limit is 50 bytes"
        );
        let bad_child =
            EventType::SubOrchestrationInstanceCreated(SubOrchestrationInstanceCreatedEvent {
                instance_id: String::new(),
                ..SubOrchestrationInstanceCreatedEvent::default()
            });
        let refused = orchestrator_turn(&mut turn(vec![rewind(bad_child)]), "p", 50).unwrap_err();
        assert_eq!(
            refused.message,
            "the sub-orchestration instance ID is empty"
        );
    }
}
