//! Microsoft's Python Durable Task SDKs (client and worker) against the backend.

mod common;

use std::time::Duration;

use durable_backend::EntityFormat;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestration_features_through_the_scheduler_sdk() {
    let Some(python) = common::python() else {
        return;
    };
    let backend = common::backend(common::memory()).await;
    let r = common::run_python(
        &python,
        include_str!("python/orchestrations.py"),
        &backend.endpoint(),
        "orchestrations",
        LIMIT,
    )
    .await;
    assert_eq!(
        r["chain"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    assert_eq!(r["tags"], json!({"team": "blue"}));
    assert_eq!(r["fan"], json!(20));
    assert_eq!(r["timer"], json!("woke"));
    // The timer fired no earlier than due, by the backend's record of the turn that delivered it.
    let history = durable_grpc::DurableClient::new(
        &durable_grpc::ConnectionOptions::new(backend.endpoint()).with_task_hub("orchestrations"),
    )
    .unwrap()
    .get_history(r["timer_instance"].as_str().unwrap())
    .await
    .unwrap();
    assert_eq!(durable_testkit::fired_timers(&history).unwrap().len(), 1);
    assert_eq!(r["updated_after_timer"], json!(true));
    assert_eq!(r["custom_status_running"], json!(["RUNNING", "waiting"]));
    assert_eq!(r["held_while_suspended"], json!("SUSPENDED"));
    assert_eq!(r["approval"], json!(["yes", "also"]));
    assert_eq!(r["sub"]["parent"], r["sub_expected_parent"]);
    assert_eq!(r["sub"]["x"], json!(7));
    assert_eq!(r["can"], json!([3, true]));
    assert_eq!(r["terminate"], json!(["TERMINATED", "stop", "TERMINATED"]));
    assert_eq!(r["terminate_again"], json!(["TERMINATED", "stop"]));
    assert_eq!(r["failed"], json!(["FAILED", true, true]));
    assert_eq!(r["send_event"], json!(["sent", "from sender", true]));
    assert_eq!(r["sub_retry"], json!(["COMPLETED", "steady", 3]));
    assert_eq!(r["sub_retry_gives_up"], json!("gave up"));
    assert_eq!(r["fan_two_workers"], json!(40));
    assert_eq!(r["deadline"], json!("DEADLINE_EXCEEDED"));
    backend.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_management_through_the_plain_grpc_sdk() {
    let Some(python) = common::python() else {
        return;
    };
    let backend = common::backend(common::memory()).await;
    let r = common::run_python(
        &python,
        include_str!("python/lifecycle.py"),
        &backend.endpoint(),
        "unused",
        LIMIT,
    )
    .await;
    assert_eq!(r["restart"], json!([true, "r1", true, "r1", true]));
    assert_eq!(r["restart_running_same"], json!("FAILED_PRECONDITION"));
    assert_eq!(r["restart_running_new"], json!("RUNNING"));
    assert_eq!(r["waiters"], json!([1, 2]));
    assert_eq!(r["reuse_running"], json!("ALREADY_EXISTS"));
    assert_eq!(r["reuse_policy_refuses"], json!("ALREADY_EXISTS"));
    assert_eq!(r["reuse_replaced"], json!("replaced"));
    assert_eq!(r["bad_id"], json!("INVALID_ARGUMENT"));
    assert_eq!(r["entity_like_id"], json!("INVALID_ARGUMENT"));
    assert_eq!(r["too_big"], json!("INVALID_ARGUMENT"));
    assert_eq!(r["too_big_created"], json!(false));
    assert_eq!(r["raise_missing"], json!("NOT_FOUND"));
    assert_eq!(r["get_missing"], json!(true));
    assert_eq!(r["raise_too_big"], json!("INVALID_ARGUMENT"));
    assert_eq!(r["after_too_big"], json!("small"));
    assert_eq!(r["scheduled_pending"], json!("PENDING"));
    assert_eq!(r["scheduled_ran_after"], json!(true));
    assert_eq!(
        r["history"],
        json!([
            "orchestratorStarted",
            "executionStarted",
            "taskScheduled",
            "orchestratorStarted",
            "taskCompleted",
            "executionCompleted"
        ])
    );
    assert_eq!(r["before_rewind"], json!("FAILED"));
    assert_eq!(
        r["after_rewind"],
        json!(["COMPLETED", ["before", "ok after 2"]])
    );
    assert_eq!(r["rewind_completed"], json!("FAILED_PRECONDITION"));
    assert_eq!(r["sub_before_rewind"], json!(["FAILED", "FAILED"]));
    assert_eq!(
        r["sub_after_rewind"],
        json!(["COMPLETED", {"child": ["before", "ok after 2"]}, "COMPLETED"])
    );
    assert_eq!(r["purge_recursive"], json!([2, true]));
    assert_eq!(r["purge_running"], json!("FAILED_PRECONDITION"));
    assert_eq!(
        r["query_pages"],
        json!([["q-00", "q-01", "q-02"], ["q-03", "q-04", "q-05"], ["q-06"]])
    );
    assert_eq!(
        r["query_all"],
        json!(["q-00", "q-01", "q-02", "q-03", "q-04", "q-05", "q-06"])
    );
    let total = r["list_total"].as_u64().unwrap();
    assert!(total >= 7, "listed {total} completed instances");
    assert!(r["list_pages"].as_array().unwrap().len() >= 2);
    assert_eq!(r["purge_filter"].as_u64().unwrap(), total);
    assert_eq!(r["after_purge"], json!(0));
    backend.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_through_the_scheduler_sdk() {
    entities_scenario(common::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_with_v2_entity_work_items() {
    entities_scenario(common::memory().with_entity_format(EntityFormat::V2)).await;
}

async fn entities_scenario(options: durable_backend::Options) {
    let Some(python) = common::python() else {
        return;
    };
    let backend = common::backend(options).await;
    let r = common::run_python(
        &python,
        include_str!("python/entities.py"),
        &backend.endpoint(),
        "entities",
        LIMIT,
    )
    .await;
    assert_eq!(r["signals"], json!(10));
    assert_eq!(r["call"], json!([3, "caught"]));
    assert_eq!(r["call_state"], json!(3));
    assert_eq!(r["orchestration_signal"], json!(40));
    assert_eq!(r["entity_signal"], json!(11));
    assert_eq!(r["entity_started"], json!("sent"));
    assert_eq!(r["entity_started_signal"], json!(40));
    assert_eq!(r["locked_by"], json!(true));
    assert_eq!(r["held_back"], json!(1));
    assert_eq!(r["in_lock"], json!(2));
    assert_eq!(r["after_unlock"], json!(102));
    assert_eq!(r["unlocked"], json!(false));
    assert_eq!(r["deleted"], json!(true));
    assert_eq!(r["recreated"], json!(7));
    assert_eq!(r["early"], json!(null));
    assert_eq!(r["on_time"], json!(true));
    assert_eq!(r["long_key"], json!("INVALID_ARGUMENT"));
    assert_eq!(r["not_entity"], json!("INVALID_ARGUMENT"));
    assert_eq!(
        r["query"],
        json!(["a", "b", "d", "fwd", "fwd-o", "l1", "s", "t"])
    );
    assert_eq!(r["first_page"], json!([2, true]));
    // "gone" (state deleted), "l2" (locked once) and "fw" (only forwarded) were left without state: gone at once.
    assert_eq!(
        r["transient"],
        json!(["a", "b", "d", "fwd", "fwd-o", "l1", "s", "t"])
    );
    assert_eq!(r["cleaned"], json!([0, 0]));
    backend.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_sdk_sees_what_the_scheduler_would_show() {
    let Some(python) = common::python() else {
        return;
    };
    let backend = common::backend(common::memory()).await;
    let r = common::run_python(
        &python,
        include_str!("python/scheduler_parity.py"),
        &backend.endpoint(),
        "unused",
        LIMIT,
    )
    .await;
    // A signal an orchestration schedules waits for its time.
    assert_eq!(r["signal_before_due"], json!(null));
    assert_eq!(r["signal_ran_after_due"], json!(true));
    // Entities without state are gone at once, so cleaning finds nothing.
    assert_eq!(r["deleted_get"], json!(true));
    assert_eq!(r["lock_only"], json!("unlocked"));
    assert_eq!(r["entities_left"], json!(["kept", "later"]));
    assert_eq!(r["cleaned"], json!([0, 0]));
    // The history of a turn is its OrchestratorStarted and what the turn did, with no OrchestratorCompleted.
    assert_eq!(r["mixed"], json!(["Hello, World!", "child done"]));
    assert_eq!(
        r["history"],
        json!([
            "OrchestratorStarted",
            "ExecutionStarted",
            "TaskScheduled",
            "OrchestratorStarted",
            "TaskCompleted",
            "TimerCreated",
            "OrchestratorStarted",
            "TimerFired",
            "SubOrchestrationInstanceCreated",
            "OrchestratorStarted",
            "SubOrchestrationInstanceCompleted",
            "ExecutionCompleted"
        ])
    );
    // Reuse policies that would replace live instances but not terminated ones are refused.
    let senseless = json!([
        "INVALID_ARGUMENT",
        "Invalid reusable statuses: cannot exclude 'Terminated' while also allowing reuse of running instances"
    ]);
    assert_eq!(r["senseless_running"], senseless);
    assert_eq!(r["senseless_fresh_id"], senseless);
    assert_eq!(r["fresh_id_created"], json!(false));
    assert_eq!(r["dedupe_running"][0], json!("ALREADY_EXISTS"));
    assert_eq!(r["untouched"], json!(["RUNNING", "\"original\""]));
    assert_eq!(r["senseless_suspended"], json!("INVALID_ARGUMENT"));
    assert_eq!(r["still_suspended"], json!(["SUSPENDED", "\"original\""]));
    assert_eq!(r["replaced"], json!(["COMPLETED", "quick", "replacement"]));
    // Activities scheduled without a version run as their orchestration's version under version filters.
    assert_eq!(
        r["explicit_filters"],
        json!(["COMPLETED", ["3.0.0", "Hello, explicit!"]])
    );
    assert_eq!(
        r["strict_auto_filters"],
        json!(["COMPLETED", ["2.0", "Hello, strict!"]])
    );
    backend.shutdown().await.unwrap();
}
