//! Replaying a recorded history against the current code, for the replay check (see `crate::replay_check`).
//!
//! The engine's own comparison runs as in a real turn (a history event that confirms an action the code did not
//! take, or took differently, is a non-determinism error). On top of it the check uses what a complete history
//! knows and a single turn does not: where every turn ended. The actions a turn decided are recorded right after
//! its new events, before the next `OrchestratorStarted`, so an action the code still has unconfirmed at the next
//! turn (or at the end of the history) is one the recorded code never took; and the recorded `ExecutionCompleted`
//! says how the code must end.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use super::events::describe;
use super::executor::Executor;
use super::state::OrchState;
use crate::errors::{ReplayError, panic_message};
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::registry::Registry;
use crate::replay_check::{MismatchKind, ReplayMismatch, describe_event, status_name};

/// Replays `events` as the past of one instance and returns the first place where the code departs from them.
pub(crate) fn first_mismatch(
    registry: &Registry,
    instance_id: &str,
    events: &[proto::HistoryEvent],
) -> Option<ReplayMismatch> {
    match catch_unwind(AssertUnwindSafe(|| run(registry, instance_id, events))) {
        Ok(result) => result,
        Err(payload) => Some(ReplayMismatch {
            kind: MismatchKind::Engine,
            event_index: None,
            event_id: None,
            event: "replay".into(),
            sequence_number: None,
            expected: "a replay without engine failure".into(),
            found: format!("replay engine failure: {}", panic_message(payload.as_ref())),
        }),
    }
}

fn run(
    registry: &Registry,
    instance_id: &str,
    events: &[proto::HistoryEvent],
) -> Option<ReplayMismatch> {
    let state = Rc::new(RefCell::new(OrchState::new(
        instance_id.to_owned(),
        registry.replay_options().maximum_timer_interval,
    )));
    let mut executor = Executor {
        registry,
        state: state.clone(),
        root: None,
        started: false,
        suspended: false,
        suspended_events: Vec::new(),
        replay_error: None,
    };
    let found = walk(&mut executor, events);
    // Tear down as the executor does: drop-time side effects of user code must not add decisions.
    state.borrow_mut().closed = true;
    if let Some(root) = executor.root.take()
        && catch_unwind(AssertUnwindSafe(move || drop(root))).is_err()
    {
        tracing::warn!("orchestrator code panicked while being dropped");
    }
    found
}

fn walk<'a>(ex: &mut Executor<'a>, events: &'a [proto::HistoryEvent]) -> Option<ReplayMismatch> {
    // A rewind rewrites the turns before it (failed activities lose their `TaskScheduled`, to be scheduled again
    // in the turn after the rewind), so turn boundaries only say something after that turn.
    let last_rewind = events
        .iter()
        .rposition(|e| matches!(e.event_type, Some(EventType::ExecutionRewound(_))));
    let boundaries_from = last_rewind.and_then(|rewind| {
        events[rewind..]
            .iter()
            .position(|e| matches!(e.event_type, Some(EventType::OrchestratorStarted(_))))
            .map(|offset| rewind + offset + 1)
    });
    let boundary_applies = |index: usize| match (last_rewind, boundaries_from) {
        (None, _) => true,
        (Some(_), Some(from)) => index >= from,
        (Some(_), None) => false,
    };
    let mut turns = 0usize;
    let mut recorded_completion = false;
    for (index, event) in events.iter().enumerate() {
        match &event.event_type {
            Some(EventType::OrchestratorStarted(_)) => {
                if turns > 0
                    && boundary_applies(index)
                    && let Some(mismatch) = unconfirmed(ex, Some((index, event)))
                {
                    return Some(mismatch);
                }
                turns += 1;
            }
            Some(EventType::ExecutionCompleted(completed)) => {
                recorded_completion = true;
                if let Some(mismatch) = completion(ex, index, event, completed) {
                    return Some(mismatch);
                }
            }
            _ => {}
        }
        ex.process(event);
        if let Some(error) = ex.replay_error.take() {
            return Some(from_replay_error(index, event, error));
        }
    }
    if boundary_applies(events.len())
        && let Some(mismatch) = unconfirmed(ex, None)
    {
        return Some(mismatch);
    }
    let st = ex.state.borrow();
    if !recorded_completion
        && st.completed
        && let Some((&id, action)) = st
            .completion_id
            .and_then(|id| st.actions.get_key_value(&id))
    {
        return Some(ReplayMismatch {
            kind: MismatchKind::Completion,
            event_index: None,
            event_id: None,
            event: "end of history".into(),
            sequence_number: Some(id),
            expected: "no completion: the recorded instance is still running".into(),
            found: describe_completion(action),
        });
    }
    None
}

