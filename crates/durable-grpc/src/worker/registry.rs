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
        Box::pin(async move {
            // A version the worker's versioning rejects is abandoned, for a worker that accepts it.
            durable_telemetry::try_orchestration_turn(&request, || {
                registry.try_execute_orchestrator(&request)
            })
            .map_err(|mismatch| ExecutorError(format!("rejected by versioning: {mismatch}")))
        })
    }

    fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>> {
        use tracing::Instrument;
        let span = durable_telemetry::activity_span(&request);
        let run: BoxFuture<proto::ActivityResponse> =
            if crate::http_activity::is_builtin(self, &request.name) {
                let http = crate::http_activity::shared();
                Box::pin(async move { http.execute(request).await })
            } else {
                Box::pin(span.in_scope(|| Registry::execute_activity(self, request)))
            };
        Box::pin(
            async move {
                let response = run.await;
                if let Some(failure) = &response.failure_details {
                    let span = tracing::Span::current();
                    span.record("otel.status_code", "error");
                    span.record("otel.status_description", failure.error_message.as_str());
                }
                Ok(response)
            }
            .instrument(span),
        )
    }

    fn execute_entity_batch(
        &self,
        request: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>> {
        let registry = self.clone();
        Box::pin(async move {
            // One span per operation, under the context the operation carries (a client's signal has one).
            let span_for = |op: &proto::OperationRequest| {
                durable_telemetry::entity_operation_span(&request.instance_id, op)
            };
            Ok(registry.execute_entity_batch_traced(&request, None, &span_for))
        })
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
