//! Running one work item: acquire a slot, execute, complete, or abandon what cannot be finished.

use std::sync::Arc;

use durable_proto as proto;
use proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use proto::work_item::Request;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tracing::{debug, warn};

use super::executor::{BoxFuture, Executor, ExecutorError};
use crate::connection::Connection;

/// What every work item task shares.
pub(crate) struct Shared {
    pub(crate) connection: Connection,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) orchestrations: Arc<Semaphore>,
    pub(crate) activities: Arc<Semaphore>,
    pub(crate) entities: Arc<Semaphore>,
    /// Turns true when the shutdown grace period is over: whatever is still running gets abandoned.
    pub(crate) hard_stop: watch::Receiver<bool>,
}

impl Shared {
    fn stub(&self) -> TaskHubSidecarServiceClient<Channel> {
        self.connection.stub()
    }
}

/// Starts processing a work item in its own task.
pub(crate) fn dispatch(shared: &Arc<Shared>, item: proto::WorkItem, tasks: &mut JoinSet<()>) {
    let token = item.completion_token;
    let shared = shared.clone();
    match item.request {
        Some(Request::OrchestratorRequest(request)) => {
            tasks.spawn(orchestrator(shared, request, token));
        }
        Some(Request::ActivityRequest(request)) => {
            tasks.spawn(activity(shared, request, token));
        }
        Some(Request::EntityRequest(request)) => {
            tasks.spawn(entity(shared, request, Vec::new(), token));
        }
        Some(Request::EntityRequestV2(request)) => {
            let (batch, infos) = durable_core::entity_batch_from_v2(&request);
            tasks.spawn(entity(shared, batch, infos, token));
        }
        Some(Request::HealthPing(_)) => debug!("health ping"),
        None => warn!("ignoring a work item of a kind this worker does not know"),
    }
}

/// Aborts the executor's task if the waiting side gives up (shutdown), so user code does not linger.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the executor's future on its own task, so that a panic becomes an error instead of killing the worker.
async fn guarded<T: Send + 'static>(
    work: BoxFuture<Result<T, ExecutorError>>,
) -> Result<T, String> {
    let mut handle = AbortOnDrop(tokio::spawn(work));
    match (&mut handle.0).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("the executor failed: {e}")),
        Err(join) if join.is_panic() => Err("the executor panicked".to_owned()),
        Err(_) => Err("the executor was cancelled".to_owned()),
    }
}

/// Waits for the work, or for the end of the grace period.
async fn until_hard_stop<T>(
    shared: &Shared,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let mut stop = shared.hard_stop.clone();
    tokio::select! {
        result = work => result,
        _ = stop.wait_for(|stopped| *stopped) => Err("the worker shut down before the work item finished".to_owned()),
    }
}

async fn orchestrator(shared: Arc<Shared>, mut request: proto::OrchestratorRequest, token: String) {
    let Ok(_permit) = shared.orchestrations.clone().acquire_owned().await else {
        return;
    };
    let instance_id = request.instance_id.clone();
    let work = async {
        if request.requires_history_streaming {
            let fetch = proto::StreamInstanceHistoryRequest {
                instance_id: request.instance_id.clone(),
                execution_id: request.execution_id.clone(),
                for_work_item_processing: true,
            };
            request.past_events = crate::history::fetch(&shared.connection, fetch)
                .await
                .map_err(|e| format!("could not stream the history: {e}"))?;
            request.requires_history_streaming = false;
        }
        guarded(shared.executor.execute_orchestrator(request)).await
    };
    match until_hard_stop(&shared, work).await {
        Ok(mut response) => {
            response.completion_token = token;
            if response.instance_id.is_empty() {
                response.instance_id = instance_id.clone();
            }
            let result = match shared.connection.request(response).await {
                Ok(r) => shared
                    .stub()
                    .complete_orchestrator_task(r)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                warn!(instance_id, error = %e, "could not complete an orchestration work item");
            }
        }
        Err(reason) => {
            warn!(instance_id, reason, "abandoning an orchestration work item");
            if let Err(e) = abandon(&shared, Abandon::Orchestration(token)).await {
                warn!(instance_id, error = %e, "could not abandon an orchestration work item");
            }
        }
    }
}

async fn activity(shared: Arc<Shared>, request: proto::ActivityRequest, token: String) {
    let Ok(_permit) = shared.activities.clone().acquire_owned().await else {
        return;
    };
    let instance_id = request
        .orchestration_instance
        .as_ref()
        .map(|i| i.instance_id.clone())
        .unwrap_or_default();
    let task_id = request.task_id;
    let name = request.name.clone();
    match until_hard_stop(&shared, guarded(shared.executor.execute_activity(request))).await {
        Ok(mut response) => {
            response.completion_token = token;
            if response.instance_id.is_empty() {
                response.instance_id = instance_id.clone();
            }
            response.task_id = task_id;
            let result = match shared.connection.request(response).await {
                Ok(r) => shared
                    .stub()
                    .complete_activity_task(r)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                warn!(instance_id, name, error = %e, "could not complete an activity work item");
            }
        }
        Err(reason) => {
            warn!(
                instance_id,
                name, reason, "abandoning an activity work item"
            );
            if let Err(e) = abandon(&shared, Abandon::Activity(token)).await {
                warn!(instance_id, error = %e, "could not abandon an activity work item");
            }
        }
    }
}

async fn entity(
    shared: Arc<Shared>,
    request: proto::EntityBatchRequest,
    operation_infos: Vec<proto::OperationInfo>,
    token: String,
) {
    let Ok(_permit) = shared.entities.clone().acquire_owned().await else {
        return;
    };
    let instance_id = request.instance_id.clone();
    match until_hard_stop(
        &shared,
        guarded(shared.executor.execute_entity_batch(request)),
    )
    .await
    {
        Ok(mut result) => {
            result.completion_token = token;
            if result.operation_infos.is_empty() {
                result.operation_infos = operation_infos;
            }
            let sent = match shared.connection.request(result).await {
                Ok(r) => shared
                    .stub()
                    .complete_entity_task(r)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                warn!(instance_id, error = %e, "could not complete an entity work item");
            }
        }
        Err(reason) => {
            warn!(instance_id, reason, "abandoning an entity work item");
            if let Err(e) = abandon(&shared, Abandon::Entity(token)).await {
                warn!(instance_id, error = %e, "could not abandon an entity work item");
            }
        }
    }
}

/// A work item to hand back, by kind, with its completion token.
enum Abandon {
    Orchestration(String),
    Activity(String),
    Entity(String),
}

async fn abandon(shared: &Shared, item: Abandon) -> crate::Result<()> {
    let mut stub = shared.stub();
    let c = &shared.connection;
    match item {
        Abandon::Orchestration(completion_token) => {
            let r = proto::AbandonOrchestrationTaskRequest { completion_token };
            stub.abandon_task_orchestrator_work_item(c.request(r).await?)
                .await?;
        }
        Abandon::Activity(completion_token) => {
            let r = proto::AbandonActivityTaskRequest { completion_token };
            stub.abandon_task_activity_work_item(c.request(r).await?)
                .await?;
        }
        Abandon::Entity(completion_token) => {
            let r = proto::AbandonEntityTaskRequest { completion_token };
            stub.abandon_task_entity_work_item(c.request(r).await?)
                .await?;
        }
    }
    Ok(())
}
