//! The schema and its migrations: a file of each earlier version keeps its rows, and they read as before.

use super::*;

/// A database file as schema version `version` left it (that version's migrations, then what `setup` writes),
/// opened again as the store opens a file and checked to be at the latest version (`prepare` migrated it). The
/// file lives as long as the returned directory.
fn opened_after_version(
    version: usize,
    setup: impl FnOnce(&Connection),
) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("v{version}.db"));
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "{} PRAGMA user_version = {version};",
            MIGRATIONS[..version].concat()
        ))
        .unwrap();
        setup(&conn);
    }
    let conn = Connection::open(&path).unwrap();
    prepare(&conn, Synchronous::Full).unwrap();
    let migrated: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(migrated, MIGRATIONS.len() as i64);
    (dir, conn)
}

/// The first column of every row `sql` returns.
fn first_column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A lease call for one orchestrator turn and up to ten activities.
fn one_turn_and_ten_activities() -> crate::store::LeaseRequest {
    crate::store::LeaseRequest {
        orchestrations: 1,
        activities: 10,
        orchestration_lease_ms: 60_000,
        activity_lease_ms: 60_000,
        ..Default::default()
    }
}

/// The row ids of the activities of hub `h` that `request` leases at time 100, in the order handed out.
fn leased_activity_rows(
    conn: &Connection,
    request: &crate::store::LeaseRequest,
) -> Vec<Option<i64>> {
    super::super::activity::lease(conn, "h", request, 100)
        .unwrap()
        .iter()
        .map(|w| super::super::activity::leased_row(&w.token))
        .collect()
}

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
    let (_dir, conn) = opened_after_version(1, |c| {
        c.execute_batch(
            "INSERT INTO inbox (hub, instance_id, priority, visible_at) VALUES ('h', 'i', 1, 0);",
        )
        .unwrap();
    });
    let indexes: Vec<String> = first_column(
        &conn,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%ready' ORDER BY name",
    );
    assert_eq!(indexes, ["activities_ready", "inbox_ready"]);
    let queued: i64 = conn
        .query_row("SELECT COUNT(*) FROM inbox INDEXED BY inbox_ready WHERE hub = 'h' AND lease_token IS NULL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 1);
}

#[test]
fn a_version_3_file_gains_the_orchestration_version_of_queued_activities() {
    let (_dir, conn) = opened_after_version(3, |c| {
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, version, status, created_at, updated_at)
                 VALUES ('h', 'v3', 'e', 'o', '3.0.0', 0, 0, 0), ('h', 'plain', 'e', 'o', NULL, 0, 0, 0);
             INSERT INTO activities (hub, instance_id, execution_id, task_id, name, request)
                 VALUES ('h', 'v3', 'e', 0, 'act', x''), ('h', 'plain', 'e', 0, 'act', x'');",
        )
        .unwrap();
    });
    let versions: Vec<(String, Option<String>)> = conn
        .prepare("SELECT instance_id, orchestration_version FROM activities ORDER BY instance_id")
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
    let (_dir, conn) = opened_after_version(4, |c| {
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                 VALUES ('h', 'done', 'e', 'o', 1, 0, 0), ('h', 'live', 'e', 'o', 0, 0, 0);
             INSERT INTO entities (hub, entity_id, name, state, created_at, last_modified_at, locked_by)
                 VALUES ('h', '@c@empty', 'c', NULL, 0, 0, NULL), ('h', '@c@full', 'c', '1', 0, 0, NULL),
                        ('h', '@c@queued', 'c', NULL, 0, 0, NULL), ('h', '@c@orphan', 'c', NULL, 0, 0, 'done'),
                        ('h', '@c@orphan-full', 'c', '2', 0, 0, 'gone'), ('h', '@c@held', 'c', NULL, 0, 0, 'live');
             INSERT INTO entity_inbox (hub, entity_id, visible_at, event) VALUES ('h', '@c@queued', 0, x'');",
        )
        .unwrap();
    });
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
    let (_dir, conn) = opened_after_version(5, |c| {
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                 VALUES ('h', 'old', 'e', 'o', 1, 1000, 1000), ('h', 'new', 'e', 'o', 0, 9000, 9000);",
        )
        .unwrap();
    });
    let recent: Vec<String> = first_column(
        &conn,
        "SELECT instance_id FROM instances INDEXED BY instances_by_created \
             WHERE hub = 'h' AND created_at >= 5000",
    );
    assert_eq!(recent, ["new"]);
}

