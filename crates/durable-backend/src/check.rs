//! Checking a database file from outside, once no backend serves it: SQLite's own integrity check and the
//! backend's invariants over what it stored.
//!
//! With every worker and the backend stopped, a sound store has:
//! - no leases: a closed work-item stream hands its work back, so a lease left behind is work nobody can get;
//! - no message lost: whatever a live instance waits for (an activity result, a timer, a sub-orchestration, an
//!   entity's answer or lock) is still queued somewhere (an activity to run, a message in its inbox, a live child,
//!   a message in an entity's queue), and every queued message belongs to an instance or entity that exists;
//! - each history whole: one `ExecutionStarted`, each scheduled task, timer or sub-orchestration answered at most
//!   once and never answered without being scheduled, and a finished instance's history ending in one
//!   `ExecutionCompleted` with the instance's status;
//! - no lock held by an orchestration that has finished or is gone;
//! - every blob (a large event or entity state kept apart) named by a row, and every blob a row names present.
//!
//! Messages still queued for an instance that has finished (a timer that lost a race against an event, an event
//! raised during the last turn) are counted apart as `stale_messages`: a finished instance takes nothing more, so
//! they are not lost work, but nothing removes them before the instance is purged.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use durable_proto::history_event::EventType;
use durable_proto::{HistoryEvent, OrchestrationStatus};
use rusqlite::{Connection, OpenFlags};

use crate::codec::{decode_event, decode_history_row, status_from_i32};
use crate::error::StoreError;

/// Problems listed in full; more are counted.
const LISTED: usize = 50;

/// What [`check_database`] found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckReport {
    /// SQLite's `PRAGMA integrity_check`: `["ok"]` for a sound file.
    pub integrity: Vec<String>,
    /// The schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// Orchestration instances per status (`COMPLETED`, `RUNNING`, ...).
    pub instances: BTreeMap<String, usize>,
    /// History events read and checked.
    pub history_events: usize,
    /// Messages queued for live instances.
    pub queued_messages: usize,
    /// Activities waiting to run.
    pub queued_activities: usize,
    /// Messages queued for entities.
    pub queued_entity_messages: usize,
    /// Entities stored.
    pub entities: usize,
    /// Messages left for instances that had already finished (see the module documentation).
    pub stale_messages: usize,
    /// Broken invariants, one line each (the first 50; `more_problems` counts the rest).
    pub problems: Vec<String>,
    /// Problems beyond those listed.
    pub more_problems: usize,
}

impl CheckReport {
    /// Whether the file is sound and every invariant holds.
    pub fn is_ok(&self) -> bool {
        self.integrity == ["ok"] && self.problems.is_empty()
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < LISTED {
            self.problems.push(text);
        } else {
            self.more_problems += 1;
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "integrity_check: {}; schema version {}",
            self.integrity.join(" | "),
            self.schema_version
        )?;
        let statuses: Vec<String> = self
            .instances
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect();
        writeln!(
            f,
            "instances: {}; history events {}; entities {}",
            if statuses.is_empty() {
                "none".to_owned()
            } else {
                statuses.join(", ")
            },
            self.history_events,
            self.entities
        )?;
        writeln!(
            f,
            "queued: {} messages for live instances, {} activities, {} entity messages; {} stale messages for finished instances",
            self.queued_messages,
            self.queued_activities,
            self.queued_entity_messages,
            self.stale_messages
        )?;
        if self.problems.is_empty() {
            write!(f, "invariants: all hold")
        } else {
            write!(
                f,
                "invariants: {} broken",
                self.problems.len() + self.more_problems
            )?;
            for problem in &self.problems {
                write!(f, "\n  - {problem}")?;
            }
            if self.more_problems > 0 {
                write!(f, "\n  - ... and {} more", self.more_problems)?;
            }
            Ok(())
        }
    }
}

