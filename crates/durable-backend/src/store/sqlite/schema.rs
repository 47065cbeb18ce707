//! Schema, migrations (`PRAGMA user_version`) and task hubs.

use rusqlite::Connection;

use crate::codec::now_ms;
use crate::error::StoreError;
use crate::options::Synchronous;

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE hubs (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE instances (
    hub TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    status INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    completed_at INTEGER,
    scheduled_start_at INTEGER,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    failure BLOB,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    parent_name TEXT,
    parent_version TEXT,
    tags TEXT,
    lease_token TEXT,
    lease_expires_at INTEGER,
    lease_started_at INTEGER,
    PRIMARY KEY (hub, instance_id)
) WITHOUT ROWID;
CREATE INDEX instances_by_status ON instances (hub, status);
CREATE INDEX instances_by_parent ON instances (hub, parent_instance_id);
CREATE INDEX instances_by_lease ON instances (hub, lease_token);
CREATE INDEX instances_by_lease_expiry ON instances (hub, lease_expires_at);
CREATE TABLE history (
    hub TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (hub, instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY,
    hub TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    event BLOB,
    lease_token TEXT
);
CREATE INDEX inbox_by_time ON inbox (hub, visible_at);
CREATE INDEX inbox_in_order ON inbox (hub, id);
CREATE INDEX inbox_by_instance ON inbox (hub, instance_id, priority, id);
CREATE INDEX inbox_by_lease ON inbox (hub, lease_token);
CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    hub TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    request BLOB NOT NULL,
    lease_token TEXT,
    lease_expires_at INTEGER
);
CREATE INDEX activities_by_hub ON activities (hub, lease_expires_at);
CREATE INDEX activities_by_lease ON activities (hub, lease_token);
CREATE INDEX activities_by_instance ON activities (hub, instance_id);
CREATE TABLE entities (
    hub TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT,
    created_at INTEGER NOT NULL,
    last_modified_at INTEGER NOT NULL,
    locked_by TEXT,
    lock_section TEXT,
    lease_token TEXT,
    lease_expires_at INTEGER,
    PRIMARY KEY (hub, entity_id)
) WITHOUT ROWID;
CREATE INDEX entities_by_lease ON entities (hub, lease_token);
CREATE TABLE entity_inbox (
    id INTEGER PRIMARY KEY,
    hub TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    sender TEXT,
    event BLOB NOT NULL,
    lease_token TEXT
);
CREATE INDEX entity_inbox_by_time ON entity_inbox (hub, visible_at);
CREATE INDEX entity_inbox_by_entity ON entity_inbox (hub, entity_id, id);
CREATE INDEX entity_inbox_by_lease ON entity_inbox (hub, lease_token);
"#,
    r#"
DROP INDEX inbox_in_order;
CREATE INDEX inbox_ready ON inbox (hub, id) WHERE lease_token IS NULL;
CREATE INDEX activities_ready ON activities (hub, id) WHERE lease_token IS NULL;
"#,
    r#"
CREATE INDEX entities_by_lock ON entities (hub, locked_by) WHERE locked_by IS NOT NULL;
CREATE INDEX entities_by_lease_expiry ON entities (hub, lease_expires_at) WHERE lease_expires_at IS NOT NULL;
"#,
    // Work-item filters match an activity scheduled without a version of its own against the version of the
    // orchestration that scheduled it. Activities already queued take their instance's current version.
    r#"
ALTER TABLE activities ADD COLUMN orchestration_version TEXT;
UPDATE activities SET orchestration_version =
    (SELECT i.version FROM instances i WHERE i.hub = activities.hub AND i.instance_id = activities.instance_id);
"#,
    // Entities are now dropped as soon as they are empty, and locks are never left behind: do once what earlier
    // versions left for CleanEntityStorage (locks held by finished or vanished orchestrations, then empty entities).
    r#"
UPDATE entities SET locked_by = NULL, lock_section = NULL
    WHERE locked_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM instances i
        WHERE i.hub = entities.hub AND i.instance_id = entities.locked_by AND i.status NOT IN (1, 3, 4, 5));
DELETE FROM entities WHERE state IS NULL AND locked_by IS NULL
    AND NOT EXISTS (SELECT 1 FROM entity_inbox m WHERE m.hub = entities.hub AND m.entity_id = entities.entity_id);
"#,
    // Instance lists filtered by creation time (`QueryInstances` with a time window, as dashboards ask) read the
    // window from this index instead of every instance of the hub.
    r#"
