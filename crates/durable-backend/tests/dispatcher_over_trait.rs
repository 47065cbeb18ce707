//! The dispatcher driven through the `Store` trait with a wrapper that fails and records calls, to check how the
//! service reacts to its store rather than what SQLite does.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raw;
use durable_backend::{
    Changes, LeaseRequest, LeasedWork, Options, SqliteStore, Storage, Store, StoreError,
    StoreFuture, Synchronous, WorkKind,
};
use durable_proto::*;
use futures::FutureExt;

/// SQLite underneath; the first `failing_leases` lease calls fail, and every release is recorded.
#[derive(Debug)]
struct Wrapped {
    inner: SqliteStore,
    failing_leases: AtomicUsize,
    leases_seen: AtomicUsize,
    released: Mutex<Vec<(WorkKind, String)>>,
}

impl Store for Wrapped {
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<Changes>> {
        self.inner.changes()
    }
    fn ensure_hubs(&self, hubs: Vec<String>) -> StoreFuture<()> {
        self.inner.ensure_hubs(hubs)
    }
    fn create_hub(&self, hub: String, recreate: bool) -> StoreFuture<()> {
        self.inner.create_hub(hub, recreate)
    }
    fn delete_hub(&self, hub: String) -> StoreFuture<()> {
        self.inner.delete_hub(hub)
    }
    fn start_instance(&self, hub: String, request: CreateInstanceRequest) -> StoreFuture<String> {
        self.inner.start_instance(hub, request)
    }
    fn get_instance(
        &self,
        hub: String,
        id: String,
        payloads: bool,
    ) -> StoreFuture<Option<OrchestrationState>> {
        self.inner.get_instance(hub, id, payloads)
    }
    fn raise_event(&self, hub: String, request: RaiseEventRequest) -> StoreFuture<()> {
        self.inner.raise_event(hub, request)
    }
    fn terminate(&self, hub: String, request: TerminateRequest) -> StoreFuture<()> {
        self.inner.terminate(hub, request)
    }
    fn suspend_resume(
        &self,
        hub: String,
        id: String,
        reason: Option<String>,
        suspend: bool,
    ) -> StoreFuture<()> {
        self.inner.suspend_resume(hub, id, reason, suspend)
    }
    fn restart(&self, hub: String, request: RestartInstanceRequest) -> StoreFuture<String> {
        self.inner.restart(hub, request)
    }
    fn rewind(&self, hub: String, request: RewindInstanceRequest) -> StoreFuture<()> {
        self.inner.rewind(hub, request)
    }
    fn purge(
        &self,
        hub: String,
        request: PurgeInstancesRequest,
    ) -> StoreFuture<PurgeInstancesResponse> {
        self.inner.purge(hub, request)
    }
    fn query_instances(
        &self,
        hub: String,
        query: InstanceQuery,
    ) -> StoreFuture<QueryInstancesResponse> {
        self.inner.query_instances(hub, query)
    }
    fn list_instance_ids(
        &self,
        hub: String,
        r: ListInstanceIdsRequest,
    ) -> StoreFuture<ListInstanceIdsResponse> {
        self.inner.list_instance_ids(hub, r)
    }
    fn history(&self, hub: String, id: String) -> StoreFuture<Option<Vec<HistoryEvent>>> {
        self.inner.history(hub, id)
    }
    fn lease(&self, hub: String, request: LeaseRequest) -> StoreFuture<Vec<LeasedWork>> {
        self.leases_seen.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .failing_leases
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return futures::future::ready(Err(StoreError::Internal("injected failure".into())))
                .boxed();
        }
        self.inner.lease(hub, request)
    }
    fn complete_orchestration(
        &self,
        hub: String,
        response: OrchestratorResponse,
    ) -> StoreFuture<()> {
        self.inner.complete_orchestration(hub, response)
    }
    fn complete_activity(&self, hub: String, response: ActivityResponse) -> StoreFuture<()> {
        self.inner.complete_activity(hub, response)
    }
    fn complete_entity(&self, hub: String, result: EntityBatchResult) -> StoreFuture<()> {
        self.inner.complete_entity(hub, result)
    }
    fn abandon(&self, hub: String, kind: WorkKind, token: String) -> StoreFuture<()> {
        self.inner.abandon(hub, kind, token)
    }
    fn release(&self, hub: String, leases: Vec<(WorkKind, String)>) -> StoreFuture<()> {
        self.released.lock().unwrap().extend(leases.iter().cloned());
        self.inner.release(hub, leases)
    }
    fn next_due(&self, hub: String) -> StoreFuture<Option<i64>> {
        self.inner.next_due(hub)
    }
    fn signal_entity(&self, hub: String, request: SignalEntityRequest) -> StoreFuture<()> {
        self.inner.signal_entity(hub, request)
    }
    fn get_entity(
        &self,
        hub: String,
        id: String,
        include_state: bool,
    ) -> StoreFuture<Option<EntityMetadata>> {
        self.inner.get_entity(hub, id, include_state)
    }
    fn query_entities(
        &self,
        hub: String,
        query: EntityQuery,
    ) -> StoreFuture<QueryEntitiesResponse> {
        self.inner.query_entities(hub, query)
    }
    fn clean_entity_storage(
        &self,
        hub: String,
        request: CleanEntityStorageRequest,
    ) -> StoreFuture<CleanEntityStorageResponse> {
        self.inner.clean_entity_storage(hub, request)
    }
}

fn wrapped(failing_leases: usize) -> Arc<Wrapped> {
    Arc::new(Wrapped {
        inner: SqliteStore::open(&Storage::InMemory, Synchronous::Full, 16).unwrap(),
        failing_leases: AtomicUsize::new(failing_leases),
        leases_seen: AtomicUsize::new(0),
        released: Mutex::new(Vec::new()),
    })
}

async fn serve(store: Arc<Wrapped>, options: Options) -> durable_backend::Handle {
    durable_backend::start_with_store(options.with_bind("127.0.0.1:0".parse().unwrap()), store)
        .await
        .unwrap()
}

async fn first_work(stream: &mut tonic::Streaming<WorkItem>) -> WorkItem {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let item = stream.message().await.unwrap().unwrap();
            if !matches!(item.request, Some(work_item::Request::HealthPing(_))) {
                return item;
            }
        }
    })
    .await
    .expect("work arrives")
}

#[tokio::test]
async fn a_failing_lease_does_not_end_the_stream_and_work_still_arrives() {
    let store = wrapped(1);
    // Short pings, so the stream retries soon after the injected failure even with nothing else happening.
    let backend = serve(
        store.clone(),
        Options::new().with_ping_interval(Duration::from_millis(50)),
    )
    .await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let mut stream = client
        .get_work_items(GetWorkItemsRequest::default())
        .await
        .unwrap()
        .into_inner();
    client
        .start_instance(raw::start_request("x", "o", "1"))
        .await
        .unwrap();
    let item = first_work(&mut stream).await;
    assert!(matches!(
        item.request,
        Some(work_item::Request::OrchestratorRequest(_))
    ));
    assert!(
        store.leases_seen.load(Ordering::SeqCst) >= 2,
        "the failed lease was retried"
    );
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_closed_stream_gives_its_leases_back_through_the_store() {
    let store = wrapped(0);
    let backend = serve(store.clone(), Options::new()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("y", "o", "1"))
        .await
        .unwrap();
    let mut stream = client
        .get_work_items(GetWorkItemsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let item = first_work(&mut stream).await;
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if store
            .released
            .lock()
            .unwrap()
            .contains(&(WorkKind::Orchestration, item.completion_token.clone()))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease was not given back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    backend.shutdown().await.unwrap();
}
