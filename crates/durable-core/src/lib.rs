//! The replay engine and authoring API for Durable Task orchestrations, activities and entities.
//!
//! Orchestrators are `async` functions over an [`OrchestrationContext`]; activities are `async` functions that may
//! do I/O; entities are typed state with named operations. A [`Registry`] holds them by name and is the engine:
//! transports hand it protocol requests and send back its responses. The engine itself does no I/O.
//!
//! ```
//! use durable_core::proto::{self, history_event::EventType, orchestrator_action::OrchestratorActionType};
//! use durable_core::{
//!     ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext, OrchestrationError,
//!     Registry,
//! };
//!
//! async fn greet_all(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
//!     let mut greetings = Vec::new();
//!     for city in cities {
//!         greetings.push(ctx.call_activity::<_, String>("say_hello", city).await?);
//!     }
//!     // Count greetings in a durable entity; the call returns the new total.
//!     let total: i64 = ctx.call_entity(&EntityId::new("counter", "greetings"), "add", greetings.len()).await?;
//!     ctx.log_info(format!("{total} greetings so far"));
//!     Ok(greetings)
//! }
//!
//! async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello {city}!"))
//! }
//!
//! let mut registry = Registry::new();
//! registry
//!     .add_orchestrator("greet_all", greet_all)
//!     .add_activity("say_hello", say_hello)
//!     .add_entity(
//!         "counter",
//!         Entity::<i64>::new().operation("add", |total: &mut i64, _ctx, n: i64| {
//!             *total += n;
//!             Ok::<_, EntityError>(*total)
//!         }),
//!     );
//!
//! // The first turn of a new instance: the backend sends OrchestratorStarted + ExecutionStarted.
//! let event = |event_type| proto::HistoryEvent { event_id: -1, timestamp: None, event_type: Some(event_type) };
//! let request = proto::OrchestratorRequest {
//!     instance_id: "greetings-1".into(),
//!     new_events: vec![
//!         event(EventType::OrchestratorStarted(Default::default())),
//!         event(EventType::ExecutionStarted(proto::ExecutionStartedEvent {
//!             name: "greet_all".into(),
//!             input: Some(r#"["Tokyo","Seattle"]"#.into()),
//!             ..Default::default()
//!         })),
//!     ],
//!     ..Default::default()
//! };
//! let response = registry.execute_orchestrator(&request);
//! // The orchestrator now waits for its first activity, scheduled as action 0.
//! assert_eq!(response.actions.len(), 1);
//! match &response.actions[0].orchestrator_action_type {
//!     Some(OrchestratorActionType::ScheduleTask(task)) => {
//!         assert_eq!(task.name, "say_hello");
//!         assert_eq!(task.input.as_deref(), Some("\"Tokyo\""));
//!     }
//!     other => panic!("unexpected action {other:?}"),
//! }
//!
//! // Entities run in batches: one result per operation.
//! let batch = registry.execute_entity_batch(&proto::EntityBatchRequest {
//!     instance_id: "@counter@greetings".into(),
//!     entity_state: Some("40".into()),
//!     operations: vec![proto::OperationRequest {
//!         operation: "add".into(),
//!         request_id: "r1".into(),
//!         input: Some("2".into()),
//!         trace_context: None,
//!     }],
//!     properties: Default::default(),
//! });
//! assert_eq!(batch.entity_state.as_deref(), Some("42"));
//! ```
//!
//! Long-lived instances restart themselves with [`OrchestrationContext::continue_as_new`]; with
//! [`OrchestrationContext::continue_as_new_with_options`] and [`ContinueAsNewOptions::version`] the next generation
//! also runs as a new orchestrator version (the `newVersion` of the completion).
//!
//! A failed instance can be rewound (`RewindInstance` on the backend). The backend then sends
//! `[OrchestratorStarted, ExecutionRewound]` to the instance, whose history ends in its failed `ExecutionCompleted`;
//! the engine answers without running orchestrator code, with one `RewindOrchestration` action (id -1) whose
//! `newHistory` is the history minus the failed activity results and their `TaskScheduled` (so those activities run
//! again), minus failed sub-orchestration results (the creation stays: the backend rewinds the child and the parent
//! waits for its new outcome), minus the `ExecutionCompleted`, under a new execution id derived from the request;
//! the `ExecutionRewound` is kept as a record. A sub-orchestration's `ExecutionStarted` takes the parent's new
//! execution id from the `ExecutionRewound`'s `parentExecutionId`. This is what the Durable Task SDKs' workers answer
//! (checked against the Python SDK's engine), so backends built for them work unchanged. A rewind request for an
//! instance whose history ends in another outcome (completed, terminated) is answered with that outcome again; for an
//! instance that has not ended, the `ExecutionRewound` is only a record and the turn replays as usual. As in the
//! SDKs, the durable timers between the attempts of a retried call are not rewound.
//!
//! Determinism is the contract of orchestrator code: the same history must lead to the same decisions. Use the
//! context for time ([`OrchestrationContext::current_utc_datetime`]), ids ([`OrchestrationContext::new_guid`]) and
//! logging ([`OrchestrationContext::log`]), never the system clock or randomness.

#![warn(missing_docs)]

mod activity;
mod entity;
mod entity_id;
mod errors;
pub mod failure_envelope;
pub mod http;
mod orchestration;
mod registry;
pub mod replay_check;
pub mod testing;
mod time_util;
pub mod trace;
pub mod typed;
pub mod versioning;

pub use durable_proto as proto;

pub use activity::ActivityContext;
pub use entity::{Entity, EntityContext, entity_batch_from_v2};
pub use entity_id::{EntityId, EntityIdParseError};
pub use errors::{
    ActivityError, EntityError, FailureDetails, OrchestrationError, ReplayError, TaskError,
    TaskKind,
};
pub use orchestration::{
    CallOptions, CancellationToken, ContinueAsNewOptions, DurableFuture, EntityLock,
    LocalBoxFuture, LockFuture, OrchestrationContext, ParentInfo, RetryContext, RetryHandler,
    RetryPolicy, WhenAll, WhenAny, rewind_response, when_all, when_any,
};
pub use registry::{Registry, ReplayOptions};
pub use typed::{
    Activity, ActivityKind, CallKind, Callable, EntityOperation, EntityProxy, EntitySignaler,
    EntityType, Orchestrator, OrchestratorKind,
};
pub use versioning::{
    VersionFailureStrategy, VersionMatchStrategy, VersionMismatch, Versioning, compare_versions,
};

/// Re-exported so that orchestrator code can name times without depending on `time` itself.
pub use time::OffsetDateTime;