CREATE INDEX instances_by_created ON instances (hub, created_at);
"#,
    // Trace contexts the protocol carries but the events do not: the orchestration span a worker returned
    // (`OrchestratorResponse.orchestrationTraceContext`, encoded), handed back with the next turns of the same
    // execution as the scheduler does, and a signal's `parentTraceContext`, handed to the entity's worker as the
    // operation's `traceContext`.
    r#"
ALTER TABLE instances ADD COLUMN trace_context BLOB;
ALTER TABLE instances ADD COLUMN trace_execution_id TEXT;
ALTER TABLE entity_inbox ADD COLUMN trace_context BLOB;
"#,
    // Orchestrator and activity lease tokens now carry the key of their row, so nothing looks rows up by token:
    // the token indexes go (each lease and each completion rewrote an entry at a random place in them). Indexes
    // of columns that are mostly NULL keep only the rows that have a value, so inserting and deleting queued work
    // and finished instances no longer touches them.
    r#"
DROP INDEX instances_by_lease;
DROP INDEX inbox_by_lease;
DROP INDEX activities_by_lease;
DROP INDEX instances_by_lease_expiry;
CREATE INDEX instances_by_lease_expiry ON instances (hub, lease_expires_at) WHERE lease_expires_at IS NOT NULL;
DROP INDEX activities_by_hub;
CREATE INDEX activities_by_lease_expiry ON activities (hub, lease_expires_at) WHERE lease_expires_at IS NOT NULL;
DROP INDEX instances_by_parent;
CREATE INDEX instances_by_parent ON instances (hub, parent_instance_id) WHERE parent_instance_id IS NOT NULL;
"#,
    // A turn's new events are one history row (`turn` = 1: the events encoded as a `HistoryChunk`); rows written
    // before hold one event each and are read as they are. Orchestrator and activity leases are held in memory
    // now: leases a previous version left in the rows are let go once here, and the indexes that found them go.
    r#"
ALTER TABLE history ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
UPDATE instances SET lease_token = NULL, lease_expires_at = NULL, lease_started_at = NULL
    WHERE lease_expires_at IS NOT NULL;
UPDATE inbox SET lease_token = NULL WHERE lease_token IS NOT NULL;
UPDATE activities SET lease_token = NULL, lease_expires_at = NULL WHERE lease_expires_at IS NOT NULL;
DROP INDEX instances_by_lease_expiry;
DROP INDEX activities_by_lease_expiry;
"#,
    // Only messages queued for later (timers, scheduled starts) are looked up by time, for the next due moment:
    // the time index keeps only those, so a message visible at once no longer adds and removes an entry there.
    // Rows already queued count as delayed, so none is missed.
    r#"
ALTER TABLE inbox ADD COLUMN delayed INTEGER NOT NULL DEFAULT 1;
DROP INDEX inbox_by_time;
CREATE INDEX inbox_delayed ON inbox (hub, visible_at) WHERE delayed = 1;
"#,
    // A message that arrives for an instance whose turn is out is queued outside the ready index (`lease_token`
    // set) until that turn ends; this index finds an instance's held messages then, and at start-up.
    r#"
CREATE INDEX inbox_held ON inbox (hub, instance_id) WHERE lease_token IS NOT NULL;
"#,
    // One B-tree fewer per message: the inbox is clustered by instance (its messages in delivery order), so a turn
    // reads its messages from the table itself and the per-instance index goes; `id` keeps the arrival order for
    // the ready index and is now given by the writer (see `leases::next_message_id`).
    r#"
CREATE TABLE inbox_v12 (
    hub TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    id INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    event BLOB,
    lease_token TEXT,
    delayed INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (hub, instance_id, priority, id)
) WITHOUT ROWID;
INSERT INTO inbox_v12 (hub, instance_id, priority, id, visible_at, event, lease_token, delayed)
    SELECT hub, instance_id, priority, id, visible_at, event, lease_token, delayed FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_v12 RENAME TO inbox;
CREATE INDEX inbox_ready ON inbox (hub, id) WHERE lease_token IS NULL;
CREATE INDEX inbox_delayed ON inbox (hub, visible_at) WHERE delayed = 1;
CREATE INDEX inbox_held ON inbox (hub, instance_id) WHERE lease_token IS NOT NULL;
"#,
    // The lease calls walk the ready indexes without reading the rows they pass over: every column the walks name
    // is in the index. `lease_token` is always NULL there, but SQLite counts the walk's `lease_token IS NULL` (the
    // term that selects the partial index) as reading the table unless the index holds the column; the inbox's
    // entries also carry `visible_at`, and with the table's key `instance_id`, which is all the walk reads.
    r#"
