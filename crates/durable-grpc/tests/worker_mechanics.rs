//! The worker and client against the Python SDK's reference server, with a small hand-written executor:
//! the transport's own behaviour (completion, abandon on panic, entities V2, reconnect, shutdown) independent of
//! the replay engine.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durable_grpc::proto::{
    self, history_event::EventType, orchestrator_action::OrchestratorActionType,
};
use durable_grpc::{
    BoxFuture, ConnectionOptions, DurableClient, Executor, ExecutorError, InstanceIdQuery,
    InstanceQuery, OrchestrationStatus, StartOptions, Worker, WorkerOptions,
};
use futures::TryStreamExt;

const WAIT: Duration = Duration::from_secs(30);

/// "echo" completes with its input; "double" calls activity "double"; "wait" completes with event "go"'s data;
/// "flaky" panics on its first turns.
#[derive(Default)]
struct Scripted {
    panics_left: Arc<AtomicU32>,
}

fn complete(
    result: Option<String>,
    status: proto::OrchestrationStatus,
) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id: 1000,
        orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
            proto::CompleteOrchestrationAction {
                orchestration_status: status as i32,
                result,
                ..Default::default()
            },
        )),
    }
}

fn orchestrate(
    request: &proto::OrchestratorRequest,
    panics_left: &AtomicU32,
) -> proto::OrchestratorResponse {
    let events: Vec<_> = request
        .past_events
        .iter()
        .chain(&request.new_events)
        .filter_map(|e| e.event_type.as_ref())
        .collect();
    let (name, input) = events
        .iter()
        .find_map(|e| match e {
            EventType::ExecutionStarted(s) => Some((s.name.clone(), s.input.clone())),
            _ => None,
        })
        .expect("an ExecutionStarted event");
    let ok = proto::OrchestrationStatus::Completed;
    // Termination is the engine's job too: it answers with a Terminated completion.
    if let Some(output) = events.iter().find_map(|e| match e {
        EventType::ExecutionTerminated(t) => Some(t.input.clone()),
        _ => None,
    }) {
        return proto::OrchestratorResponse {
            instance_id: request.instance_id.clone(),
            actions: vec![complete(output, proto::OrchestrationStatus::Terminated)],
            ..Default::default()
        };
    }
    let actions = match name.as_str() {
        "echo" => vec![complete(input, ok)],
        "flaky" => {
            if panics_left.load(Ordering::SeqCst) > 0 {
                panics_left.fetch_sub(1, Ordering::SeqCst);
                panic!("flaky orchestrator");
            }
            vec![complete(input, ok)]
        }
        "double" => {
            let done = events.iter().find_map(|e| match e {
                EventType::TaskCompleted(c) => Some(c.result.clone()),
                _ => None,
            });
            let scheduled = events
                .iter()
                .any(|e| matches!(e, EventType::TaskScheduled(_)));
            match (done, scheduled) {
                (Some(result), _) => vec![complete(result, ok)],
                (None, true) => Vec::new(),
                (None, false) => vec![proto::OrchestratorAction {
                    id: 0,
                    orchestrator_action_type: Some(OrchestratorActionType::ScheduleTask(
                        proto::ScheduleTaskAction {
                            name: "double".into(),
                            input,
                            ..Default::default()
                        },
                    )),
                }],
            }
        }
        "wait" => events
            .iter()
            .find_map(|e| match e {
                EventType::EventRaised(r) if r.name == "go" => {
                    Some(vec![complete(r.input.clone(), ok)])
                }
                _ => None,
            })
            .unwrap_or_default(),
        other => vec![complete(
            Some(format!("\"unknown {other}\"")),
            proto::OrchestrationStatus::Failed,
        )],
    };
    proto::OrchestratorResponse {
        instance_id: request.instance_id.clone(),
        actions,
        ..Default::default()
    }
}

impl Executor for Scripted {
    fn execute_orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> BoxFuture<Result<proto::OrchestratorResponse, ExecutorError>> {
        let panics_left = self.panics_left.clone();
        Box::pin(async move { Ok(orchestrate(&request, &panics_left)) })
    }

    fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>> {
        Box::pin(async move {
            let n: i64 = serde_json::from_str(request.input.as_deref().unwrap_or("0"))
                .map_err(|e| ExecutorError(e.to_string()))?;
            Ok(proto::ActivityResponse {
                result: Some((n * 2).to_string()),
                ..Default::default()
            })
        })
    }

    fn execute_entity_batch(
        &self,
        request: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>> {
        Box::pin(async move {
            let mut state: i64 = request
                .entity_state
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut results = Vec::new();
            for op in &request.operations {
                state += op
                    .input
                    .as_deref()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0);
                results.push(proto::OperationResult {
                    result_type: Some(proto::operation_result::ResultType::Success(
                        proto::OperationResultSuccess {
                            result: None,
                            ..Default::default()
                        },
                    )),
                });
            }
            Ok(proto::EntityBatchResult {
                results,
                entity_state: Some(state.to_string()),
                ..Default::default()
            })
        })
    }
}

fn start_worker(endpoint: &str, executor: Scripted) -> durable_grpc::WorkerHandle {
    Worker::builder()
        .connection(ConnectionOptions::new(endpoint).with_task_hub("mechanics"))
        .executor(executor)
        .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
        .build()
        .expect("worker config")
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_worker_round_trip() {
    common::init_tracing();
    let Some(python) = common::python() else {
        return;
    };
    let server = common::PythonServer::start(&python, 0);
    let worker = start_worker(&server.endpoint(), Scripted::default());
    let client = DurableClient::new(&ConnectionOptions::new(server.endpoint())).unwrap();

    let id = client
        .schedule_new_orchestration(
            "echo",
            &serde_json::json!({"hello": "world"}),
            StartOptions::new()
                .with_instance_id("rt-echo-1")
                .with_tag("team", "a"),
        )
        .await
        .unwrap();
    assert_eq!(id, "rt-echo-1");
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed);
    assert_eq!(done.name, "echo");
    let out: serde_json::Value = done.output().unwrap().unwrap();
    assert_eq!(out, serde_json::json!({"hello": "world"}));
    assert!(done.created_at.is_some());

    let fetched = client.get_instance(&id, false).await.unwrap().unwrap();
    assert_eq!(fetched.status, OrchestrationStatus::Completed);
    assert!(
        fetched.serialized_output.is_none(),
        "payloads were not asked for"
    );
    assert!(
        client
            .get_instance("no-such-instance", false)
            .await
            .unwrap()
            .is_none()
    );

    let id2 = client
        .schedule_new_orchestration("double", &21, StartOptions::new())
        .await
        .unwrap();
    let done = client.wait_for_completion(&id2, true, WAIT).await.unwrap();
    assert_eq!(done.output::<i64>().unwrap(), Some(42));

    let history = client.get_history(&id2).await.unwrap();
    let kinds: Vec<_> = history
        .iter()
        .filter_map(|e| e.event_type.as_ref())
        .collect();
    assert!(
        kinds
            .iter()
            .any(|e| matches!(e, EventType::TaskScheduled(_))),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|e| matches!(e, EventType::TaskCompleted(_))),
        "{kinds:?}"
    );

    let page = client
        .query_instances(
            &InstanceQuery::new()
                .with_instance_id_prefix("rt-")
                .with_payloads(true),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].instance_id, "rt-echo-1");
    let all: Vec<_> = client
        .query_all_instances(InstanceQuery::new().with_page_size(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let ids: Vec<String> = client
        .list_all_instance_ids(
            InstanceIdQuery::new()
                .with_statuses([OrchestrationStatus::Completed])
                .with_page_size(1),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");

    let purged = client.purge_instance(&id, false).await.unwrap();
    assert_eq!(purged.deleted_instance_count, 1);
    assert!(client.get_instance(&id, false).await.unwrap().is_none());

    worker.shutdown().await.unwrap();
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_suspend_resume_and_terminate() {
    common::init_tracing();
    let Some(python) = common::python() else {
        return;
    };
    let server = common::PythonServer::start(&python, 0);
    let worker = start_worker(&server.endpoint(), Scripted::default());
    let client = DurableClient::new(&ConnectionOptions::new(server.endpoint())).unwrap();

    let id = client
        .schedule_new_orchestration("wait", &(), StartOptions::new())
        .await
        .unwrap();
    let started = client.wait_for_start(&id, false, WAIT).await.unwrap();
    assert_ne!(started.status, OrchestrationStatus::Pending);
    let err = client
        .wait_for_completion(&id, false, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, durable_grpc::Error::Timeout(_)), "{err}");

    client.suspend(&id, Some("hold")).await.unwrap();
    common::eventually(WAIT, || async {
        client
            .get_instance(&id, false)
            .await
            .unwrap()
            .unwrap()
            .status
            == OrchestrationStatus::Suspended
    })
    .await;
    client.raise_event(&id, "go", &"payload").await.unwrap();
    client.resume(&id, None).await.unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.output::<String>().unwrap().as_deref(), Some("payload"));

    let id = client
        .schedule_new_orchestration("wait", &(), StartOptions::new())
        .await
        .unwrap();
    client.wait_for_start(&id, false, WAIT).await.unwrap();
    client.terminate(&id, &"stopped", false).await.unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Terminated);
    assert_eq!(done.output::<String>().unwrap().as_deref(), Some("stopped"));

    let err = client
        .schedule_new_orchestration("", &(), StartOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, durable_grpc::Error::InvalidArgument(_)),
        "{err}"
    );

    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_orchestrator_is_abandoned_and_redelivered() {
    common::init_tracing();
    let Some(python) = common::python() else {
        return;
    };
    let server = common::PythonServer::start(&python, 0);
    let executor = Scripted::default();
    executor.panics_left.store(2, Ordering::SeqCst);
    let panics_left = executor.panics_left.clone();
    let worker = start_worker(&server.endpoint(), executor);
    let client = DurableClient::new(&ConnectionOptions::new(server.endpoint())).unwrap();

    let id = client
        .schedule_new_orchestration("flaky", &7, StartOptions::new())
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed);
    assert_eq!(done.output::<i64>().unwrap(), Some(7));
    assert_eq!(
        panics_left.load(Ordering::SeqCst),
        0,
        "both panicking turns ran"
    );
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_signals_run_through_v2_batches() {
    common::init_tracing();
    let Some(python) = common::python() else {
        return;
    };
    let server = common::PythonServer::start(&python, 0);
    let worker = start_worker(&server.endpoint(), Scripted::default());
    let client = DurableClient::new(&ConnectionOptions::new(server.endpoint())).unwrap();

    for n in [1, 2, 3] {
        client
            .signal_entity(&"@counter@c1", "add", &n, None)
            .await
            .unwrap();
    }
    common::eventually(WAIT, || async {
        let entity = client.get_entity(&"@counter@c1", true).await.unwrap();
        entity.and_then(|e| e.state::<i64>().unwrap()) == Some(6)
    })
    .await;
    let page = client
        .query_entities(
            &durable_grpc::EntityQuery::new()
                .with_instance_id_prefix("@counter@")
                .with_state(true),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].instance_id, "@counter@c1");
    assert!(
        client
            .get_entity(&"@counter@nobody", false)
            .await
            .unwrap()
            .is_none()
    );
    let err = client
        .signal_entity(&"counter", "add", &1, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, durable_grpc::Error::InvalidArgument(_)),
        "{err}"
    );
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reconnects_after_the_server_restarts() {
    common::init_tracing();
    let Some(python) = common::python() else {
        return;
    };
    let server = common::PythonServer::start(&python, 0);
    let port = server.port;
    let worker = start_worker(&server.endpoint(), Scripted::default());
    let client = DurableClient::new(&ConnectionOptions::new(server.endpoint())).unwrap();
    let id = client
        .schedule_new_orchestration("echo", &1, StartOptions::new())
        .await
        .unwrap();
    client.wait_for_completion(&id, false, WAIT).await.unwrap();

    server.stop();
    let server = common::PythonServer::start(&python, port);
    let id = client
        .schedule_new_orchestration("echo", &2, StartOptions::new())
        .await
        .unwrap();
    let done = client
        .wait_for_completion(&id, true, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.output::<i64>().unwrap(), Some(2));
    worker.shutdown().await.unwrap();
    drop(server);
}

#[tokio::test]
async fn a_worker_without_executor_is_a_clear_error() {
    let err = Worker::builder()
        .connection(ConnectionOptions::new("http://127.0.0.1:1"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("executor"), "{err}");
}
