//! The list queries a dashboard sends (`QueryInstances` with a prefix, statuses, a creation-time window, and
//! `QueryEntities` with a prefix) read an index, not the whole hub: their query plans, and the work SQLite does for
//! one page of a store of 20,000 instances, counted in virtual machine steps (deterministic, unlike time).

use durable_proto::InstanceQuery;
use rusqlite::{Connection, StatementStatus, params_from_iter};

use super::query::instance_page;
use super::schema::prepare;
use crate::options::Synchronous;

const INSTANCES: i64 = 20_000;
const PAGE: i64 = 51;

/// A spread of IDs (not in creation order), creation times one second apart, and statuses as a busy hub has them:
/// mostly completed, a few running, failed and suspended. A second hub shares the table.
fn store() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    prepare(&c, Synchronous::Off).unwrap();
    c.execute_batch("BEGIN").unwrap();
    {
        let mut insert = c
            .prepare(
                "INSERT INTO instances (hub, instance_id, execution_id, name, status, created_at, updated_at) \
                 VALUES (?1, ?2, 'e', 'Order', ?3, ?4, ?4)",
            )
            .unwrap();
        for i in 0..INSTANCES {
            let id = format!("{:08x}", (i * 2_654_435_761) % 4_294_967_296);
            let status = match i % 100 {
                0 => 0,
                1 => 3,
                2 => 7,
                _ => 1,
            };
            insert.execute(("h", &id, status, i * 1000)).unwrap();
            insert.execute(("other", &id, 1, i * 1000)).unwrap();
        }
        let mut entity = c
            .prepare(
                "INSERT INTO entities (hub, entity_id, name, state, created_at, last_modified_at) \
                 VALUES ('h', ?1, ?2, '1', 0, 0)",
            )
            .unwrap();
        for i in 0..INSTANCES {
            let name = ["counter", "cart", "user"][usize::try_from(i % 3).unwrap()];
            entity.execute((format!("@{name}@{i:06}"), name)).unwrap();
        }
    }
    c.execute_batch("COMMIT").unwrap();
    c
}

fn plan(c: &Connection, sql: &str, params: &[rusqlite::types::Value]) -> Vec<String> {
    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    stmt.query_map(params_from_iter(params), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Rows returned and virtual machine steps taken.
fn run(c: &Connection, sql: &str, params: &[rusqlite::types::Value]) -> (usize, i32) {
    let mut stmt = c.prepare(sql).unwrap();
    let rows = stmt
        .query_map(params_from_iter(params), |_| Ok(()))
        .unwrap()
        .count();
    (rows, stmt.get_status(StatementStatus::VmStep))
}

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms / 1000,
        nanos: 0,
    })
}

/// Nothing reads a table from one end to the other.
fn assert_no_scan(label: &str, plan: &[String]) {
    assert!(
        plan.iter()
            .all(|line| !line.starts_with("SCAN instances") && !line.starts_with("SCAN entities")),
        "{label}: {plan:#?}"
    );
}

#[test]
fn list_queries_use_their_indexes() {
    let c = store();
    let recent = (INSTANCES - 200) * 1000;
    let cases: Vec<(&str, InstanceQuery, &[&str], usize)> = vec![
        (
            "first page",
            InstanceQuery::default(),
            &["SEARCH instances USING INDEX instances_by_key (hub=? AND instance_id>?)"],
            PAGE as usize,
        ),
        (
            "a later page",
            InstanceQuery {
                continuation_token: Some("80000000".into()),
                ..Default::default()
            },
            &["SEARCH instances USING INDEX instances_by_key (hub=? AND instance_id>?)"],
            PAGE as usize,
        ),
        (
            "an ID prefix",
            InstanceQuery {
                instance_id_prefix: Some("ab".into()),
                ..Default::default()
            },
            &[
                "SEARCH instances USING INDEX instances_by_key (hub=? AND instance_id>? AND instance_id<?)",
            ],
            PAGE as usize,
        ),
        (
            "one status",
            InstanceQuery {
                runtime_status: vec![0],
                ..Default::default()
            },
            &[
                "SEARCH instances USING INDEX instances_by_status (hub=? AND status=? AND instance_id>?)",
            ],
            PAGE as usize,
        ),
        (
            "three statuses",
            InstanceQuery {
                runtime_status: vec![7, 0, 3],
                ..Default::default()
            },
            &[
                "SEARCH instances USING INDEX instances_by_status (hub=? AND status=? AND instance_id>?)",
                "MERGE (UNION ALL)",
            ],
            PAGE as usize,
        ),
        (
            "a common status and a rare one",
            InstanceQuery {
                runtime_status: vec![1, 3],
                ..Default::default()
            },
            &[
                "SEARCH instances USING INDEX instances_by_status (hub=? AND status=? AND instance_id>?)",
            ],
            PAGE as usize,
        ),
        (
            "created in a recent window",
            InstanceQuery {
                created_time_from: ts(recent),
                ..Default::default()
            },
            &["SEARCH instances USING INDEX instances_by_created (hub=? AND created_at>?)"],
            PAGE as usize,
        ),
        (
            "a window and a status",
            InstanceQuery {
                created_time_from: ts(recent),
                created_time_to: ts(INSTANCES * 1000),
                runtime_status: vec![1],
                ..Default::default()
            },
            &[
                "SEARCH instances USING INDEX instances_by_created (hub=? AND created_at>? AND created_at<?)",
            ],
            PAGE as usize,
        ),
    ];
    for (label, query, expected, rows) in cases {
        let (sql, params) = instance_page("h", &query, PAGE);
        let plan = plan(&c, &sql, &params);
        assert_no_scan(label, &plan);
        for line in expected {
            assert!(
                plan.iter().any(|p| p == line),
                "{label}: no {line:?} in {plan:#?}"
            );
        }
        let (found, steps) = run(&c, &sql, &params);
        assert_eq!(found, rows, "{label}");
        // A page reads about a page of index entries (1,300 to 11,000 steps here); a walk of the hub takes over
        // 100,000 (see below).
        assert!(steps < 20_000, "{label}: {steps} steps");
    }
}

