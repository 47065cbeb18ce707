//! Rewinding a failed instance.
//!
//! A backend asks for a rewind by sending `[OrchestratorStarted, ExecutionRewound]` to an instance whose history ends
//! in its `ExecutionCompleted`. The orchestrator code does not run for that turn: the engine answers with one
//! `RewindOrchestration` action carrying the history the instance should have had if the failed work had never
//! finished, and the backend installs it and replays. On that replay the failed activities are scheduled again
//! (their `TaskScheduled` is gone), while failed sub-orchestrations stay created and are rewound by the backend, so
//! the parent simply waits for their new outcome. Everything that succeeded is kept and does not run again.
//!
//! This is the contract of the Durable Task SDKs' workers (Python 1.12, .NET), which backends such as the
//! Durable Task Scheduler and the SDKs' reference servers rely on; the rewritten history must stay as they expect.
//!
//! Not rewound, as in those SDKs: the durable timers between the attempts of an activity called with a retry
//! policy stay in history, so a rewound retried call may not line up with them on replay.

use std::collections::HashSet;

use uuid::Uuid;

use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::time_util;

/// The answer to a rewind request, or `None` when `request` is not one and replays as usual.
///
/// An `ExecutionRewound` only asks for a rewrite when the past history holds the execution's end. Without it the
/// event is either the marker the rewritten history keeps (the replay after the rewrite) or a request for an
/// instance that is still running; both replay normally, where the event has no effect.
pub(crate) fn respond(
    instance_id: &str,
    request: &proto::OrchestratorRequest,
) -> Option<proto::OrchestratorResponse> {
    let rewound = request
        .new_events
        .iter()
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionRewound(r)) => Some(r),
            _ => None,
        })?;
    let completed = request
        .past_events
        .iter()
        .rev()
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionCompleted(c)) => Some(c),
            _ => None,
        })?;
    let action = if completed.orchestration_status == proto::OrchestrationStatus::Failed as i32 {
        tracing::info!(instance_id, "rewinding the failed orchestration");
        OrchestratorActionType::RewindOrchestration(proto::RewindOrchestrationAction {
            new_history: rewound_history(instance_id, request, rewound),
        })
    } else {
        // Only a failure can be undone. Restating the recorded outcome leaves the instance exactly as it was,
        // whereas answering nothing would leave it marked running with nothing to run.
        tracing::warn!(
            instance_id,
            status = status_name(completed.orchestration_status),
            "ignoring a rewind request for an orchestration that did not fail"
        );
        OrchestratorActionType::CompleteOrchestration(proto::CompleteOrchestrationAction {
            orchestration_status: completed.orchestration_status,
            result: completed.result.clone(),
            failure_details: completed.failure_details.clone(),
            ..Default::default()
        })
    };
    Some(proto::OrchestratorResponse {
        instance_id: instance_id.to_string(),
        actions: vec![proto::OrchestratorAction {
            id: -1,
            orchestrator_action_type: Some(action),
        }],
        ..Default::default()
    })
}

fn status_name(status: i32) -> &'static str {
    proto::OrchestrationStatus::try_from(status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN")
}

/// The history with the failure undone: past then new events, without the failed results, the `TaskScheduled` of
/// failed activities and the execution's end, under a new execution id.
fn rewound_history(
    instance_id: &str,
    request: &proto::OrchestratorRequest,
    rewound: &proto::ExecutionRewoundEvent,
) -> Vec<proto::HistoryEvent> {
    let all = || request.past_events.iter().chain(&request.new_events);
    let failed_activities: HashSet<i32> = all()
        .filter_map(|e| match &e.event_type {
            Some(EventType::TaskFailed(f)) => Some(f.task_scheduled_id),
            _ => None,
        })
        .collect();
    let execution_id = new_execution_id(instance_id, request);
    // A sub-orchestration rewound along with its parent must report to the parent's new execution.
    let parent_execution_id = rewound
        .parent_execution_id
        .as_ref()
        .filter(|id| !id.is_empty());

    let mut history = Vec::with_capacity(request.past_events.len() + request.new_events.len());
    for event in all() {
        match &event.event_type {
            Some(
                EventType::TaskFailed(_)
                | EventType::SubOrchestrationInstanceFailed(_)
                | EventType::ExecutionCompleted(_),
            ) => {}
            Some(EventType::TaskScheduled(_)) if failed_activities.contains(&event.event_id) => {}
            Some(EventType::ExecutionStarted(started)) => {
                let mut started = started.clone();
                started
                    .orchestration_instance
                    .get_or_insert_with(|| proto::OrchestrationInstance {
                        instance_id: instance_id.to_string(),
                        execution_id: None,
                    })
                    .execution_id = Some(execution_id.clone());
                if let (Some(parent), Some(id)) =
                    (started.parent_instance.as_mut(), parent_execution_id)
                {
                    parent
                        .orchestration_instance
                        .get_or_insert_with(Default::default)
                        .execution_id = Some(id.clone());
                }
                // The backend may start a new trace for the rewound run (the .NET worker honours this too).
                if let Some(trace) = &rewound.parent_trace_context {
                    started.parent_trace_context = Some(trace.clone());
                }
                history.push(proto::HistoryEvent {
                    event_type: Some(EventType::ExecutionStarted(started)),
                    ..event.clone()
                });
            }
            _ => history.push(event.clone()),
        }
    }
    history
}

/// A fresh execution id, derived from what the request carries so that the same request always gets the same answer
/// (the engine is deterministic), yet different for every rewind: each one comes at a new time, from a new
/// execution.
fn new_execution_id(instance_id: &str, request: &proto::OrchestratorRequest) -> String {
    let previous = request
        .past_events
        .iter()
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => s
                .orchestration_instance
                .as_ref()
                .and_then(|i| i.execution_id.clone()),
            _ => None,
        })
        .or_else(|| request.execution_id.clone())
        .unwrap_or_default();
    let when = request
        .new_events
        .iter()
        .find_map(|e| e.timestamp.as_ref().and_then(time_util::from_timestamp))
        .map(time_util::format_for_guid)
        .unwrap_or_default();
    let name = format!("rewind_{instance_id}_{previous}_{when}");
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
        .simple()
        .to_string()
}
