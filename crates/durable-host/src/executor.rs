//! The Durable extension's half of the host: work items from the backend become invocations of the handler in
//! the host's exact format, and the handler's replies become completions.
//!
//! This is a `durable_grpc::Executor`, so the worker's session, concurrency, completion and abandon logic is
//! shared with the direct gRPC path; only "how to run a work item" differs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use durable_grpc::{BoxFuture, Executor, ExecutorError};
use durable_proto as proto;
use prost::Message as _;
use proto::history_event::EventType;
use serde_json::{Map, Value};

use crate::config::{FunctionKind, FunctionMeta};
use crate::invoke::{InvokeError, Invoker, host_string, host_value};

/// A durable function: its folder name and trigger binding.
#[derive(Debug, Clone)]
struct Target {
    function: String,
    binding: String,
}

/// Which function serves which orchestration, activity and entity name.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    orchestrators: HashMap<String, Target>,
    activities: HashMap<String, Target>,
    /// Keyed by lower-case name, as entity IDs carry it.
    entities: HashMap<String, Target>,
}

impl Catalog {
    pub(crate) fn new(functions: &[FunctionMeta]) -> Self {
        let mut catalog = Catalog::default();
        for f in functions {
            let target = Target {
                function: f.name.clone(),
                binding: f.trigger_binding.clone(),
            };
            match &f.kind {
                FunctionKind::Orchestrator { orchestration } => {
                    catalog.orchestrators.insert(orchestration.clone(), target);
                }
                FunctionKind::Activity { activity } => {
                    catalog.activities.insert(activity.clone(), target);
                }
                FunctionKind::Entity { entity } => {
                    catalog.entities.insert(entity.to_lowercase(), target);
                }
                _ => {}
            }
        }
        catalog
    }

    fn orchestrator(&self, name: &str) -> Option<&Target> {
        self.orchestrators.get(name).or_else(|| {
            // Function names are case-insensitive in the host.
            self.orchestrators
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    }

    fn activity(&self, name: &str) -> Option<&Target> {
        self.activities.get(name).or_else(|| {
            self.activities
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    }

    pub(crate) fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            self.orchestrators.keys().cloned().collect(),
            self.activities.keys().cloned().collect(),
            self.entities.keys().cloned().collect(),
        )
    }
}

/// Runs work items by invoking the custom handler.
#[derive(Debug, Clone)]
pub(crate) struct HttpExecutor {
    invoker: Invoker,
    catalog: Arc<Catalog>,
}

impl HttpExecutor {
    pub(crate) fn new(invoker: Invoker, catalog: Arc<Catalog>) -> Self {
        HttpExecutor { invoker, catalog }
    }
}

fn retry(e: impl std::fmt::Display) -> ExecutorError {
    ExecutorError(e.to_string())
}

fn failure(error_type: &str, message: String) -> proto::TaskFailureDetails {
    proto::TaskFailureDetails {
        error_type: error_type.to_owned(),
        error_message: message,
        ..Default::default()
    }
}

fn not_found(function: &str, kind: &str) -> String {
    format!("The function '{function}' doesn't exist, is disabled, or is not an {kind} function.")
}

/// The orchestration's name: the last `ExecutionStarted` (a continued-as-new generation starts again).
fn orchestration_name(request: &proto::OrchestratorRequest) -> Option<&str> {
    request
        .past_events
        .iter()
        .chain(&request.new_events)
        .rev()
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => Some(s.name.as_str()),
            _ => None,
        })
}

impl Executor for HttpExecutor {
    fn execute_orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> BoxFuture<Result<proto::OrchestratorResponse, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move {
            let name = orchestration_name(&request).unwrap_or_default().to_owned();
            let Some(target) = this.catalog.orchestrator(&name).cloned() else {
                // The extension fails such an instance rather than retrying it forever.
                return Ok(fail_orchestration(
                    &request.instance_id,
                    failure("FunctionNotFound", not_found(&name, "orchestrator")),
                ));
            };
            let mut data = Map::new();
            data.insert(
                target.binding.clone(),
                host_string(&BASE64.encode(request.encode_to_vec())),
            );
            let mut response: proto::OrchestratorResponse = protobuf_turn(
                &this.invoker,
                &target.function,
                "OrchestrationTrigger",
                data,
            )
            .await?;
            response.instance_id = request.instance_id;
            Ok(response)
        })
    }

    fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move {
            let instance_id = request
                .orchestration_instance
                .as_ref()
                .map(|i| i.instance_id.clone())
                .unwrap_or_default();
            let mut response = proto::ActivityResponse {
                instance_id: instance_id.clone(),
                task_id: request.task_id,
                ..Default::default()
            };
            let Some(target) = this.catalog.activity(&request.name).cloned() else {
                response.failure_details = Some(failure(
                    "FunctionNotFound",
                    not_found(&request.name, "activity"),
                ));
                return Ok(response);
            };
            let (data, metadata) = activity_envelope(&target.binding, &instance_id, request.input);
            match this
                .invoker
                .invoke(&target.function, "ActivityTrigger", data, metadata)
                .await
            {
                Ok(reply) => {
                    response.result = match reply.return_value {
                        Value::Null => None,
                        value => Some(value.to_string()),
                    };
                    Ok(response)
                }
                // A handler that answered with an error status failed the activity, as in the host; the status
                // is all that is known about why.
                Err(e @ InvokeError::Status(_)) => {
                    response.failure_details = Some(proto::TaskFailureDetails {
                        error_type: "Microsoft.Azure.WebJobs.Host.FunctionInvocationException"
                            .into(),
                        error_message: format!(
                            "Exception while executing function: Functions.{}",
                            target.function
                        ),
                        inner_failure: Some(Box::new(failure(
                            "System.Net.Http.HttpRequestException",
                            e.to_string(),
                        ))),
                        ..Default::default()
                    });
                    Ok(response)
                }
                // Unreachable or unreadable: nothing ran to completion as far as we know; hand it back.
                Err(e) => Err(retry(e)),
            }
        })
    }

    fn execute_entity_batch(
        &self,
        request: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move {
            let name = entity_name(&request.instance_id).to_lowercase();
            let Some(target) = this.catalog.entities.get(&name).cloned() else {
                return Ok(proto::EntityBatchResult {
                    entity_state: request.entity_state,
                    failure_details: Some(failure(
                        "EntityFunctionNotFound",
                        not_found(&name, "entity"),
                    )),
                    ..Default::default()
                });
            };
            let mut data = Map::new();
            data.insert(
                target.binding.clone(),
                host_string(&BASE64.encode(request.encode_to_vec())),
            );
            protobuf_turn(&this.invoker, &target.function, "EntityTrigger", data).await
        })
    }

    fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        self.catalog.names()
    }
}

