//! Kills the `durable-backend` process with SIGKILL several times while orchestrations run, restarts it on the same
//! database file, and checks every orchestration completes exactly once with the right output.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::raw;
use durable_proto::history_event::EventType;
use durable_proto::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const INSTANCES: usize = 300;
const NAP: Duration = Duration::from_millis(200);

/// Starts the backend on a free port and returns it with its endpoint.
async fn launch(db: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable-backend"))
        .args(["--port", "0", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the backend starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let endpoint = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(endpoint) = line.strip_prefix("durable-backend listening on ") {
                return endpoint.to_owned();
            }
        }
        panic!("the backend exited before listening");
    })
    .await
    .expect("the backend listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, endpoint)
}

/// A worker that follows the backend across restarts (the endpoint changes with every launch).
async fn worker(endpoint: watch::Receiver<String>) {
    loop {
        let current = endpoint.borrow().clone();
        if let Ok(mut client) = raw::Client::connect(current).await
            && let Ok(response) = client
                .get_work_items(GetWorkItemsRequest {
                    max_concurrent_orchestration_work_items: 50,
                    max_concurrent_activity_work_items: 50,
                    ..Default::default()
                })
                .await
        {
            let mut stream = response.into_inner();
            while let Ok(Some(item)) = stream.message().await {
                let mut client = client.clone();
                tokio::spawn(async move {
                    let _ = raw::handle(&mut client, item, NAP).await;
                });
            }
        }
        // The backend is being restarted: try again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn completed(endpoint: &str) -> Option<usize> {
    let mut client = raw::Client::connect(endpoint.to_owned()).await.ok()?;
    let ids = client
        .list_instance_ids(ListInstanceIdsRequest {
            runtime_status: vec![OrchestrationStatus::Completed as i32],
            page_size: 10_000,
            ..Default::default()
        })
        .await
        .ok()?;
    Some(ids.into_inner().instance_ids.len())
}

async fn wait_for_completed(endpoint: &str, at_least: usize, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(n) = completed(endpoint).await
            && n >= at_least
        {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {at_least} orchestrations completed within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrations_survive_sigkill_of_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let (mut child, endpoint) = launch(&db).await;
    let (publish, current) = watch::channel(endpoint.clone());
    let publish = Arc::new(publish);
    let worker = tokio::spawn(worker(current));

    let mut client = raw::connect(&endpoint).await;
    for i in 0..INSTANCES {
        client
            .start_instance(raw::start_request(
                &format!("crash-{i:03}"),
                "double_then_nap",
                &i.to_string(),
            ))
            .await
            .expect("instance starts");
    }

    let mut endpoint = endpoint;
    let mut kills = 0;
    for fraction in [5, 25, 45, 65] {
        let seen = wait_for_completed(
            &endpoint,
            INSTANCES * fraction / 100,
            Duration::from_secs(120),
        )
        .await;
        if seen >= INSTANCES {
            break;
        }
        child.start_kill().expect("SIGKILL is sent");
        child.wait().await.expect("the backend dies");
        kills += 1;
        let (next, next_endpoint) = launch(&db).await;
        child = next;
        endpoint = next_endpoint;
        publish.send_replace(endpoint.clone());
    }
    assert!(
        kills >= 3,
        "the run finished before the backend could be killed three times ({kills})"
    );
    wait_for_completed(&endpoint, INSTANCES, Duration::from_secs(180)).await;

    let mut client = raw::connect(&endpoint).await;
    for i in 0..INSTANCES {
        let id = format!("crash-{i:03}");
        let state = client
            .get_instance(GetInstanceRequest {
                instance_id: id.clone(),
                get_inputs_and_outputs: true,
            })
            .await
            .unwrap()
            .into_inner()
            .orchestration_state
            .unwrap();
        assert_eq!(
            state.orchestration_status,
            OrchestrationStatus::Completed as i32,
            "{id}"
        );
        assert_eq!(
            state.output.as_deref(),
            Some((i * 2).to_string().as_str()),
            "{id}"
        );
        let mut history = client
            .stream_instance_history(StreamInstanceHistoryRequest {
                instance_id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while let Some(chunk) = history.message().await.unwrap() {
            events.extend(chunk.events);
        }
        let count = |pred: fn(&EventType) -> bool| {
            events
                .iter()
                .filter(|e| e.event_type.as_ref().is_some_and(pred))
                .count()
        };
        assert_eq!(
            count(|e| matches!(e, EventType::ExecutionStarted(_))),
            1,
            "{id}"
        );
        assert_eq!(
            count(|e| matches!(e, EventType::TaskScheduled(_))),
            1,
            "{id}"
        );
        assert_eq!(
            count(|e| matches!(e, EventType::TaskCompleted(_))),
            1,
            "{id}"
        );
        assert_eq!(count(|e| matches!(e, EventType::TimerFired(_))), 1, "{id}");
        // Restarts or not, the timer was delivered no earlier than it was due.
        let timers = durable_testkit::fired_timers(&events).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(timers.len(), 1, "{id}");
        assert_eq!(
            count(|e| matches!(e, EventType::ExecutionCompleted(_))),
            1,
            "{id}"
        );
    }
    worker.abort();
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

#[tokio::test]
async fn sigterm_stops_the_backend_gracefully_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("term.db");
    let (mut child, endpoint) = launch(&db).await;
    let mut client = raw::connect(&endpoint).await;
    client
        .start_instance(raw::start_request("kept", "o", "1"))
        .await
        .unwrap();
    // An open work-item stream must not keep the process alive.
    let _stream = client
        .get_work_items(GetWorkItemsRequest::default())
        .await
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let (mut child, endpoint) = launch(&db).await;
    let mut client = raw::connect(&endpoint).await;
    let state = client
        .get_instance(GetInstanceRequest {
            instance_id: "kept".into(),
            get_inputs_and_outputs: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        state.orchestration_state.unwrap().input.as_deref(),
        Some("1")
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
