//! The `TaskHubSidecarService` gRPC service: request checks and hub selection in front of the store.

mod checks;
#[cfg(test)]
mod chunk_tests;
mod client;
mod validate;
mod work_items;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use durable_proto::task_hub_sidecar_service_server::TaskHubSidecarService;
use durable_proto::*;
use tokio::sync::{broadcast, watch};
use tonic::{Request, Response, Status};

use crate::options::Options;
use crate::store::{Changes, Store};

pub(crate) use work_items::Routes;
pub(crate) use worker::{Lease, PartialTurn};

/// Headers that name the task hub, in order of precedence (gRPC metadata keys are lower case).
const HUB_HEADERS: [&str; 2] = ["taskhub", "durable-taskhub"];

/// Per-hub wake-up signal for idle work-item streams.
#[derive(Debug)]
pub(crate) struct HubSignal {
    work: watch::Sender<u64>,
}

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) options: Options,
    hubs: Mutex<HashMap<String, Arc<HubSignal>>>,
    /// Instance waiters (`WaitForInstance*`), keyed by (hub, instance id).
    waiters: Mutex<HashMap<(String, String), watch::Sender<u64>>>,
    /// The live leases this process handed out, by token: which stream holds each (to free its slot on
    /// completion) and what it is for. Locked before `partial` wherever both are.
    pub(crate) leases: Mutex<HashMap<String, Lease>>,
    /// Chunks of orchestrator completions received so far, by completion token of a live lease.
    pub(crate) partial: Mutex<HashMap<String, PartialTurn>>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it (the maps stay consistent per entry).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        options: Options,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let shared = Arc::new(Shared {
            store,
            options,
            hubs: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            leases: Mutex::new(HashMap::new()),
            partial: Mutex::new(HashMap::new()),
            shutdown,
        });
        let changes = shared.store.changes();
        tokio::spawn(fan_out(Arc::downgrade(&shared), changes));
        shared
    }

    /// The hub a request addresses, created on first use: the scheduler's `taskhub` header, else the
    /// `durable-taskhub` header that clients of the Functions host's local endpoint send (a `durableClient` binding
    /// pointed at this backend), else the default hub.
    pub(crate) async fn hub<T>(
        &self,
        request: &Request<T>,
    ) -> Result<(String, Arc<HubSignal>), Status> {
        let metadata = request.metadata();
        let header = HUB_HEADERS
            .iter()
            .find_map(|name| metadata.get(*name).map(|value| (*name, value)));
        let name = match header {
            Some((header, value)) => value
                .to_str()
                .map_err(|_| {
                    Status::invalid_argument(format!("the {header} header is not valid ASCII"))
                })?
                .trim()
                .to_owned(),
            None => String::new(),
        };
        let name = if name.is_empty() {
            self.options.default_hub.clone()
        } else {
            name
        };
        validate::hub_name(&name)?;
        let signal = self.hub_named(&name).await?;
        Ok((name, signal))
    }

    /// The wake-up signal of a hub, creating the hub on first use.
    pub(crate) async fn hub_named(&self, name: &str) -> Result<Arc<HubSignal>, Status> {
        if let Some(signal) = lock(&self.hubs).get(name) {
            return Ok(signal.clone());
        }
        self.store.ensure_hubs(vec![name.to_owned()]).await?;
        let signal = lock(&self.hubs)
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(HubSignal {
                    work: watch::channel(0).0,
                })
            })
            .clone();
        Ok(signal)
    }

    pub(crate) fn forget_hub(&self, hub: &str) {
        lock(&self.hubs).remove(hub);
    }

    /// A receiver that changes whenever the instance's row is written. The guard unregisters itself when dropped,
    /// also when the caller goes away mid-wait (the RPC future is dropped then).
    pub(crate) fn watch_instance(&self, hub: &str, id: &str) -> InstanceWatch<'_> {
        let key = (hub.to_owned(), id.to_owned());
        let receiver = lock(&self.waiters)
            .entry(key.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        InstanceWatch {
            shared: self,
            key,
            receiver,
        }
    }

    fn publish(&self, changes: Option<&Changes>) {
        let hubs = lock(&self.hubs);
        for (name, signal) in hubs.iter() {
            if changes.is_none_or(|c| c.work.contains(name)) {
                signal.work.send_modify(|v| *v = v.wrapping_add(1));
            }
        }
        drop(hubs);
        let waiters = lock(&self.waiters);
        match changes {
            Some(c) => {
                for key in &c.instances {
                    if let Some(sender) = waiters.get(key) {
                        sender.send_modify(|v| *v = v.wrapping_add(1));
                    }
                }
            }
            None => {
                for sender in waiters.values() {
                    sender.send_modify(|v| *v = v.wrapping_add(1));
                }
            }
        }
    }
}

