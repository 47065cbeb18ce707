//! Orchestration instances: rows, history, inbox, and the client operations on them.

use std::collections::HashMap;

use durable_proto::history_event::EventType;
use durable_proto::{
    CreateInstanceRequest, ExecutionStartedEvent, HistoryEvent, OrchestrationInstance,
    OrchestrationState, OrchestrationStatus, ParentInstanceInfo, TaskFailureDetails, TraceContext,
};
use prost::Message;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::codec::{decode_history_row, encode, encode_turn, event, is_terminal, new_id, ts};
use crate::error::StoreError;
use crate::past_events::EncodedPastEvents;

/// Inbox ordering: a new generation's ExecutionStarted (and its carried-over events) go before anything queued.
pub(super) const PRIORITY_FIRST: i64 = 0;
pub(super) const PRIORITY_NORMAL: i64 = 1;

pub(super) const COLUMNS: &str = "instance_id, execution_id, name, version, status, created_at, updated_at, completed_at, \
    scheduled_start_at, input, output, custom_status, failure, parent_instance_id, parent_execution_id, \
    parent_task_id, parent_name, parent_version, tags";

/// Writes a whole row. An upsert rather than `INSERT OR REPLACE`: replacing deletes and reinserts the row, which
/// rewrites every index entry, while an update touches only the indexes whose columns changed.
static SAVE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let updates: Vec<String> = COLUMNS
        .split(',')
        .map(str::trim)
        .filter(|c| *c != "instance_id")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO instances (hub, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
         ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) \
         ON CONFLICT (hub, instance_id) DO UPDATE SET {}",
        updates.join(", ")
    )
});

/// One row of `instances`.
#[derive(Debug, Clone, Default)]
pub(super) struct InstanceRow {
    pub(super) instance_id: String,
    pub(super) execution_id: String,
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) status: i32,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    pub(super) completed_at: Option<i64>,
    pub(super) scheduled_start_at: Option<i64>,
    pub(super) input: Option<String>,
    pub(super) output: Option<String>,
    pub(super) custom_status: Option<String>,
    pub(super) failure: Option<TaskFailureDetails>,
    pub(super) parent: Option<ParentRef>,
    pub(super) tags: HashMap<String, String>,
}

/// Where a sub-orchestration reports back.
#[derive(Debug, Clone, Default)]
pub(super) struct ParentRef {
    pub(super) instance_id: String,
    pub(super) execution_id: Option<String>,
    pub(super) task_id: i32,
    pub(super) name: Option<String>,
    pub(super) version: Option<String>,
}

impl InstanceRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let failure: Option<Vec<u8>> = r.get(12)?;
        let parent_id: Option<String> = r.get(13)?;
        let tags: Option<String> = r.get(18)?;
        Ok(InstanceRow {
            instance_id: r.get(0)?,
            execution_id: r.get(1)?,
            name: r.get(2)?,
            version: r.get(3)?,
            status: r.get(4)?,
            created_at: r.get(5)?,
            updated_at: r.get(6)?,
            completed_at: r.get(7)?,
            scheduled_start_at: r.get(8)?,
            input: r.get(9)?,
            output: r.get(10)?,
            custom_status: r.get(11)?,
            failure: failure.and_then(|b| TaskFailureDetails::decode(b.as_slice()).ok()),
            parent: match parent_id {
                Some(instance_id) => Some(ParentRef {
                    instance_id,
                    execution_id: r.get(14)?,
                    task_id: r.get(15)?,
                    name: r.get(16)?,
                    version: r.get(17)?,
                }),
                None => None,
            },
            tags: tags
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
        })
    }

    pub(super) fn is_terminal(&self) -> bool {
        is_terminal(self.status)
    }

    pub(super) fn to_state(&self, payloads: bool) -> OrchestrationState {
        OrchestrationState {
            instance_id: self.instance_id.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            orchestration_status: self.status,
            scheduled_start_timestamp: self.scheduled_start_at.map(ts),
            created_timestamp: Some(ts(self.created_at)),
            last_updated_timestamp: Some(ts(self.updated_at)),
            input: self.input.clone().filter(|_| payloads),
            output: self.output.clone().filter(|_| payloads),
            custom_status: self.custom_status.clone(),
            failure_details: self.failure.clone(),
            execution_id: Some(self.execution_id.clone()),
            completed_timestamp: self.completed_at.map(ts),
            parent_instance_id: self.parent.as_ref().map(|p| p.instance_id.clone()),
            tags: self.tags.clone(),
        }
    }

    /// Writes every column back (the lease columns of earlier versions stay NULL: leases are in memory).
    pub(super) fn save(&self, c: &Connection, hub: &str) -> Result<(), StoreError> {
        super::changes::note_instance(hub, &self.instance_id);
        let tags = if self.tags.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&self.tags)
                    .map_err(|e| StoreError::Internal(e.to_string()))?,
            )
        };
        let parent = self.parent.as_ref();
        c.prepare_cached(&SAVE_SQL)?.execute(rusqlite::params![
            hub,
            self.instance_id,
            self.execution_id,
            self.name,
            self.version,
            self.status,
            self.created_at,
            self.updated_at,
            self.completed_at,
            self.scheduled_start_at,
            self.input,
            self.output,
            self.custom_status,
            self.failure.as_ref().map(encode),
            parent.map(|p| p.instance_id.clone()),
            parent.and_then(|p| p.execution_id.clone()),
            parent.map(|p| p.task_id),
            parent.and_then(|p| p.name.clone()),
            parent.and_then(|p| p.version.clone()),
            tags,
        ])?;
        Ok(())
    }
}

