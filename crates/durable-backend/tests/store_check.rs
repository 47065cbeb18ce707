//! `check_database` on a file the backend wrote and then stopped serving: a clean store passes, and each kind of
//! broken invariant (an orphan lease, a lost timer, a message for nobody, a lock held by a finished orchestration,
//! a finished instance without its completion) is reported; `durable-backend --check` says the same by its exit
//! status.

use std::time::Duration;

use durable_backend::{Options, check_database};
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext,
    OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, StartOptions, Worker};

const WAIT: Duration = Duration::from_secs(60);

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("work", |ctx: OrchestrationContext, n: i64| async move {
            let doubled: i64 = ctx.call_activity("double", n).await?;
            // Large enough that the store keeps the events and the entity's state apart, in `blobs`.
            let note: String = ctx.call_activity("echo", "n".repeat(2_000)).await?;
            let (): () = ctx
                .call_entity(&EntityId::new("notes", "all"), "keep", note)
                .await?;
            ctx.create_timer_after(Duration::from_millis(50)).await?;
            let total: i64 = ctx
                .call_entity(&EntityId::new("counter", "c"), "add", doubled)
                .await?;
            Ok::<_, OrchestrationError>(total)
        })
        .add_orchestrator("waits", |ctx: OrchestrationContext, (): ()| async move {
            let _: Result<String, _> = ctx
                .wait_for_external_event_with_timeout("go", Duration::from_secs(3600))
                .await;
            Ok::<_, OrchestrationError>(())
        })
        .add_activity("double", |_ctx: ActivityContext, n: i64| async move {
            Ok::<_, ActivityError>(n * 2)
        })
        .add_activity("echo", |_ctx: ActivityContext, text: String| async move {
            Ok::<_, ActivityError>(text)
        })
        .add_entity(
            "notes",
            Entity::<String>::new().operation("keep", |all: &mut String, _ctx, note: String| {
                all.push_str(&note);
                Ok::<_, EntityError>(())
            }),
        )
        .add_entity(
            "counter",
            Entity::<i64>::new().operation("add", |total: &mut i64, _ctx, n: i64| {
                *total += n;
                Ok::<_, EntityError>(*total)
            }),
        );
    registry
}

/// Runs two finished instances and one that waits on a timer, then stops everything. Returns the file.
async fn written_store(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("checked.db");
    let backend = durable_backend::start(
        Options::new()
            .with_db_path(&db)
            .with_bind("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("h");
    let worker = Worker::builder()
        .connection(connection.clone())
        .registry(registry())
        .build()
        .unwrap()
        .start();
    let client = DurableClient::new(&connection).unwrap();
    for (id, n) in [("w1", 1), ("w2", 2)] {
        client
            .schedule_new_orchestration("work", &n, StartOptions::new().with_instance_id(id))
            .await
            .unwrap();
        let done = client.wait_for_completion(id, true, WAIT).await.unwrap();
        assert_eq!(done.status, durable_grpc::OrchestrationStatus::Completed);
    }
    client
        .schedule_new_orchestration("waits", &(), StartOptions::new().with_instance_id("idle"))
        .await
        .unwrap();
    client.wait_for_start("idle", false, WAIT).await.unwrap();
    // Its first turn, which creates the timer, has committed once the history shows the timer.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !client.get_history("idle").await.unwrap().iter().any(|e| {
        matches!(
            e.event_type,
            Some(durable_proto::history_event::EventType::TimerCreated(_))
        )
    }) {
        assert!(tokio::time::Instant::now() < deadline, "no timer created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await.unwrap();
    backend.shutdown().await.unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_left_by_a_clean_run_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = written_store(dir.path()).await;
    // The store keeps large events and an entity's large state in `blobs`, all named by their rows.
    let named: (i64, i64, i64, i64) = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM blobs), (SELECT COUNT(*) FROM history WHERE blob IS NOT NULL), \
                    (SELECT COUNT(*) FROM inbox WHERE blob IS NOT NULL), \
                    (SELECT COUNT(*) FROM entities WHERE state_blob IS NOT NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert!(named.1 > 0, "{named:?}");
    assert_eq!(named.3, 1, "{named:?}");
    assert_eq!(named.0, named.1 + named.2 + named.3, "{named:?}");
    let report = check_database(&db).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.integrity, ["ok"]);
    assert_eq!(report.instances.get("COMPLETED"), Some(&2), "{report}");
    assert_eq!(report.instances.get("RUNNING"), Some(&1), "{report}");
    // The waiting instance's timer is still queued, for a live instance.
    assert_eq!(report.queued_messages, 1, "{report}");
    assert!(report.history_events > 10, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_invariants_are_each_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = written_store(dir.path()).await;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "UPDATE entities SET lease_token = 'gone-worker' WHERE entity_id = '@counter@c';
             DELETE FROM inbox WHERE instance_id = 'idle';
             INSERT INTO inbox (hub, instance_id, priority, id, visible_at, event, blob) VALUES ('h', 'nobody', 1, 1000000, 0, x'', 424242);
             UPDATE entities SET locked_by = 'w2' WHERE entity_id = '@counter@c';
             DELETE FROM history WHERE instance_id = 'w2' AND seq = (SELECT MAX(seq) FROM history WHERE instance_id = 'w2');
             INSERT INTO blobs (data) VALUES (x'00');",
        )
        .unwrap();
    }
    let report = check_database(&db).unwrap();
    assert!(!report.is_ok());
    let text = report.to_string();
    for expected in [
        "1 rows of entities still leased with no backend running",
        "h/idle waits for timer",
        "messages queued for h/nobody, an instance that does not exist",
        "entity h/@counter@c is locked by w2, which has finished",
        "h/w2 finished (ORCHESTRATION_STATUS_COMPLETED) but its history has 0 ExecutionCompleted events",
        "1 blobs named by no row",
        "1 rows of inbox name a blob that does not exist",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert_eq!(report.problems.len(), 7, "{text}");
}

/// `durable-backend --check --db FILE` prints the report and says by its exit status whether everything held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_checks_a_file_and_fails_on_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = written_store(dir.path()).await;
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_durable-backend"))
            .arg("--check")
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap()
    };
    let clean = check();
    let text = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{text}");
    assert!(text.contains("integrity_check: ok"), "{text}");
    assert!(text.contains("invariants: all hold"), "{text}");

    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DELETE FROM inbox WHERE instance_id = 'idle';")
        .unwrap();
    let broken = check();
    let text = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{text}");
    assert!(text.contains("h/idle waits for timer"), "{text}");

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_durable-backend"))
        .args(["--check", "--db"])
        .arg(dir.path().join("none.db"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(!dir.path().join("none.db").exists());
}

#[test]
fn a_missing_file_is_an_error_not_an_empty_report() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    assert!(check_database(&missing).is_err());
    assert!(!missing.exists(), "the check must not create the file");
}