/// The bound above can fail: the statement this backend used before, for an ID prefix, walks every instance after
/// the token, and for a prefix near the end of the key space does over five times the bound's work for one page.
#[test]
fn the_step_bound_tells_a_walk_of_the_hub_from_an_index_search() {
    let c = store();
    let old = format!(
        "SELECT {} FROM instances WHERE hub = ?1 AND instance_id > ?2 \
         AND substr(instance_id, 1, length(?3)) = ?3 AND created_at >= ?4 AND created_at <= ?5 \
         ORDER BY instance_id LIMIT ?6",
        super::instances::COLUMNS
    );
    let params: Vec<rusqlite::types::Value> = vec![
        "h".to_owned().into(),
        String::new().into(),
        "ff".to_owned().into(),
        i64::MIN.into(),
        i64::MAX.into(),
        PAGE.into(),
    ];
    let (found, steps) = run(&c, &old, &params);
    assert_eq!(found, PAGE as usize);
    assert!(steps > 100_000, "{steps} steps");
}

#[test]
fn an_entity_prefix_is_a_range_of_the_key() {
    let c = store();
    for (op, bounded, expected) in [
        (
            ">=",
            true,
            "SEARCH entities USING PRIMARY KEY (hub=? AND entity_id>? AND entity_id<?)",
        ),
        (
            ">",
            false,
            "SEARCH entities USING PRIMARY KEY (hub=? AND entity_id>?)",
        ),
    ] {
        let sql = super::entity_query::page_sql(op, bounded);
        let end = super::query::prefix_end("@cart@");
        let params: Vec<rusqlite::types::Value> = vec![
            "h".to_owned().into(),
            "@cart@".to_owned().into(),
            if bounded { "@cart@" } else { "" }.to_owned().into(),
            i64::MIN.into(),
            i64::MAX.into(),
            false.into(),
            PAGE.into(),
            if bounded {
                end.into()
            } else {
                rusqlite::types::Value::Null
            },
        ];
        let plan = plan(&c, &sql, &params);
        assert_no_scan(op, &plan);
        assert!(plan.iter().any(|p| p == expected), "{plan:#?}");
        let (found, steps) = run(&c, &sql, &params);
        assert_eq!(found, PAGE as usize);
        assert!(steps < 20_000, "{op}: {steps} steps");
    }
}

#[test]
fn prefix_ends_bound_exactly_the_strings_with_the_prefix() {
    use super::query::prefix_end;
    assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
    assert_eq!(prefix_end("a~").as_deref(), Some("a\u{7f}"));
    assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    assert_eq!(prefix_end("\u{10FFFF}"), None);
    assert_eq!(prefix_end(""), None);
    for prefix in ["ab", "a\u{10FFFF}", "z"] {
        let end = prefix_end(prefix).unwrap();
        for s in [
            prefix.to_owned(),
            format!("{prefix}\u{10FFFF}\u{10FFFF}"),
            format!("{prefix}zzz"),
        ] {
            assert!(s.as_str() < end.as_str(), "{s:?} < {end:?}");
        }
        assert!(end.as_str() > prefix);
    }
}