pub(super) fn load(c: &Connection, hub: &str, id: &str) -> Result<Option<InstanceRow>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM instances WHERE hub = ?1 AND instance_id = ?2"
    ))?
    .query_row((hub, id), InstanceRow::from_row)
    .optional()?)
}

/// A new orchestrator lease token for an instance. The token carries the instance id, so a completion finds its
/// lease and its instance by key.
pub(super) fn lease_token(instance_id: &str) -> String {
    format!("{}{LEASE_SEPARATOR}{instance_id}", new_id())
}

/// The instance id carried by an orchestrator lease token (`None`: not one of ours, so not a live lease).
pub(super) fn leased_instance(token: &str) -> Option<&str> {
    token.split_once(LEASE_SEPARATOR).map(|(_, id)| id)
}

/// Between the random part of a lease token (hex digits) and the key of the leased row.
pub(super) const LEASE_SEPARATOR: char = '~';

pub(super) fn load_many(
    c: &Connection,
    sql_where: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<InstanceRow>, StoreError> {
    // The callers' clauses are a small fixed set, so they stay compiled too.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM instances WHERE {sql_where}"
    ))?;
    let rows = stmt.query_map(params, InstanceRow::from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Rows of a whole `SELECT` over [`COLUMNS`], for queries that are more than a `WHERE` clause.
pub(super) fn load_sql(
    c: &Connection,
    sql: &str,
    params: &[rusqlite::types::Value],
) -> Result<Vec<InstanceRow>, StoreError> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), InstanceRow::from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The committed history as the scheduler returns it. Each turn is one row holding its events; rows written by
/// earlier versions hold one event each, and those versions also wrote an `OrchestratorCompleted` after every
/// turn, which is skipped here rather than rewritten, so such a file works unchanged.
pub(super) fn history(
    c: &Connection,
    hub: &str,
    id: &str,
) -> Result<Vec<HistoryEvent>, StoreError> {
    let mut events = Vec::new();
    each_history_row(c, hub, id, |bytes, turn, _| {
        decode_history_row(bytes, turn, &mut events)?;
        Ok(())
    })?;
    Ok(events)
}

/// The history (see [`history`]) as a work item carries it, still encoded, and the `seq` its next row gets: a
/// turn's lease reads the history anyway, so its completion appends without looking for the end again.
pub(super) fn encoded_history_and_next_row(
    c: &Connection,
    hub: &str,
    id: &str,
) -> Result<(EncodedPastEvents, i64), StoreError> {
    let mut events = EncodedPastEvents::default();
    let mut next = 0;
    each_history_row(c, hub, id, |bytes, turn, seq| {
        events.push_row(bytes, turn)?;
        next = seq + 1;
        Ok(())
    })?;
    Ok((events, next))
}