/// Checks the database file at `path`, which no backend may be serving (leases are only meaningful then). Only
/// queries run; SQLite may recover a write-ahead log a killed process left. An `Err` means the file could not be
/// read at all.
pub fn check_database(path: &Path) -> Result<CheckReport, StoreError> {
    if !path.is_file() {
        return Err(StoreError::NotFound(format!(
            "no database file at {}",
            path.display()
        )));
    }
    // Read-write without create: a file left by a killed process needs its WAL recovered before it can be read.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut report = CheckReport {
        integrity: column(&conn, "PRAGMA integrity_check", [])?,
        schema_version: conn.pragma_query_value(None, "user_version", |r| r.get(0))?,
        ..CheckReport::default()
    };
    leases(&conn, report.schema_version, &mut report)?;
    let instances = load_instances(&conn)?;
    let turn_rows = report.schema_version >= 9;
    let blobs = report.schema_version >= 15;
    for row in instances.values() {
        let name = status_from_i32(row.status)
            .as_str_name()
            .trim_start_matches("ORCHESTRATION_STATUS_")
            .to_owned();
        *report.instances.entry(name).or_default() += 1;
    }
    let queues = Queues::load(&conn, &instances, blobs, &mut report)?;
    if blobs {
        unreferenced_blobs(&conn, report.schema_version >= 16, &mut report)?;
    }
    for (key, row) in &instances {
        let history = load_history(&conn, key, turn_rows, blobs)?;
        report.history_events += history.len();
        check_history(key, row, &history, &queues, &instances, &mut report);
    }
    locks(&conn, &instances, &mut report)?;
    Ok(report)
}

type Key = (String, String);

struct InstanceRow {
    status: i32,
}

impl InstanceRow {
    fn is_terminal(&self) -> bool {
        status_from_i32(self.status).is_terminal()
    }
}

fn column<P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Large events and entity states live in `blobs` while a row names them; a blob nothing names is space lost, and
/// a row naming a missing blob has lost its event or state. Entities name blobs from schema 16 on.
fn unreferenced_blobs(
    c: &Connection,
    entity_states: bool,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let mut names = vec![("history", "blob"), ("inbox", "blob")];
    if entity_states {
        names.push(("entities", "state_blob"));
    }
    // The named ids are gathered once (the columns have no index of their own).
    let named = names
        .iter()
        .map(|(table, column)| format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let lost: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM blobs WHERE id NOT IN ({named})"),
        [],
        |r| r.get(0),
    )?;
    if lost > 0 {
        report.problem(format!("{lost} blobs named by no row"));
    }
    for (table, column) in names {
        let dangling: i64 = c.query_row(
            &format!(
                "SELECT COUNT(*) FROM {table} t WHERE t.{column} IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = t.{column})"
            ),
            [],
            |r| r.get(0),
        )?;
        if dangling > 0 {
            report.problem(format!(
                "{dangling} rows of {table} name a blob that does not exist"
            ));
        }
    }
    Ok(())
}

/// Rows still marked leased. Instances kept their leases in their rows before schema 9 (which let go of them and
/// stopped) and lost those columns at 14.
fn leases(c: &Connection, version: i64, report: &mut CheckReport) -> Result<(), StoreError> {
    let instances = (version < 9).then_some("instances");
    for table in instances
        .into_iter()
        .chain(["inbox", "activities", "entities", "entity_inbox"])
    {
        let held: i64 = c.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE lease_token IS NOT NULL"),
            [],
            |r| r.get(0),
        )?;
        if held > 0 {
            report.problem(format!(
                "{held} rows of {table} still leased with no backend running (orphan leases)"
            ));
        }
    }
    Ok(())
}