#[test]
fn a_version_6_file_gains_the_trace_columns_and_keeps_its_rows() {
    let (_dir, conn) = opened_after_version(6, |c| {
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                 VALUES ('h', 'old', 'e', 'o', 0, 1000, 1000);",
        )
        .unwrap();
    });
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
    let (_dir, conn) = opened_after_version(5, |c| {
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at,
                                    lease_token, lease_expires_at)
                 VALUES ('h', 'leased', 'e', 'o', 0, 0, 0, 'old-token', 99), ('h', 'idle', 'e', 'o', 0, 0, 0, NULL, NULL);
             INSERT INTO inbox (hub, instance_id, priority, visible_at, event, lease_token)
                 VALUES ('h', 'leased', 1, 0, x'', 'old-token');
             INSERT INTO activities (hub, instance_id, execution_id, task_id, name, request, lease_token, lease_expires_at)
                 VALUES ('h', 'leased', 'e', 0, 'a', x'', 'old-activity-token', 99);",
        )
        .unwrap();
    });
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
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM instances WHERE hub = 'h'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, 2);
    let still_leased: i64 = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM pragma_table_info('instances') WHERE name LIKE 'lease%') \
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
    let (_dir, conn) = opened_after_version(8, |c| {
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at,
                                    lease_token, lease_expires_at, lease_started_at)
                 VALUES ('h', 'old', 'e', 'o', 0, 0, 0, 'x~old', 99, 1);
             INSERT INTO inbox (hub, instance_id, priority, visible_at, event, lease_token)
                 VALUES ('h', 'old', 1, 0, NULL, 'x~old');
             INSERT INTO activities (hub, instance_id, execution_id, task_id, name, request, lease_token,
                                     lease_expires_at)
                 VALUES ('h', 'old', 'e', 0, 'a', x'', 'y~1', 99);",
        )
        .unwrap();
        let mut insert = c
            .prepare(
                "INSERT INTO history (hub, instance_id, seq, event) VALUES ('h', 'old', ?1, ?2)",
            )
            .unwrap();
        insert.execute((0, encode(&started))).unwrap();
        insert.execute((1, encode(&completed))).unwrap();
    });
    release_all_leases(&conn).unwrap();
    // The old rows read as before, and a turn appended after them follows in order.
    let next = event(
        -1,
        2000,
        EventType::OrchestratorStarted(durable_proto::OrchestratorStartedEvent {}),
    );
    super::super::instances::append_history(&conn, "h", "old", &[next.clone(), started.clone()])
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
            "SELECT (SELECT COUNT(*) FROM pragma_table_info('instances') WHERE name LIKE 'lease%') \
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
    let (_dir, conn) = opened_after_version(9, |c| {
        c.execute_batch(
            "INSERT INTO inbox (hub, instance_id, priority, visible_at, event)
                 VALUES ('h', 'timer', 1, 5000, NULL), ('h', 'now', 1, 10, NULL);",
        )
        .unwrap();
    });
    assert_eq!(
        super::super::query::next_due(&conn, "h", 100).unwrap(),
        Some(5000)
    );
    // New messages are delayed only when queued for later.
    super::super::instances::enqueue(&conn, "h", "later", 1, i64::MAX - 1, None).unwrap();
    super::super::instances::enqueue(&conn, "h", "at-once", 1, 0, None).unwrap();
    let delayed: Vec<String> = first_column(
        &conn,
        "SELECT instance_id FROM inbox INDEXED BY inbox_delayed WHERE hub = 'h' AND delayed = 1 ORDER BY visible_at",
    );
    assert_eq!(delayed, ["now", "timer", "later"]);
}