/// Calls `f` with each history row of instance `id` in order: its bytes, whether it is a turn row, its `seq`.
fn each_history_row(
    c: &Connection,
    hub: &str,
    id: &str,
    mut f: impl FnMut(&[u8], bool, i64) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    // A row naming a blob is read from `blobs` on its own: a join would cost every read, most of which name none.
    let mut stmt = c.prepare_cached(
        "SELECT event, turn, seq, blob FROM history WHERE hub = ?1 AND instance_id = ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query((hub, id))?;
    while let Some(row) = rows.next()? {
        let bytes = super::blobs::event_of(c, row, 0, 3)?
            .ok_or_else(|| StoreError::Internal(format!("a history row of {id} has no event")))?;
        f(&bytes, row.get(1)?, row.get(2)?)?;
    }
    Ok(())
}

pub(super) fn append_history(
    c: &Connection,
    hub: &str,
    id: &str,
    events: &[HistoryEvent],
) -> Result<(), StoreError> {
    let next: i64 = c
        .prepare_cached(
            "SELECT COALESCE(MAX(seq) + 1, 0) FROM history WHERE hub = ?1 AND instance_id = ?2",
        )?
        .query_row((hub, id), |r| r.get(0))?;
    append_history_at(c, hub, id, next, events)
}

/// Appends a turn's events as rows from `seq` = `next` on (the end of the history, as its lease read it).
pub(super) fn append_history_at(
    c: &Connection,
    hub: &str,
    id: &str,
    next: i64,
    events: &[HistoryEvent],
) -> Result<(), StoreError> {
    // A turn's events share rows: one B-tree insert and one key for a usual turn instead of one per event. A row
    // is kept small enough to live in its B-tree page, since SQLite reads the overflow pages of a larger one from
    // the file on every read, past its page cache: a fan-out turn of 50,000 events as one row made every later
    // turn of that instance re-read megabytes with a system call per page.
    // An event larger than that is a row of its own, and its bytes go to `blobs`.
    let mut insert = c.prepare_cached(
        "INSERT INTO history (hub, instance_id, seq, event, turn, blob) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
    )?;
    for (seq, rows) in (next..).zip(turn_rows(events, TURN_ROW_BYTES)) {
        let (event, blob) = super::blobs::place(c, encode_turn(rows))?;
        insert.execute(rusqlite::params![hub, id, seq, event, blob])?;
    }
    Ok(())
}

/// The largest encoded turn row, before a turn's events go on in the next row: what a row keeps itself (see
/// `blobs`).
const TURN_ROW_BYTES: usize = super::blobs::INLINE_BYTES;

/// Splits a turn's events into runs whose encoding stays within `limit` bytes; an event larger than that is a
/// run of its own.
fn turn_rows(events: &[HistoryEvent], limit: usize) -> impl Iterator<Item = &[HistoryEvent]> {
    let mut rest = events;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = 0;
        let mut take = 0;
        for e in rest {
            let len = e.encoded_len();
            let framed = 1 + prost::length_delimiter_len(len) + len;
            if take > 0 && size + framed > limit {
                break;
            }
            size += framed;
            take += 1;
        }
        let (run, tail) = rest.split_at(take);
        rest = tail;
        Some(run)
    })
}

/// Writes what a turn that did not finish its instance changes in its row: the time, the custom status, the status
/// when the turn changed it, and the encoded trace context when the worker returned a new one (kept for this
/// execution only). The other columns stay as they are, so their values are not encoded and written again. The
/// status is left out of the statement when it did not change (most turns): SQLite rewrites the entry of every
/// index on a column the `SET` names, even to the same value.
pub(super) fn save_turn(
    c: &Connection,
    hub: &str,
    row: &InstanceRow,
    status_changed: bool,
    trace: Option<&[u8]>,
) -> Result<(), StoreError> {
    super::changes::note_instance(hub, &row.instance_id);
    // By (status changed, trace given); every variant binds ?1-?5 (?3 unused without the status), plus ?6 with the
    // trace.
    const SQL: [[&str; 2]; 2] = [
        [
            "UPDATE instances SET updated_at = ?4, custom_status = ?5 WHERE hub = ?1 AND instance_id = ?2",
            "UPDATE instances SET updated_at = ?4, custom_status = ?5, trace_context = ?6, \
             trace_execution_id = execution_id WHERE hub = ?1 AND instance_id = ?2",
        ],
        [
            "UPDATE instances SET status = ?3, updated_at = ?4, custom_status = ?5 \
             WHERE hub = ?1 AND instance_id = ?2",
            "UPDATE instances SET status = ?3, updated_at = ?4, custom_status = ?5, trace_context = ?6, \
             trace_execution_id = execution_id WHERE hub = ?1 AND instance_id = ?2",
        ],
    ];
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![
        &hub,
        &row.instance_id,
        &row.status,
        &row.updated_at,
        &row.custom_status,
    ];
    if let Some(trace) = &trace {
        params.push(trace);
    }
    c.prepare_cached(SQL[usize::from(status_changed)][usize::from(trace.is_some())])?
        .execute(params.as_slice())?;
    Ok(())
}

