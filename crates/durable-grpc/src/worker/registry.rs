//! The engine's `Registry` as the worker's executor.

use durable_core::Registry;
use durable_proto as proto;

use super::executor::{BoxFuture, Executor, ExecutorError};

impl Executor for Registry {
    fn execute_orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> BoxFuture<Result<proto::OrchestratorResponse, ExecutorError>> {
        // A turn is pure replay over in-memory events: fast enough to run on the task itself, and no I/O to await.
        let registry = self.clone();
        // A version the worker's versioning rejects is abandoned, for a worker that accepts it.
        Box::pin(async move {
            registry
                .try_execute_orchestrator(&request)
                .map_err(|mismatch| ExecutorError(format!("rejected by versioning: {mismatch}")))
        })
    }

    fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>> {
        if crate::http_activity::is_builtin(self, &request.name) {
            let http = crate::http_activity::shared();
            return Box::pin(async move { Ok(http.execute(request).await) });
        }
        let run = Registry::execute_activity(self, request);
        Box::pin(async move { Ok(run.await) })
    }

    fn execute_entity_batch(
        &self,
        request: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>> {
        let registry = self.clone();
        Box::pin(async move { Ok(registry.execute_entity_batch(&request)) })
    }

    fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let mut activities = self.activity_names();
        if !activities
            .iter()
            .any(|a| a == crate::http_activity::HTTP_ACTIVITY_NAME)
        {
            activities.push(crate::http_activity::HTTP_ACTIVITY_NAME.to_owned());
        }
        (self.orchestrator_names(), activities, self.entity_names())
    }

    fn versions(&self) -> Vec<String> {
        self.versioning()
            .map(durable_core::Versioning::filter_versions)
            .unwrap_or_default()
    }
}