#[test]
fn a_version_11_file_keeps_its_queues_in_order_and_new_work_goes_after_it() {
    use super::super::{activity, instances, orchestration};
    let (_dir, conn) = opened_after_version(11, |c| {
        // Ids as a version 11 file gives them: one sequence over all hubs and instances. Message 4 was held back
        // for a turn that was out when the previous process stopped; message 5 is a timer.
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                 VALUES ('h', 'a', 'e', 'o', 0, 0, 0), ('h', 'b', 'e', 'o', 0, 0, 0);
             INSERT INTO inbox (id, hub, instance_id, priority, visible_at, event, delayed, lease_token)
                 VALUES (1, 'h', 'a', 1, 0, NULL, 0, NULL), (2, 'h', 'b', 1, 0, NULL, 0, NULL),
                        (3, 'h', 'a', 0, 0, NULL, 0, NULL), (4, 'h', 'b', 1, 0, NULL, 0, 'held'),
                        (5, 'h', 'a', 1, 9000, NULL, 1, NULL);
             INSERT INTO activities (id, hub, instance_id, execution_id, task_id, name, request)
                 VALUES (1, 'h', 'a', 'e', 0, 'first', x''), (2, 'h', 'b', 'e', 0, 'second', x''),
                        (3, 'g', 'a', 'e', 0, 'other hub', x'');",
        )
        .unwrap();
    });
    release_all_leases(&conn).unwrap();
    assert_eq!(
        first_column::<String>(
            &conn,
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('inbox', 'activities') \
             ORDER BY name"
        ),
        [
            "activities_by_instance",
            "activities_ready",
            "inbox_delayed",
            "inbox_held",
            "inbox_ready"
        ]
    );
    // An instance's messages are one range of the table, in delivery order (priority first).
    let keys: Vec<(i64, i64)> = conn
        .prepare("SELECT priority, id FROM inbox WHERE hub = 'h' AND instance_id = 'a'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys, [(0, 3), (1, 1), (1, 5)]);
    // A new message comes after every stored one in the ready queue, the held one is back in it, and the timer
    // is still due.
    instances::enqueue(&conn, "h", "a", 1, 0, None).unwrap();
    assert_eq!(
        first_column::<String>(
            &conn,
            "SELECT instance_id || id FROM inbox INDEXED BY inbox_ready \
             WHERE hub = 'h' AND lease_token IS NULL ORDER BY id"
        ),
        ["a1", "b2", "a3", "b4", "a5", "a6"]
    );
    assert_eq!(
        super::super::query::next_due(&conn, "h", 100).unwrap(),
        Some(9000)
    );
    let request = one_turn_and_ten_activities();
    // The oldest ready message picks the instance; its turn gets every visible message of it, in order.
    let leased = orchestration::lease(&conn, "h", &request, 100).unwrap();
    assert_eq!(leased.len(), 1);
    let Some(durable_proto::work_item::Request::OrchestratorRequest(turn)) =
        leased[0].item.request.as_ref()
    else {
        panic!("not an orchestrator turn: {:?}", leased[0].item);
    };
    assert_eq!(turn.instance_id, "a");
    // The activity queue is leased in order, one hub at a time, a new activity last.
    let owner = instances::load(&conn, "h", "b").unwrap().unwrap();
    let action = durable_proto::ScheduleTaskAction {
        name: "third".into(),
        ..Default::default()
    };
    activity::schedule(&conn, "h", &owner, 1, action).unwrap();
    let queue = leased_activity_rows(&conn, &request);
    assert_eq!(queue, [Some(1), Some(2), Some(4)]);
}

