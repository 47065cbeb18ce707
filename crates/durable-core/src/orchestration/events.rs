//! What each history event does to the replay state.

use super::entity_events::{
    entity_result, event_sent, legacy_entity_response, lock_granted, unlock_sent,
};
use super::executor::Executor;
use super::state::{BufferedEvent, OpenTask, OrchState, Outcome, ParentInfo};
use crate::errors::{FailureDetails, ReplayError, TaskError, TaskKind};
use crate::failure_envelope;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::proto::send_entity_message_action::EntityMessageType;
use crate::time_util;

pub(crate) fn apply(ex: &mut Executor<'_>, event: &proto::HistoryEvent) -> Result<(), ReplayError> {
    let Some(event_type) = &event.event_type else {
        tracing::debug!(
            event_id = event.event_id,
            "ignoring a history event without a type"
        );
        return Ok(());
    };
    let id = event.event_id;
    match event_type {
        EventType::OrchestratorStarted(_) => {
            if let Some(at) = event.timestamp.as_ref().and_then(time_util::from_timestamp) {
                ex.state.borrow_mut().now = at;
            }
            Ok(())
        }
        EventType::ExecutionStarted(started) => execution_started(ex, started),
        EventType::ExecutionTerminated(terminated) => {
            let mut st = ex.state.borrow_mut();
            if !st.is_replaying {
                tracing::info!("orchestration terminated");
            }
            st.complete(
                proto::OrchestrationStatus::Terminated,
                terminated.input.clone(),
                None,
            );
            Ok(())
        }
        EventType::TaskScheduled(e) => confirm(
            ex,
            id,
            || format!("TaskScheduled '{}'", e.name),
            |a| matches!(a, OrchestratorActionType::ScheduleTask(t) if t.name == e.name),
        ),
        EventType::TaskCompleted(e) => {
            let failure = e.result.as_deref().and_then(failure_envelope::decode);
            let outcome = match failure {
                Some(details) => Err(FailureDetails::from(&details)),
                None => Ok(e.result.clone()),
            };
            complete_task(ex, e.task_scheduled_id, TaskKind::Activity, outcome);
            Ok(())
        }
        EventType::TaskFailed(e) => {
            complete_task(
                ex,
                e.task_scheduled_id,
                TaskKind::Activity,
                Err(details_of(&e.failure_details)),
            );
            Ok(())
        }
        EventType::SubOrchestrationInstanceCreated(e) => confirm(
            ex,
            id,
            || format!("SubOrchestrationInstanceCreated '{}'", e.name),
            |a| matches!(a, OrchestratorActionType::CreateSubOrchestration(s) if s.name == e.name),
        ),
        EventType::SubOrchestrationInstanceCompleted(e) => {
            complete_task(
                ex,
                e.task_scheduled_id,
                TaskKind::SubOrchestration,
                Ok(e.result.clone()),
            );
            Ok(())
        }
        EventType::SubOrchestrationInstanceFailed(e) => {
            let details = details_of(&e.failure_details);
            complete_task(
                ex,
                e.task_scheduled_id,
                TaskKind::SubOrchestration,
                Err(details),
            );
            Ok(())
        }
        EventType::TimerCreated(_) => confirm(
            ex,
            id,
            || "TimerCreated".into(),
            |a| matches!(a, OrchestratorActionType::CreateTimer(_)),
        ),
        EventType::TimerFired(e) => {
            timer_fired(&mut ex.state.borrow_mut(), e);
            Ok(())
        }
        EventType::EventSent(e) => event_sent(ex, id, e),
        EventType::EventRaised(e) => {
            event_raised(&mut ex.state.borrow_mut(), e);
            Ok(())
        }
        EventType::ExecutionSuspended(_) => {
            if !ex.state.borrow().is_replaying {
                tracing::info!("orchestration suspended");
            }
            ex.suspended = true;
            Ok(())
        }
        EventType::EntityOperationCalled(e) => {
            let what = || format!("EntityOperationCalled '{}'", e.operation);
            let action = take_action(ex, id, what, |a| {
                matches!(
                    entity_message(a),
                    Some(EntityMessageType::EntityOperationCalled(c))
                        if c.operation == e.operation && same_target(&c.target_instance_id, &e.target_instance_id)
                )
            })?;
            if let Some(EntityMessageType::EntityOperationCalled(ours)) = action
                .as_ref()
                .and_then(|a| a.orchestrator_action_type.as_ref())
                .and_then(entity_message)
            {
                remap(
                    &mut ex.state.borrow_mut().entity_requests,
                    &ours.request_id,
                    &e.request_id,
                );
            }
            Ok(())
        }
        EventType::EntityOperationSignaled(e) => confirm(
            ex,
            id,
            || format!("EntityOperationSignaled '{}'", e.operation),
            |a| {
                matches!(
                    entity_message(a),
                    Some(EntityMessageType::EntityOperationSignaled(s))
                        if s.operation == e.operation && same_target(&s.target_instance_id, &e.target_instance_id)
                )
            },
        ),
        EventType::EntityLockRequested(e) => {
            let action = take_action(
                ex,
                id,
                || format!("EntityLockRequested on [{}]", e.lock_set.join(", ")),
                |a| {
                    matches!(
                        entity_message(a),
                        Some(EntityMessageType::EntityLockRequested(l)) if same_lock_set(&l.lock_set, &e.lock_set)
                    )
                },
            )?;
            if let Some(EntityMessageType::EntityLockRequested(ours)) = action
                .as_ref()
                .and_then(|a| a.orchestrator_action_type.as_ref())
                .and_then(entity_message)
            {
                let mut st = ex.state.borrow_mut();
                remap(
                    &mut st.lock_requests,
                    &ours.critical_section_id,
                    &e.critical_section_id,
                );
                st.rename_critical_section(&ours.critical_section_id, &e.critical_section_id);
            }
            Ok(())
        }
        EventType::EntityUnlockSent(e) => unlock_sent(ex, id, e),
        EventType::EntityOperationCompleted(e) => {
            let mut st = ex.state.borrow_mut();
            if let Some(seq) = st.entity_requests.remove(&e.request_id) {
                entity_result(&mut st, seq, Ok(e.output.clone()));
            } else {
                ignored(&st, "EntityOperationCompleted", &e.request_id);
            }
            Ok(())
        }
        EventType::EntityOperationFailed(e) => {
            let mut st = ex.state.borrow_mut();
            if let Some(seq) = st.entity_requests.remove(&e.request_id) {
                entity_result(&mut st, seq, Err(details_of(&e.failure_details)));
            } else {
                ignored(&st, "EntityOperationFailed", &e.request_id);
            }
            Ok(())
        }
        EventType::EntityLockGranted(e) => {
            let mut st = ex.state.borrow_mut();
            lock_granted(&mut st, &e.critical_section_id);
            Ok(())
        }
        // Resumption is handled by the executor, and a rewind request before replay (see `rewind`); in history, an
        // ExecutionRewound only records that the instance was rewound. The rest are bookkeeping.
        EventType::ExecutionResumed(_)
        | EventType::OrchestratorCompleted(_)
        | EventType::ExecutionCompleted(_)
        | EventType::GenericEvent(_)
        | EventType::HistoryState(_)
        | EventType::ContinueAsNew(_)
        | EventType::ExecutionRewound(_) => Ok(()),
    }
}

