//! Entity-related history events: results and lock grants in both history shapes (entity events from the Durable
//! Task Scheduler, `EventSent`/`EventRaised` from the Functions host), and unlock confirmations.

use super::events::{describe, entity_message, ignored, remap, take_action};
use super::executor::Executor;
use super::state::{OpenTask, OrchState, Outcome};
use crate::entity_id::EntityId;
use crate::errors::{FailureDetails, ReplayError, TaskError, TaskKind};
use crate::proto;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::proto::send_entity_message_action::EntityMessageType;

/// A legacy `ResponseMessage`: `{"result": "<json text>"}` on success; `exceptionType` or `failureDetails` on failure.
pub(super) fn legacy_entity_response(st: &mut OrchState, seq: i32, input: Option<&str>) {
    let response: serde_json::Value = input
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(serde_json::Value::Null);
    let failed = response.get("exceptionType").is_some()
        || response
            .get("failureDetails")
            .is_some_and(serde_json::Value::is_object);
    let result_text = match response.get("result") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    if !failed {
        entity_result(st, seq, Ok(result_text));
        return;
    }
    let details = match response.get("failureDetails") {
        Some(fd) if fd.is_object() => core_failure_details(fd),
        _ => {
            let message = result_text
                .as_deref()
                .map(|t| match serde_json::from_str::<serde_json::Value>(t) {
                    Ok(serde_json::Value::String(s)) => s,
                    _ => t.to_string(),
                })
                .unwrap_or_default();
            let error_type = response
                .get("exceptionType")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            FailureDetails::new(error_type, message)
        }
    };
    entity_result(st, seq, Err(details));
}

/// DurableTask.Core serializes failure details with PascalCase keys.
fn core_failure_details(value: &serde_json::Value) -> FailureDetails {
    let text = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut details = FailureDetails::new(text("ErrorType"), text("ErrorMessage"));
    details.stack_trace = value
        .get("StackTrace")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    details.non_retriable = value
        .get("IsNonRetriable")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    details.inner = value
        .get("InnerFailure")
        .filter(|v| v.is_object())
        .map(|v| Box::new(core_failure_details(v)));
    details
}

pub(super) fn entity_result(
    st: &mut OrchState,
    seq: i32,
    outcome: Result<Option<String>, FailureDetails>,
) {
    let Some(task) = st.open.remove(&seq) else {
        ignored(st, "an entity result", &seq.to_string());
        return;
    };
    let OpenTask::EntityCall {
        handle,
        entity,
        operation,
    } = task
    else {
        st.open.insert(seq, task);
        ignored(st, "an entity result", &seq.to_string());
        return;
    };
    recover_lock(st, &entity);
    let outcome = match outcome {
        Ok(output) => Outcome::Value(output),
        Err(details) => Outcome::Failed(TaskError::Failed {
            kind: TaskKind::Entity,
            name: format!("{operation} on {entity}"),
            details,
        }),
    };
    st.resolve(handle, outcome);
}

fn recover_lock(st: &mut OrchState, entity: &EntityId) {
    if let Some(section) = st.critical_section.as_mut()
        && section.locks.contains(entity)
        && !section.available.contains(entity)
    {
        section.available.push(entity.clone());
    }
}

pub(super) fn lock_granted(st: &mut OrchState, section_id: &str) {
    let Some(seq) = st.lock_requests.remove(section_id) else {
        ignored(st, "EntityLockGranted", section_id);
        return;
    };
    let Some(OpenTask::Lock { handle }) = st.open.remove(&seq) else {
        ignored(st, "EntityLockGranted", section_id);
        return;
    };
    st.grant_critical_section(section_id);
    st.resolve(handle, Outcome::Locked);
}