#[test]
fn a_version_12_file_walks_its_ready_queues_from_the_indexes_alone_and_in_the_same_order() {
    use super::super::{activity, instances, leases, orchestration};
    let (_dir, conn) = opened_after_version(12, |c| {
        // Message 2 was held back for a turn that was out when the previous process stopped; message 4 is a timer.
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
                 VALUES ('h', 'a', 'e', 'o', 0, 0, 0), ('h', 'b', 'e', 'o', 0, 0, 0), ('h', 'c', 'e', 'o', 0, 0, 0);
             INSERT INTO inbox (hub, instance_id, priority, id, visible_at, event, delayed, lease_token)
                 VALUES ('h', 'b', 1, 1, 0, NULL, 0, NULL), ('h', 'a', 1, 2, 0, NULL, 0, 'held'),
                        ('h', 'b', 1, 3, 0, NULL, 0, NULL), ('h', 'c', 1, 4, 9000, NULL, 1, NULL),
                        ('g', 'a', 1, 5, 0, NULL, 0, NULL);
             INSERT INTO activities (id, hub, instance_id, execution_id, task_id, name, request)
                 VALUES (1, 'h', 'a', 'e', 0, 'first', x''), (2, 'g', 'a', 'e', 0, 'other hub', x''),
                        (3, 'h', 'b', 'e', 0, 'second', x'');",
        )
        .unwrap();
    });
    release_all_leases(&conn).unwrap();
    let strings = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map(params, |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let columns = "SELECT name FROM pragma_index_info(?1) ORDER BY seqno";
    assert_eq!(
        strings(columns, &[&"inbox_ready"]),
        ["hub", "id", "visible_at", "lease_token"]
    );
    assert_eq!(
        strings(columns, &[&"activities_ready"]),
        ["hub", "id", "lease_token"]
    );
    // The held message is back in the queue; the timer is walked once it is due.
    assert_eq!(
        strings(orchestration::QUEUE_WALK, &[&"h", &100]),
        ["b", "a", "b"]
    );
    assert_eq!(
        strings(orchestration::QUEUE_WALK, &[&"h", &9000]),
        ["b", "a", "b", "c"]
    );
    let ids: Vec<i64> = conn
        .prepare(activity::QUEUE_WALK)
        .unwrap()
        .query_map(["h"], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, [1, 3]);
    // The leases follow the walks: the oldest message picks its instance, the activities go in order.
    leases::install(leases::Leases::default());
    let request = one_turn_and_ten_activities();
    let leased = orchestration::lease(&conn, "h", &request, 100).unwrap();
    assert_eq!(
        leased
            .iter()
            .map(|w| w.token.as_str())
            .filter_map(instances::leased_instance)
            .collect::<Vec<_>>(),
        ["b"]
    );
    let queue = leased_activity_rows(&conn, &request);
    assert_eq!(queue, [Some(1), Some(3)]);
}

