//! The client's typed views of instances, entities, queries and options.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use durable_proto as proto;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The runtime status of an orchestration instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OrchestrationStatus {
    /// Started and not yet finished.
    Running,
    /// Finished with an output.
    Completed,
    /// Replaced by a new generation (transient).
    ContinuedAsNew,
    /// Finished with a failure.
    Failed,
    /// Canceled (legacy).
    Canceled,
    /// Terminated from outside.
    Terminated,
    /// Scheduled but not yet started.
    Pending,
    /// Paused from outside; resumes on request.
    Suspended,
}

impl OrchestrationStatus {
    /// Whether the instance will not run again without a restart or rewind.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Canceled | Self::Terminated
        )
    }

    pub(crate) fn from_proto(value: i32) -> Self {
        match proto::OrchestrationStatus::try_from(value) {
            Ok(proto::OrchestrationStatus::Running) => Self::Running,
            Ok(proto::OrchestrationStatus::Completed) => Self::Completed,
            Ok(proto::OrchestrationStatus::ContinuedAsNew) => Self::ContinuedAsNew,
            Ok(proto::OrchestrationStatus::Failed) => Self::Failed,
            Ok(proto::OrchestrationStatus::Canceled) => Self::Canceled,
            Ok(proto::OrchestrationStatus::Terminated) => Self::Terminated,
            Ok(proto::OrchestrationStatus::Pending) => Self::Pending,
            Ok(proto::OrchestrationStatus::Suspended) => Self::Suspended,
            // An unknown future status is reported as running rather than failing the whole call.
            Err(_) => Self::Running,
        }
    }

    pub(crate) fn to_proto(self) -> i32 {
        (match self {
            Self::Running => proto::OrchestrationStatus::Running,
            Self::Completed => proto::OrchestrationStatus::Completed,
            Self::ContinuedAsNew => proto::OrchestrationStatus::ContinuedAsNew,
            Self::Failed => proto::OrchestrationStatus::Failed,
            Self::Canceled => proto::OrchestrationStatus::Canceled,
            Self::Terminated => proto::OrchestrationStatus::Terminated,
            Self::Pending => proto::OrchestrationStatus::Pending,
            Self::Suspended => proto::OrchestrationStatus::Suspended,
        }) as i32
    }
}

impl fmt::Display for OrchestrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a task or orchestration failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureDetails {
    /// The error's type name.
    pub error_type: String,
    /// The error's message.
    pub message: String,
    /// A stack trace, when the failing side recorded one.
    pub stack_trace: Option<String>,
    /// The failure that caused this one.
    pub inner: Option<Box<FailureDetails>>,
    /// Whether retrying cannot help.
    pub is_non_retriable: bool,
}

impl FailureDetails {
    pub(crate) fn from_proto(details: proto::TaskFailureDetails) -> Self {
        Self {
            error_type: details.error_type,
            message: details.error_message,
            stack_trace: details.stack_trace,
            inner: details
                .inner_failure
                .map(|inner| Box::new(Self::from_proto(*inner))),
            is_non_retriable: details.is_non_retriable,
        }
    }
}

impl fmt::Display for FailureDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// What the scheduler knows about an orchestration instance.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OrchestrationMetadata {
    /// The instance ID.
    pub instance_id: String,
    /// The orchestrator's name.
    pub name: String,
    /// The orchestrator's version, if one was given.
    pub version: Option<String>,
    /// The current execution (generation) ID.
    pub execution_id: Option<String>,
    /// The runtime status.
    pub status: OrchestrationStatus,
    /// When the instance was created.
    pub created_at: Option<SystemTime>,
    /// When the instance last changed.
    pub last_updated_at: Option<SystemTime>,
    /// When the instance finished, if it has.
    pub completed_at: Option<SystemTime>,
    /// When a delayed start is due.
    pub scheduled_start_at: Option<SystemTime>,
    /// The JSON input (only when fetched with payloads).
    pub serialized_input: Option<String>,
    /// The JSON output (only when fetched with payloads).
    pub serialized_output: Option<String>,
    /// The JSON custom status (only when fetched with payloads).
    pub serialized_custom_status: Option<String>,
    /// Why the orchestration failed.
    pub failure_details: Option<FailureDetails>,
    /// The parent orchestration, for sub-orchestrations.
    pub parent_instance_id: Option<String>,
    /// Tags given at start.
    pub tags: HashMap<String, String>,
}

pub(crate) fn time(ts: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    // The epoch is what some servers send for "unset".
    ts.filter(|t| t.seconds != 0 || t.nanos != 0)
        .and_then(|t| SystemTime::try_from(t).ok())
}

fn parse<T: DeserializeOwned>(what: &str, json: Option<&str>) -> Result<Option<T>> {
    json.map(|s| serde_json::from_str(s).map_err(|e| Error::payload(what, e)))
        .transpose()
}