DROP INDEX inbox_ready;
CREATE INDEX inbox_ready ON inbox (hub, id, visible_at, lease_token) WHERE lease_token IS NULL;
DROP INDEX activities_ready;
CREATE INDEX activities_ready ON activities (hub, id, lease_token) WHERE lease_token IS NULL;
"#,
    // Instances get row ids, and their payloads go to the end of the row. Clustered by its key (`WITHOUT ROWID`),
    // the table held whole rows in its interior pages, so a lookup by key compared against, and read the overflow
    // pages of, every row over about 1 KB on its way down. Now the key is a unique index beside the table, a
    // lookup reads one small index entry per level, and reading a row's leading columns stops before the payloads
    // (custom status, tags, failure, output, input). The status and creation-time indexes keep the instance ID, which
    // the table's key gave them before: lists by status still come in ID order from the index, and a page of a
    // time window tests its continuation token without reading rows. The lease columns orchestrator
    // turns stopped using at version 9 go.
    r#"
CREATE TABLE instances_v14 (
    hub TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    status INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    completed_at INTEGER,
    scheduled_start_at INTEGER,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    parent_name TEXT,
    parent_version TEXT,
    trace_execution_id TEXT,
    trace_context BLOB,
    custom_status TEXT,
    tags TEXT,
    failure BLOB,
    output TEXT,
    input TEXT
);
INSERT INTO instances_v14 (hub, instance_id, execution_id, name, version, status, created_at, updated_at,
        completed_at, scheduled_start_at, parent_instance_id, parent_execution_id, parent_task_id, parent_name,
        parent_version, trace_execution_id, trace_context, custom_status, tags, failure, output, input)
    SELECT hub, instance_id, execution_id, name, version, status, created_at, updated_at,
        completed_at, scheduled_start_at, parent_instance_id, parent_execution_id, parent_task_id, parent_name,
        parent_version, trace_execution_id, trace_context, custom_status, tags, failure, output, input
    FROM instances ORDER BY hub, created_at, instance_id;
DROP TABLE instances;
ALTER TABLE instances_v14 RENAME TO instances;
CREATE UNIQUE INDEX instances_by_key ON instances (hub, instance_id);
CREATE INDEX instances_by_status ON instances (hub, status, instance_id);
CREATE INDEX instances_by_created ON instances (hub, created_at, instance_id);
CREATE INDEX instances_by_parent ON instances (hub, parent_instance_id) WHERE parent_instance_id IS NOT NULL;
"#,
    // History and inbox events over 800 bytes move to `blobs`, a rowid table, and their rows keep an empty event
    // and the blob's id (see `blobs.rs`): a search of the clustered tables then never reads a large row's
    // overflow pages. The rows already stored move too, and triggers delete a blob with the row naming it.
    r#"
CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
ALTER TABLE history ADD COLUMN blob INTEGER;
ALTER TABLE inbox ADD COLUMN blob INTEGER;
CREATE TEMP TABLE spilled (hub TEXT, instance_id TEXT, n INTEGER, id INTEGER, PRIMARY KEY (hub, instance_id, n));
INSERT INTO spilled SELECT hub, instance_id, seq, row_number() OVER (ORDER BY hub, instance_id, seq)
    FROM history WHERE length(event) > 800;
INSERT INTO blobs (id, data) SELECT s.id, h.event FROM spilled s
    JOIN history h ON h.hub = s.hub AND h.instance_id = s.instance_id AND h.seq = s.n;
UPDATE history SET blob = s.id, event = x'' FROM spilled s
    WHERE s.hub = history.hub AND s.instance_id = history.instance_id AND s.n = history.seq;
DELETE FROM spilled;
INSERT INTO spilled SELECT hub, instance_id, id,
        (SELECT COALESCE(MAX(id), 0) FROM blobs) + row_number() OVER (ORDER BY hub, instance_id, id)
    FROM inbox WHERE length(event) > 800;
INSERT INTO blobs (id, data) SELECT s.id, m.event FROM spilled s
    JOIN inbox m ON m.hub = s.hub AND m.instance_id = s.instance_id AND m.id = s.n;
UPDATE inbox SET blob = s.id, event = x'' FROM spilled s
    WHERE s.hub = inbox.hub AND s.instance_id = inbox.instance_id AND s.n = inbox.id;
DROP TABLE spilled;
CREATE TRIGGER history_blob AFTER DELETE ON history WHEN old.blob IS NOT NULL
    BEGIN DELETE FROM blobs WHERE id = old.blob; END;
