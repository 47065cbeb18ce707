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
         UPDATE inbox SET lease_token = NULL
             WHERE id IN (SELECT id FROM inbox INDEXED BY inbox_held WHERE lease_token IS NOT NULL);
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
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_keeps_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        for _ in 0..2 {
            let conn = Connection::open(&path).unwrap();
            prepare(&conn, Synchronous::Full).unwrap();
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(version, MIGRATIONS.len() as i64);
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    #[test]
    fn a_version_1_file_gains_the_lease_indexes_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} PRAGMA user_version = 1;
                 INSERT INTO inbox (hub, instance_id, priority, visible_at) VALUES ('h', 'i', 1, 0);",
                MIGRATIONS[0]
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%ready' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["activities_ready", "inbox_ready"]);
        let queued: i64 = conn
            .query_row("SELECT COUNT(*) FROM inbox INDEXED BY inbox_ready WHERE hub = 'h' AND lease_token IS NULL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, 1);
    }

    #[test]
    fn a_version_3_file_gains_the_orchestration_version_of_queued_activities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} {} {} PRAGMA user_version = 3;
                 INSERT INTO instances (hub, instance_id, execution_id, name, version, status, created_at, updated_at)
                     VALUES ('h', 'v3', 'e', 'o', '3.0.0', 0, 0, 0), ('h', 'plain', 'e', 'o', NULL, 0, 0, 0);
                 INSERT INTO activities (hub, instance_id, execution_id, task_id, name, request)
                     VALUES ('h', 'v3', 'e', 0, 'act', x''), ('h', 'plain', 'e', 0, 'act', x'');",
                MIGRATIONS[0], MIGRATIONS[1], MIGRATIONS[2]
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        let versions: Vec<(String, Option<String>)> = conn
            .prepare(
                "SELECT instance_id, orchestration_version FROM activities ORDER BY instance_id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            versions,
            [
                ("plain".to_owned(), None),
                ("v3".to_owned(), Some("3.0.0".to_owned()))
            ]
        );
    }

    #[test]
    fn a_version_4_file_loses_what_cleaning_entity_storage_would_have_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} {} {} {} PRAGMA user_version = 4;
                 INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                     VALUES ('h', 'done', 'e', 'o', 1, 0, 0), ('h', 'live', 'e', 'o', 0, 0, 0);
                 INSERT INTO entities (hub, entity_id, name, state, created_at, last_modified_at, locked_by)
                     VALUES ('h', '@c@empty', 'c', NULL, 0, 0, NULL), ('h', '@c@full', 'c', '1', 0, 0, NULL),
                            ('h', '@c@queued', 'c', NULL, 0, 0, NULL), ('h', '@c@orphan', 'c', NULL, 0, 0, 'done'),
                            ('h', '@c@orphan-full', 'c', '2', 0, 0, 'gone'), ('h', '@c@held', 'c', NULL, 0, 0, 'live');
                 INSERT INTO entity_inbox (hub, entity_id, visible_at, event) VALUES ('h', '@c@queued', 0, x'');",
                MIGRATIONS[0], MIGRATIONS[1], MIGRATIONS[2], MIGRATIONS[3]
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        let entities: Vec<(String, Option<String>)> = conn
            .prepare("SELECT entity_id, locked_by FROM entities ORDER BY entity_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [
            ("@c@full", None),
            ("@c@held", Some("live")),
            ("@c@orphan-full", None),
            ("@c@queued", None),
        ];
        let expected: Vec<(String, Option<String>)> = expected
            .iter()
            .map(|(id, lock)| ((*id).to_owned(), lock.map(str::to_owned)))
            .collect();
        assert_eq!(entities, expected);
    }

    #[test]
    fn a_version_5_file_gains_the_creation_time_index_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} {} {} {} {} PRAGMA user_version = 5;
                 INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                     VALUES ('h', 'old', 'e', 'o', 1, 1000, 1000), ('h', 'new', 'e', 'o', 0, 9000, 9000);",
                MIGRATIONS[0], MIGRATIONS[1], MIGRATIONS[2], MIGRATIONS[3], MIGRATIONS[4]
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let recent: Vec<String> = conn
            .prepare(
                "SELECT instance_id FROM instances INDEXED BY instances_by_created \
                 WHERE hub = 'h' AND created_at >= 5000",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(recent, ["new"]);
    }

    #[test]
    fn a_version_6_file_gains_the_trace_columns_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v6.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} PRAGMA user_version = 6;
                 INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                     VALUES ('h', 'old', 'e', 'o', 0, 1000, 1000);",
                MIGRATIONS[..6].concat()
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let row: (String, Option<Vec<u8>>, Option<String>) = conn
            .query_row(
                "SELECT instance_id, trace_context, trace_execution_id FROM instances WHERE hub = 'h'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, ("old".to_owned(), None, None));
    }

    #[test]
    fn a_version_5_file_keeps_no_token_index_and_its_leases_are_released_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} {} {} {} {} PRAGMA user_version = 5;
                 INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at,
                                        lease_token, lease_expires_at)
                     VALUES ('h', 'leased', 'e', 'o', 0, 0, 0, 'old-token', 99), ('h', 'idle', 'e', 'o', 0, 0, 0, NULL, NULL);
                 INSERT INTO inbox (hub, instance_id, priority, visible_at, event, lease_token)
                     VALUES ('h', 'leased', 1, 0, x'', 'old-token');
                 INSERT INTO activities (hub, instance_id, execution_id, task_id, name, request, lease_token, lease_expires_at)
                     VALUES ('h', 'leased', 'e', 0, 'a', x'', 'old-activity-token', 99);",
                MIGRATIONS[0], MIGRATIONS[1], MIGRATIONS[2], MIGRATIONS[3], MIGRATIONS[4]
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        release_all_leases(&conn).unwrap();
        let token_indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND name IN \
                 ('instances_by_lease', 'inbox_by_lease', 'activities_by_lease', 'activities_by_hub')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(token_indexes, 0);
        let still_leased: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM instances WHERE lease_token IS NOT NULL OR lease_expires_at IS NOT NULL) \
                 + (SELECT COUNT(*) FROM inbox WHERE lease_token IS NOT NULL) \
                 + (SELECT COUNT(*) FROM activities WHERE lease_token IS NOT NULL OR lease_expires_at IS NOT NULL)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(still_leased, 0);
    }

    #[test]
    fn a_version_8_file_keeps_its_history_rows_and_lets_go_of_its_leases() {
        use crate::codec::{encode, event};
        use durable_proto::history_event::EventType;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8.db");
        let started = event(
            -1,
            1000,
            EventType::OrchestratorStarted(durable_proto::OrchestratorStartedEvent {}),
        );
        let completed = event(
            -1,
            1001,
            EventType::OrchestratorCompleted(durable_proto::OrchestratorCompletedEvent {}),
        );
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} PRAGMA user_version = 8;
                 INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at,
                                        lease_token, lease_expires_at, lease_started_at)
                     VALUES ('h', 'old', 'e', 'o', 0, 0, 0, 'x~old', 99, 1);
                 INSERT INTO inbox (hub, instance_id, priority, visible_at, event, lease_token)
                     VALUES ('h', 'old', 1, 0, NULL, 'x~old');
                 INSERT INTO activities (hub, instance_id, execution_id, task_id, name, request, lease_token,
                                         lease_expires_at)
                     VALUES ('h', 'old', 'e', 0, 'a', x'', 'y~1', 99);",
                MIGRATIONS[..8].concat()
            ))
            .unwrap();
            let mut insert = conn
                .prepare("INSERT INTO history (hub, instance_id, seq, event) VALUES ('h', 'old', ?1, ?2)")
                .unwrap();
            insert.execute((0, encode(&started))).unwrap();
            insert.execute((1, encode(&completed))).unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        release_all_leases(&conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        // The old rows read as before, and a turn appended after them follows in order.
        let next = event(
            -1,
            2000,
            EventType::OrchestratorStarted(durable_proto::OrchestratorStartedEvent {}),
        );
        super::super::instances::append_history(
            &conn,
            "h",
            "old",
            &[next.clone(), started.clone()],
        )
        .unwrap();
        assert_eq!(
            super::super::instances::history(&conn, "h", "old").unwrap(),
            [started.clone(), next, started]
        );
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM history", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
        let still_leased: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM instances WHERE lease_token IS NOT NULL OR lease_expires_at IS NOT NULL \
                         OR lease_started_at IS NOT NULL) \
                 + (SELECT COUNT(*) FROM inbox WHERE lease_token IS NOT NULL) \
                 + (SELECT COUNT(*) FROM activities WHERE lease_token IS NOT NULL OR lease_expires_at IS NOT NULL) \
                 + (SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE '%lease_expiry' AND name NOT LIKE 'entities%')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(still_leased, 0);
    }

    #[test]
    fn a_version_9_file_keeps_its_queued_messages_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v9.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} PRAGMA user_version = 9;
                 INSERT INTO inbox (hub, instance_id, priority, visible_at, event)
                     VALUES ('h', 'timer', 1, 5000, NULL), ('h', 'now', 1, 10, NULL);",
                MIGRATIONS[..9].concat()
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        prepare(&conn, Synchronous::Full).unwrap();
        assert_eq!(
            super::super::query::next_due(&conn, "h", 100).unwrap(),
            Some(5000)
        );
        // New messages are delayed only when queued for later.
        super::super::instances::enqueue(&conn, "h", "later", 1, i64::MAX - 1, None).unwrap();
        super::super::instances::enqueue(&conn, "h", "at-once", 1, 0, None).unwrap();
        let delayed: Vec<String> = conn
            .prepare("SELECT instance_id FROM inbox INDEXED BY inbox_delayed WHERE hub = 'h' AND delayed = 1 ORDER BY visible_at")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(delayed, ["now", "timer", "later"]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(prepare(&conn, Synchronous::Full).is_err());
    }
}
