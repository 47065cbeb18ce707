//! The backend's own bookkeeping of leases and chunked completions, seen from inside: whatever ends a lease
//! (completion, abandon, the stream closing, the lease running out) leaves nothing behind in memory.

use std::sync::Arc;
use std::time::Duration;

use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use durable_proto::*;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;

use super::{Routes, Shared, lock};
use crate::options::{Options, Storage, Synchronous};
use crate::store::SqliteStore;

type Client = TaskHubSidecarServiceClient<Channel>;

async fn serve(options: Options) -> (Arc<Shared>, Client, watch::Sender<bool>) {
    let store = SqliteStore::open(&Storage::InMemory, Synchronous::Off, 8).unwrap();
    let (stop, stopped) = watch::channel(false);
    let shared = Shared::new(Arc::new(store), options, stopped.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = Routes::new(shared.clone());
    let mut until = stopped;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                let _ = until.wait_for(|s| *s).await;
            }),
    );
    let client = TaskHubSidecarServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    (shared, client, stop)
}

async fn next(stream: &mut tonic::Streaming<WorkItem>) -> WorkItem {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let item = stream.message().await.unwrap().unwrap();
            if !matches!(item.request, Some(work_item::Request::HealthPing(_))) {
                return item;
            }
        }
    })
    .await
    .expect("a work item arrives")
}

#[allow(deprecated)]
fn chunk(item: &WorkItem, is_partial: bool) -> OrchestratorResponse {
    OrchestratorResponse {
        completion_token: item.completion_token.clone(),
        actions: vec![OrchestratorAction {
            id: 0,
            orchestrator_action_type: Some(OrchestratorActionType::CreateTimer(
                CreateTimerAction::default(),
            )),
        }],
        is_partial,
        ..OrchestratorResponse::default()
    }
}

fn buffered(shared: &Shared) -> usize {
    lock(&shared.partial).len()
}

/// Bounded polling: the stream task frees things on its own schedule.
async fn until_empty(shared: &Shared) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while buffered(shared) > 0 || !lock(&shared.leases).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chunks or leases were kept"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn every_end_of_a_lease_frees_its_chunks() {
    let options = Options::new().with_orchestration_lease(Duration::from_secs(2));
    let (shared, mut client, stop) = serve(options).await;
    let one = GetWorkItemsRequest {
        max_concurrent_orchestration_work_items: 1,
        ..GetWorkItemsRequest::default()
    };
    client
        .start_instance(CreateInstanceRequest {
            instance_id: "i".into(),
            name: "o".into(),
            ..CreateInstanceRequest::default()
        })
        .await
        .unwrap();

    // Made-up tokens buffer nothing.
    let made_up = WorkItem {
        completion_token: "made-up".into(),
        ..WorkItem::default()
    };
    assert!(
        client
            .complete_orchestrator_task(chunk(&made_up, true))
            .await
            .is_err()
    );
    assert_eq!(buffered(&shared), 0);

    // Abandon.
    let mut stream = client
        .get_work_items(one.clone())
        .await
        .unwrap()
        .into_inner();
    let item = next(&mut stream).await;
    client
        .complete_orchestrator_task(chunk(&item, true))
        .await
        .unwrap();
    assert_eq!(buffered(&shared), 1);
    client
        .abandon_task_orchestrator_work_item(AbandonOrchestrationTaskRequest {
            completion_token: item.completion_token.clone(),
        })
        .await
        .unwrap();
    assert_eq!(buffered(&shared), 0);

    // The stream closes.
    let item = next(&mut stream).await;
    client
        .complete_orchestrator_task(chunk(&item, true))
        .await
        .unwrap();
    assert_eq!(buffered(&shared), 1);
    drop(stream);
    until_empty(&shared).await;

    // The lease runs out while the stream stays open.
    let mut stream = client
        .get_work_items(one.clone())
        .await
        .unwrap()
        .into_inner();
    let item = next(&mut stream).await;
    client
        .complete_orchestrator_task(chunk(&item, true))
        .await
        .unwrap();
    assert_eq!(buffered(&shared), 1);
    let again = next(&mut stream).await;
    assert_ne!(again.completion_token, item.completion_token);
    assert_eq!(buffered(&shared), 0);

    // The last chunk completes the turn.
    client
        .complete_orchestrator_task(chunk(&again, true))
        .await
        .unwrap();
    assert_eq!(buffered(&shared), 1);
    client
        .complete_orchestrator_task(chunk(&again, false))
        .await
        .unwrap();
    assert_eq!(buffered(&shared), 0);
    drop(stream);
    until_empty(&shared).await;
    let _ = stop.send(true);
}
