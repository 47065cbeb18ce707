//! The client a starter function gets from its `durableClient` binding.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use durable_grpc::{
    CleanEntityStorageResult, DurableClient, EntityMetadata, EntityQuery, Error, InstanceQuery,
    OrchestrationMetadata, Page, PurgeFilter, PurgeResult, StartOptions, proto,
};
use futures::Stream;
use serde::Serialize;

use crate::client_binding::{ClientBinding, HttpManagementPayload};
use crate::http_types::HttpResponse;

mod typed;

tokio::task_local! {
    /// The trace context of the starter invocation running on this task: the parent of what it starts.
    pub(crate) static STARTER_TRACE: Option<proto::TraceContext>;
}

/// A durable client bound to the task hub and connection named by the `durableClient` binding: gRPC calls go to
/// the Durable extension's local endpoint (`rpcBaseUrl`, with the `Durable-TaskHub` header and, when the binding
/// names a connection, `Durable-ConnectionName`), management URLs come from `httpBaseUrl`.
///
/// It offers exactly the operations that endpoint serves in Azure Functions (the extension's `TaskHubGrpcServer`),
/// so that nothing works locally that fails in Azure: starting, reading, waiting for, signalling, suspending,
/// resuming, terminating, rewinding, restarting, purging and querying instances, their history, and entities. A
/// scheduler's other RPCs (listing instance IDs, work items) are not served there and are not offered here.
///
/// Errors are [`durable_grpc::Error`]s, with the codes and messages the extension answers.
#[derive(Clone, Debug)]
pub struct DurableFunctionsClient {
    binding: ClientBinding,
    client: DurableClient,
}

type Result<T> = std::result::Result<T, Error>;

/// The longest deadline a gRPC call can carry (`grpc-timeout` has eight digits of hours); a longer one would
/// panic in the transport.
const LONGEST_WAIT: Duration = Duration::from_secs(99_999_999 * 3600);

impl DurableFunctionsClient {
    /// Connects (lazily) to the binding's gRPC endpoint.
    pub fn from_binding(binding: ClientBinding) -> Result<Self> {
        let client = connect(&binding)?;
        Ok(Self { binding, client })
    }

    /// The binding this client was made from.
    pub fn binding(&self) -> &ClientBinding {
        &self.binding
    }

    /// The management URLs of an instance (see [`ClientBinding::management_payload`]).
    pub fn management_payload(&self, instance_id: &str) -> HttpManagementPayload {
        self.binding.management_payload(instance_id)
    }

    /// `202 Accepted` + `Location` + the management payload, as `CreateCheckStatusResponse` answers.
    pub fn create_check_status_response(&self, instance_id: &str) -> HttpResponse {
        self.binding.create_check_status_response(instance_id)
    }

    /// Starts an orchestration and returns its instance ID.
    ///
    /// The extension builds the start itself: an instance ID is generated when the options give none, the
    /// version is the options' or host.json's `defaultVersion`, and whether an existing instance with the same ID
    /// is replaced follows host.json's `overridableExistingInstanceStates` (by default any instance is, running or
    /// not). Tags and a reuse policy in the options are not applied.
    /// From a starter function, the orchestration becomes a child of the invocation's trace context unless
    /// `options` names a parent of its own.
    pub async fn schedule_new_orchestration<I: Serialize + ?Sized>(
        &self,
        name: &str,
        input: &I,
        options: StartOptions,
    ) -> Result<String> {
        let invocation = STARTER_TRACE.try_with(Clone::clone).ok().flatten();
        let options = match invocation {
            Some(parent) if options.parent_trace_context().is_none() => {
                options.with_parent_trace_context(parent)
            }
            _ => options,
        };
        self.client
            .schedule_new_orchestration(name, input, options)
            .await
    }

    /// The instance's status (with input, output, custom status and failure details when `with_payloads`), or
    /// `None` when it does not exist. The extension reports no version, execution ID, parent, tags or
    /// completion time here.
    pub async fn get_instance(
        &self,
        instance_id: &str,
        with_payloads: bool,
    ) -> Result<Option<OrchestrationMetadata>> {
        self.client.get_instance(instance_id, with_payloads).await
    }