/// A registered interest in one instance's changes.
#[derive(Debug)]
pub(crate) struct InstanceWatch<'a> {
    shared: &'a Shared,
    key: (String, String),
    receiver: watch::Receiver<u64>,
}

impl InstanceWatch<'_> {
    pub(crate) fn receiver(&mut self) -> &mut watch::Receiver<u64> {
        &mut self.receiver
    }
}

impl Drop for InstanceWatch<'_> {
    fn drop(&mut self) {
        let mut waiters = lock(&self.shared.waiters);
        // Our own receiver is still alive here: the entry goes when it is the last one.
        if waiters
            .get(&self.key)
            .is_some_and(|s| s.receiver_count() <= 1)
        {
            waiters.remove(&self.key);
        }
    }
}

/// Turns the store's commit notifications into wake-ups for streams and waiters.
async fn fan_out(shared: std::sync::Weak<Shared>, mut changes: broadcast::Receiver<Arc<Changes>>) {
    loop {
        let received = changes.recv().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match received {
            Ok(c) => shared.publish(Some(&c)),
            // Missed some: wake everyone, they re-check.
            Err(broadcast::error::RecvError::Lagged(_)) => shared.publish(None),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

#[tonic::async_trait]
impl TaskHubSidecarService for Service {
    async fn hello(&self, _request: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }

    async fn start_instance(
        &self,
        request: Request<CreateInstanceRequest>,
    ) -> Result<Response<CreateInstanceResponse>, Status> {
        client::start_instance(&self.shared, request).await
    }

    async fn get_instance(
        &self,
        request: Request<GetInstanceRequest>,
    ) -> Result<Response<GetInstanceResponse>, Status> {
        client::get_instance(&self.shared, request).await
    }

    async fn rewind_instance(
        &self,
        request: Request<RewindInstanceRequest>,
    ) -> Result<Response<RewindInstanceResponse>, Status> {
        client::rewind_instance(&self.shared, request).await
    }

    async fn restart_instance(
        &self,
        request: Request<RestartInstanceRequest>,
    ) -> Result<Response<RestartInstanceResponse>, Status> {
        client::restart_instance(&self.shared, request).await
    }

    async fn wait_for_instance_start(
        &self,
        request: Request<GetInstanceRequest>,
    ) -> Result<Response<GetInstanceResponse>, Status> {
        client::wait_for_instance(&self.shared, request, false).await
    }

    async fn wait_for_instance_completion(
        &self,
        request: Request<GetInstanceRequest>,
    ) -> Result<Response<GetInstanceResponse>, Status> {
        client::wait_for_instance(&self.shared, request, true).await
    }

    async fn raise_event(
        &self,
        request: Request<RaiseEventRequest>,
    ) -> Result<Response<RaiseEventResponse>, Status> {
        client::raise_event(&self.shared, request).await
    }

    async fn terminate_instance(
        &self,
        request: Request<TerminateRequest>,
    ) -> Result<Response<TerminateResponse>, Status> {
        client::terminate_instance(&self.shared, request).await
    }

    async fn suspend_instance(
        &self,
        request: Request<SuspendRequest>,
    ) -> Result<Response<SuspendResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        let r = request.into_inner();
        validate::instance_id(&r.instance_id)?;
        validate::payload(
            "suspension reason",
            r.reason.as_ref(),
            self.shared.options.max_payload_bytes,
        )?;
        self.shared
            .store
            .suspend_resume(hub, r.instance_id, r.reason, true)
            .await?;
        Ok(Response::new(SuspendResponse {}))
    }

    async fn resume_instance(
        &self,
        request: Request<ResumeRequest>,
    ) -> Result<Response<ResumeResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        let r = request.into_inner();
        validate::instance_id(&r.instance_id)?;
        validate::payload(
            "resume reason",
            r.reason.as_ref(),
            self.shared.options.max_payload_bytes,
        )?;
        self.shared
            .store
            .suspend_resume(hub, r.instance_id, r.reason, false)
            .await?;
        Ok(Response::new(ResumeResponse {}))
    }

    async fn query_instances(
        &self,
        request: Request<QueryInstancesRequest>,
    ) -> Result<Response<QueryInstancesResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        let query = request.into_inner().query.unwrap_or_default();
        Ok(Response::new(
            self.shared.store.query_instances(hub, query).await?,
        ))
    }

    async fn list_instance_ids(
        &self,
        request: Request<ListInstanceIdsRequest>,
    ) -> Result<Response<ListInstanceIdsResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        Ok(Response::new(
            self.shared
                .store
                .list_instance_ids(hub, request.into_inner())
                .await?,
        ))
    }

    async fn purge_instances(
        &self,
        request: Request<PurgeInstancesRequest>,
    ) -> Result<Response<PurgeInstancesResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        let r = request.into_inner();
        if let Some(purge_instances_request::Request::InstanceBatch(batch)) = &r.request
            && batch.instance_ids.len() > 500
        {
            return Err(Status::invalid_argument(
                "a purge batch may name at most 500 instances",
            ));
        }
        Ok(Response::new(self.shared.store.purge(hub, r).await?))
    }

    type GetWorkItemsStream = work_items::GeneratedWorkItemStream;

    async fn get_work_items(
        &self,
        request: Request<GetWorkItemsRequest>,
    ) -> Result<Response<Self::GetWorkItemsStream>, Status> {
        let response = worker::get_work_items(&self.shared, request).await?;
        Ok(response.map(work_items::generated))
    }

    async fn get_tombstoned_payloads(
        &self,
        _request: Request<GetTombstonedPayloadsRequest>,
    ) -> Result<Response<GetTombstonedPayloadsResponse>, Status> {
        // Payloads are never externalized here, so there is never anything to clean up.
        Ok(Response::new(GetTombstonedPayloadsResponse::default()))
    }

    async fn ack_purged_payloads(
        &self,
        _request: Request<AckPurgedPayloadsRequest>,
    ) -> Result<Response<AckPurgedPayloadsResponse>, Status> {
        Ok(Response::new(AckPurgedPayloadsResponse {}))
    }

    async fn complete_activity_task(
        &self,
        request: Request<ActivityResponse>,
    ) -> Result<Response<CompleteTaskResponse>, Status> {
        worker::complete_activity(&self.shared, request).await
    }

    async fn complete_orchestrator_task(
        &self,
        request: Request<OrchestratorResponse>,
    ) -> Result<Response<CompleteTaskResponse>, Status> {
        worker::complete_orchestrator(&self.shared, request).await
    }

    async fn complete_entity_task(
        &self,
        request: Request<EntityBatchResult>,
    ) -> Result<Response<CompleteTaskResponse>, Status> {
        worker::complete_entity(&self.shared, request).await
    }

    type StreamInstanceHistoryStream = client::HistoryStream;

    async fn stream_instance_history(
        &self,
        request: Request<StreamInstanceHistoryRequest>,
    ) -> Result<Response<Self::StreamInstanceHistoryStream>, Status> {
        client::stream_history(&self.shared, request).await
    }

    async fn create_task_hub(
        &self,
        request: Request<CreateTaskHubRequest>,
    ) -> Result<Response<CreateTaskHubResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        let recreate = request.into_inner().recreate_if_exists;
        self.shared.store.create_hub(hub, recreate).await?;
        Ok(Response::new(CreateTaskHubResponse {}))
    }

    async fn delete_task_hub(
        &self,
        request: Request<DeleteTaskHubRequest>,
    ) -> Result<Response<DeleteTaskHubResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        self.shared.forget_hub(&hub);
        self.shared.store.delete_hub(hub).await?;
        Ok(Response::new(DeleteTaskHubResponse {}))
    }

    async fn signal_entity(
        &self,
        request: Request<SignalEntityRequest>,
    ) -> Result<Response<SignalEntityResponse>, Status> {
        client::signal_entity(&self.shared, request).await
    }

    async fn get_entity(
        &self,
        request: Request<GetEntityRequest>,
    ) -> Result<Response<GetEntityResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        let r = request.into_inner();
        validate::entity_id(&r.instance_id)?;
        let entity = self
            .shared
            .store
            .get_entity(hub, r.instance_id, r.include_state)
            .await?;
        Ok(Response::new(GetEntityResponse {
            exists: entity.is_some(),
            entity,
        }))
    }

    async fn query_entities(
        &self,
        request: Request<QueryEntitiesRequest>,
    ) -> Result<Response<QueryEntitiesResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        let query = request.into_inner().query.unwrap_or_default();
        Ok(Response::new(
            self.shared.store.query_entities(hub, query).await?,
        ))
    }

    async fn clean_entity_storage(
        &self,
        request: Request<CleanEntityStorageRequest>,
    ) -> Result<Response<CleanEntityStorageResponse>, Status> {
        let (hub, _) = self.shared.hub(&request).await?;
        Ok(Response::new(
            self.shared
                .store
                .clean_entity_storage(hub, request.into_inner())
                .await?,
        ))
    }

    async fn abandon_task_activity_work_item(
        &self,
        request: Request<AbandonActivityTaskRequest>,
    ) -> Result<Response<AbandonActivityTaskResponse>, Status> {
        let token = request.get_ref().completion_token.clone();
        worker::abandon(
            &self.shared,
            &request,
            crate::store::WorkKind::Activity,
            token,
        )
        .await?;
        Ok(Response::new(AbandonActivityTaskResponse {}))
    }

    async fn abandon_task_orchestrator_work_item(
        &self,
        request: Request<AbandonOrchestrationTaskRequest>,
    ) -> Result<Response<AbandonOrchestrationTaskResponse>, Status> {
        let token = request.get_ref().completion_token.clone();
        worker::abandon(
            &self.shared,
            &request,
            crate::store::WorkKind::Orchestration,
            token,
        )
        .await?;
        Ok(Response::new(AbandonOrchestrationTaskResponse {}))
    }

    async fn abandon_task_entity_work_item(
        &self,
        request: Request<AbandonEntityTaskRequest>,
    ) -> Result<Response<AbandonEntityTaskResponse>, Status> {
        let token = request.get_ref().completion_token.clone();
        worker::abandon(
            &self.shared,
            &request,
            crate::store::WorkKind::Entity,
            token,
        )
        .await?;
        Ok(Response::new(AbandonEntityTaskResponse {}))
    }

    async fn skip_graceful_orchestration_terminations(
        &self,
        request: Request<SkipGracefulOrchestrationTerminationsRequest>,
    ) -> Result<Response<SkipGracefulOrchestrationTerminationsResponse>, Status> {
        client::skip_graceful_terminations(&self.shared, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Storage, Synchronous};
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn instance_watches_unregister_when_the_last_one_is_dropped() {
        let store = SqliteStore::open(&Storage::InMemory, Synchronous::Full, 8).unwrap();
        let (_stop, stopped) = watch::channel(false);
        let shared = Shared::new(Arc::new(store), Options::new(), stopped);
        let first = shared.watch_instance("h", "i");
        let second = shared.watch_instance("h", "i");
        drop(first);
        assert_eq!(lock(&shared.waiters).len(), 1, "one waiter is still there");
        drop(second);
        assert!(lock(&shared.waiters).is_empty());
    }
}