fn execution_started(
    ex: &mut Executor<'_>,
    started: &proto::ExecutionStartedEvent,
) -> Result<(), ReplayError> {
    if ex.started {
        tracing::warn!("ignoring a second ExecutionStarted event");
        return Ok(());
    }
    ex.started = true;
    {
        let mut st = ex.state.borrow_mut();
        st.name.clone_from(&started.name);
        st.version.clone_from(&started.version);
        st.input.clone_from(&started.input);
        if let Some(instance) = &started.orchestration_instance {
            if st.instance_id.is_empty() {
                st.instance_id.clone_from(&instance.instance_id);
            }
            if instance.execution_id.is_some() {
                st.execution_id.clone_from(&instance.execution_id);
            }
        }
        st.parent = started.parent_instance.as_ref().and_then(|p| {
            let instance = p.orchestration_instance.as_ref()?;
            Some(ParentInfo {
                instance_id: instance.instance_id.clone(),
                execution_id: instance.execution_id.clone(),
                name: p.name.clone(),
                version: p.version.clone(),
                task_scheduled_id: p.task_scheduled_id,
            })
        });
    }
    ex.start(started.input.as_deref(), &started.name)
}

fn details_of(details: &Option<proto::TaskFailureDetails>) -> FailureDetails {
    details
        .as_ref()
        .map(FailureDetails::from)
        .unwrap_or_else(|| {
            FailureDetails::new("UnknownError", "the task failed without failure details")
        })
}