fn load_instances(c: &Connection) -> Result<HashMap<Key, InstanceRow>, StoreError> {
    let mut stmt = c.prepare("SELECT hub, instance_id, status FROM instances")?;
    let rows = stmt.query_map([], |r| {
        Ok(((r.get(0)?, r.get(1)?), InstanceRow { status: r.get(2)? }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A history as the backend reads it. Files before schema 9 have no `turn` column: each of their rows is one event;
/// files before schema 15 keep every event in its row.
fn load_history(
    c: &Connection,
    (hub, id): &Key,
    turn_rows: bool,
    blobs: bool,
) -> Result<Vec<HistoryEvent>, StoreError> {
    let sql = if blobs {
        "SELECT COALESCE(b.data, h.event), h.turn FROM history h LEFT JOIN blobs b ON b.id = h.blob \
         WHERE h.hub = ?1 AND h.instance_id = ?2 ORDER BY h.seq"
    } else if turn_rows {
        "SELECT event, turn FROM history WHERE hub = ?1 AND instance_id = ?2 ORDER BY seq"
    } else {
        "SELECT event, 0 FROM history WHERE hub = ?1 AND instance_id = ?2 ORDER BY seq"
    };
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query((hub, id))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let bytes = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        decode_history_row(bytes, row.get::<_, bool>(1)?, &mut events)?;
    }
    Ok(events)
}

/// What is queued anywhere, indexed by what a waiting instance would look for.
#[derive(Default)]
struct Queues {
    /// Events in each live instance's inbox.
    inbox: HashMap<Key, Vec<EventType>>,
    /// `(hub, instance, task id)` of activities waiting to run.
    activities: HashSet<(String, String, i32)>,
    /// Entity call request ids and critical-section ids queued at entities, per hub.
    entity_requests: HashSet<(String, String)>,
}

impl Queues {
    fn load(
        c: &Connection,
        instances: &HashMap<Key, InstanceRow>,
        blobs: bool,
        report: &mut CheckReport,
    ) -> Result<Self, StoreError> {
        let mut queues = Queues::default();
        let mut stmt = c.prepare(if blobs {
            "SELECT m.hub, m.instance_id, COALESCE(b.data, m.event) FROM inbox m \
             LEFT JOIN blobs b ON b.id = m.blob ORDER BY m.id"
        } else {
            "SELECT hub, instance_id, event FROM inbox ORDER BY id"
        })?;
        let mut rows = stmt.query([])?;
        let mut missing: BTreeMap<Key, usize> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let key: Key = (row.get(0)?, row.get(1)?);
            let event = row
                .get::<_, Option<Vec<u8>>>(2)?
                .map(|blob| decode_event(&blob))
                .transpose()?;
            match instances.get(&key) {
                None => *missing.entry(key).or_default() += 1,
                Some(instance) if instance.is_terminal() => report.stale_messages += 1,
                Some(_) => {
                    report.queued_messages += 1;
                    if let Some(kind) = event.and_then(|e| e.event_type) {
                        queues.inbox.entry(key).or_default().push(kind);
                    }
                }
            }
        }
        for ((hub, id), n) in missing {
            report.problem(format!(
                "{n} messages queued for {hub}/{id}, an instance that does not exist"
            ));
        }

        let mut stmt = c.prepare("SELECT hub, instance_id, task_id FROM activities")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (hub, id, task): (String, String, i32) = (row.get(0)?, row.get(1)?, row.get(2)?);
            report.queued_activities += 1;
            if !instances.contains_key(&(hub.clone(), id.clone())) {
                report.problem(format!(
                    "activity {task} queued for {hub}/{id}, an instance that does not exist"
                ));
            }
            queues.activities.insert((hub, id, task));
        }

        let entities: HashSet<Key> = {
            let mut stmt = c.prepare("SELECT hub, entity_id FROM entities")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        report.entities = entities.len();
        let mut stmt = c.prepare("SELECT hub, entity_id, event FROM entity_inbox ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (hub, entity): Key = (row.get(0)?, row.get(1)?);
            let event = decode_event(&row.get::<_, Vec<u8>>(2)?)?;
            report.queued_entity_messages += 1;
            if !entities.contains(&(hub.clone(), entity.clone())) {
                report.problem(format!(
                    "a message queued for entity {hub}/{entity}, which is not stored, so it is never dispatched"
                ));
            }
            match event.event_type {
                Some(EventType::EntityOperationCalled(m)) => {
                    queues.entity_requests.insert((hub, m.request_id));
                }
                Some(EventType::EntityLockRequested(m)) => {
                    queues.entity_requests.insert((hub, m.critical_section_id));
                }
                _ => {}
            }
        }
        Ok(queues)
    }

    fn inbox_has(&self, key: &Key, found: impl Fn(&EventType) -> bool) -> bool {
        self.inbox
            .get(key)
            .is_some_and(|events| events.iter().any(found))
    }
}

/// What an instance waits for, by the id the answer will carry.
#[derive(Default)]
struct Waits {
    tasks: HashMap<i32, usize>,
    timers: HashMap<i32, usize>,
    children: HashMap<i32, (String, usize)>,
    calls: HashMap<String, usize>,
    locks: HashMap<String, usize>,
}

fn check_history(
    key: &Key,
    row: &InstanceRow,
    history: &[HistoryEvent],
    queues: &Queues,
    instances: &HashMap<Key, InstanceRow>,
    report: &mut CheckReport,
) {
    let (hub, id) = key;
    let name = format!("{hub}/{id}");
    if history.is_empty() {
        // Started but never run yet, or terminated before its first turn.
        let pending = row.status == OrchestrationStatus::Pending as i32;
        let terminated = row.status == OrchestrationStatus::Terminated as i32;
        if pending {
            if !queues.inbox_has(key, |e| matches!(e, EventType::ExecutionStarted(_))) {
                report.problem(format!(
                    "{name} is pending but its ExecutionStarted is not queued (lost)"
                ));
            }
        } else if !terminated {
            report.problem(format!(
                "{name} has no history but status {}",
                status_from_i32(row.status).as_str_name()
            ));
        }
        return;
    }
    let started = history
        .iter()
        .filter(|e| matches!(e.event_type, Some(EventType::ExecutionStarted(_))))
        .count();
    if started != 1 {
        report.problem(format!("{name}: {started} ExecutionStarted events"));
    }
    let mut waits = Waits::default();
    let answered = |report: &mut CheckReport, what: &str, open: Option<&mut usize>| match open {
        Some(open) if *open > 0 => *open -= 1,
        Some(_) => report.problem(format!("{name}: {what} answered twice")),
        None => report.problem(format!("{name}: {what} answered but never scheduled")),
    };
    let mut completions = Vec::new();
    for event in history {
        let id = event.event_id;
        match &event.event_type {
            Some(EventType::TaskScheduled(_)) => *waits.tasks.entry(id).or_default() += 1,
            Some(EventType::TimerCreated(_)) => *waits.timers.entry(id).or_default() += 1,
            Some(EventType::SubOrchestrationInstanceCreated(s)) => {
                waits
                    .children
                    .entry(id)
                    .or_insert((s.instance_id.clone(), 0))
                    .1 += 1;
            }
            Some(EventType::EntityOperationCalled(c)) => {
                *waits.calls.entry(c.request_id.clone()).or_default() += 1;
            }
            Some(EventType::EntityLockRequested(l)) => {
                *waits
                    .locks
                    .entry(l.critical_section_id.clone())
                    .or_default() += 1;
            }
            Some(EventType::TaskCompleted(e)) => {
                let task = e.task_scheduled_id;
                answered(report, &format!("task {task}"), waits.tasks.get_mut(&task));
            }
            Some(EventType::TaskFailed(e)) => {
                let task = e.task_scheduled_id;
                answered(report, &format!("task {task}"), waits.tasks.get_mut(&task));
            }
            Some(EventType::TimerFired(e)) => {
                let timer = e.timer_id;
                answered(
                    report,
                    &format!("timer {timer}"),
                    waits.timers.get_mut(&timer),
                );
            }
            Some(EventType::SubOrchestrationInstanceCompleted(e)) => {
                let task = e.task_scheduled_id;
                let open = waits.children.get_mut(&task).map(|(_, n)| n);
                answered(report, &format!("sub-orchestration {task}"), open);
            }
            Some(EventType::SubOrchestrationInstanceFailed(e)) => {
                let task = e.task_scheduled_id;
                let open = waits.children.get_mut(&task).map(|(_, n)| n);
                answered(report, &format!("sub-orchestration {task}"), open);
            }
            Some(EventType::EntityOperationCompleted(e)) => {
                let request = &e.request_id;
                let open = waits.calls.get_mut(request);
                answered(report, &format!("entity call {request}"), open);
            }
            Some(EventType::EntityOperationFailed(e)) => {
                let request = &e.request_id;
                let open = waits.calls.get_mut(request);
                answered(report, &format!("entity call {request}"), open);
            }
            Some(EventType::EntityLockGranted(e)) => {
                let section = &e.critical_section_id;
                let open = waits.locks.get_mut(section);
                answered(report, &format!("lock {section}"), open);
            }
            Some(EventType::ExecutionCompleted(c)) => completions.push(c.orchestration_status),
            _ => {}
        }
    }

    if row.is_terminal() {
        let last_completes = matches!(
            history.last().and_then(|e| e.event_type.as_ref()),
            Some(EventType::ExecutionCompleted(_))
        );
        if completions.len() != 1 || !last_completes {
            report.problem(format!(
                "{name} finished ({}) but its history has {} ExecutionCompleted events{}",
                status_from_i32(row.status).as_str_name(),
                completions.len(),
                if last_completes { "" } else { ", not last" }
            ));
        } else if completions[0] != row.status {
            report.problem(format!(
                "{name}: status {} but its history completed it as {}",
                status_from_i32(row.status).as_str_name(),
                status_from_i32(completions[0]).as_str_name()
            ));
        }
        return;
    }
    if !completions.is_empty() {
        report.problem(format!(
            "{name} is {} but its history completed it",
            status_from_i32(row.status).as_str_name()
        ));
    }
    // A live instance: everything it still waits for must be on its way.
    let open = |n: &usize| *n > 0;
    for (task, _) in waits.tasks.iter().filter(|(_, n)| open(n)) {
        let queued = queues
            .activities
            .contains(&(hub.clone(), id.clone(), *task))
            || queues.inbox_has(key, |e| match e {
                EventType::TaskCompleted(c) => c.task_scheduled_id == *task,
                EventType::TaskFailed(f) => f.task_scheduled_id == *task,
                _ => false,
            });
        if !queued {
            report.problem(format!(
                "{name} waits for activity {task}, which is neither queued nor answered (lost)"
            ));
        }
    }
    for (timer, _) in waits.timers.iter().filter(|(_, n)| open(n)) {
        if !queues.inbox_has(
            key,
            |e| matches!(e, EventType::TimerFired(f) if f.timer_id == *timer),
        ) {
            report.problem(format!(
                "{name} waits for timer {timer}, which is not queued (lost)"
            ));
        }
    }
    for (task, (child, _)) in waits.children.iter().filter(|(_, (_, n))| open(n)) {
        let child_live = instances
            .get(&(hub.clone(), child.clone()))
            .is_some_and(|c| !c.is_terminal());
        let answer_queued = queues.inbox_has(key, |e| match e {
            EventType::SubOrchestrationInstanceCompleted(c) => c.task_scheduled_id == *task,
            EventType::SubOrchestrationInstanceFailed(f) => f.task_scheduled_id == *task,
            _ => false,
        });
        if !child_live && !answer_queued {
            report.problem(format!(
                "{name} waits for sub-orchestration {child}, which is neither running nor answered (lost)"
            ));
        }
    }
    for (request, _) in waits.calls.iter().filter(|(_, n)| open(n)) {
        let at_entity = queues
            .entity_requests
            .contains(&(hub.clone(), request.clone()));
        let answer_queued = queues.inbox_has(key, |e| match e {
            EventType::EntityOperationCompleted(c) => c.request_id == *request,
            EventType::EntityOperationFailed(f) => f.request_id == *request,
            _ => false,
        });
        if !at_entity && !answer_queued {
            report.problem(format!(
                "{name} waits for entity call {request}, which is neither queued nor answered (lost)"
            ));
        }
    }
    for (section, _) in waits.locks.iter().filter(|(_, n)| open(n)) {
        let travelling = queues
            .entity_requests
            .contains(&(hub.clone(), section.clone()));
        let granted = queues.inbox_has(
            key,
            |e| matches!(e, EventType::EntityLockGranted(g) if g.critical_section_id == *section),
        );
        if !travelling && !granted {
            report.problem(format!(
                "{name} waits for lock {section}, which is neither travelling nor granted (lost)"
            ));
        }
    }
}

fn locks(
    c: &Connection,
    instances: &HashMap<Key, InstanceRow>,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let mut stmt =
        c.prepare("SELECT hub, entity_id, locked_by FROM entities WHERE locked_by IS NOT NULL")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (hub, entity, holder) = row?;
        match instances.get(&(hub.clone(), holder.clone())) {
            Some(instance) if !instance.is_terminal() => {}
            Some(_) => report.problem(format!(
                "entity {hub}/{entity} is locked by {holder}, which has finished (orphan lock)"
            )),
            None => report.problem(format!(
                "entity {hub}/{entity} is locked by {holder}, which does not exist (orphan lock)"
            )),
        }
    }
    Ok(())
}
