//! Orchestrations: the authoring API and the replay engine behind it.

mod calls;
pub(crate) mod check;
mod context;
mod entities;
mod entity_events;
mod events;
pub(crate) mod executor;
mod futures;
mod retry;
mod retry_handler;
mod rewind;
mod state;

pub use calls::CallOptions;
pub use context::{ContinueAsNewOptions, OrchestrationContext};
pub use entities::{EntityLock, LockFuture};
pub use futures::{DurableFuture, LocalBoxFuture, WhenAll, WhenAny, when_all, when_any};
pub use retry::RetryPolicy;
pub use retry_handler::{CancellationToken, RetryContext, RetryHandler};
pub use state::ParentInfo;

pub(crate) use executor::instance_id_of;
pub(crate) use futures::decode_json;

/// The answer to a rewind request (`ExecutionRewound` sent to an instance whose history ends in a failed
/// `ExecutionCompleted`), computed from the history alone, or `None` when `request` is not a rewind request.
///
/// [`Registry::execute_orchestrator`](crate::Registry::execute_orchestrator) answers rewind requests this way
/// itself; hosts that rewind on behalf of their workers, as the Durable extension does under Azure Functions (the
/// worker only ever sees the rewound history replayed), call it directly.
pub fn rewind_response(
    request: &crate::proto::OrchestratorRequest,
) -> Option<crate::proto::OrchestratorResponse> {
    rewind::respond(&executor::instance_id_of(request), request)
}