/// Queues a message for an instance. `None` is a bare wake-up: it makes the instance runnable without an event.
pub(super) fn enqueue(
    c: &Connection,
    hub: &str,
    id: &str,
    priority: i64,
    visible_at: i64,
    message: Option<&HistoryEvent>,
) -> Result<(), StoreError> {
    super::changes::note_work(hub);
    let now = crate::codec::now_ms();
    // Only a message that becomes visible later is kept in the index of times (see `query::next_due`).
    let delayed = visible_at > now;
    // A message for an instance whose turn is out stays out of the ready index until the turn ends
    // (`release_held`): the lease query would pass over it on every call meanwhile.
    let held = super::leases::orchestration_live(hub, id, now);
    if held {
        super::leases::hold(hub, id);
    }
    let row = super::leases::next_message_id(|| {
        Ok(c.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM inbox")?
            .query_row([], |r| r.get(0))?)
    })?;
    // A large event (an activity's result, a raised event's data) goes to `blobs`.
    let (event, blob) = match message.map(encode) {
        Some(bytes) => {
            let (event, blob) = super::blobs::place(c, bytes)?;
            (Some(event), blob)
        }
        None => (None, None),
    };
    c.prepare_cached(
        "INSERT INTO inbox (hub, instance_id, priority, id, visible_at, event, delayed, lease_token, blob) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(rusqlite::params![
        hub,
        id,
        priority,
        row,
        visible_at,
        event,
        delayed,
        held.then_some(HELD),
        blob
    ])?;
    Ok(())
}

/// The `lease_token` of a message held back while its instance's turn was out.
const HELD: &str = "held";

/// Takes the messages delivered to a turn of instance `id` out of the ready index until the turn ends (see
/// `enqueue`); a completion deletes them, anything else that ends the turn puts them back (`release_held`).
pub(super) fn hold_delivered(
    c: &Connection,
    hub: &str,
    id: &str,
    rows: &[super::leases::MessageKey],
) -> Result<(), StoreError> {
    super::leases::hold(hub, id);
    let mut hold = c.prepare_cached(
        "UPDATE inbox SET lease_token = ?5 WHERE hub = ?1 AND instance_id = ?2 AND priority = ?3 AND id = ?4",
    )?;
    for (priority, row) in rows {
        hold.execute((hub, id, priority, row, HELD))?;
    }
    Ok(())
}

/// Puts the messages held back for instance `id` (see `enqueue`) into the ready index again: its turn ended.
pub(super) fn release_held(c: &Connection, hub: &str, id: &str) -> Result<(), StoreError> {
    if super::leases::take_held(hub, id) {
        c.prepare_cached(
            "UPDATE inbox INDEXED BY inbox_held SET lease_token = NULL \
             WHERE hub = ?1 AND instance_id = ?2 AND lease_token IS NOT NULL",
        )?
        .execute((hub, id))?;
    }
    Ok(())
}

/// Removes an instance and everything queued for it.
pub(super) fn delete_data(c: &Connection, hub: &str, id: &str) -> Result<(), StoreError> {
    super::changes::note_instance(hub, id);
    super::leases::drop_instance(hub, id);
    // Every start runs these, so they stay compiled like the other hot statements. A delete from a table with a
    // row trigger (history and inbox take their blobs along) gathers the doomed rows in a temporary B-tree first,
    // about 10 us even when there are none: a start of a new ID (nothing to delete) looks first.
    for (exists, delete) in [
        (
            None,
            "DELETE FROM instances WHERE hub = ?1 AND instance_id = ?2",
        ),
        (
            Some("SELECT EXISTS (SELECT 1 FROM history WHERE hub = ?1 AND instance_id = ?2)"),
            "DELETE FROM history WHERE hub = ?1 AND instance_id = ?2",
        ),
        (
            Some("SELECT EXISTS (SELECT 1 FROM inbox WHERE hub = ?1 AND instance_id = ?2)"),
            "DELETE FROM inbox WHERE hub = ?1 AND instance_id = ?2",
        ),
        (
            None,
            "DELETE FROM activities WHERE hub = ?1 AND instance_id = ?2",
        ),
    ] {
        if let Some(exists) = exists
            && !c
                .prepare_cached(exists)?
                .query_row((hub, id), |r| r.get::<_, bool>(0))?
        {
            continue;
        }
        c.prepare_cached(delete)?.execute((hub, id))?;
    }
    Ok(())
}

