//! Worker behaviour that neither reference server exercises, against a scripted in-test gRPC server: health pings,
//! history streaming (`requiresHistoryStreaming` -> `StreamInstanceHistory`), the `GetWorkItems` request itself, and
//! abandoning work still in hand when the shutdown grace period ends.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use durable_grpc::proto::{
    self, history_event::EventType, orchestrator_action::OrchestratorActionType,
};
use durable_grpc::{
    BoxFuture, Capability, ConnectionOptions, Executor, ExecutorError, Worker, WorkerOptions,
};
use futures::stream::{self, BoxStream, StreamExt};
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, ServerStreamingService, UnaryService};

/// Everything the worker sent, in order.
#[derive(Debug, Clone)]
enum Call {
    Hello,
    GetWorkItems(proto::GetWorkItemsRequest),
    StreamHistory(proto::StreamInstanceHistoryRequest),
    CompleteOrchestrator(proto::OrchestratorResponse),
    CompleteActivity,
    AbandonActivity(String),
}

type Calls = Arc<Mutex<Vec<Call>>>;

#[derive(Clone)]
struct Fake {
    calls: Calls,
    items: Vec<proto::WorkItem>,
    history: Vec<proto::HistoryChunk>,
}

impl NamedService for Fake {
    const NAME: &'static str = "TaskHubSidecarService";
}

/// A unary method that records its request and answers a default response.
struct Unary<F>(F);

impl<Req, Resp, F> UnaryService<Req> for Unary<F>
where
    F: FnMut(Req) -> Resp,
    Resp: Send + 'static,
{
    type Response = Resp;
    type Future = futures::future::Ready<Result<tonic::Response<Resp>, tonic::Status>>;
    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        futures::future::ready(Ok(tonic::Response::new((self.0)(request.into_inner()))))
    }
}

type Items<T> = BoxStream<'static, Result<T, tonic::Status>>;
type Ready<T> = futures::future::Ready<Result<tonic::Response<T>, tonic::Status>>;

/// `GetWorkItems`: the scripted items, then an open stream.
struct WorkItems {
    calls: Calls,
    items: Vec<proto::WorkItem>,
}

impl ServerStreamingService<proto::GetWorkItemsRequest> for WorkItems {
    type Response = proto::WorkItem;
    type ResponseStream = Items<proto::WorkItem>;
    type Future = Ready<Self::ResponseStream>;
    fn call(&mut self, request: tonic::Request<proto::GetWorkItemsRequest>) -> Self::Future {
        record(&self.calls, Call::GetWorkItems(request.into_inner()));
        // Keep the stream open after the scripted items, as a real server does.
        let items = stream::iter(self.items.clone().into_iter().map(Ok)).chain(stream::pending());
        futures::future::ready(Ok(tonic::Response::new(items.boxed())))
    }
}

/// `StreamInstanceHistory`: the scripted chunks.
struct History {
    calls: Calls,
    chunks: Vec<proto::HistoryChunk>,
}

impl ServerStreamingService<proto::StreamInstanceHistoryRequest> for History {
    type Response = proto::HistoryChunk;
    type ResponseStream = Items<proto::HistoryChunk>;
    type Future = Ready<Self::ResponseStream>;
    fn call(
        &mut self,
        request: tonic::Request<proto::StreamInstanceHistoryRequest>,
    ) -> Self::Future {
        record(&self.calls, Call::StreamHistory(request.into_inner()));
        let chunks = stream::iter(self.chunks.clone().into_iter().map(Ok));
        futures::future::ready(Ok(tonic::Response::new(chunks.boxed())))
    }
}

fn record(calls: &Calls, call: Call) {
    calls.lock().unwrap().push(call);
}