CREATE TRIGGER inbox_blob AFTER DELETE ON inbox WHEN old.blob IS NOT NULL
    BEGIN DELETE FROM blobs WHERE id = old.blob; END;
"#,
    // Entity states over 800 bytes move to `blobs` too: the row keeps an empty state (so `state IS NULL` still
    // means "no state") and the blob's id in `state_blob`. A new state's blob replaces the old one, which a
    // trigger deletes, as it deletes the blob of a removed entity.
    r#"
ALTER TABLE entities ADD COLUMN state_blob INTEGER;
CREATE TEMP TABLE spilled (hub TEXT, entity_id TEXT, id INTEGER, PRIMARY KEY (hub, entity_id));
INSERT INTO spilled SELECT hub, entity_id,
        (SELECT COALESCE(MAX(id), 0) FROM blobs) + row_number() OVER (ORDER BY hub, entity_id)
    FROM entities WHERE length(CAST(state AS BLOB)) > 800;
INSERT INTO blobs (id, data) SELECT s.id, CAST(e.state AS BLOB) FROM spilled s
    JOIN entities e ON e.hub = s.hub AND e.entity_id = s.entity_id;
UPDATE entities SET state_blob = s.id, state = '' FROM spilled s
    WHERE s.hub = entities.hub AND s.entity_id = entities.entity_id;
DROP TABLE spilled;
CREATE TRIGGER entity_state_blob AFTER DELETE ON entities WHEN old.state_blob IS NOT NULL
    BEGIN DELETE FROM blobs WHERE id = old.state_blob; END;
CREATE TRIGGER entity_state_blob_replaced AFTER UPDATE OF state_blob ON entities
    WHEN old.state_blob IS NOT NULL AND old.state_blob IS NOT new.state_blob
    BEGIN DELETE FROM blobs WHERE id = old.state_blob; END;
"#,
];

/// Sets the connection up (WAL, durability, foreign-key-free schema) and brings the schema to the latest version.
pub(super) fn prepare(conn: &Connection, synchronous: Synchronous) -> Result<(), StoreError> {
    // WAL lets a reader (e.g. `sqlite3` by hand) look while the backend writes; in memory it silently stays "memory".
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    stable_plans(conn)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let latest = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version > latest {
        return Err(StoreError::Internal(format!(
            "the database has schema version {version}, newer than this build understands ({latest})"
        )));
    }
    for (index, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let next = i64::try_from(index + 1).unwrap_or(i64::MAX);
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {migration} PRAGMA user_version = {next}; COMMIT;"
        ))?;
    }
    Ok(())
}

/// Keeps every compiled statement's plan whatever values are bound. Without it SQLite marks a statement whose plan
/// could depend on a bound value (a `LIMIT ?`, an equality with a small integer) to be compiled again whenever that
/// parameter is bound anew: the hot statements were parsed and planned again on most executions. The plans here
/// never depend on the values (the lease queries name their index).
pub(super) fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Leases belong to the work-item streams of the process that granted them; a freshly opened store has no streams,
/// so whatever was in flight when the previous process stopped is handed out again at once. Orchestrator and
/// activity leases are only in memory (the migration to version 9 let go of those earlier versions stored), and so
/// are the marks of messages held back for a turn that was out; entity leases are in their rows.
pub(super) fn release_all_leases(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         UPDATE entities SET lease_token = NULL, lease_expires_at = NULL WHERE lease_token IS NOT NULL;
         UPDATE entity_inbox SET lease_token = NULL WHERE lease_token IS NOT NULL;
         UPDATE inbox INDEXED BY inbox_held SET lease_token = NULL WHERE lease_token IS NOT NULL;
         COMMIT;",
    )?;
    Ok(())
}

pub(super) fn ensure_hub(conn: &Connection, hub: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO hubs (name, created_at) VALUES (?1, ?2)",
        (hub, now_ms()),
    )?;
    Ok(())
}

pub(super) fn delete_hub(conn: &Connection, hub: &str) -> Result<(), StoreError> {
    super::leases::drop_hub(hub);
    // The triggers of `history` and `inbox` take their blobs along.
    for table in [
        "instances",
        "history",
        "inbox",
        "activities",
        "entities",
        "entity_inbox",
    ] {
        conn.execute(&format!("DELETE FROM {table} WHERE hub = ?1"), [hub])?;
    }
    conn.execute("DELETE FROM hubs WHERE name = ?1", [hub])?;
    Ok(())
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
