//! The storage contract the dispatcher and the gRPC service are written against, and its SQLite implementation.
//!
//! Every method is one atomic step: a completion appends history, queues the messages and work it causes and
//! updates the instance's status together, or not at all. Methods take protocol messages as they arrive from the
//! wire (already validated by the service) so the contract stays close to the scheduler's own behaviour.

mod sqlite;

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use durable_proto::{
    ActivityResponse, CleanEntityStorageRequest, CleanEntityStorageResponse, CreateInstanceRequest,
    EntityBatchResult, EntityMetadata, EntityQuery, HistoryEvent, InstanceQuery,
    ListInstanceIdsRequest, ListInstanceIdsResponse, OrchestrationState, OrchestratorResponse,
    PurgeInstancesRequest, PurgeInstancesResponse, QueryEntitiesResponse, QueryInstancesResponse,
    RaiseEventRequest, RestartInstanceRequest, RewindInstanceRequest, SignalEntityRequest,
    TerminateRequest, WorkItem, WorkItemFilters,
};
use futures::future::BoxFuture;

use crate::error::StoreError;
use crate::past_events::EncodedPastEvents;

pub use sqlite::SqliteStore;

/// What every store method returns: a `'static` future, so callers never hold a borrow across the database hop.
pub type StoreFuture<T> = BoxFuture<'static, Result<T, StoreError>>;

/// What a group of committed operations touched, published after each commit (see [`Store::changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Hubs where new work may have become available (queued messages, activities, freed leases).
    pub work: HashSet<String>,
    /// `(hub, instance id)` of orchestration instances whose row was written (status, custom status, ...).
    pub instances: HashSet<(String, String)>,
}

impl Changes {
    /// Whether nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.work.is_empty() && self.instances.is_empty()
    }
}

/// The three kinds of work a worker can be handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkKind {
    /// An orchestrator turn.
    Orchestration,
    /// One activity execution.
    Activity,
    /// A batch of entity operations.
    Entity,
}

/// How much work a stream can take now, and what it accepts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LeaseRequest {
    /// Orchestrator work items wanted (0 = none).
    pub orchestrations: usize,
    /// Activity work items wanted.
    pub activities: usize,
    /// Entity work items wanted.
    pub entities: usize,
    /// Names (and versions) the worker accepts; `None` accepts everything.
    pub filters: Option<WorkItemFilters>,
    /// Lease lengths in milliseconds per kind.
    pub orchestration_lease_ms: i64,
    /// See `orchestration_lease_ms`.
    pub activity_lease_ms: i64,
    /// See `orchestration_lease_ms`.
    pub entity_lease_ms: i64,
    /// The most operations put into one entity work item.
    pub max_entity_batch: usize,
    /// For workers that advertised `HISTORY_STREAMING`: past histories larger than this many bytes are not sent in
    /// the work item (`requiresHistoryStreaming` is set and the worker calls `StreamInstanceHistory`).
    /// `None` always sends the history inline.
    pub history_streaming_threshold: Option<usize>,
    /// Send entity work as `entityRequestV2` (the scheduler's newer format) instead of `entityRequest`.
    pub entity_v2: bool,
}

/// One leased work item; `token` is the lease id the worker must echo as its completion token.
#[derive(Debug, Clone)]
pub struct LeasedWork {
    /// What kind of work this is.
    pub kind: WorkKind,
    /// The lease id.
    pub token: String,
    /// The work item to stream (its `completion_token` is already set).
    pub item: WorkItem,
    /// An orchestrator turn's past events as stored, still encoded; they go on the wire before any in `item`'s
    /// `pastEvents` (the SQLite store leaves those empty), so the events need not be decoded to be sent.
    pub past_events: EncodedPastEvents,
}

impl LeasedWork {
    /// The work item with its past events decoded into it, as a worker receives it.
    pub fn into_item(mut self) -> Result<WorkItem, StoreError> {
        self.past_events.decode_into(&mut self.item)?;
        Ok(self.item)
    }
}