impl tower::Service<http::Request<Body>> for Fake {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        let calls = self.calls.clone();
        Box::pin(async move {
            let path = request
                .uri()
                .path()
                .trim_start_matches("/TaskHubSidecarService/")
                .to_owned();
            Ok(match path.as_str() {
                "Hello" => {
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(Unary(|(): ()| record(&calls, Call::Hello)), request)
                        .await
                }
                "GetWorkItems" => {
                    let svc = WorkItems {
                        calls,
                        items: this.items,
                    };
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .server_streaming(svc, request)
                        .await
                }
                "StreamInstanceHistory" => {
                    let svc = History {
                        calls,
                        chunks: this.history,
                    };
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .server_streaming(svc, request)
                        .await
                }
                "CompleteOrchestratorTask" => {
                    let svc = Unary(|r: proto::OrchestratorResponse| {
                        record(&calls, Call::CompleteOrchestrator(r));
                        proto::CompleteTaskResponse {}
                    });
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(svc, request)
                        .await
                }
                "CompleteActivityTask" => {
                    let svc = Unary(|_: proto::ActivityResponse| {
                        record(&calls, Call::CompleteActivity);
                        proto::CompleteTaskResponse {}
                    });
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(svc, request)
                        .await
                }
                "AbandonTaskActivityWorkItem" => {
                    let svc = Unary(|r: proto::AbandonActivityTaskRequest| {
                        record(&calls, Call::AbandonActivity(r.completion_token));
                        proto::AbandonActivityTaskResponse {}
                    });
                    Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(svc, request)
                        .await
                }
                _ => tonic::Status::unimplemented(path).into_http(),
            })
        })
    }
}

async fn serve(fake: Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(fake)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// Completes orchestrations with the number of past events it was given; never finishes activities.
struct Probe;

impl Executor for Probe {
    fn execute_orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> BoxFuture<Result<proto::OrchestratorResponse, ExecutorError>> {
        let names: Vec<String> = request
            .past_events
            .iter()
            .filter_map(|e| match &e.event_type {
                Some(EventType::ExecutionStarted(s)) => Some(s.name.clone()),
                Some(EventType::TaskScheduled(t)) => Some(t.name.clone()),
                _ => None,
            })
            .collect();
        Box::pin(async move {
            Ok(proto::OrchestratorResponse {
                actions: vec![proto::OrchestratorAction {
                    id: 1,
                    orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
                        proto::CompleteOrchestrationAction {
                            orchestration_status: proto::OrchestrationStatus::Completed as i32,
                            result: Some(serde_json::to_string(&names).unwrap()),
                            ..Default::default()
                        },
                    )),
                }],
                ..Default::default()
            })
        })
    }

    fn execute_activity(
        &self,
        _: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>> {
        Box::pin(futures::future::pending())
    }

    fn execute_entity_batch(
        &self,
        _: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>> {
        Box::pin(async { Err(ExecutorError("no entities here".into())) })
    }

    fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            vec!["probe".into()],
            vec!["stuck".into()],
            vec!["Counter".into()],
        )
    }
}

