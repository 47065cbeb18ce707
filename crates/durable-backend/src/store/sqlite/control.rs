//! Client operations on existing instances: events, termination, suspension, restart and rewind.

use durable_proto::history_event::EventType;
use durable_proto::{
    EventRaisedEvent, ExecutionResumedEvent, ExecutionRewoundEvent, ExecutionSuspendedEvent,
    ExecutionTerminatedEvent, OrchestrationStatus, RaiseEventRequest, RestartInstanceRequest,
    RewindInstanceRequest, TerminateRequest,
};
use rusqlite::Connection;

use super::instances::{
    InstanceRow, NewInstance, PRIORITY_FIRST, PRIORITY_NORMAL, create, enqueue, load,
};
use crate::codec::{event, new_id};
use crate::error::StoreError;

fn require(c: &Connection, hub: &str, id: &str) -> Result<InstanceRow, StoreError> {
    load(c, hub, id)?
        .ok_or_else(|| StoreError::NotFound(format!("no orchestration instance with ID '{id}'")))
}

pub(super) fn raise_event(
    c: &Connection,
    hub: &str,
    request: RaiseEventRequest,
    now: i64,
) -> Result<(), StoreError> {
    let row = require(c, hub, &request.instance_id)?;
    if row.is_terminal() {
        // Like the scheduler: an event for a finished instance is accepted and dropped.
        return Ok(());
    }
    let raised = event(
        -1,
        now,
        EventType::EventRaised(EventRaisedEvent {
            name: request.name,
            input: request.input,
        }),
    );
    enqueue(
        c,
        hub,
        &row.instance_id,
        PRIORITY_NORMAL,
        now,
        Some(&raised),
    )
}

pub(super) fn terminate(
    c: &Connection,
    hub: &str,
    request: TerminateRequest,
    now: i64,
) -> Result<(), StoreError> {
    let row = require(c, hub, &request.instance_id)?;
    terminate_row(c, hub, row, request.output, request.recursive, now)
}

pub(super) fn terminate_row(
    c: &Connection,
    hub: &str,
    row: InstanceRow,
    output: Option<String>,
    recursive: bool,
    now: i64,
) -> Result<(), StoreError> {
    if row.is_terminal() {
        return Ok(());
    }
    let mut targets = if recursive {
        super::relations::descendants(c, hub, &row.instance_id, super::relations::Children::Live)?
    } else {
        Vec::new()
    };
    // Deepest first, as the recursion used to: children end before the parents they report to.
    targets.reverse();
    targets.push(row);
    for target in targets {
        // An earlier step of this walk (a never-run child reporting to its parent) may have changed the row.
        let Some(current) = load(c, hub, &target.instance_id)? else {
            continue;
        };
        terminate_one(c, hub, current, output.clone(), recursive, now)?;
    }
    Ok(())
}

fn terminate_one(
    c: &Connection,
    hub: &str,
    mut row: InstanceRow,
    output: Option<String>,
    recursive: bool,
    now: i64,
) -> Result<(), StoreError> {
    if row.is_terminal() {
        return Ok(());
    }
    let never_ran = row.status == OrchestrationStatus::Pending as i32
        && !super::leases::orchestration_held(hub, &row.instance_id);
    if never_ran {
        // Nothing has run yet, so there is no orchestrator to tell: finish it here.
        c.prepare_cached("DELETE FROM inbox WHERE hub = ?1 AND instance_id = ?2")?
            .execute((hub, &row.instance_id))?;
        row.status = OrchestrationStatus::Terminated as i32;
        row.output = output;
        row.completed_at = Some(now);
        row.updated_at = now;
        row.save(c, hub)?;
        return super::orchestration::notify_parent(c, hub, &row, now);
    }
    let terminated = event(
        -1,
        now,
        EventType::ExecutionTerminated(ExecutionTerminatedEvent {
            input: output,
            recurse: recursive,
        }),
    );
    enqueue(
        c,
        hub,
        &row.instance_id,
        PRIORITY_NORMAL,
        now,
        Some(&terminated),
    )
}

pub(super) fn suspend_resume(
    c: &Connection,
    hub: &str,
    id: &str,
    reason: Option<String>,
    suspend: bool,
    now: i64,
) -> Result<(), StoreError> {
    let row = require(c, hub, id)?;
    if row.is_terminal() {
        return Ok(());
    }
    let kind = if suspend {
        EventType::ExecutionSuspended(ExecutionSuspendedEvent { input: reason })
    } else {
        EventType::ExecutionResumed(ExecutionResumedEvent { input: reason })
    };
    enqueue(
        c,
        hub,
        id,
        PRIORITY_NORMAL,
        now,
        Some(&event(-1, now, kind)),
    )
}

pub(super) fn restart(
    c: &Connection,
    hub: &str,
    request: RestartInstanceRequest,
    now: i64,
) -> Result<String, StoreError> {
    let row = require(c, hub, &request.instance_id)?;
    let instance_id = if request.restart_with_new_instance_id {
        new_id()
    } else {
        if !row.is_terminal() {
            return Err(StoreError::FailedPrecondition(format!(
                "orchestration instance '{}' is still running; only a finished instance can be restarted under \
                 the same ID",
                row.instance_id
            )));
        }
        row.instance_id.clone()
    };
    create(
        c,
        hub,
        NewInstance {
            instance_id,
            name: row.name,
            version: row.version,
            input: row.input,
            tags: row.tags,
            ..NewInstance::default()
        },
        now,
    )
}

pub(super) fn rewind(
    c: &Connection,
    hub: &str,
    request: RewindInstanceRequest,
    now: i64,
) -> Result<(), StoreError> {
    let row = require(c, hub, &request.instance_id)?;
    if row.status != OrchestrationStatus::Failed as i32 {
        return Err(StoreError::FailedPrecondition(format!(
            "orchestration instance '{}' has not failed; only failed instances can be rewound",
            row.instance_id
        )));
    }
    if super::leases::orchestration_held(hub, &row.instance_id) {
        return Err(StoreError::FailedPrecondition(format!(
            "orchestration instance '{}' is being processed; try again",
            row.instance_id
        )));
    }
    prepare_rewind(c, hub, row, request.reason, None, now)
}

/// Queues the ExecutionRewound that makes the worker rewrite the history (the SDK answers with a
/// RewindOrchestrationAction, applied in `orchestration::complete`).
pub(super) fn prepare_rewind(
    c: &Connection,
    hub: &str,
    mut row: InstanceRow,
    reason: Option<String>,
    parent_execution_id: Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    // The worker expects exactly [OrchestratorStarted, ExecutionRewound]: drop anything stale still queued.
    c.prepare_cached("DELETE FROM inbox WHERE hub = ?1 AND instance_id = ?2")?
        .execute((hub, &row.instance_id))?;
    let rewound = event(
        -1,
        now,
        EventType::ExecutionRewound(ExecutionRewoundEvent {
            reason,
            parent_execution_id: parent_execution_id.clone(),
            instance_id: Some(row.instance_id.clone()),
            ..ExecutionRewoundEvent::default()
        }),
    );
    if let (Some(parent), Some(exec)) = (row.parent.as_mut(), parent_execution_id) {
        parent.execution_id = Some(exec);
    }
    row.status = OrchestrationStatus::Running as i32;
    row.updated_at = now;
    row.save(c, hub)?;
    enqueue(
        c,
        hub,
        &row.instance_id,
        PRIORITY_FIRST,
        now,
        Some(&rewound),
    )
}
