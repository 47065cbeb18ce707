//! Microsoft's Python Durable Task SDKs (client and worker) against the backend.

mod common;

use std::time::Duration;

use serde_json::json;

const LIMIT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestration_features_through_the_scheduler_sdk() {
    let Some(python) = common::python() else { return };
    let backend = common::backend(common::memory()).await;
    let r = common::run_python(
        &python,
        include_str!("python/orchestrations.py"),
        &backend.endpoint(),
        "orchestrations",
        LIMIT,
    )
    .await;
    assert_eq!(r["chain"], json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"]));
    assert_eq!(r["tags"], json!({"team": "blue"}));
    assert_eq!(r["fan"], json!(20));
    assert_eq!(r["timer"], json!("woke"));
    assert_eq!(r["timer_waited"], json!(true));
    assert_eq!(r["custom_status_running"], json!(["RUNNING", "waiting"]));
    assert_eq!(r["held_while_suspended"], json!("SUSPENDED"));
    assert_eq!(r["approval"], json!(["yes", "also"]));
    assert_eq!(r["sub"]["parent"], r["sub_expected_parent"]);
    assert_eq!(r["sub"]["x"], json!(7));
    assert_eq!(r["can"], json!([3, true]));
    assert_eq!(r["terminate"], json!(["TERMINATED", "stop", "TERMINATED"]));
    assert_eq!(r["terminate_again"], json!(["TERMINATED", "stop"]));
    assert_eq!(r["failed"], json!(["FAILED", true, true]));
    assert_eq!(r["deadline"], json!("DEADLINE_EXCEEDED"));
    backend.shutdown().await.unwrap();
}
