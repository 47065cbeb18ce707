//! End to end: the sample app under the local host, both as real processes (the host in this test, the custom
//! handler as `durable-app handler`), driven over HTTP the way a person with curl would.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result};
use common::{request, start_app, wait_done, wait_until};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_cities_through_the_http_starter() -> Result<()> {
    let host = start_app().await?;
    let base = host.base_url().to_owned();

    let started = request(
        "POST",
        &format!("{base}/api/orchestrators/HelloCities"),
        None,
    )
    .await?;
    assert_eq!(started.status, 202, "{}", started.text());
    let links = started.json()?;
    let status_url = links["statusQueryGetUri"]
        .as_str()
        .context("statusQueryGetUri")?;
    assert_eq!(
        started.headers.get("location").map(String::as_str),
        Some(status_url)
    );

    let done = wait_done(status_url, LIMIT).await?;
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(done["name"], "HelloCities");
    assert_eq!(
        done["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );

    // The same through the host's own webhook, with history.
    let separator = if status_url.contains('?') { '&' } else { '?' };
    let history_url = format!("{status_url}{separator}showHistory=true&showHistoryOutput=true");
    let history = request("GET", &history_url, None).await?;
    let events = history.json()?["historyEvents"]
        .as_array()
        .cloned()
        .context("historyEvents")?;
    let greetings: Vec<_> = events
        .iter()
        .filter(|e| e["EventType"] == "TaskCompleted" && e["FunctionName"] == "SayHello")
        .map(|e| e["Result"].clone())
        .collect();
    assert_eq!(
        greetings,
        [
            json!("Hello Tokyo!"),
            json!("Hello Seattle!"),
            json!("Hello London!")
        ]
    );

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_fan_in_and_the_plain_http_function() -> Result<()> {
    let host = start_app().await?;
    let base = host.base_url().to_owned();
    let hooks = format!("{base}/runtime/webhooks/durabletask");

    let started = request(
        "POST",
        &format!("{hooks}/orchestrators/FanOutFanIn/fan1"),
        Some(r#"["Tokyo","Oslo"]"#),
    )
    .await?;
    assert_eq!(started.status, 202, "{}", started.text());
    let done = wait_done(&format!("{hooks}/instances/fan1"), LIMIT).await?;
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(done["output"]["total"], 9);
    assert_eq!(
        done["output"]["per_city"],
        json!([["Tokyo", 5], ["Oslo", 4]])
    );

    let hello = request("GET", &format!("{base}/api/hello?name=Rust"), None).await?;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.text(), "Hello, Rust!");

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_waits_for_its_event() -> Result<()> {
    let host = start_app().await?;
    let hooks = format!("{}/runtime/webhooks/durabletask", host.base_url());

    let body = r#"{"item":"laptop","timeout_seconds":600}"#;
    let started = request(
        "POST",
        &format!("{hooks}/orchestrators/ApprovalWorkflow/appr1"),
        Some(body),
    )
    .await?;
    assert_eq!(started.status, 202, "{}", started.text());
    let status_url = format!("{hooks}/instances/appr1");
    // Running with its custom status until the event comes.
    let waiting = wait_until("GET", &status_url, LIMIT, |r| {
        r.json()
            .is_ok_and(|s| s["customStatus"] == "waiting for approval of laptop")
    })
    .await?;
    assert_eq!(waiting.status, 202);
    assert_eq!(waiting.json()?["runtimeStatus"], "Running");
    assert!(waiting.headers.contains_key("retry-after"));

    let raised = request(
        "POST",
        &format!("{hooks}/instances/appr1/raiseEvent/Approval"),
        Some("true"),
    )
    .await?;
    assert_eq!(raised.status, 202, "{}", raised.text());
    let done = wait_done(&status_url, LIMIT).await?;
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(
        done["output"],
        json!({ "item": "laptop", "status": "approved" })
    );

    // A second one times out on its durable timer.
    let body = r#"{"item":"desk","timeout_seconds":1}"#;
    request(
        "POST",
        &format!("{hooks}/orchestrators/ApprovalWorkflow/appr2"),
        Some(body),
    )
    .await?;
    let done = wait_done(&format!("{hooks}/instances/appr2"), LIMIT).await?;
    assert_eq!(
        done["output"],
        json!({ "item": "desk", "status": "timed out" })
    );
    // By the backend's record, the timeout's timer fired no earlier than it was due.
    let client = azure_durable_functions::DurableClient::new(
        &azure_durable_functions::ConnectionOptions::new(host.backend_endpoint())
            .with_task_hub(host.task_hub()),
    )?;
    let history = client.get_history("appr2").await?;
    let timers = durable_testkit::fired_timers(&history).map_err(anyhow::Error::msg)?;
    assert_eq!(timers.len(), 1, "{history:?}");

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_entity_over_http() -> Result<()> {
    let host = start_app().await?;
    let base = host.base_url().to_owned();

    assert_eq!(
        request("GET", &format!("{base}/api/counter/e2e"), None)
            .await?
            .status,
        404
    );
    for amount in ["5", "7"] {
        let signaled =
            request("POST", &format!("{base}/api/counter/e2e/add"), Some(amount)).await?;
        assert_eq!(signaled.status, 202, "{}", signaled.text());
    }
    let value = wait_until("GET", &format!("{base}/api/counter/e2e"), LIMIT, |r| {
        r.status == 200 && r.json().is_ok_and(|v| v["value"] == 12)
    })
    .await?;
    assert_eq!(value.json()?["id"], "@counter@e2e");

    // The management API sees the same entity.
    let hooks = format!("{base}/runtime/webhooks/durabletask");
    let state = request("GET", &format!("{hooks}/entities/counter/e2e"), None).await?;
    assert_eq!(state.status, 200);
    assert_eq!(state.json()?, json!(12));
    let reset = request("POST", &format!("{base}/api/counter/e2e/reset"), None).await?;
    assert_eq!(reset.status, 202);
    wait_until("GET", &format!("{base}/api/counter/e2e"), LIMIT, |r| {
        r.json().is_ok_and(|v| v["value"] == 0)
    })
    .await?;

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrations_complete_when_the_handler_is_killed_mid_run() -> Result<()> {
    let host = start_app().await?;
    let hooks = format!("{}/runtime/webhooks/durabletask", host.base_url());
    let first_pid = host.handler_pid();

    // Approvals parked on their event: every one of them needs the handler again after the kill.
    let approvals: Vec<String> = (0..10).map(|i| format!("wait{i}")).collect();
    for id in &approvals {
        let body = r#"{"item":"x","timeout_seconds":600}"#;
        let started = request(
            "POST",
            &format!("{hooks}/orchestrators/ApprovalWorkflow/{id}"),
            Some(body),
        )
        .await?;
        assert_eq!(started.status, 202);
    }
    for id in &approvals {
        wait_until("GET", &format!("{hooks}/instances/{id}"), LIMIT, |r| {
            r.json()
                .is_ok_and(|s| s["customStatus"] == "waiting for approval of x")
        })
        .await?;
    }
    // Chains in flight when the handler dies.
    let chains: Vec<String> = (0..20).map(|i| format!("kill{i}")).collect();
    for id in &chains {
        let started = request(
            "POST",
            &format!("{hooks}/orchestrators/HelloCities/{id}"),
            None,
        )
        .await?;
        assert_eq!(started.status, 202);
    }
    let killed = std::process::Command::new("kill")
        .args(["-9", &first_pid.to_string()])
        .status()?;
    assert!(killed.success());
    for id in &approvals {
        let raised = request(
            "POST",
            &format!("{hooks}/instances/{id}/raiseEvent/Approval"),
            Some("true"),
        )
        .await?;
        assert_eq!(raised.status, 202);
    }

    for id in &chains {
        let done = wait_done(&format!("{hooks}/instances/{id}"), LIMIT).await?;
        assert_eq!(done["runtimeStatus"], "Completed", "{id}: {done}");
        assert_eq!(
            done["output"],
            json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
        );
    }
    for id in &approvals {
        let done = wait_done(&format!("{hooks}/instances/{id}"), LIMIT).await?;
        assert_eq!(
            done["output"],
            json!({ "item": "x", "status": "approved" }),
            "{id}"
        );
    }
    assert_ne!(host.handler_pid(), first_pid, "the handler was restarted");
    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_resume_terminate_restart_and_purge_through_the_webhooks() -> Result<()> {
    let host = start_app().await?;
    let hooks = format!("{}/runtime/webhooks/durabletask", host.base_url());
    let body = r#"{"item":"chair","timeout_seconds":600}"#;
    let start = |id: &str| format!("{hooks}/orchestrators/ApprovalWorkflow/{id}");
    let status = |id: &str| format!("{hooks}/instances/{id}");
    let running = |r: &common::Reply| r.json().is_ok_and(|s| s["runtimeStatus"] == "Running");

    assert_eq!(
        request("POST", &start("ops1"), Some(body)).await?.status,
        202
    );
    wait_until("GET", &status("ops1"), LIMIT, running).await?;

    let suspend = request(
        "POST",
        &format!("{}/suspend?reason=hold", status("ops1")),
        None,
    )
    .await?;
    assert_eq!(suspend.status, 202);
    let suspended = wait_until("GET", &status("ops1"), LIMIT, |r| {
        r.json().is_ok_and(|s| s["runtimeStatus"] == "Suspended")
    })
    .await?;
    assert_eq!(
        suspended.status, 202,
        "a suspended instance is still in flight"
    );

    let resume = request(
        "POST",
        &format!("{}/resume?reason=go", status("ops1")),
        None,
    )
    .await?;
    assert_eq!(resume.status, 202);
    wait_until("GET", &status("ops1"), LIMIT, running).await?;

    let terminate = request(
        "POST",
        &format!("{}/terminate?reason=enough", status("ops1")),
        None,
    )
    .await?;
    assert_eq!(terminate.status, 202);
    let done = wait_done(&status("ops1"), LIMIT).await?;
    assert_eq!(done["runtimeStatus"], "Terminated");
    // Past the point of terminating, suspending or raising events.
    let again = request("POST", &format!("{}/terminate", status("ops1")), None).await?;
    assert_eq!(again.status, 410);
    assert_eq!(
        request("POST", &format!("{}/suspend", status("ops1")), None)
            .await?
            .status,
        410
    );
    assert_eq!(
        request(
            "POST",
            &format!("{}/raiseEvent/Approval", status("ops1")),
            Some("true")
        )
        .await?
        .status,
        410
    );
    assert_eq!(
        request("POST", &format!("{}/terminate", status("nope")), None)
            .await?
            .status,
        404
    );

    // Restart under a new id: a fresh instance with the same input.
    let restarted = request(
        "POST",
        &format!("{}/restart?restartWithNewInstanceId=true", status("ops1")),
        None,
    )
    .await?;
    assert_eq!(restarted.status, 202, "{}", restarted.text());
    let new_id = restarted.json()?["id"].as_str().context("id")?.to_owned();
    assert_ne!(new_id, "ops1");
    let fresh = wait_until("GET", &status(&new_id), LIMIT, running).await?;
    assert_eq!(
        fresh.json()?["input"],
        json!({ "item": "chair", "timeout_seconds": 600 })
    );
    request(
        "POST",
        &format!("{}/raiseEvent/Approval", status(&new_id)),
        Some("false"),
    )
    .await?;
    let done = wait_done(&status(&new_id), LIMIT).await?;
    assert_eq!(done["output"]["status"], "rejected");

    // Purge one, then it is gone.
    let purged = request("DELETE", &status("ops1"), None).await?;
    assert_eq!(purged.status, 200);
    assert_eq!(purged.json()?["instancesDeleted"], 1);
    assert_eq!(request("GET", &status("ops1"), None).await?.status, 404);
    assert_eq!(request("DELETE", &status("ops1"), None).await?.status, 404);

    host.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_rewind_lists_and_purge_by_filter() -> Result<()> {
    let host = start_app().await?;
    let base = host.base_url().to_owned();
    let hooks = format!("{base}/runtime/webhooks/durabletask");

    // An empty city name fails SayHello for good, which fails the orchestration.
    let started = request(
        "POST",
        &format!("{hooks}/orchestrators/HelloCities/bad1"),
        Some(r#"[""]"#),
    )
    .await?;
    assert_eq!(started.status, 202);
    let failed = wait_done(&format!("{hooks}/instances/bad1"), LIMIT).await?;
    assert_eq!(failed["runtimeStatus"], "Failed");
    assert!(
        failed["output"].as_str().is_some_and(|m| !m.is_empty()),
        "{failed}"
    );
    let as_500 = request(
        "GET",
        &format!("{hooks}/instances/bad1?returnInternalServerErrorOnFailure=true"),
        None,
    )
    .await?;
    assert_eq!(as_500.status, 500);
    assert_eq!(
        request(
            "POST",
            &format!("{hooks}/instances/bad1/rewind?reason=retry"),
            None
        )
        .await?
        .status,
        202
    );

    // A completed one cannot be rewound.
    request(
        "POST",
        &format!("{hooks}/orchestrators/HelloCities/good1"),
        None,
    )
    .await?;
    wait_done(&format!("{hooks}/instances/good1"), LIMIT).await?;
    assert_eq!(
        request("POST", &format!("{hooks}/instances/good1/rewind"), None)
            .await?
            .status,
        410
    );

    // Entities are listed by name, with their state on request.
    request("POST", &format!("{base}/api/counter/listed/add"), Some("3")).await?;
    let listed = wait_until(
        "GET",
        &format!("{hooks}/entities/counter?fetchState=true"),
        LIMIT,
        |r| {
            r.json().is_ok_and(|v| {
                v.as_array().is_some_and(|items| {
                    items
                        .iter()
                        .any(|e| e["entityId"]["key"] == "listed" && e["state"] == 3)
                })
            })
        },
    )
    .await?;
    assert_eq!(listed.status, 200);

    // Purge every completed instance, then the list of completed ones is empty.
    let purged = request(
        "DELETE",
        &format!("{hooks}/instances?runtimeStatus=Completed"),
        None,
    )
    .await?;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert!(
        purged.json()?["instancesDeleted"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    let left = request(
        "GET",
        &format!("{hooks}/instances?runtimeStatus=Completed"),
        None,
    )
    .await?;
    assert_eq!(left.json()?, json!([]));
    assert_eq!(
        request(
            "GET",
            &format!("{hooks}/instances?runtimeStatus=Nope"),
            None
        )
        .await?
        .status,
        400
    );

    host.stop().await?;
    Ok(())
}