fn event(event_type: EventType) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id: -1,
        timestamp: None,
        event_type: Some(event_type),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_streaming_health_pings_and_abandon_on_shutdown() {
    common::init_tracing();
    let calls: Calls = Arc::default();
    let items = vec![
        proto::WorkItem {
            request: Some(proto::work_item::Request::HealthPing(proto::HealthPing {})),
            completion_token: String::new(),
        },
        proto::WorkItem {
            request: Some(proto::work_item::Request::OrchestratorRequest(
                proto::OrchestratorRequest {
                    instance_id: "hs-1".into(),
                    execution_id: Some("e1".into()),
                    new_events: vec![event(EventType::OrchestratorStarted(Default::default()))],
                    requires_history_streaming: true,
                    ..Default::default()
                },
            )),
            completion_token: "orch-token".into(),
        },
        proto::WorkItem {
            request: Some(proto::work_item::Request::ActivityRequest(
                proto::ActivityRequest {
                    name: "stuck".into(),
                    task_id: 3,
                    orchestration_instance: Some(proto::OrchestrationInstance {
                        instance_id: "hs-2".into(),
                        execution_id: None,
                    }),
                    ..Default::default()
                },
            )),
            completion_token: "activity-token".into(),
        },
    ];
    // The history arrives in two chunks; the worker must stitch them in order.
    let history = vec![
        proto::HistoryChunk {
            events: vec![event(EventType::ExecutionStarted(
                proto::ExecutionStartedEvent {
                    name: "probe".into(),
                    ..Default::default()
                },
            ))],
        },
        proto::HistoryChunk {
            events: vec![event(EventType::TaskScheduled(proto::TaskScheduledEvent {
                name: "step".into(),
                ..Default::default()
            }))],
        },
    ];
    let endpoint = serve(Fake {
        calls: calls.clone(),
        items,
        history,
    })
    .await;

    let worker = Worker::builder()
        .connection(ConnectionOptions::new(&endpoint).with_task_hub("hub"))
        .executor(Probe)
        .options(
            WorkerOptions::new()
                .with_capabilities([Capability::HistoryStreaming])
                .with_work_item_filters(true)
                .with_max_concurrent_activities(7)
                .with_shutdown_grace(Duration::from_millis(200)),
        )
        .build()
        .unwrap()
        .start();

    common::eventually(Duration::from_secs(30), || async {
        calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| matches!(c, Call::CompleteOrchestrator(_)))
    })
    .await;
    worker.shutdown().await.unwrap();

    let calls = calls.lock().unwrap().clone();
    assert!(matches!(calls[0], Call::Hello), "{calls:?}");
    let Call::GetWorkItems(request) = &calls[1] else {
        panic!("{calls:?}")
    };
    assert_eq!(request.max_concurrent_activity_work_items, 7);
    assert_eq!(
        request.capabilities,
        [proto::WorkerCapability::HistoryStreaming as i32]
    );
    let filters = request
        .work_item_filters
        .as_ref()
        .expect("filters were asked for");
    assert_eq!(filters.orchestrations[0].name, "probe");
    assert_eq!(filters.activities[0].name, "stuck");
    assert_eq!(
        filters.entities[0].name, "counter",
        "entity names are lower-cased"
    );

    let history_call = calls.iter().find_map(|c| match c {
        Call::StreamHistory(r) => Some(r.clone()),
        _ => None,
    });
    let history_call = history_call.expect("the worker streamed the history");
    assert_eq!(history_call.instance_id, "hs-1");
    assert_eq!(history_call.execution_id.as_deref(), Some("e1"));
    assert!(history_call.for_work_item_processing);

    let completed = calls.iter().find_map(|c| match c {
        Call::CompleteOrchestrator(r) => Some(r.clone()),
        _ => None,
    });
    let completed = completed.unwrap();
    assert_eq!(completed.completion_token, "orch-token");
    assert_eq!(completed.instance_id, "hs-1");
    let Some(OrchestratorActionType::CompleteOrchestration(done)) =
        &completed.actions[0].orchestrator_action_type
    else {
        panic!("{completed:?}")
    };
    assert_eq!(
        done.result.as_deref(),
        Some(r#"["probe","step"]"#),
        "both chunks, in order"
    );

    // The activity never finished: shutdown handed it back instead of completing it.
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Call::AbandonActivity(t) if t == "activity-token")),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| matches!(c, Call::CompleteActivity)),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_reopened() {
    common::init_tracing();
    let calls: Calls = Arc::default();
    // No items at all: the stream stays open and says nothing.
    let endpoint = serve(Fake {
        calls: calls.clone(),
        items: Vec::new(),
        history: Vec::new(),
    })
    .await;
    let worker = Worker::builder()
        .connection(ConnectionOptions::new(&endpoint))
        .executor(Probe)
        .options(WorkerOptions::new().with_silence_timeout(Duration::from_millis(100)))
        .build()
        .unwrap()
        .start();
    common::eventually(Duration::from_secs(30), || async {
        let calls = calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| matches!(c, Call::GetWorkItems(_)))
            .count()
            >= 2
    })
    .await;
    worker.shutdown().await.unwrap();
    let calls = calls.lock().unwrap();
    let hellos = calls.iter().filter(|c| matches!(c, Call::Hello)).count();
    assert!(
        hellos >= 2,
        "each reconnection starts with Hello: {calls:?}"
    );
}