/// The first action the code took that no history event confirmed, other than its completion.
fn unconfirmed(
    ex: &Executor<'_>,
    at: Option<(usize, &proto::HistoryEvent)>,
) -> Option<ReplayMismatch> {
    let st = ex.state.borrow();
    let (&id, action) = st
        .actions
        .iter()
        .find(|(id, _)| Some(**id) != st.completion_id)?;
    let (event_index, event_id, event, expected) = match at {
        Some((index, event)) => (
            Some(index),
            Some(event.event_id),
            describe_event(event),
            "nothing more in the turn before this event".to_owned(),
        ),
        None => (
            None,
            None,
            "end of history".to_owned(),
            "nothing more after the last recorded turn".to_owned(),
        ),
    };
    Some(ReplayMismatch {
        kind: MismatchKind::UnexpectedAction,
        event_index,
        event_id,
        event,
        sequence_number: Some(id),
        expected,
        found: action
            .orchestrator_action_type
            .as_ref()
            .map(describe)
            .unwrap_or_else(|| "an empty action".into()),
    })
}

/// The recorded end against the code's: the code must have completed, with the same status, and confirmed
/// everything else it decided.
fn completion(
    ex: &Executor<'_>,
    index: usize,
    event: &proto::HistoryEvent,
    completed: &proto::ExecutionCompletedEvent,
) -> Option<ReplayMismatch> {
    let st = ex.state.borrow();
    let expected = format!(
        "ExecutionCompleted ({})",
        status_name(completed.orchestration_status)
    );
    let sequence = (event.event_id >= 0).then_some(event.event_id);
    let mismatch = |sequence_number, found| ReplayMismatch {
        kind: MismatchKind::Completion,
        event_index: Some(index),
        event_id: Some(event.event_id),
        event: describe_event(event),
        sequence_number,
        expected: expected.clone(),
        found,
    };
    if let Some((&id, action)) = st
        .actions
        .iter()
        .find(|(id, _)| Some(**id) != st.completion_id)
    {
        let found = action
            .orchestrator_action_type
            .as_ref()
            .map(describe)
            .unwrap_or_else(|| "an empty action".into());
        return Some(mismatch(Some(id), found));
    }
    if !st.completed || st.completion_status.is_none() {
        return Some(mismatch(
            sequence,
            "no completion: the orchestrator is still waiting".into(),
        ));
    }
    let action = st.completion_id.and_then(|id| st.actions.get(&id));
    let ours = st.completion_status.map(|s| s as i32);
    if ours != Some(completed.orchestration_status) {
        let found = action.map_or_else(|| "another completion".into(), describe_completion);
        return Some(mismatch(st.completion_id.or(sequence), found));
    }
    None
}

fn describe_completion(action: &proto::OrchestratorAction) -> String {
    match &action.orchestrator_action_type {
        Some(OrchestratorActionType::CompleteOrchestration(c)) => {
            let status = status_name(c.orchestration_status);
            match &c.failure_details {
                Some(details) => format!(
                    "CompleteOrchestration ({status}: {}: {})",
                    details.error_type, details.error_message
                ),
                None => format!("CompleteOrchestration ({status})"),
            }
        }
        Some(other) => describe(other),
        None => "an empty action".into(),
    }
}

fn from_replay_error(
    index: usize,
    event: &proto::HistoryEvent,
    error: ReplayError,
) -> ReplayMismatch {
    let mut mismatch = ReplayMismatch {
        kind: MismatchKind::InvalidHistory,
        event_index: Some(index),
        event_id: Some(event.event_id),
        event: describe_event(event),
        sequence_number: None,
        expected: String::new(),
        found: String::new(),
    };
    match error {
        ReplayError::NonDeterminism {
            sequence_number,
            expected,
            found,
        } => {
            mismatch.kind = MismatchKind::NonDeterminism;
            mismatch.sequence_number = Some(sequence_number);
            mismatch.expected = expected;
            mismatch.found = found;
        }
        ReplayError::OrchestratorNotFound(name) => {
            mismatch.kind = MismatchKind::OrchestratorNotFound;
            mismatch.expected = format!("an orchestrator named '{name}'");
            mismatch.found = "none is registered".into();
        }
        ReplayError::Input(message) => {
            mismatch.kind = MismatchKind::Input;
            mismatch.expected = "an input the orchestrator can decode".into();
            mismatch.found = message;
        }
        ReplayError::Panic(message) => {
            mismatch.kind = MismatchKind::Panic;
            mismatch.expected = "orchestrator code that runs".into();
            mismatch.found = format!("a panic: {message}");
        }
        other => {
            mismatch.expected = "a history the engine can replay".into();
            mismatch.found = other.to_string();
        }
    }
    mismatch
}
