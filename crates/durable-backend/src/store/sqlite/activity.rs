//! Activity work: scheduling from a turn, leasing, and routing the result back to the orchestration.

use durable_proto::history_event::EventType;
use durable_proto::{
    ActivityRequest, ActivityResponse, ScheduleTaskAction, TaskCompletedEvent, TaskFailedEvent,
    WorkItem, work_item,
};
use prost::Message;
use rusqlite::{Connection, OptionalExtension};

use super::instances::{self, InstanceRow, PRIORITY_NORMAL};
use crate::codec::{encode, event, is_terminal, new_id};
use crate::error::StoreError;
use crate::store::{LeaseRequest, LeasedWork, WorkKind};

/// Activities considered per lease call (not counting those already leased).
const CANDIDATES: usize = 256;

/// A new lease token for activity row `row_id`: like an orchestrator's, it carries the row's key, so a completion
/// or a release finds the row by primary key and no index of tokens has to be kept.
fn lease_token(row_id: i64) -> String {
    format!("{}{}{row_id}", new_id(), instances::LEASE_SEPARATOR)
}

/// The activity row named by a lease token (`None`: not one of ours).
pub(super) fn leased_row(token: &str) -> Option<i64> {
    token
        .split_once(instances::LEASE_SEPARATOR)
        .and_then(|(_, id)| id.parse().ok())
}

pub(super) fn schedule(
    c: &Connection,
    hub: &str,
    owner: &InstanceRow,
    task_id: i32,
    action: ScheduleTaskAction,
) -> Result<(), StoreError> {
    super::changes::note_work(hub);
    let request = ActivityRequest {
        name: action.name.clone(),
        version: action.version,
        input: action.input,
        orchestration_instance: Some(super::orchestration::instance_ref(owner)),
        task_id,
        parent_trace_context: action.parent_trace_context,
        tags: action.tags,
    };
    c.prepare_cached(
        "INSERT INTO activities (hub, instance_id, execution_id, task_id, name, request, orchestration_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![
        hub,
        owner.instance_id,
        owner.execution_id,
        task_id,
        action.name,
        encode(&request),
        owner.version
    ])?;
    Ok(())
}

/// The activity queue in order (`?1` hub): the row id of every queued activity. It reads the ready index alone
/// (every column it names is in the index, see schema version 13), so the activities out on a lease are passed over
/// by their index entries: a large fan-out has tens of thousands out at once.
pub(super) const QUEUE_WALK: &str = "SELECT id FROM activities INDEXED BY activities_ready \
     WHERE hub = ?1 AND lease_token IS NULL ORDER BY id";

pub(super) fn lease(
    c: &Connection,
    hub: &str,
    request: &LeaseRequest,
    now: i64,
) -> Result<Vec<LeasedWork>, StoreError> {
    let filters = request
        .filters
        .as_ref()
        .map(|f| f.activities.as_slice())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut considered = 0;
    let mut walk = c.prepare_cached(QUEUE_WALK)?;
    let mut load = c.prepare_cached(
        "SELECT name, request, orchestration_version FROM activities WHERE id = ?1",
    )?;
    // The queue in order, walking an index, so it neither sorts nor reads the rest of a long queue; a row is read
    // only for an activity that is not out on a live lease (in memory).
    let mut rows = walk.query([hub])?;
    while out.len() < request.activities && considered < CANDIDATES {
        let Some(row) = rows.next()? else {
            break;
        };
        let row_id: i64 = row.get(0)?;
        if super::leases::activity_live(hub, row_id, now) {
            continue;
        }
        let mut stored = load.query([row_id])?;
        // The walk and this read are one transaction's view, so the row is there; skipping is what a vanished
        // row would deserve anyway.
        let Some(stored) = stored.next()? else {
            continue;
        };
        let name = stored.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        // Activities that no filter names are not candidates.
        if !(filters.is_empty() || filters.iter().any(|f| f.name == name)) {
            continue;
        }
        considered += 1;
        let activity = ActivityRequest::decode(
            stored
                .get_ref(1)?
                .as_blob()
                .map_err(rusqlite::Error::from)?,
        )?;
        // Like the scheduler: an activity without a version of its own runs as its orchestration's version, so a
        // worker filtering both at one version gets the activities its orchestrations schedule.
        // An empty version (what some SDKs send for "none") is no version of its own.
        let version = activity
            .version
            .clone()
            .filter(|v| !v.is_empty())
            .or(stored.get::<_, Option<String>>(2)?);
        let accepted = filters.is_empty()
            || filters.iter().any(|f| {
                f.name == name
                    && (f.versions.is_empty()
                        || f.versions.iter().any(|v| Some(v) == version.as_ref()))
            });
        if !accepted {
            continue;
        }
        let token = lease_token(row_id);
        let owner = activity.orchestration_instance.clone().unwrap_or_default();
        super::leases::lease_activity(
            hub,
            row_id,
            super::leases::ActivityLease {
                token: token.clone(),
                expires_at: now.saturating_add(request.activity_lease_ms),
                instance_id: owner.instance_id,
                execution_id: owner.execution_id.unwrap_or_default(),
                task_id: activity.task_id,
            },
        );
        out.push(LeasedWork {
            kind: WorkKind::Activity,
            token: token.clone(),
            item: WorkItem {
                request: Some(work_item::Request::ActivityRequest(activity)),
                completion_token: token,
            },
            past_events: Default::default(),
        });
    }
    Ok(out)
}

pub(super) fn complete(
    c: &Connection,
    hub: &str,
    response: ActivityResponse,
    now: i64,
) -> Result<(), StoreError> {
    let token = response.completion_token;
    let Some(row_id) = leased_row(&token) else {
        return Err(StoreError::StaleLease(token));
    };
    let Some(lease) = super::leases::take_activity(hub, row_id, &token) else {
        return Err(StoreError::StaleLease(token));
    };
    let deleted = c
        .prepare_cached("DELETE FROM activities WHERE id = ?1 AND hub = ?2")?
        .execute((row_id, hub))?;
    if deleted == 0 {
        return Err(StoreError::StaleLease(token));
    }
    let super::leases::ActivityLease {
        instance_id,
        execution_id,
        task_id,
        ..
    } = lease;
    // A result for an older generation (continue-as-new, restart) or a finished instance has nobody to wake. Only
    // the two columns that tell: decoding the whole row is for turns.
    let owner: Option<(String, i32)> = c
        .prepare_cached(
            "SELECT execution_id, status FROM instances WHERE hub = ?1 AND instance_id = ?2",
        )?
        .query_row((hub, &instance_id), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((owner_execution, status)) = owner else {
        return Ok(());
    };
    if owner_execution != execution_id || is_terminal(status) {
        return Ok(());
    }
    let kind = match response.failure_details {
        Some(details) => EventType::TaskFailed(TaskFailedEvent {
            task_scheduled_id: task_id,
            failure_details: Some(details),
        }),
        None => EventType::TaskCompleted(TaskCompletedEvent {
            task_scheduled_id: task_id,
            result: response.result,
        }),
    };
    instances::enqueue(
        c,
        hub,
        &instance_id,
        PRIORITY_NORMAL,
        now,
        Some(&event(-1, now, kind)),
    )
}