impl OrchestrationMetadata {
    pub(crate) fn from_proto(state: proto::OrchestrationState) -> Self {
        Self {
            instance_id: state.instance_id,
            name: state.name,
            version: state.version.filter(|v| !v.is_empty()),
            execution_id: state.execution_id,
            status: OrchestrationStatus::from_proto(state.orchestration_status),
            created_at: time(state.created_timestamp),
            last_updated_at: time(state.last_updated_timestamp),
            completed_at: time(state.completed_timestamp),
            scheduled_start_at: time(state.scheduled_start_timestamp),
            serialized_input: state.input,
            serialized_output: state.output,
            serialized_custom_status: state.custom_status,
            failure_details: state.failure_details.map(FailureDetails::from_proto),
            parent_instance_id: state.parent_instance_id,
            tags: state.tags,
        }
    }

    /// The input, deserialized; `None` when absent or not fetched.
    pub fn input<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        parse("orchestration input", self.serialized_input.as_deref())
    }

    /// The output, deserialized; `None` when absent or not fetched.
    pub fn output<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        parse("orchestration output", self.serialized_output.as_deref())
    }

    /// The custom status, deserialized; `None` when absent or not fetched.
    pub fn custom_status<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        parse("custom status", self.serialized_custom_status.as_deref())
    }
}

/// Options for starting an orchestration.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StartOptions {
    pub(crate) instance_id: Option<String>,
    pub(crate) start_at: Option<SystemTime>,
    pub(crate) tags: HashMap<String, String>,
    pub(crate) version: Option<String>,
    pub(crate) replaceable: Option<Vec<OrchestrationStatus>>,
    pub(crate) parent_trace_context: Option<durable_proto::TraceContext>,
}

impl StartOptions {
    /// Defaults: a random instance ID, start now, no tags, no version, the server's reuse policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this instance ID instead of a random one.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// Delays the start until `at`.
    pub fn with_start_at(mut self, at: SystemTime) -> Self {
        self.start_at = Some(at);
        self
    }

    /// Makes the orchestration a child of this W3C context (a `traceparent` value, and the `tracestate` beside
    /// it), as when an HTTP request that starts it carried one. Without it, the client's own
    /// `create_orchestration:<Name>` span is the parent when OpenTelemetry is set up, and else there is none.
    /// An invalid `traceparent` is ignored, as W3C Trace Context asks.
    pub fn with_trace_parent(mut self, traceparent: &str, tracestate: Option<&str>) -> Self {
        self.parent_trace_context = durable_core::trace::TraceParent::parse(traceparent)
            .map(|parent| parent.to_proto(tracestate));
        self
    }

    /// [`with_trace_parent`](Self::with_trace_parent) from a protocol `TraceContext`.
    pub fn with_parent_trace_context(mut self, context: durable_proto::TraceContext) -> Self {
        self.parent_trace_context = durable_core::trace::TraceParent::from_proto(&context)
            .map(|p| p.to_proto(context.trace_state.as_deref()));
        self
    }

    /// The parent trace context set with [`with_trace_parent`](Self::with_trace_parent), if any.
    pub fn parent_trace_context(&self) -> Option<&durable_proto::TraceContext> {
        self.parent_trace_context.as_ref()
    }

    /// Adds a tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Sets the orchestrator version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Allows the start to replace an existing instance with the same ID when it is in one of these statuses
    /// (an empty list: never replace).
    pub fn with_reuse_policy(
        mut self,
        replaceable: impl IntoIterator<Item = OrchestrationStatus>,
    ) -> Self {
        self.replaceable = Some(replaceable.into_iter().collect());
        self
    }
}

/// One page of a query, and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this back to get the next page; `None` on the last page.
    pub continuation_token: Option<String>,
}

/// A filter for [`DurableClient::query_instances`](crate::DurableClient::query_instances).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InstanceQuery {
    pub(crate) statuses: Vec<OrchestrationStatus>,
    pub(crate) created_from: Option<SystemTime>,
    pub(crate) created_to: Option<SystemTime>,
    pub(crate) instance_id_prefix: Option<String>,
    pub(crate) page_size: Option<u32>,
    pub(crate) with_payloads: bool,
    pub(crate) continuation_token: Option<String>,
}

impl InstanceQuery {
    /// Every instance.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only instances in one of these statuses.
    pub fn with_statuses(
        mut self,
        statuses: impl IntoIterator<Item = OrchestrationStatus>,
    ) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }
    /// Only instances created in `[from, to]`.
    pub fn with_created_between(
        mut self,
        from: Option<SystemTime>,
        to: Option<SystemTime>,
    ) -> Self {
        self.created_from = from;
        self.created_to = to;
        self
    }
    /// Only instances whose ID starts with `prefix`.
    pub fn with_instance_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.instance_id_prefix = Some(prefix.into());
        self
    }
    /// At most this many per page.
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }
    /// Includes inputs, outputs and custom status.
    pub fn with_payloads(mut self, yes: bool) -> Self {
        self.with_payloads = yes;
        self
    }
    /// Continues from a previous page.
    pub fn with_continuation_token(mut self, token: Option<String>) -> Self {
        self.continuation_token = token;
        self
    }
}