    /// Waits until the instance has started (it may not exist yet), for at most `timeout` (held to the longest
    /// deadline gRPC can carry, about 11,400 years, so a timeout taken from a request cannot overflow).
    pub async fn wait_for_start(
        &self,
        instance_id: &str,
        with_payloads: bool,
        timeout: Duration,
    ) -> Result<OrchestrationMetadata> {
        self.client
            .wait_for_start(instance_id, with_payloads, timeout.min(LONGEST_WAIT))
            .await
    }

    /// Waits until the instance has finished, for at most `timeout` (held to the longest deadline gRPC can
    /// carry, as for [`DurableFunctionsClient::wait_for_start`]).
    pub async fn wait_for_completion(
        &self,
        instance_id: &str,
        with_payloads: bool,
        timeout: Duration,
    ) -> Result<OrchestrationMetadata> {
        self.client
            .wait_for_completion(instance_id, with_payloads, timeout.min(LONGEST_WAIT))
            .await
    }

    /// Sends an external event to a running instance.
    pub async fn raise_event<T: Serialize + ?Sized>(
        &self,
        instance_id: &str,
        event_name: &str,
        data: &T,
    ) -> Result<()> {
        self.client.raise_event(instance_id, event_name, data).await
    }

    /// Terminates a running instance with `output` as its output. Only the instance itself: the extension does
    /// not terminate sub-orchestrations.
    pub async fn terminate<T: Serialize + ?Sized>(
        &self,
        instance_id: &str,
        output: &T,
    ) -> Result<()> {
        self.client.terminate(instance_id, output, false).await
    }

    /// Suspends a running instance.
    pub async fn suspend(&self, instance_id: &str, reason: Option<&str>) -> Result<()> {
        self.client.suspend(instance_id, reason).await
    }

    /// Resumes a suspended instance.
    pub async fn resume(&self, instance_id: &str, reason: Option<&str>) -> Result<()> {
        self.client.resume(instance_id, reason).await
    }

    /// Rewinds a failed instance so that its failed tasks run again.
    pub async fn rewind(&self, instance_id: &str, reason: Option<&str>) -> Result<()> {
        self.client.rewind(instance_id, reason).await
    }

    /// Starts the instance's orchestrator again with its original input, under the same ID or a new one; returns
    /// the ID. Like any start, host.json's `overridableExistingInstanceStates` decides whether a running instance
    /// may be started over.
    pub async fn restart(&self, instance_id: &str, with_new_instance_id: bool) -> Result<String> {
        self.client.restart(instance_id, with_new_instance_id).await
    }

    /// Deletes an instance's state and history, or an entity's (`@name@key`). Only that instance: the extension
    /// does not purge sub-orchestrations.
    pub async fn purge_instance(&self, instance_id: &str) -> Result<PurgeResult> {
        self.client.purge_instance(instance_id, false).await
    }

    /// Deletes every instance that matches the filter.
    pub async fn purge_instances(&self, filter: PurgeFilter) -> Result<PurgeResult> {
        self.client.purge_instances(filter, false).await
    }

    /// One page of orchestration instances (entities are not listed) matching the query.
    pub async fn query_instances(
        &self,
        query: &InstanceQuery,
    ) -> Result<Page<OrchestrationMetadata>> {
        self.client.query_instances(query).await
    }

    /// Every orchestration instance matching the query, fetched page by page as the stream is read.
    pub fn query_all_instances(
        &self,
        query: InstanceQuery,
    ) -> impl Stream<Item = Result<OrchestrationMetadata>> + Send + 'static {
        self.client.query_all_instances(query)
    }

    /// The instance's history, oldest event first (`StreamInstanceHistory`).
    pub async fn get_history(&self, instance_id: &str) -> Result<Vec<proto::HistoryEvent>> {
        self.client.get_history(instance_id).await
    }

    /// Sends a one-way operation to an entity (`@name@key`), now or at `scheduled_at`.
    pub async fn signal_entity<T: Serialize + ?Sized>(
        &self,
        entity: impl Display + Send,
        operation: &str,
        input: &T,
        scheduled_at: Option<SystemTime>,
    ) -> Result<()> {
        self.client
            .signal_entity(entity, operation, input, scheduled_at)
            .await
    }

    /// The entity's metadata (and state, if asked), or `None` when it does not exist.
    pub async fn get_entity(
        &self,
        entity: impl Display + Send,
        include_state: bool,
    ) -> Result<Option<EntityMetadata>> {
        self.client.get_entity(entity, include_state).await
    }

    /// One page of entities matching the query.
    pub async fn query_entities(&self, query: &EntityQuery) -> Result<Page<EntityMetadata>> {
        self.client.query_entities(query).await
    }

    /// Every entity matching the query, fetched page by page as the stream is read.
    pub fn query_all_entities(
        &self,
        query: EntityQuery,
    ) -> impl Stream<Item = Result<EntityMetadata>> + Send + 'static {
        self.client.query_all_entities(query)
    }

    /// Removes empty entities and releases locks held by finished orchestrations.
    pub async fn clean_entity_storage(
        &self,
        remove_empty_entities: bool,
        release_orphaned_locks: bool,
    ) -> Result<CleanEntityStorageResult> {
        self.client
            .clean_entity_storage(remove_empty_entities, release_orphaned_locks)
            .await
    }
}