#[test]
fn a_version_13_file_keeps_its_instances_whole_with_their_payloads_after_the_small_columns() {
    use super::super::instances;
    let input = "i".repeat(20_000);
    let (_dir, conn) = opened_after_version(13, |c| {
        c.execute(
            "INSERT INTO instances (hub, instance_id, execution_id, name, version, status, created_at, updated_at,
                 completed_at, scheduled_start_at, input, output, custom_status, failure, parent_instance_id,
                 parent_execution_id, parent_task_id, parent_name, parent_version, tags, lease_token,
                 trace_context, trace_execution_id)
             VALUES ('h', 'child', 'e2', 'Order', 'v1', 3, 10, 20, 30, 5, ?1, 'out', 'half way', NULL, 'parent',
                 'e1', 7, 'Parent', 'v0', '{\"team\":\"a\"}', 'stale', x'0102', 'e2'),
                 ('h', 'parent', 'e1', 'Parent', NULL, 0, 1, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                 ('g', 'child', 'x', 'Other', NULL, 1, 2, 2, NULL, NULL, 'other hub', NULL, NULL, NULL, NULL,
                 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            [&input],
        )
        .unwrap();
    });
    let child = instances::load(&conn, "h", "child").unwrap().unwrap();
    assert_eq!(
        (
            child.execution_id.as_str(),
            child.name.as_str(),
            child.version.as_deref(),
            child.status,
            child.created_at,
            child.updated_at,
            child.completed_at,
            child.scheduled_start_at,
        ),
        ("e2", "Order", Some("v1"), 3, 10, 20, Some(30), Some(5))
    );
    assert_eq!(child.input.as_deref(), Some(input.as_str()));
    assert_eq!(
        (child.output.as_deref(), child.custom_status.as_deref()),
        (Some("out"), Some("half way"))
    );
    let parent = child.parent.unwrap();
    assert_eq!(
        (
            parent.instance_id.as_str(),
            parent.execution_id.as_deref(),
            parent.task_id
        ),
        ("parent", Some("e1"), 7)
    );
    assert_eq!(child.tags.get("team").map(String::as_str), Some("a"));
    let trace: (Vec<u8>, String) = conn
        .query_row(
            "SELECT trace_context, trace_execution_id FROM instances WHERE hub = 'h' AND instance_id = 'child'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(trace, (vec![1, 2], "e2".to_owned()));
    assert_eq!(
        instances::load(&conn, "g", "child")
            .unwrap()
            .unwrap()
            .input
            .as_deref(),
        Some("other hub")
    );
    // Row ids, the key a unique index, the payloads last (a read of the leading columns stops before them).
    let rowids: i64 = conn
        .query_row("SELECT COUNT(rowid) FROM instances", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rowids, 3);
    let columns: Vec<String> = first_column(
        &conn,
        "SELECT name FROM pragma_table_info('instances') ORDER BY cid",
    );
    assert_eq!(
        columns[columns.len() - 5..],
        ["custom_status", "tags", "failure", "output", "input"]
    );
    assert!(
        !columns.iter().any(|c| c.starts_with("lease")),
        "{columns:?}"
    );
    let duplicate = conn.execute(
        "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at)
             VALUES ('h', 'child', 'e3', 'Order', 0, 0, 0)",
        [],
    );
    assert!(duplicate.is_err(), "the key stays unique");
    let indexes: Vec<String> = first_column(
        &conn,
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'instances' ORDER BY name",
    );
    assert_eq!(
        indexes,
        [
            "instances_by_created",
            "instances_by_key",
            "instances_by_parent",
            "instances_by_status"
        ]
    );
    let children: Vec<String> = first_column(
        &conn,
        "SELECT instance_id FROM instances WHERE hub = 'h' AND parent_instance_id = 'parent'",
    );
    assert_eq!(children, ["child"]);
}

#[test]
fn a_version_14_file_moves_its_large_events_to_blobs_and_reads_them_the_same() {
    use crate::codec::{encode, encode_turn, event};
    use durable_proto::history_event::EventType;
    let raised = |name: &str, size: usize| {
        event(
            -1,
            1000,
            EventType::EventRaised(durable_proto::EventRaisedEvent {
                name: name.to_owned(),
                input: Some("r".repeat(size)),
            }),
        )
    };
    let (small, large, later) = (
        raised("small", 10),
        raised("large", 5000),
        raised("later", 3000),
    );
    let (_dir, conn) = opened_after_version(14, |c| {
        let mut history = c
            .prepare("INSERT INTO history (hub, instance_id, seq, event, turn) VALUES ('h', ?1, ?2, ?3, 1)")
            .unwrap();
        history
            .execute(("a", 0, encode_turn(std::slice::from_ref(&small))))
            .unwrap();
        history
            .execute(("a", 1, encode_turn(std::slice::from_ref(&large))))
            .unwrap();
        history
            .execute(("b", 0, encode_turn(std::slice::from_ref(&later))))
            .unwrap();
        let mut inbox = c
            .prepare(
                "INSERT INTO inbox (hub, instance_id, priority, id, visible_at, event, delayed) \
                 VALUES ('h', 'a', 1, ?1, 0, ?2, 0)",
            )
            .unwrap();
        inbox.execute((1, encode(&large))).unwrap();
        inbox.execute((2, encode(&small))).unwrap();
        inbox.execute((3, None::<Vec<u8>>)).unwrap();
    });
    assert_eq!(
        super::super::instances::history(&conn, "h", "a").unwrap(),
        [small.clone(), large.clone()]
    );
    assert_eq!(
        super::super::instances::history(&conn, "h", "b").unwrap(),
        [later]
    );
    let messages: Vec<Option<Vec<u8>>> = first_column(
        &conn,
        "SELECT COALESCE(b.data, m.event) FROM inbox m LEFT JOIN blobs b ON b.id = m.blob ORDER BY m.id",
    );
    assert_eq!(messages, [Some(encode(&large)), Some(encode(&small)), None]);
    // Only the three large events moved, each to a blob of its own, and their rows keep no copy.
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(DISTINCT id) FROM blobs"), 3);
    assert_eq!(
        count(
            "SELECT (SELECT COUNT(*) FROM history WHERE blob IS NOT NULL AND length(event) = 0) \
                    + (SELECT COUNT(*) FROM inbox WHERE blob IS NOT NULL AND length(event) = 0)"
        ),
        3
    );
    let longest = count(
        "SELECT MAX((SELECT MAX(length(event)) FROM history), (SELECT MAX(length(event)) FROM inbox))",
    );
    assert!(longest <= 800, "{longest}");
    // A history appended after them reads in order, and deleting the rows takes the blobs along.
    super::super::instances::append_history(&conn, "h", "a", std::slice::from_ref(&large)).unwrap();
    assert_eq!(
        super::super::instances::history(&conn, "h", "a").unwrap(),
        [small, large.clone(), large.clone()]
    );
    assert_eq!(count("SELECT COUNT(*) FROM blobs"), 4);
    // So does a message queued after them.
    super::super::leases::install(super::super::leases::Leases::default());
    super::super::instances::enqueue(&conn, "h", "a", 1, 0, Some(&large)).unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM blobs"), 5);
    assert!(count("SELECT MAX(length(event)) FROM inbox") <= 800);
    super::super::instances::delete_data(&conn, "h", "a").unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM blobs"), 1);
}

#[test]
fn a_version_15_file_moves_its_large_entity_states_to_blobs() {
    let large = format!("\"{}\"", "e".repeat(3000));
    let (_dir, conn) = opened_after_version(15, |c| {
        // A blob already named by history, so the states' ids must come after it.
        c.execute_batch(
            "INSERT INTO blobs (id, data) VALUES (7, x'00');
             INSERT INTO history (hub, instance_id, seq, event, turn, blob) VALUES ('h', 'i', 0, x'', 1, 7);",
        )
        .unwrap();
        let mut insert = c
            .prepare(
                "INSERT INTO entities (hub, entity_id, name, state, created_at, last_modified_at, locked_by) \
                 VALUES (?1, ?2, 'cart', ?3, 0, 5, ?4)",
            )
            .unwrap();
        insert
            .execute(("h", "@cart@big", Some(&large), None::<&str>))
            .unwrap();
        insert
            .execute(("g", "@cart@big", Some(&large), None::<&str>))
            .unwrap();
        insert
            .execute(("h", "@cart@small", Some("2"), None::<&str>))
            .unwrap();
        insert
            .execute(("h", "@cart@locked", None::<&str>, Some("owner")))
            .unwrap();
    });
    let state = |hub: &str, id: &str| {
        super::super::entity_query::get(&conn, hub, id, true)
            .unwrap()
            .and_then(|m| m.serialized_state)
    };
    assert_eq!(state("h", "@cart@big").as_deref(), Some(large.as_str()));
    assert_eq!(state("g", "@cart@big").as_deref(), Some(large.as_str()));
    assert_eq!(state("h", "@cart@small").as_deref(), Some("2"));
    assert_eq!(state("h", "@cart@locked"), None);
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM blobs WHERE id > 7"), 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM entities WHERE state_blob IS NOT NULL AND state = ''"),
        2
    );
    // `state IS NULL` still tells an entity without state.
    assert_eq!(
        count("SELECT COUNT(*) FROM entities WHERE state IS NULL"),
        1
    );
    // A new state replaces the old blob; removing the entity removes its blob.
    let (small, blob) = super::super::blobs::place_text(&conn, Some("3".to_owned())).unwrap();
    conn.execute(
        "UPDATE entities SET state = ?1, state_blob = ?2 WHERE hub = 'h' AND entity_id = '@cart@big'",
        rusqlite::params![small, blob],
    )
    .unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM blobs WHERE id > 7"), 1);
    conn.execute("DELETE FROM entities WHERE hub = 'g'", [])
        .unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM blobs"), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    assert!(prepare(&conn, Synchronous::Full).is_err());
}