/// Entity ids compare by their canonical form; a history event without a target (some backends omit it) matches.
fn same_target(ours: &Option<String>, recorded: &Option<String>) -> bool {
    match (ours, recorded) {
        (Some(a), Some(b)) => same_entity(a, b),
        _ => true,
    }
}

fn same_entity(a: &str, b: &str) -> bool {
    match (a.parse::<crate::EntityId>(), b.parse::<crate::EntityId>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The lock set is what a lock request is "named" by; a history event without one (some backends omit it) matches.
fn same_lock_set(ours: &[String], recorded: &[String]) -> bool {
    recorded.is_empty()
        || ours.len() == recorded.len() && ours.iter().zip(recorded).all(|(a, b)| same_entity(a, b))
}

pub(super) fn entity_message(action: &OrchestratorActionType) -> Option<&EntityMessageType> {
    match action {
        OrchestratorActionType::SendEntityMessage(m) => m.entity_message_type.as_ref(),
        _ => None,
    }
}

pub(super) fn describe(action: &OrchestratorActionType) -> String {
    match action {
        OrchestratorActionType::ScheduleTask(t) => format!("ScheduleTask '{}'", t.name),
        OrchestratorActionType::CreateSubOrchestration(s) => {
            format!("CreateSubOrchestration '{}'", s.name)
        }
        OrchestratorActionType::CreateTimer(_) => "CreateTimer".into(),
        OrchestratorActionType::SendEvent(e) => format!(
            "SendEvent '{}' to '{}'",
            e.name,
            e.instance
                .as_ref()
                .map(|i| i.instance_id.as_str())
                .unwrap_or_default()
        ),
        OrchestratorActionType::CompleteOrchestration(_) => "CompleteOrchestration".into(),
        OrchestratorActionType::TerminateOrchestration(_) => "TerminateOrchestration".into(),
        OrchestratorActionType::RewindOrchestration(_) => "RewindOrchestration".into(),
        OrchestratorActionType::SendEntityMessage(m) => match &m.entity_message_type {
            Some(EntityMessageType::EntityOperationCalled(c)) => {
                format!("EntityOperationCalled '{}'", c.operation)
            }
            Some(EntityMessageType::EntityOperationSignaled(s)) => {
                format!("EntityOperationSignaled '{}'", s.operation)
            }
            Some(EntityMessageType::EntityLockRequested(l)) => {
                format!("EntityLockRequested on [{}]", l.lock_set.join(", "))
            }
            Some(EntityMessageType::EntityUnlockSent(_)) => "EntityUnlockSent".into(),
            None => "SendEntityMessage".into(),
        },
    }
}

/// Removes the action a "scheduled" event confirms. `Ok(None)` means the execution is already over and the event
/// is ignored.
pub(super) fn take_action(
    ex: &mut Executor<'_>,
    id: i32,
    expected: impl FnOnce() -> String,
    matches: impl FnOnce(&OrchestratorActionType) -> bool,
) -> Result<Option<proto::OrchestratorAction>, ReplayError> {
    let mut st = ex.state.borrow_mut();
    if st.completed && !st.actions.contains_key(&id) {
        return Ok(None);
    }
    let Some(action) = st.actions.remove(&id) else {
        return Err(ReplayError::NonDeterminism {
            sequence_number: id,
            expected: expected(),
            found: "no action with this sequence number".into(),
        });
    };
    let ok = action
        .orchestrator_action_type
        .as_ref()
        .is_some_and(matches);
    if ok {
        Ok(Some(action))
    } else {
        Err(ReplayError::NonDeterminism {
            sequence_number: id,
            expected: expected(),
            found: action
                .orchestrator_action_type
                .as_ref()
                .map(describe)
                .unwrap_or_else(|| "an empty action".into()),
        })
    }
}

fn confirm(
    ex: &mut Executor<'_>,
    id: i32,
    expected: impl FnOnce() -> String,
    matches: impl FnOnce(&OrchestratorActionType) -> bool,
) -> Result<(), ReplayError> {
    take_action(ex, id, expected, matches).map(|_| ())
}

pub(super) fn remap(map: &mut std::collections::HashMap<String, i32>, ours: &str, theirs: &str) {
    if ours != theirs
        && !theirs.is_empty()
        && let Some(seq) = map.remove(ours)
    {
        map.insert(theirs.to_string(), seq);
    }
}

pub(super) fn ignored(st: &OrchState, what: &str, id: &str) {
    if !st.is_replaying {
        tracing::warn!("ignoring {what} for unknown id {id}");
    }
}

fn complete_task(
    ex: &mut Executor<'_>,
    seq: i32,
    kind: TaskKind,
    outcome: Result<Option<String>, FailureDetails>,
) {
    let mut st = ex.state.borrow_mut();
    let (handle, name) = match st.open.remove(&seq) {
        Some(OpenTask::Activity { handle, name }) if kind == TaskKind::Activity => (handle, name),
        Some(OpenTask::SubOrchestration { handle, name }) if kind == TaskKind::SubOrchestration => {
            (handle, name)
        }
        Some(other) => {
            st.open.insert(seq, other);
            ignored(&st, &format!("a {kind} result"), &seq.to_string());
            return;
        }
        None => {
            ignored(&st, &format!("a {kind} result"), &seq.to_string());
            return;
        }
    };
    let outcome = match outcome {
        Ok(result) => Outcome::Value(result),
        Err(details) => Outcome::Failed(TaskError::Failed {
            kind,
            name,
            details,
        }),
    };
    st.resolve(handle, outcome);
}

fn timer_fired(st: &mut OrchState, fired: &proto::TimerFiredEvent) {
    let Some(task) = st.open.remove(&fired.timer_id) else {
        ignored(st, "TimerFired", &fired.timer_id.to_string());
        return;
    };
    let OpenTask::Timer {
        handle,
        final_fire_at,
        waiter,
    } = task
    else {
        st.open.insert(fired.timer_id, task);
        ignored(st, "TimerFired", &fired.timer_id.to_string());
        return;
    };
    let fired_at = fired
        .fire_at
        .as_ref()
        .and_then(time_util::from_timestamp)
        .unwrap_or(final_fire_at);
    // The timeout of a wait that already got its event guards nothing any more: finish it instead of scheduling
    // further slices, which would only keep a dead timer alive (and grow history) for the rest of a long timeout.
    let guards_nothing = waiter
        .as_ref()
        .is_some_and(|(waiting, _)| st.is_resolved(*waiting));
    if fired_at < final_fire_at && !st.completed && !guards_nothing {
        // An intermediate slice of a long timer: schedule the next one under a new sequence number.
        let next = st.next_timer_fire_at(fired_at, final_fire_at);
        let id = st.push_action(OrchestratorActionType::CreateTimer(
            proto::CreateTimerAction {
                fire_at: Some(time_util::to_timestamp(next)),
            },
        ));
        st.open.insert(
            id,
            OpenTask::Timer {
                handle,
                final_fire_at,
                waiter,
            },
        );
        return;
    }
    if let Some((waiting, name)) = waiter
        && !st.is_resolved(waiting)
    {
        if let Some(queue) = st.waiters.get_mut(&name.to_lowercase()) {
            queue.retain(|h| *h != waiting);
        }
        st.resolve(waiting, Outcome::Failed(TaskError::Timeout { name }));
    }
    st.resolve(handle, Outcome::Value(None));
}

fn event_raised(st: &mut OrchState, raised: &proto::EventRaisedEvent) {
    // Under the Functions host, entity responses and lock grants arrive as events named by the request id.
    if let Some(seq) = st.entity_requests.remove(&raised.name) {
        legacy_entity_response(st, seq, raised.input.as_deref());
        return;
    }
    if st.lock_requests.contains_key(&raised.name) {
        lock_granted(st, &raised.name);
        return;
    }
    let key = raised.name.to_lowercase();
    if !st.completed {
        let waiting = st.waiters.get_mut(&key).and_then(|q| q.pop_front());
        if st.waiters.get(&key).is_some_and(|q| q.is_empty()) {
            st.waiters.remove(&key);
        }
        if let Some(handle) = waiting {
            st.resolve(handle, Outcome::Value(raised.input.clone()));
            return;
        }
    }
    let arrival = st.next_arrival();
    st.buffered
        .entry(key)
        .or_default()
        .push_back(BufferedEvent {
            arrival,
            name: raised.name.clone(),
            input: raised.input.clone(),
        });
}
