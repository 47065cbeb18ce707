//! Distributed tracing, computed from history: W3C trace contexts for the work an orchestration schedules, and
//! the spans a transport should emit for a turn.
//!
//! The engine exports nothing. [`Registry::execute_orchestrator`](crate::Registry::execute_orchestrator) fills
//! the protocol's trace fields (`parentTraceContext` of every new `ScheduleTask` and `CreateSubOrchestration`
//! action, and `OrchestratorResponse.orchestrationTraceContext`); [`turn_trace`] tells a transport which spans the
//! turn finished, so that it can emit them. Every identifier comes from history or is derived from the instance ID,
//! the execution ID and a sequence number, so a replay computes the same ones and work that is only replayed
//! yields no span.
//!
//! Names, kinds and attributes follow Microsoft's Durable Task SDKs (microsoft/durabletask-dotnet
//! `src/Shared/Grpc/Tracing`, microsoft/durabletask-python `durabletask/internal/tracing.py`):
//!
//! | span | kind | when |
//! |---|---|---|
//! | `orchestration:<Name>` | SERVER | once, in the turn that completes the execution, from its first turn |
//! | `activity:<Name>` | CLIENT | when the result arrives, from the time the activity was scheduled |
//! | `orchestration:<Name>` (the sub-orchestration's) | CLIENT | when its result arrives |
//! | `orchestration:<Name>:timer` | INTERNAL | when the timer fires, from the time it was created |

mod context;
mod turn;

pub use context::TraceParent;
pub use turn::{annotate_response, span_name, turn_context, turn_trace};

use time::OffsetDateTime;

/// Attribute names, as the SDKs' `Schema` has them.
pub mod attributes {
    /// `orchestration`, `activity`, `timer`, `entity`, `event`.
    pub const TYPE: &str = "durabletask.type";
    /// The orchestration, activity or entity name.
    pub const TASK_NAME: &str = "durabletask.task.name";
    /// The version, when there is one.
    pub const TASK_VERSION: &str = "durabletask.task.version";
    /// The orchestration's instance ID.
    pub const INSTANCE_ID: &str = "durabletask.task.instance_id";
    /// The execution ID.
    pub const EXECUTION_ID: &str = "durabletask.task.execution_id";
    /// The sequence number of the scheduling action.
    pub const TASK_ID: &str = "durabletask.task.task_id";
    /// `Completed` or `Failed`.
    pub const STATUS: &str = "durabletask.task.status";
    /// When a timer was due (RFC 3339).
    pub const FIRE_AT: &str = "durabletask.fire_at";
    /// The entity operation.
    pub const ENTITY_OPERATION: &str = "durabletask.entity.operation";
    /// The instance an event is sent to.
    pub const EVENT_TARGET_INSTANCE_ID: &str = "durabletask.event.target_instance_id";
}

/// A span's kind, as OpenTelemetry names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// Work inside the process.
    Internal,
    /// Handling a request: an orchestration's lifetime, an activity's or entity operation's execution.
    Server,
    /// Waiting on a remote operation: an activity or sub-orchestration call.
    Client,
    /// Sending a message without waiting: starting an orchestration, raising an event.
    Producer,
}

/// A finished span: everything a transport needs to emit it with these exact IDs and times.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SpanRecord {
    /// `type:name`, with `@(version)` when there is one.
    pub name: String,
    /// The span's kind.
    pub kind: SpanKind,
    /// Its trace, its own ID and the flags.
    pub context: TraceParent,
    /// Its parent's span ID in the same trace; `None` for a trace's root.
    pub parent_span_id: Option<[u8; 8]>,
    /// The `tracestate` the trace carries.
    pub trace_state: Option<String>,
    /// When it started (a history timestamp).
    pub start: OffsetDateTime,
    /// When it ended, from history; `None` means when the transport emits it.
    pub end: Option<OffsetDateTime>,
    /// `durabletask.*` attributes.
    pub attributes: Vec<(&'static str, String)>,
    /// Set when the work failed: the failure's message.
    pub error: Option<String>,
}

impl SpanRecord {
    /// The context a child of this span carries.
    pub fn child_context(&self) -> TraceParent {
        self.context
    }
}

/// The tracing of one orchestration turn, computed from its request and the engine's response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TurnTrace {
    /// The orchestration's name.
    pub name: String,
    /// Its version, when there is one.
    pub version: Option<String>,
    /// The instance ID.
    pub instance_id: String,
    /// The execution ID, when history has one.
    pub execution_id: Option<String>,
    /// The orchestration span's context (its trace, its own span ID): the parent of everything the orchestration
    /// does, this turn's work included.
    pub orchestration: TraceParent,
    /// The `tracestate` the trace carries.
    pub trace_state: Option<String>,
    /// The spans that this turn finished, oldest first; empty when the turn only replayed.
    pub spans: Vec<SpanRecord>,
}