/// Confirms an unlock. The usual shape carries the action's sequence number, which is checked like any other
/// confirmation; some backends record unlocks without it, and those are matched by critical section and target.
pub(super) fn unlock_sent(
    ex: &mut Executor<'_>,
    id: i32,
    unlock: &proto::EntityUnlockSentEvent,
) -> Result<(), ReplayError> {
    let expected = || {
        format!(
            "EntityUnlockSent to '{}'",
            unlock.target_instance_id.as_deref().unwrap_or_default()
        )
    };
    let is_unlock = |a: &OrchestratorActionType| {
        matches!(
            entity_message(a),
            Some(EntityMessageType::EntityUnlockSent(_))
        )
    };
    if id >= 0 && ex.state.borrow().actions.contains_key(&id) {
        return take_action(ex, id, expected, is_unlock).map(|_| ());
    }
    let mut st = ex.state.borrow_mut();
    let target = unlock.target_instance_id.as_deref();
    let found = st.actions.iter().find_map(|(seq, a)| {
        match a.orchestrator_action_type.as_ref().and_then(entity_message) {
            Some(EntityMessageType::EntityUnlockSent(u))
                if u.critical_section_id == unlock.critical_section_id
                    && (target.is_none() || u.target_instance_id.as_deref() == target) =>
            {
                Some(*seq)
            }
            _ => None,
        }
    });
    if let Some(seq) = found {
        st.actions.remove(&seq);
        return Ok(());
    }
    drop(st);
    if id >= 0 {
        // History says the code released a lock at this sequence number, and it did nothing of the kind.
        return take_action(ex, id, expected, is_unlock).map(|_| ());
    }
    ignored(
        &ex.state.borrow(),
        "EntityUnlockSent",
        &unlock.critical_section_id,
    );
    Ok(())
}

pub(super) fn event_sent(
    ex: &mut Executor<'_>,
    id: i32,
    sent: &proto::EventSentEvent,
) -> Result<(), ReplayError> {
    let expected = || format!("EventSent '{}' to '{}'", sent.name, sent.instance_id);
    let Some(action) = take_action(ex, id, expected, |a| {
        matches!(
            a,
            OrchestratorActionType::SendEvent(_) | OrchestratorActionType::SendEntityMessage(_)
        )
    })?
    else {
        return Ok(());
    };
    let mismatch = |found: String| ReplayError::NonDeterminism {
        sequence_number: id,
        expected: expected(),
        found,
    };
    match action.orchestrator_action_type.as_ref() {
        Some(OrchestratorActionType::SendEvent(e)) => {
            let target = e
                .instance
                .as_ref()
                .map(|i| i.instance_id.as_str())
                .unwrap_or_default();
            if target != sent.instance_id || e.name.to_lowercase() != sent.name.to_lowercase() {
                return Err(mismatch(format!("SendEvent '{}' to '{}'", e.name, target)));
            }
            Ok(())
        }
        Some(OrchestratorActionType::SendEntityMessage(m)) => {
            // The Functions host turns entity messages into EventSent; the input's "id" is the request id that the
            // response event will be named by.
            let (target, our_id, is_lock) = match &m.entity_message_type {
                Some(EntityMessageType::EntityOperationCalled(c)) => (
                    c.target_instance_id.clone(),
                    Some(c.request_id.clone()),
                    false,
                ),
                Some(EntityMessageType::EntityOperationSignaled(s)) => {
                    (s.target_instance_id.clone(), None, false)
                }
                Some(EntityMessageType::EntityLockRequested(l)) => (
                    usize::try_from(l.position)
                        .ok()
                        .and_then(|p| l.lock_set.get(p))
                        .cloned(),
                    Some(l.critical_section_id.clone()),
                    true,
                ),
                Some(EntityMessageType::EntityUnlockSent(u)) => {
                    (u.target_instance_id.clone(), None, false)
                }
                None => (None, None, false),
            };
            if target.as_deref() != Some(sent.instance_id.as_str()) {
                let found = action
                    .orchestrator_action_type
                    .as_ref()
                    .map(describe)
                    .unwrap_or_default();
                return Err(mismatch(format!(
                    "{found} to '{}'",
                    target.unwrap_or_default()
                )));
            }
            if let Some(ours) = our_id {
                let theirs = sent
                    .input
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                    .and_then(|v| {
                        v.get("id")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_string)
                    });
                if let Some(theirs) = theirs {
                    let mut st = ex.state.borrow_mut();
                    if is_lock {
                        remap(&mut st.lock_requests, &ours, &theirs);
                        st.rename_critical_section(&ours, &theirs);
                    } else {
                        remap(&mut st.entity_requests, &ours, &theirs);
                    }
                }
            }
            Ok(())
        }
        _ => Err(mismatch("a different action".into())),
    }
}