/// Queues `messages` signals for `entity` (visible at once, in arrival order).
fn queue(c: &Connection, entity: &str, messages: usize) {
    let mut insert = c
        .prepare(
            "INSERT INTO entity_inbox (hub, entity_id, visible_at, sender, event) VALUES ('h', ?1, 0, 'o', x'00')",
        )
        .unwrap();
    for _ in 0..messages {
        insert.execute([entity]).unwrap();
    }
}

#[test]
fn an_entity_lease_reads_as_much_for_a_long_queue_as_for_a_short_one() {
    // 100 entities with one signal each, then one entity with a short or a long queue.
    let stores = [10, 10_000].map(|long| {
        let c = store();
        for i in 0..100 {
            queue(&c, &format!("@cart@{:06}", 3 * i + 1), 1);
        }
        queue(&c, "@counter@000000", long);
        c
    });
    let params: Vec<rusqlite::types::Value> =
        vec!["h".to_owned().into(), 1_i64.into(), 64_i64.into()];
    let sql = super::entity::candidates_sql(0);
    let [(short_rows, short), (long_rows, long)] = [0, 1].map(|i| {
        let plan = plan(&stores[i], &sql, &params);
        // Only the recursive step's own rows are scanned; every table and index is searched.
        assert!(
            plan.iter()
                .filter(|line| line.starts_with("SCAN"))
                .all(|line| line == "SCAN queued" || line == "SCAN CONSTANT ROW"),
            "{plan:#?}"
        );
        assert!(
            plan.iter().any(|line| line
                == "SEARCH m USING INDEX entity_inbox_by_entity (hub=? AND entity_id=?)"),
            "{plan:#?}"
        );
        run(&stores[i], &sql, &params)
    });
    assert_eq!((short_rows, long_rows), (64, 64));
    assert!(
        long < short + 1_000,
        "candidates: {short} steps with 10 queued, {long} with 10,000"
    );

    // One page of the long queue reads a page, not the queue.
    let page: Vec<rusqlite::types::Value> = vec![
        "h".to_owned().into(),
        "@counter@000000".to_owned().into(),
        0_i64.into(),
        1_i64.into(),
        51_i64.into(),
    ];
    let plan = plan(&stores[1], super::entity::QUEUE_PAGE, &page);
    assert!(
        plan.iter()
            .any(|p| p == "SEARCH entity_inbox USING INDEX entity_inbox_by_entity (hub=? AND entity_id=? AND id>?)"),
        "{plan:#?}"
    );
    let (rows, steps) = run(&stores[1], super::entity::QUEUE_PAGE, &page);
    assert_eq!(rows, 51);
    assert!(steps < 5_000, "a page of 51: {steps} steps");

    // What the lease did before: every queued message of every entity, grouped and sorted, on every call.
    let old = "SELECT e.entity_id, MIN(m.id) AS first FROM entity_inbox m \
               JOIN entities e ON e.hub = m.hub AND e.entity_id = m.entity_id \
               WHERE m.hub = ?1 AND m.visible_at <= ?2 AND (e.lease_token IS NULL OR e.lease_expires_at <= ?2) \
                 AND (e.locked_by IS NULL OR m.sender = e.locked_by) \
               GROUP BY e.entity_id ORDER BY first LIMIT ?3";
    let (_, old_short) = run(&stores[0], old, &params);
    let (_, old_long) = run(&stores[1], old, &params);
    assert!(old_long > 20 * old_short, "{old_short} -> {old_long}");
}

/// The lease calls walk the ready queues in order and pass over what is out on a lease: the walks read their
/// indexes alone (`COVERING INDEX`), so an entry passed over costs no read of its row. A walk that named a column
/// its index lacks, or an index that lost one, would read the table row of every entry and fail here.
#[test]
fn the_lease_walks_read_their_indexes_alone() {
    let c = Connection::open_in_memory().unwrap();
    prepare(&c, Synchronous::Off).unwrap();
    let hub = || rusqlite::types::Value::from("h".to_owned());
    let cases = [
        (
            super::orchestration::QUEUE_WALK,
            vec![hub(), 100_i64.into()],
            "SEARCH inbox USING COVERING INDEX inbox_ready (hub=?)",
        ),
        (
            super::activity::QUEUE_WALK,
            vec![hub()],
            "SEARCH activities USING COVERING INDEX activities_ready (hub=?)",
        ),
    ];
    for (sql, params, expected) in cases {
        // The whole plan: one search of the index, in its order (no sort, no table).
        assert_eq!(plan(&c, sql, &params), [expected], "{sql}");
    }
}