/// A filter for [`DurableClient::list_instance_ids`](crate::DurableClient::list_instance_ids).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InstanceIdQuery {
    pub(crate) statuses: Vec<OrchestrationStatus>,
    pub(crate) completed_from: Option<SystemTime>,
    pub(crate) completed_to: Option<SystemTime>,
    pub(crate) page_size: Option<u32>,
    pub(crate) last_instance_key: Option<String>,
}

impl InstanceIdQuery {
    /// Every instance.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only instances in one of these statuses.
    pub fn with_statuses(
        mut self,
        statuses: impl IntoIterator<Item = OrchestrationStatus>,
    ) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }
    /// Only instances completed in `[from, to]`.
    pub fn with_completed_between(
        mut self,
        from: Option<SystemTime>,
        to: Option<SystemTime>,
    ) -> Self {
        self.completed_from = from;
        self.completed_to = to;
        self
    }
    /// At most this many per page.
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }
    /// Continues after this key (the previous page's continuation token).
    pub fn with_continuation_token(mut self, token: Option<String>) -> Self {
        self.last_instance_key = token;
        self
    }
}

/// Which instances [`DurableClient::purge_instances`](crate::DurableClient::purge_instances) deletes.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PurgeFilter {
    pub(crate) created_from: Option<SystemTime>,
    pub(crate) created_to: Option<SystemTime>,
    pub(crate) statuses: Vec<OrchestrationStatus>,
}

impl PurgeFilter {
    /// Every finished instance.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only instances created in `[from, to]`.
    pub fn with_created_between(
        mut self,
        from: Option<SystemTime>,
        to: Option<SystemTime>,
    ) -> Self {
        self.created_from = from;
        self.created_to = to;
        self
    }
    /// Only instances in one of these statuses.
    pub fn with_statuses(
        mut self,
        statuses: impl IntoIterator<Item = OrchestrationStatus>,
    ) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }
}

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeResult {
    /// How many instances were deleted.
    pub deleted_instance_count: u32,
    /// `Some(false)` when the server stopped early and the purge should be repeated.
    pub is_complete: Option<bool>,
}

/// What the scheduler knows about an entity.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EntityMetadata {
    /// `@name@key`.
    pub instance_id: String,
    /// When its state last changed.
    pub last_modified: Option<SystemTime>,
    /// Operations waiting to run.
    pub backlog_queue_size: u32,
    /// The orchestration holding its lock, if any.
    pub locked_by: Option<String>,
    /// The JSON state (only when fetched with state).
    pub serialized_state: Option<String>,
}

impl EntityMetadata {
    pub(crate) fn from_proto(entity: proto::EntityMetadata) -> Self {
        Self {
            instance_id: entity.instance_id,
            last_modified: time(entity.last_modified_time),
            backlog_queue_size: u32::try_from(entity.backlog_queue_size).unwrap_or(0),
            locked_by: entity.locked_by.filter(|l| !l.is_empty()),
            serialized_state: entity.serialized_state,
        }
    }

    /// The state, deserialized; `None` when absent or not fetched.
    pub fn state<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        parse("entity state", self.serialized_state.as_deref())
    }
}

/// A filter for [`DurableClient::query_entities`](crate::DurableClient::query_entities).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EntityQuery {
    pub(crate) instance_id_prefix: Option<String>,
    pub(crate) modified_from: Option<SystemTime>,
    pub(crate) modified_to: Option<SystemTime>,
    pub(crate) include_state: bool,
    pub(crate) include_transient: bool,
    pub(crate) page_size: Option<u32>,
    pub(crate) continuation_token: Option<String>,
}

impl EntityQuery {
    /// Every entity.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only entities whose ID starts with `prefix` (for example `@counter@`).
    pub fn with_instance_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.instance_id_prefix = Some(prefix.into());
        self
    }
    /// Only entities modified in `[from, to]`.
    pub fn with_modified_between(
        mut self,
        from: Option<SystemTime>,
        to: Option<SystemTime>,
    ) -> Self {
        self.modified_from = from;
        self.modified_to = to;
        self
    }
    /// Includes each entity's state.
    pub fn with_state(mut self, yes: bool) -> Self {
        self.include_state = yes;
        self
    }
    /// Includes entities with no state (only locks or queued work).
    pub fn with_transient(mut self, yes: bool) -> Self {
        self.include_transient = yes;
        self
    }
    /// At most this many per page.
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }
    /// Continues from a previous page.
    pub fn with_continuation_token(mut self, token: Option<String>) -> Self {
        self.continuation_token = token;
        self
    }
}

/// What [`DurableClient::clean_entity_storage`](crate::DurableClient::clean_entity_storage) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanEntityStorageResult {
    /// Entities with no state and no lock that were removed.
    pub empty_entities_removed: u32,
    /// Locks held by finished orchestrations that were released.
    pub orphaned_locks_released: u32,
}
