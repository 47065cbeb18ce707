//! The `durableClient` binding's gRPC endpoint, served the way the Durable extension serves it in Azure Functions:
//! its `TaskHubSidecarService` on `127.0.0.1`, a free port, HTTP/2 without TLS, no message size limits
//! (Azure/azure-functions-durable-extension `src/WebJobs.Extensions.DurableTask/Grpc/AspNetCoreLocalGrpcListener.cs`),
//! answering only the RPCs the extension's `TaskHubGrpcServer.cs` implements, with its response shapes and error
//! codes, and forwarding them to the host's backend with the host's own connection (and so its token).
//!
//! Starters therefore see locally what they see in Azure: no `ListInstanceIds`, no work-item RPCs, trimmed instance
//! states, and no need for a credential of their own.

mod calls;
mod routing;
mod shape;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_routing;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use durable_grpc::DurableClient;
use durable_proto as proto;
use durable_proto::task_hub_sidecar_service_server::{
    TaskHubSidecarService, TaskHubSidecarServiceServer,
};
use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::config::DurableClientSettings;
use crate::error::{HostError, Result};
use routing::Routes;

/// How long [`ClientEndpoint::stop`] lets calls in flight finish (a starter may be in a long wait).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the endpoint needs to know about the app.
#[derive(Debug, Clone)]
pub(crate) struct EndpointConfig {
    /// The app's task hub: calls without a `Durable-TaskHub` header go there.
    pub(crate) hub: String,
    /// `extensions.durableTask` settings (default version, overridable states, the app's connection name).
    pub(crate) durable: DurableClientSettings,
    /// The app settings, for connections named by `Durable-ConnectionName` (the process environment is the
    /// fallback, as app settings are environment variables in Azure).
    pub(crate) settings: BTreeMap<String, String>,
    /// The app's orchestrator names: a restart checks that its orchestrator exists, as the extension's client does.
    pub(crate) orchestrators: Vec<String>,
}