/// What a new instance (top-level, sub-orchestration, restart, entity-started) starts with.
#[derive(Debug, Default)]
pub(super) struct NewInstance {
    pub(super) instance_id: String,
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) input: Option<String>,
    pub(super) tags: HashMap<String, String>,
    pub(super) scheduled_start_at: Option<i64>,
    pub(super) parent: Option<ParentRef>,
    pub(super) trace: Option<TraceContext>,
}

/// Writes a fresh PENDING instance (replacing whatever had that id) and queues its ExecutionStarted.
pub(super) fn create(
    c: &Connection,
    hub: &str,
    new: NewInstance,
    now: i64,
) -> Result<String, StoreError> {
    delete_data(c, hub, &new.instance_id)?;
    let execution_id = new_id();
    let started = execution_started(&new, &execution_id, now);
    let row = InstanceRow {
        instance_id: new.instance_id.clone(),
        execution_id,
        name: new.name,
        version: new.version,
        status: OrchestrationStatus::Pending as i32,
        created_at: now,
        updated_at: now,
        scheduled_start_at: new.scheduled_start_at,
        input: new.input,
        parent: new.parent,
        tags: new.tags,
        ..InstanceRow::default()
    };
    row.save(c, hub)?;
    let visible_at = new.scheduled_start_at.unwrap_or(now).max(now);
    enqueue(
        c,
        hub,
        &new.instance_id,
        PRIORITY_FIRST,
        visible_at,
        Some(&started),
    )?;
    Ok(new.instance_id)
}

pub(super) fn execution_started(new: &NewInstance, execution_id: &str, now: i64) -> HistoryEvent {
    event(
        -1,
        now,
        EventType::ExecutionStarted(ExecutionStartedEvent {
            name: new.name.clone(),
            version: new.version.clone(),
            input: new.input.clone(),
            orchestration_instance: Some(OrchestrationInstance {
                instance_id: new.instance_id.clone(),
                execution_id: Some(execution_id.to_owned()),
            }),
            parent_instance: new.parent.as_ref().map(|p| ParentInstanceInfo {
                task_scheduled_id: p.task_id,
                name: p.name.clone(),
                version: p.version.clone(),
                orchestration_instance: Some(OrchestrationInstance {
                    instance_id: p.instance_id.clone(),
                    execution_id: p.execution_id.clone(),
                }),
            }),
            scheduled_start_timestamp: new.scheduled_start_at.map(ts),
            parent_trace_context: new.trace.clone(),
            orchestration_span_id: None,
            tags: new.tags.clone(),
        }),
    )
}

pub(super) fn start(
    c: &Connection,
    hub: &str,
    request: CreateInstanceRequest,
    now: i64,
) -> Result<String, StoreError> {
    let replaceable = request
        .orchestration_id_reuse_policy
        .as_ref()
        .map(|p| p.replaceable_status.clone())
        .unwrap_or_default();
    check_reuse_policy(&replaceable)?;
    let id = if request.instance_id.is_empty() {
        new_id()
    } else {
        request.instance_id.clone()
    };
    if let Some(existing) = load(c, hub, &id)? {
        // No policy (or an empty one): a finished instance may be replaced, a live one may not.
        let allowed = if replaceable.is_empty() {
            existing.is_terminal()
        } else {
            replaceable.contains(&existing.status)
        };
        if !allowed {
            let status = crate::codec::status_from_i32(existing.status).as_str_name();
            return Err(StoreError::AlreadyExists(format!(
                "an orchestration instance with ID '{id}' already exists with status {status}, \
                 which the instance ID reuse policy does not allow replacing"
            )));
        }
        if !existing.is_terminal() {
            // The replaced execution never finishes, so nothing else would give its entity locks back.
            super::entity_lock::release_locks_of(c, hub, &id, now)?;
        }
        // Its lock requests still on their way would otherwise be granted to the new execution, for a critical
        // section that execution never asked for.
        super::entity_lock::drop_lock_requests_of(c, hub, &id)?;
    }
    create(
        c,
        hub,
        NewInstance {
            instance_id: id,
            name: request.name,
            version: request.version,
            input: request.input,
            tags: request.tags,
            scheduled_start_at: request
                .scheduled_start_timestamp
                .as_ref()
                .map(crate::codec::ms),
            parent: None,
            trace: request.parent_trace_context,
        },
        now,
    )
}