/// How long a work item whose invocation failed for a reason other than an unreachable handler is held before it
/// is abandoned: the backend hands it out again at once, and a handler that keeps answering 500 should not be
/// hammered in a tight loop.
const FAILED_TURN_PAUSE: Duration = Duration::from_secs(1);

/// Invokes an orchestrator or entity function and decodes its `ReturnValue` (base64 protobuf). Every failure is a
/// retry (the extension aborts the session), after a pause unless the handler was simply unreachable.
async fn protobuf_turn<M: prost::Message + Default>(
    invoker: &Invoker,
    function: &str,
    reason: &str,
    data: Map<String, Value>,
) -> Result<M, ExecutorError> {
    let reply = match invoker.invoke(function, reason, data, Map::new()).await {
        Ok(reply) => reply,
        Err(e @ InvokeError::Unavailable(_)) => return Err(retry(e)),
        Err(e) => {
            tokio::time::sleep(FAILED_TURN_PAUSE).await;
            return Err(retry(e));
        }
    };
    // A missing or empty return value makes the extension throw, which aborts the session: retried.
    let decoded = match reply.return_value {
        Value::String(text) if !text.trim().is_empty() => BASE64
            .decode(text.trim())
            .map_err(|e| format!("ReturnValue is not base64: {e}"))
            .and_then(|bytes| {
                M::decode(bytes.as_slice())
                    .map_err(|e| format!("ReturnValue is not the expected protobuf message: {e}"))
            }),
        _ => Err("the function invocation resulted in a null response".to_owned()),
    };
    match decoded {
        Ok(message) => Ok(message),
        Err(message) => {
            tokio::time::sleep(FAILED_TURN_PAUSE).await;
            Err(retry(message))
        }
    }
}

/// `@name@key` to `name`.
fn entity_name(instance_id: &str) -> &str {
    let rest = instance_id.strip_prefix('@').unwrap_or(instance_id);
    rest.split_once('@').map_or(rest, |(name, _)| name)
}

fn fail_orchestration(
    instance_id: &str,
    details: proto::TaskFailureDetails,
) -> proto::OrchestratorResponse {
    use proto::orchestrator_action::OrchestratorActionType;
    proto::OrchestratorResponse {
        instance_id: instance_id.to_owned(),
        actions: vec![proto::OrchestratorAction {
            id: -1,
            orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
                proto::CompleteOrchestrationAction {
                    orchestration_status: proto::OrchestrationStatus::Failed as i32,
                    failure_details: Some(details),
                    ..Default::default()
                },
            )),
        }],
        ..Default::default()
    }
}

/// `Data` and `Metadata` of an activity invocation (host-protocol.md §2.4): the trigger binds as a .NET string
/// holding the input's compact JSON text, and the binding data adds `instanceId` and `data`.
pub(crate) fn activity_envelope(
    binding: &str,
    instance_id: &str,
    input: Option<String>,
) -> (Map<String, Value>, Map<String, Value>) {
    let parsed: Option<Value> = input
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    // GetInput re-serializes compactly; text that is not JSON passes through untouched.
    let compact = match (&parsed, input) {
        (Some(value), _) => Some(value.to_string()),
        (None, raw) => raw,
    };
    let trigger_value = match &compact {
        Some(text) => host_string(text),
        None => host_value(Value::Null),
    };
    let mut data = Map::new();
    data.insert(binding.to_owned(), trigger_value.clone());
    let mut metadata = Map::new();
    metadata.insert("instanceId".into(), host_string(instance_id));
    metadata.insert(binding.to_owned(), trigger_value);
    metadata.insert("data".into(), host_value(parsed.unwrap_or(Value::Null)));
    (data, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn activity_input_is_encoded_three_layers_deep() {
        let (data, metadata) = activity_envelope("input", "a1b2c3", Some("\"Tokyo\"".into()));
        assert_eq!(
            Value::Object(data).to_string(),
            r#"{"input":"\"\\\"Tokyo\\\"\""}"#
        );
        assert_eq!(metadata["instanceId"], json!("\"a1b2c3\""));
        assert_eq!(metadata["data"], json!("\"Tokyo\""));
        let (_, metadata) = activity_envelope("input", "x", Some("{ \"n\" : 1 }".into()));
        assert_eq!(metadata["data"], json!({"n": 1}));
        assert_eq!(metadata["input"], json!("\"{\\\"n\\\":1}\""));
        let (data, _) = activity_envelope("input", "x", None);
        assert_eq!(data["input"], json!("null"));
    }

    #[test]
    fn entity_names_come_from_the_instance_id() {
        assert_eq!(entity_name("@counter@k1"), "counter");
        assert_eq!(entity_name("@counter@a@b"), "counter");
    }
}
