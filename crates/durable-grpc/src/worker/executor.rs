//! What the worker hands work items to.

use std::fmt;
use std::pin::Pin;

use durable_proto as proto;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why an executor could not produce a result; the worker abandons the work item so that it is redelivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorError(pub String);

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExecutorError {}

/// Runs work items. `durable_core::Registry` is the usual one; the local Functions host plugs in one that forwards
/// to the custom handler over HTTP.
///
/// Failures of user code belong in the responses (failed completions, failure details); an `Err` means "this
/// work item could not be processed here" and makes the worker abandon it.
pub trait Executor: Send + Sync + 'static {
    /// One orchestration turn.
    fn execute_orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> BoxFuture<Result<proto::OrchestratorResponse, ExecutorError>>;

    /// One activity invocation.
    fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>>;

    /// One batch of entity operations.
    fn execute_entity_batch(
        &self,
        request: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>>;

    /// Names this executor handles, for work-item filters: (orchestrators, activities, entities).
    fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (Vec::new(), Vec::new(), Vec::new())
    }

    /// The orchestration and activity versions to put in work-item filters (empty: any version).
    fn versions(&self) -> Vec<String> {
        Vec::new()
    }
}