/// The scheduler replaces a live instance by terminating it first, so a policy that lets a pending, running or
/// suspended instance be replaced must let a terminated one be replaced too, or the terminated execution would stand
/// in the way of its own replacement. The scheduler refuses such a policy outright, with this message, whatever
/// instance exists; SDK tests match the text.
pub(super) fn check_reuse_policy(replaceable: &[i32]) -> Result<(), StoreError> {
    let live = [
        OrchestrationStatus::Pending,
        OrchestrationStatus::Running,
        OrchestrationStatus::Suspended,
    ];
    let replaces_live = live.iter().any(|s| replaceable.contains(&(*s as i32)));
    if replaces_live && !replaceable.contains(&(OrchestrationStatus::Terminated as i32)) {
        return Err(StoreError::InvalidArgument(
            "Invalid reusable statuses: cannot exclude 'Terminated' while also allowing reuse of running instances"
                .to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{TURN_ROW_BYTES, check_reuse_policy, lease_token, leased_instance, turn_rows};
    use crate::codec::encode_turn;
    use durable_proto::OrchestrationStatus as S;
    use durable_proto::history_event::EventType;
    use durable_proto::{EventRaisedEvent, HistoryEvent};

    fn raised(id: i32, input: usize) -> HistoryEvent {
        HistoryEvent {
            event_id: id,
            event_type: Some(EventType::EventRaised(EventRaisedEvent {
                name: "e".into(),
                input: Some("x".repeat(input)),
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_turn_is_split_into_rows_that_fit_a_page_and_keep_its_order() {
        // A usual turn is one row.
        let small: Vec<_> = (0..3).map(|i| raised(i, 40)).collect();
        assert_eq!(turn_rows(&small, TURN_ROW_BYTES).count(), 1);
        // A fan-out's turn: many rows, each within the limit, together the turn in order.
        let big: Vec<_> = (0..5_000).map(|i| raised(i, 60)).collect();
        let rows: Vec<_> = turn_rows(&big, TURN_ROW_BYTES).collect();
        assert!(rows.len() > 100, "{} rows", rows.len());
        assert!(rows.iter().all(|r| encode_turn(r).len() <= TURN_ROW_BYTES));
        assert_eq!(rows.concat(), big);
        // An event larger than a row is a row of its own, never split or dropped.
        let mixed = vec![raised(0, 10), raised(1, 5_000), raised(2, 10)];
        let rows: Vec<_> = turn_rows(&mixed, TURN_ROW_BYTES).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.concat(), mixed);
        assert_eq!(turn_rows(&[], TURN_ROW_BYTES).count(), 0);
    }

    #[test]
    fn a_lease_token_names_its_instance_whatever_the_id_holds() {
        for id in ["plain", "with~separator~twice", "", "ünïcode:0001"] {
            let token = lease_token(id);
            assert_eq!(leased_instance(&token), Some(id));
            assert_ne!(token, lease_token(id), "tokens must not repeat");
        }
        assert_eq!(leased_instance("not-a-token-of-ours"), None);
    }

    fn policy(statuses: &[S]) -> Vec<i32> {
        statuses.iter().map(|s| *s as i32).collect()
    }

    #[test]
    fn a_policy_that_replaces_live_instances_must_replace_terminated_ones() {
        assert!(check_reuse_policy(&[]).is_ok());
        assert!(check_reuse_policy(&policy(&[S::Completed, S::Failed])).is_ok());
        assert!(check_reuse_policy(&policy(&[S::Running, S::Terminated])).is_ok());
        for live in [S::Pending, S::Running, S::Suspended] {
            let refused = check_reuse_policy(&policy(&[S::Completed, live])).unwrap_err();
            assert!(
                refused.to_string().starts_with("Invalid reusable statuses"),
                "{refused}"
            );
        }
    }
}