/// The storage contract. Implementations must make each call atomic and durable before its future resolves.
pub trait Store: Send + Sync + Debug + 'static {
    /// Change notifications, one message per committed group. A lagging receiver must assume everything changed.
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<Changes>>;

    /// Creates these hubs when missing.
    fn ensure_hubs(&self, hubs: Vec<String>) -> StoreFuture<()>;
    /// Creates a hub; with `recreate`, wipes an existing one first.
    fn create_hub(&self, hub: String, recreate: bool) -> StoreFuture<()>;
    /// Deletes a hub and everything in it.
    fn delete_hub(&self, hub: String) -> StoreFuture<()>;

    /// Starts an orchestration (the reuse policy is applied); returns its instance id.
    fn start_instance(&self, hub: String, request: CreateInstanceRequest) -> StoreFuture<String>;
    /// The state of an instance, `None` when it does not exist.
    fn get_instance(
        &self,
        hub: String,
        id: String,
        payloads: bool,
    ) -> StoreFuture<Option<OrchestrationState>>;
    /// Queues an external event for an instance.
    fn raise_event(&self, hub: String, request: RaiseEventRequest) -> StoreFuture<()>;
    /// Terminates an instance (and its running sub-orchestrations when recursive); a no-op when terminal.
    fn terminate(&self, hub: String, request: TerminateRequest) -> StoreFuture<()>;
    /// Queues a suspend (`suspend = true`) or resume for an instance.
    fn suspend_resume(
        &self,
        hub: String,
        id: String,
        reason: Option<String>,
        suspend: bool,
    ) -> StoreFuture<()>;
    /// Starts an instance again from its original input; returns the (maybe new) instance id.
    fn restart(&self, hub: String, request: RestartInstanceRequest) -> StoreFuture<String>;
    /// Rewinds a failed instance.
    fn rewind(&self, hub: String, request: RewindInstanceRequest) -> StoreFuture<()>;
    /// Purges terminal instances (or an entity).
    fn purge(
        &self,
        hub: String,
        request: PurgeInstancesRequest,
    ) -> StoreFuture<PurgeInstancesResponse>;
    /// Lists instances with their state.
    fn query_instances(
        &self,
        hub: String,
        query: InstanceQuery,
    ) -> StoreFuture<QueryInstancesResponse>;
    /// Lists instance ids.
    fn list_instance_ids(
        &self,
        hub: String,
        request: ListInstanceIdsRequest,
    ) -> StoreFuture<ListInstanceIdsResponse>;
    /// The committed history of an instance, `None` when it does not exist.
    fn history(&self, hub: String, id: String) -> StoreFuture<Option<Vec<HistoryEvent>>>;

    /// Leases available work.
    fn lease(&self, hub: String, request: LeaseRequest) -> StoreFuture<Vec<LeasedWork>>;
    /// Applies an orchestrator turn (all chunks merged).
    fn complete_orchestration(
        &self,
        hub: String,
        response: OrchestratorResponse,
    ) -> StoreFuture<()>;
    /// Records an activity's result.
    fn complete_activity(&self, hub: String, response: ActivityResponse) -> StoreFuture<()>;
    /// Applies an entity batch's results.
    fn complete_entity(&self, hub: String, result: EntityBatchResult) -> StoreFuture<()>;
    /// Gives a leased work item back for redelivery.
    fn abandon(&self, hub: String, kind: WorkKind, token: String) -> StoreFuture<()>;
    /// Gives back every lease in the list (a worker stream ended); unknown tokens are ignored.
    fn release(&self, hub: String, leases: Vec<(WorkKind, String)>) -> StoreFuture<()>;
    /// The earliest future moment at which work becomes available (timers, scheduled starts, lease expiries).
    fn next_due(&self, hub: String) -> StoreFuture<Option<i64>>;

    /// Queues an entity operation signal.
    fn signal_entity(&self, hub: String, request: SignalEntityRequest) -> StoreFuture<()>;
    /// An entity's metadata, `None` when it has no state.
    fn get_entity(
        &self,
        hub: String,
        id: String,
        include_state: bool,
    ) -> StoreFuture<Option<EntityMetadata>>;
    /// Lists entities.
    fn query_entities(&self, hub: String, query: EntityQuery)
    -> StoreFuture<QueryEntitiesResponse>;
    /// Removes empty entities and releases locks held by instances that are gone or finished.
    fn clean_entity_storage(
        &self,
        hub: String,
        request: CleanEntityStorageRequest,
    ) -> StoreFuture<CleanEntityStorageResponse>;
}
