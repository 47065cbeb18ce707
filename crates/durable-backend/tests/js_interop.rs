//! Microsoft's JavaScript Durable Task SDK (`@microsoft/durabletask-js`, pinned in `tests/js/package-lock.json`
//! and installed by `scripts/setup-node.sh`) as worker and client against the backend.
//!
//! The JS SDK has habits the Python one lacks: its waits carry no gRPC deadline (a client-side race that leaves
//! the call open when it gives up), it derives sub-orchestration ids from the execution id, and it sends the hub
//! only through the `taskhub` header its caller supplies. Each test starts its own backend on a temporary SQLite
//! file, runs one scenario script from `tests/js/scenarios` with `node`, and asserts on the JSON lines the script
//! prints (`{"check": NAME, "value": VALUE}`); the scripts only observe, the assertions live here.
//!
//! Node comes from `$DURABLE_NODE` or `node` on `PATH`, the SDK from `tests/js/node_modules`. When either is
//! missing the tests print `skipped: ...` and pass, except under the verify script or CI, where they fail.

#[path = "js/harness.rs"]
mod harness;

use durable_backend::Options;
use harness::{HUB, SHUTDOWN_LIMIT, backend, javascript, run_scenario, scenario, scenario_with};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_chain() {
    let Some(c) = scenario("chain", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("id"), &json!("chain-1"));
    assert_eq!(c.get("status"), &json!("COMPLETED"));
    assert_eq!(
        c.get("output"),
        &json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    assert_eq!(c.get("input"), &json!(["Tokyo", "Seattle", "London"]));
    assert_eq!(c.get("name"), &json!("hello_cities"));
    assert_eq!(c.get("created_before_updated"), &json!(true));
    assert_eq!(c.get("tags"), &json!({"team": "blue"}));
    assert_eq!(c.get("without_payloads"), &json!(["COMPLETED", null, null]));
    assert_eq!(c.get("missing"), &json!(true));
    assert_eq!(
        c.get("generated"),
        &json!([true, "COMPLETED", ["Hello Oslo!"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_chain_without_a_taskhub_header_uses_the_default_hub() {
    let Some(c) = scenario("chain", None).await else {
        return;
    };
    assert_eq!(c.get("status"), &json!("COMPLETED"));
    assert_eq!(
        c.get("output"),
        &json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_fan_in() {
    let Some(c) = scenario("fan_out", Some(HUB)).await else {
        return;
    };
    // 1² + 2² + ... + 20² = 2870
    assert_eq!(
        c.get("fan_out"),
        &json!(["COMPLETED", {"count": 20, "sum": 2870}])
    );
    assert_eq!(c.get("when_any"), &json!(["COMPLETED", 49]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_timers() {
    let Some(c) = scenario("timer", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("timer_status"), &json!("COMPLETED"));
    assert_eq!(c.get("fired_after_due"), &json!(true));
    assert_eq!(c.get("history_delivered_after_due"), &json!([true]));
    assert_eq!(c.get("updated_after_due"), &json!(true));
    assert_eq!(c.get("timeout"), &json!(["COMPLETED", "timed out"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_events_raised_by_the_client() {
    let Some(c) = scenario("events", Some(HUB)).await else {
        return;
    };
    assert_eq!(
        c.get("custom_status_running"),
        &json!(["RUNNING", "waiting for the second"])
    );
    assert_eq!(
        c.get("approvals"),
        &json!(["COMPLETED", [{"by": "alice"}, "bob"]])
    );
    assert_eq!(c.get("early"), &json!(["COMPLETED", 42]));
    assert_eq!(
        c.get("send_event"),
        &json!(["sent", "COMPLETED", {"from": "sender-1"}])
    );
    assert_eq!(c.get("raise_missing"), &json!("NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_without_a_grpc_deadline() {
    let Some(c) = scenario("wait_no_deadline", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("started"), &json!("RUNNING"));
    assert_eq!(c.get("pending_before_event"), &json!(0));
    let done = json!(["COMPLETED", "opened with k1"]);
    assert_eq!(c.get("waiters"), &json!([done, done, done]));
    assert_eq!(c.get("finished_again"), &json!("COMPLETED"));
    assert_eq!(c.get("abandoned"), &json!("TimeoutError"));
    assert_eq!(c.get("missing_waits"), &json!(["undefined", "undefined"]));
    assert_eq!(
        c.get("after_abandoned"),
        &json!(["COMPLETED", "opened with k2"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_orchestrations() {
    let Some(c) = scenario("sub_orchestration", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("status"), &json!("COMPLETED"));
    assert_eq!(c.get("implicit_doubled"), &json!(10));
    let parent = c.get("implicit_parent");
    assert_eq!(parent["instanceId"], json!("parent-1"), "{parent}");
    assert_eq!(parent["name"], json!("parent"), "{parent}");
    assert_eq!(parent["taskScheduledId"], json!(1), "{parent}");
    assert_eq!(c.get("execution_id_present"), &json!(true));
    assert_eq!(c.get("implicit_id_matches"), &json!(true));
    assert_eq!(c.get("named"), &json!(["parent-1-named", 12, "parent-1"]));
    let failure = c.get("failure");
    assert_eq!(failure["isTaskFailed"], json!(true), "{failure}");
    assert!(
        failure["message"]
            .as_str()
            .is_some_and(|m| m.contains("child broke")),
        "{failure}"
    );
    assert_eq!(c.get("child_state"), &json!(["COMPLETED", "child"]));
    let failed = c.get("failed_child");
    assert_eq!(failed[0], json!("FAILED"), "{failed}");
    assert!(
        failed[1]
            .as_str()
            .is_some_and(|m| m.contains("child broke")),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate() {
    let Some(c) = scenario("terminate", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("terminated"), &json!(["TERMINATED", "stop"]));
    assert_eq!(c.get("terminate_again"), &json!(["TERMINATED", "stop"]));
    assert_eq!(c.get("pending_before"), &json!("PENDING"));
    assert_eq!(
        c.get("pending_terminated"),
        &json!(["TERMINATED", "never ran"])
    );
    assert_eq!(c.get("terminate_missing"), &json!("NOT_FOUND"));
    assert_eq!(c.get("recursive"), &json!(["TERMINATED", "TERMINATED"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_resume() {
    let Some(c) = scenario("suspend_resume", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("suspended"), &json!(true));
    assert_eq!(c.get("held_while_suspended"), &json!("SUSPENDED"));
    assert_eq!(c.get("missing"), &json!(["NOT_FOUND", "NOT_FOUND"]));
    assert_eq!(c.get("resumed"), &json!(["COMPLETED", ["one", "two"]]));
    assert_eq!(
        c.get("history_suspend_resume"),
        &json!(["ExecutionSuspended", "ExecutionResumed"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge() {
    let Some(c) = scenario("purge", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("purge_one"), &json!([1, true]));
    assert_eq!(c.get("history_after_purge"), &json!(0));
    assert_eq!(c.get("purge_missing"), &json!(0));
    assert_eq!(c.get("purge_running"), &json!("FAILED_PRECONDITION"));
    assert_eq!(c.get("running_kept"), &json!("RUNNING"));
    assert_eq!(c.get("purge_recursive"), &json!([2, true]));
    assert_eq!(c.get("purge_filter"), &json!(5));
    assert_eq!(
        c.get("left_after_filter"),
        &json!([["purge-running", "RUNNING"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_history() {
    let Some(c) = scenario("query", Some(HUB)).await else {
        return;
    };
    assert_eq!(
        c.get("query_pages"),
        &json!([["q-00", "q-01", "q-02"], ["q-03", "q-04", "q-05"], ["q-06"]])
    );
    assert_eq!(
        c.get("query_completed"),
        &json!([
            ["q-00", 1],
            ["q-01", 2],
            ["q-02", 3],
            ["q-03", 4],
            ["q-04", 5],
            ["q-05", 6],
            ["q-06", 7]
        ])
    );
    assert_eq!(
        c.get("query_running"),
        &json!([["other-running", "RUNNING", "waits"]])
    );
    assert_eq!(c.get("query_created_long_ago"), &json!([]));
    assert_eq!(
        c.get("list_ids"),
        &json!(["q-00", "q-01", "q-02", "q-03", "q-04", "q-05", "q-06"])
    );
    assert!(c.get("list_ids_pages").as_u64().unwrap_or(0) >= 2);
    // Completed within the last hour / in the future / over an hour ago; the running instance never counts.
    assert_eq!(c.get("list_completed_windows"), &json!([7, 0, 0]));
    assert_eq!(
        c.get("history"),
        &json!([
            "OrchestratorStarted",
            "ExecutionStarted",
            "TaskScheduled",
            "OrchestratorStarted",
            "TaskCompleted",
            "ExecutionCompleted"
        ])
    );
    assert_eq!(c.get("history_started"), &json!(["step", 3]));
    assert_eq!(c.get("history_task_result"), &json!(4));
    assert_eq!(c.get("history_missing"), &json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new() {
    let Some(c) = scenario("continue_as_new", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("status"), &json!("COMPLETED"));
    assert_eq!(c.get("n"), &json!(3));
    assert_eq!(c.get("children"), &json!(4));
    // Children get their ids from the execution id, so four generations must mean four distinct children.
    assert_eq!(c.get("children_distinct"), &json!(4));
    assert_eq!(c.get("input"), &json!(3));
    assert_eq!(c.get("history_generations"), &json!([1, 3]));
    assert_eq!(c.get("carried_events"), &json!(["COMPLETED", [2, "c"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_failure_details() {
    let Some(c) = scenario("failure", Some(HUB)).await else {
        return;
    };
    assert_eq!(
        c.get("caught"),
        &json!(["COMPLETED", {
            "isTaskFailed": true,
            "errorType": "InsufficientFunds",
            "message": "cannot withdraw 100",
            "hasStack": true
        }])
    );
    assert_eq!(c.get("failed_status"), &json!("FAILED"));
    assert_eq!(c.get("failed_output"), &json!(null));
    let details = c.get("failed_details");
    // The SDK fails the orchestration with its own TaskFailedError wrapping the activity's message.
    assert_eq!(details["errorType"], json!("TaskFailedError"), "{details}");
    assert!(
        details["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot withdraw 5")),
        "{details}"
    );
    assert_eq!(c.get("failed_has_stack"), &json!(true));
    assert_eq!(c.get("raise_if_failed"), &json!(true));
    // Over the backend's 1 MiB payload limit: an activity result becomes a task failure the orchestration can
    // catch, an orchestration output fails the instance.
    let big = c.get("too_big_result");
    assert_eq!(big[0], json!("COMPLETED"), "{big}");
    assert_eq!(big[1]["errorType"], json!("PayloadTooLarge"), "{big}");
    assert_eq!(
        c.get("too_big_output"),
        &json!(["FAILED", "PayloadTooLarge", null])
    );
    assert_eq!(c.get("retried"), &json!(["COMPLETED", "ok after 3", 3]));
    assert_eq!(c.get("retry_history"), &json!({"failed": 2, "timers": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities() {
    let Some(c) = scenario("entities", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("signals"), &json!(10));
    assert_eq!(c.get("missing"), &json!(true));
    assert_eq!(
        c.get("orchestration"),
        &json!(["COMPLETED", {"first": 5, "after": 15, "failure": true}])
    );
    assert_eq!(c.get("orchestration_state"), &json!(15));
    assert_eq!(c.get("relayed"), &json!(7));
    assert_eq!(
        c.get("started_by_entity"),
        &json!(["COMPLETED", "entity said hi"])
    );
    assert_eq!(c.get("locked_by"), &json!("cs-1"));
    // The orchestration's own call to lock-b inside the section sees 2: the outside signal waited for the lock.
    assert_eq!(
        c.get("critical_section"),
        &json!(["COMPLETED", {"inSection": true, "b": 2}])
    );
    assert_eq!(c.get("lock_b"), &json!(102));
    assert_eq!(c.get("unlocked"), &json!(null));
    assert_eq!(c.get("deleted"), &json!(true));
    assert_eq!(c.get("recreated"), &json!(7));
    assert_eq!(c.get("early"), &json!(null));
    assert_eq!(c.get("on_time"), &json!(true));
    assert_eq!(
        c.get("query"),
        &json!([["@counter@lock-a", 1], ["@counter@lock-b", 102]])
    );
    let pages = c.get("query_pages");
    assert!(
        pages.as_array().is_some_and(|p| p.len() >= 2),
        "entity query pages: {pages}"
    );
    // Entities left without state vanish at once, as in the scheduler, so there is nothing to clean.
    assert_eq!(c.get("cleaned"), &json!([0, 0]));
    assert_eq!(
        c.get("after_clean"),
        &json!([
            "@counter@gone",
            "@counter@later",
            "@counter@lock-a",
            "@counter@lock-b",
            "@counter@orch",
            "@counter@relayed",
            "@counter@signals",
            "@relay@r1"
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_item_filters_keep_each_worker_to_its_own_functions() {
    let Some(c) = scenario("filters", Some(HUB)).await else {
        return;
    };
    let a = json!(["on_a", "COMPLETED", "bbbbbbbbbb"]);
    let b = json!(["on_b", "COMPLETED", "aaaaaaaaaa"]);
    assert_eq!(c.get("results"), &json!([a, b, a, b, a, b]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rewind_versions_and_refusals() {
    let Some(c) = scenario("lifecycle", Some(HUB)).await else {
        return;
    };
    assert_eq!(
        c.get("versioned"),
        &json!(["COMPLETED", {"input": "r1", "id": "life-1", "version": "2.0"}])
    );
    assert_eq!(c.get("restart_same"), &json!(["life-1", "COMPLETED", "r1"]));
    assert_eq!(c.get("restart_new"), &json!([true, "COMPLETED", "r1"]));
    assert_eq!(c.get("restart_running"), &json!("FAILED_PRECONDITION"));
    assert_eq!(c.get("before_rewind"), &json!("FAILED"));
    assert_eq!(c.get("after_rewind"), &json!(["COMPLETED", "ok on call 2"]));
    assert_eq!(c.get("rewind_completed"), &json!("FAILED_PRECONDITION"));
    assert_eq!(c.get("entity_like_id"), &json!("INVALID_ARGUMENT"));
    assert_eq!(c.get("too_big"), &json!("INVALID_ARGUMENT"));
    assert_eq!(c.get("too_big_created"), &json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_and_client_carry_on_across_a_backend_restart() {
    let Some(node) = javascript() else {
        return;
    };
    let (first, dir) = backend(Options::new()).await;
    let db = dir.path().join("backend.db");
    let address = first.local_addr();
    let mut backend = Some(first);
    let mut restarts = 0;
    let checks = run_scenario(
        &node,
        "restart",
        &format!("http://{address}"),
        Some(HUB),
        async |pause: &str| {
            assert_eq!(pause, "restart");
            let old = backend.take().expect("a running backend");
            tokio::time::timeout(SHUTDOWN_LIMIT, old.shutdown())
                .await
                .expect("the backend stops in time")
                .expect("the backend stops cleanly");
            let options = Options::new().with_db_path(&db).with_bind(address);
            backend = Some(
                durable_backend::start(options)
                    .await
                    .expect("the backend starts again on the same file and port"),
            );
            restarts += 1;
        },
    )
    .await;
    assert_eq!(restarts, 1);
    // The deadline-less wait that was open during the stop is ended with a retryable status.
    assert_eq!(checks.get("open_wait"), &json!("UNAVAILABLE"));
    assert_eq!(
        checks.get("event"),
        &json!(["COMPLETED", ["before done", "after done"]])
    );
    assert_eq!(checks.get("timer"), &json!(["COMPLETED", "woke"]));
    assert_eq!(checks.get("later"), &json!(["COMPLETED", "started"]));
    let backend = backend.expect("the restarted backend");
    tokio::time::timeout(SHUTDOWN_LIMIT, backend.shutdown())
        .await
        .expect("the backend stops in time")
        .expect("the backend stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_histories_reach_a_worker_without_history_streaming() {
    // A tiny streaming threshold: histories over it would be streamed to workers that advertise
    // HISTORY_STREAMING. The JS worker advertises nothing, so it must still get every past event inline.
    let options = Options::new().with_history_streaming_threshold(1024);
    let Some(c) = scenario_with(options, "history", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("status"), &json!("COMPLETED"));
    // Without the 300 results in its past events the last turn would run the fan-out again instead.
    assert_eq!(c.get("sum"), &json!(300 * 299 / 2));
    // Over 500 events: the client's StreamInstanceHistory call gets several chunks and must see all of them.
    let counts = c.get("history_counts");
    assert_eq!(counts["TaskScheduled"], json!(300), "{counts}");
    assert_eq!(counts["TaskCompleted"], json!(300), "{counts}");
    assert_eq!(counts["ExecutionStarted"], json!(1), "{counts}");
    assert_eq!(counts["ExecutionCompleted"], json!(1), "{counts}");
    assert_eq!(
        c.get("history_ends"),
        &json!(["OrchestratorStarted", "ExecutionCompleted"])
    );
    assert_eq!(c.get("event_ids_in_order"), &json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_hubs_keep_their_work_and_instances_apart() {
    let Some(c) = scenario("hubs", Some(HUB)).await else {
        return;
    };
    let pair = json!(["main", "other"]);
    assert_eq!(c.get("answers"), &json!([pair, pair, pair]));
    assert_eq!(c.get("cross_lookup"), &json!([true, "COMPLETED"]));
    assert_eq!(
        c.get("main_hub_instances"),
        &json!(["same-0", "same-1", "same-2"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_workers_abandon_or_fail_other_versions() {
    let Some(c) = scenario("versioning", Some(HUB)).await else {
        return;
    };
    let one = json!(["COMPLETED", "worker 1.0 ran 1.0"]);
    let two = json!(["COMPLETED", "worker 2.0 ran 2.0"]);
    assert_eq!(
        c.get("rejected_then_taken"),
        &json!([one, two, one, two, one, two])
    );
    assert_eq!(
        c.get("mismatch_failed"),
        &json!(["FAILED", "VersionMismatch", true])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_of_a_killed_worker_goes_to_the_next_one_at_once() {
    // The activity lease is five minutes and the scenario's wait one: only a redelivery on the closed stream
    // lets the orchestration complete in time.
    let Some(c) = scenario("worker_crash", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("child_exit"), &json!("SIGKILL"));
    assert_eq!(
        c.get("completed"),
        &json!(["COMPLETED", "activity answered: from the second worker"])
    );
    assert_eq!(c.get("second_worker_calls"), &json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdk_sees_what_the_scheduler_would_show() {
    let Some(c) = scenario("scheduler_parity", Some(HUB)).await else {
        return;
    };
    assert_eq!(c.get("signal_before_due"), &json!(null));
    assert_eq!(c.get("signal_ran_after_due"), &json!(true));
    assert_eq!(c.get("deleted_get"), &json!(true));
    assert_eq!(c.get("lock_only"), &json!("unlocked"));
    assert_eq!(c.get("entities_left"), &json!(["kept", "later"]));
    assert_eq!(c.get("cleaned"), &json!([0, 0]));
    assert_eq!(c.get("mixed"), &json!(["Hello, World!", "child done"]));
    // The sequence Microsoft's JS SDK tests record against the scheduler.
    assert_eq!(
        c.get("history"),
        &json!([
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
    assert_eq!(
        c.get("explicit_filters"),
        &json!(["COMPLETED", ["3.0.0", "Hello, explicit!"]])
    );
    assert_eq!(
        c.get("strict_auto_filters"),
        &json!(["COMPLETED", ["2.0", "Hello, strict!"]])
    );
}