/// The running endpoint. Stop it with [`ClientEndpoint::stop`]; dropping it stops it without waiting.
#[derive(Debug)]
pub(crate) struct ClientEndpoint {
    url: String,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ClientEndpoint {
    /// Binds `127.0.0.1:0` and serves. `backend` is the host's client for its own backend, on the app's hub.
    pub(crate) async fn start(backend: DurableClient, config: EndpointConfig) -> Result<Self> {
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| HostError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| HostError::Bind { addr: bind, source })?;
        let service = TaskHubSidecarServiceServer::new(Endpoint {
            routes: Arc::new(Routes::new(backend, config)),
        })
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            // tonic's server speaks HTTP/2 only (prior knowledge, no TLS), as the extension's Kestrel listener does.
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    shutdown,
                )
                .await
            {
                tracing::error!(target: "host", "durable client endpoint: {e}");
            }
        });
        let url = format!("http://{addr}");
        tracing::info!(target: "host", "Opened local gRPC endpoint: {url}");
        Ok(Self {
            url,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`: the binding's `rpcBaseUrl`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Stops accepting calls and waits briefly for those in flight.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(STOP_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ClientEndpoint {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The service: each served RPC is routed (hub, connection) and handled in [`calls`]; the rest are refused.
#[derive(Debug, Clone)]
struct Endpoint {
    routes: Arc<Routes>,
}

/// A stream of responses, boxed.
type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What Azure answers (`UNIMPLEMENTED`, from the generated base class) for an RPC the extension does not override;
/// its message is empty, ours says why.
fn unserved(method: &str) -> Status {
    Status::unimplemented(format!(
        "{method} is not served by the Durable extension's client endpoint in Azure Functions (the endpoint a \
         durableClient binding's rpcBaseUrl names), so the local host does not serve it either; Azure answers \
         UNIMPLEMENTED too"
    ))
}

#[tonic::async_trait]
impl TaskHubSidecarService for Endpoint {
    async fn hello(&self, _request: Request<()>) -> Result<Response<()>, Status> {
        // Answered by the extension itself, without the backend.
        Ok(Response::new(()))
    }

    async fn start_instance(
        &self,
        request: Request<proto::CreateInstanceRequest>,
    ) -> Result<Response<proto::CreateInstanceResponse>, Status> {
        calls::start_instance(&self.routes, request).await
    }

    async fn get_instance(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        calls::get_instance(&self.routes, request).await
    }

    async fn rewind_instance(
        &self,
        request: Request<proto::RewindInstanceRequest>,
    ) -> Result<Response<proto::RewindInstanceResponse>, Status> {
        calls::rewind_instance(&self.routes, request).await
    }

    async fn restart_instance(
        &self,
        request: Request<proto::RestartInstanceRequest>,
    ) -> Result<Response<proto::RestartInstanceResponse>, Status> {
        calls::restart_instance(&self.routes, request).await
    }

    async fn wait_for_instance_start(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        calls::wait_for_instance_start(&self.routes, request).await
    }

    async fn wait_for_instance_completion(
        &self,
        request: Request<proto::GetInstanceRequest>,
    ) -> Result<Response<proto::GetInstanceResponse>, Status> {
        calls::wait_for_instance_completion(&self.routes, request).await
    }

    async fn raise_event(
        &self,
        request: Request<proto::RaiseEventRequest>,
    ) -> Result<Response<proto::RaiseEventResponse>, Status> {
        calls::raise_event(&self.routes, request).await
    }

    async fn terminate_instance(
        &self,
        request: Request<proto::TerminateRequest>,
    ) -> Result<Response<proto::TerminateResponse>, Status> {
        calls::terminate_instance(&self.routes, request).await
    }

    async fn suspend_instance(
        &self,
        request: Request<proto::SuspendRequest>,
    ) -> Result<Response<proto::SuspendResponse>, Status> {
        calls::suspend_instance(&self.routes, request).await
    }

    async fn resume_instance(
        &self,
        request: Request<proto::ResumeRequest>,
    ) -> Result<Response<proto::ResumeResponse>, Status> {
        calls::resume_instance(&self.routes, request).await
    }

    async fn query_instances(
        &self,
        request: Request<proto::QueryInstancesRequest>,
    ) -> Result<Response<proto::QueryInstancesResponse>, Status> {
        calls::query_instances(&self.routes, request).await
    }

    async fn list_instance_ids(
        &self,
        _request: Request<proto::ListInstanceIdsRequest>,
    ) -> Result<Response<proto::ListInstanceIdsResponse>, Status> {
        Err(unserved("ListInstanceIds"))
    }

    async fn purge_instances(
        &self,
        request: Request<proto::PurgeInstancesRequest>,
    ) -> Result<Response<proto::PurgeInstancesResponse>, Status> {
        calls::purge_instances(&self.routes, request).await
    }

    type GetWorkItemsStream = Boxed<proto::WorkItem>;

    async fn get_work_items(
        &self,
        _request: Request<proto::GetWorkItemsRequest>,
    ) -> Result<Response<Self::GetWorkItemsStream>, Status> {
        Err(unserved("GetWorkItems"))
    }

    async fn get_tombstoned_payloads(
        &self,
        _request: Request<proto::GetTombstonedPayloadsRequest>,
    ) -> Result<Response<proto::GetTombstonedPayloadsResponse>, Status> {
        Err(unserved("GetTombstonedPayloads"))
    }

    async fn ack_purged_payloads(
        &self,
        _request: Request<proto::AckPurgedPayloadsRequest>,
    ) -> Result<Response<proto::AckPurgedPayloadsResponse>, Status> {
        Err(unserved("AckPurgedPayloads"))
    }

    async fn complete_activity_task(
        &self,
        _request: Request<proto::ActivityResponse>,
    ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
        Err(unserved("CompleteActivityTask"))
    }

    async fn complete_orchestrator_task(
        &self,
        _request: Request<proto::OrchestratorResponse>,
    ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
        Err(unserved("CompleteOrchestratorTask"))
    }

    async fn complete_entity_task(
        &self,
        _request: Request<proto::EntityBatchResult>,
    ) -> Result<Response<proto::CompleteTaskResponse>, Status> {
        Err(unserved("CompleteEntityTask"))
    }

    type StreamInstanceHistoryStream = Boxed<proto::HistoryChunk>;

    async fn stream_instance_history(
        &self,
        request: Request<proto::StreamInstanceHistoryRequest>,
    ) -> Result<Response<Self::StreamInstanceHistoryStream>, Status> {
        calls::stream_instance_history(&self.routes, request).await
    }

    async fn create_task_hub(
        &self,
        request: Request<proto::CreateTaskHubRequest>,
    ) -> Result<Response<proto::CreateTaskHubResponse>, Status> {
        calls::create_task_hub(&self.routes, request).await
    }

    async fn delete_task_hub(
        &self,
        request: Request<proto::DeleteTaskHubRequest>,
    ) -> Result<Response<proto::DeleteTaskHubResponse>, Status> {
        calls::delete_task_hub(&self.routes, request).await
    }

    async fn signal_entity(
        &self,
        request: Request<proto::SignalEntityRequest>,
    ) -> Result<Response<proto::SignalEntityResponse>, Status> {
        calls::signal_entity(&self.routes, request).await
    }

    async fn get_entity(
        &self,
        request: Request<proto::GetEntityRequest>,
    ) -> Result<Response<proto::GetEntityResponse>, Status> {
        calls::get_entity(&self.routes, request).await
    }

    async fn query_entities(
        &self,
        request: Request<proto::QueryEntitiesRequest>,
    ) -> Result<Response<proto::QueryEntitiesResponse>, Status> {
        calls::query_entities(&self.routes, request).await
    }

    async fn clean_entity_storage(
        &self,
        request: Request<proto::CleanEntityStorageRequest>,
    ) -> Result<Response<proto::CleanEntityStorageResponse>, Status> {
        calls::clean_entity_storage(&self.routes, request).await
    }

    async fn abandon_task_activity_work_item(
        &self,
        _request: Request<proto::AbandonActivityTaskRequest>,
    ) -> Result<Response<proto::AbandonActivityTaskResponse>, Status> {
        Err(unserved("AbandonTaskActivityWorkItem"))
    }

    async fn abandon_task_orchestrator_work_item(
        &self,
        _request: Request<proto::AbandonOrchestrationTaskRequest>,
    ) -> Result<Response<proto::AbandonOrchestrationTaskResponse>, Status> {
        Err(unserved("AbandonTaskOrchestratorWorkItem"))
    }

    async fn abandon_task_entity_work_item(
        &self,
        _request: Request<proto::AbandonEntityTaskRequest>,
    ) -> Result<Response<proto::AbandonEntityTaskResponse>, Status> {
        Err(unserved("AbandonTaskEntityWorkItem"))
    }

    async fn skip_graceful_orchestration_terminations(
        &self,
        _request: Request<proto::SkipGracefulOrchestrationTerminationsRequest>,
    ) -> Result<Response<proto::SkipGracefulOrchestrationTerminationsResponse>, Status> {
        Err(unserved("SkipGracefulOrchestrationTerminations"))
    }
}