fn connect(binding: &ClientBinding) -> Result<DurableClient> {
    let mut options = durable_grpc::ConnectionOptions::new(&binding.rpc_base_url)
        .with_task_hub_header(durable_grpc::FUNCTIONS_TASK_HUB_HEADER);
    // Without a hub name the header is left out, and the extension uses its configured hub; likewise the
    // connection.
    if !binding.task_hub_name.is_empty() {
        options = options.with_task_hub(binding.task_hub_name.clone());
    }
    if let Some(name) = binding.connection_name.as_deref().filter(|n| !n.is_empty()) {
        options = options.with_header(durable_grpc::FUNCTIONS_CONNECTION_NAME_HEADER, name);
    }
    DurableClient::new(&options)
}

/// How many clients the cache keeps. An app talks to one endpoint (a few hubs or connections at most); the bound
/// only keeps a sender that varies `rpcBaseUrl` from growing the cache without end.
const MAX_CACHED_CLIENTS: usize = 64;

/// What a cached client is for: the endpoint, the hub and the connection name.
type ClientKey = (String, String, Option<String>);

/// Channels are multiplexed and costly to set up, so one client per endpoint, hub and connection is shared by
/// invocations.
#[derive(Debug, Default)]
pub(crate) struct ClientCache {
    clients: Mutex<HashMap<ClientKey, DurableClient>>,
}

impl ClientCache {
    pub(crate) fn get(&self, binding: ClientBinding) -> Result<DurableFunctionsClient> {
        let key = (
            binding.rpc_base_url.clone(),
            binding.task_hub_name.clone(),
            binding.connection_name.clone(),
        );
        let mut clients = match self.clients.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(client) = clients.get(&key) {
            return Ok(DurableFunctionsClient {
                binding,
                client: client.clone(),
            });
        }
        let created = DurableFunctionsClient::from_binding(binding)?;
        if clients.len() >= MAX_CACHED_CLIENTS {
            // Endpoints past the bound get a client of their own, which goes with the invocation.
            return Ok(created);
        }
        clients.insert(key, created.client.clone());
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable_binding(i: usize) -> ClientBinding {
        // Port 1 refuses connections, so every call fails fast without a server.
        ClientBinding::new(format!("http://127.0.0.1:1/{i}"), "hub")
    }

    #[tokio::test]
    async fn waits_longer_than_grpc_can_carry_fail_like_any_other_call() {
        let client = DurableFunctionsClient::from_binding(unreachable_binding(0)).unwrap();
        for timeout in [Duration::MAX, Duration::from_secs(400_000_000_000)] {
            assert!(
                client
                    .wait_for_completion("x", false, timeout)
                    .await
                    .is_err()
            );
            assert!(client.wait_for_start("x", false, timeout).await.is_err());
        }
    }

    #[tokio::test]
    async fn the_cache_keeps_a_bounded_number_of_clients() {
        let cache = ClientCache::default();
        for i in 0..(MAX_CACHED_CLIENTS * 3) {
            let client = cache.get(unreachable_binding(i)).unwrap();
            assert_eq!(
                client.binding().rpc_base_url,
                format!("http://127.0.0.1:1/{i}")
            );
        }
        let cached = cache.clients.lock().unwrap().len();
        assert!(cached <= MAX_CACHED_CLIENTS, "{cached}");
        // The usual case, one endpoint, is still shared.
        let a = cache.get(unreachable_binding(0)).unwrap();
        let b = cache.get(unreachable_binding(0)).unwrap();
        assert_eq!(a.binding(), b.binding());
    }
}
