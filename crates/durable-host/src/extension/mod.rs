//! The Durable extension's half of the host: work items from the backend become invocations of the handler, built
//! and judged the way `Microsoft.Azure.WebJobs.Extensions.DurableTask` builds and judges them under a custom
//! handler, and the handler's replies become completions.
//!
//! This is a `durable_grpc::Executor`, so the worker's session, concurrency, completion and abandon logic is
//! shared with the direct gRPC path; only "how to run a work item" differs. An `Err` from it abandons the work item
//! (the extension's `SessionAbortedException`: it runs again); everything else is an answer, failures included.

mod actions;
mod catalog;
pub(crate) mod dotnet;
mod entity_messages;
mod failures;
#[cfg(test)]
mod fuzz_tests;
mod history;
mod sessions;
mod versioning;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use durable_grpc::{BoxFuture, Executor, ExecutorError};
use durable_proto as proto;
use prost::Message as _;
use proto::history_event::EventType;
use proto::orchestrator_action::OrchestratorActionType;
use serde_json::{Map, Value};

pub(crate) use catalog::Catalog;
use dotnet::Exception;
use failures::ENTITY_FUNCTION_NOT_FOUND;
pub(crate) use failures::function_not_found;
pub(crate) use history::RequestSettings;
use sessions::Sessions;
pub(crate) use versioning::versioning_settings;

use crate::invoke::{Invoker, host_base64, host_string, host_value};

/// Runs work items by invoking the custom handler.
#[derive(Debug, Clone)]
pub(crate) struct HttpExecutor {
    invoker: Invoker,
    catalog: Arc<Catalog>,
    settings: Arc<RequestSettings>,
    sessions: Arc<Sessions>,
    /// host.json's versioning, checked before the handler is invoked.
    versioning: Option<Arc<durable_core::Versioning>>,
}

impl HttpExecutor {
    pub(crate) fn new(invoker: Invoker, catalog: Arc<Catalog>, settings: RequestSettings) -> Self {
        let sessions = Arc::new(Sessions::new(settings.extended_session_idle_seconds));
        HttpExecutor {
            invoker,
            catalog,
            settings: Arc::new(settings),
            sessions,
            versioning: None,
        }
    }

    /// Applies host.json's versioning to every turn.
    pub(crate) fn with_versioning(mut self, versioning: Option<durable_core::Versioning>) -> Self {
        self.versioning = versioning.map(Arc::new);
        self
    }
}

/// Reads the `extensions.durableTask` settings that shape requests.
pub(crate) fn request_settings(durable_task: &Value) -> RequestSettings {
    let get = |key: &str| {
        durable_task.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    };
    let sessions = get("extendedSessionsEnabled").and_then(Value::as_bool) == Some(true);
    let idle = get("extendedSessionIdleTimeoutInSeconds")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(30);
    RequestSettings {
        default_version: get("defaultVersion")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        extended_session_idle_seconds: sessions.then_some(idle),
        rollback_entity_operations_on_exceptions: get("rollbackEntityOperationsOnExceptions")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    }
}

fn retry(reason: impl std::fmt::Display) -> ExecutorError {
    ExecutorError(reason.to_string())
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

/// Whether a turn's answer ends the orchestration (nothing more for a session to remember).
fn completes(response: &proto::OrchestratorResponse) -> bool {
    response.actions.iter().any(|a| {
        matches!(
            a.orchestrator_action_type,
            Some(OrchestratorActionType::CompleteOrchestration(_))
        )
    })
}

const NULL_ORCHESTRATOR_RESPONSE: &str = "The function invocation resulted in a null response. This means that \
    either the orchestrator function was implemented incorrectly, the Durable Task language SDK was implemented \
    incorrectly, or that the destination language worker is not sending the function result back to the host.";
const NULL_ENTITY_RESPONSE: &str = "The function invocation resulted in a null response. This means that either \
    the entity function was implemented incorrectly, the Durable Task language SDK was implemented incorrectly, \
    or that the destination language worker is not sending the function result back to the host.";

/// Reads a `ReturnValue` as the extension does: `as string`, then base64, then the protobuf message.
fn decode_return_value<M: prost::Message + Default>(
    value: Value,
    null_message: &str,
) -> Result<M, Exception> {
    let text = match value {
        Value::String(text) if !text.is_empty() => text,
        _ => {
            return Err(Exception::new(
                "System.InvalidOperationException",
                null_message,
            ));
        }
    };
    let bytes = BASE64.decode(text.trim()).map_err(|_| {
        Exception::new(
            "System.FormatException",
            "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two \
             padding characters, or an illegal character among the padding characters.",
        )
    })?;
    M::decode(bytes.as_slice()).map_err(|e| {
        Exception::new(
            "Google.Protobuf.InvalidProtocolBufferException",
            format!("Protocol message could not be parsed: {e}"),
        )
    })
}

impl HttpExecutor {
    async fn orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> Result<proto::OrchestratorResponse, ExecutorError> {
        let instance_id = request.instance_id.clone();
        // DurableTask.Core rewinds a failed instance's history itself; the handler only ever replays the result.
        if let Some(rewind) = durable_core::rewind_response(&request) {
            return Ok(rewind);
        }
        if let Some(versioning) = &self.versioning
            && let Some(refused) = versioning::check(versioning, &request).map_err(retry)?
        {
            return Ok(refused);
        }
        let name = orchestration_name(&request).unwrap_or_default().to_owned();
        let Some(target) = self.catalog.orchestrator(&name).cloned() else {
            // Decided before any invocation, and final (`CallOrchestratorAsync`).
            let message = function_not_found(&name, "orchestrator", &self.catalog.names().0);
            return Ok(failures::fail_orchestration(&instance_id, &message, None));
        };
        // A session belongs to one execution; a new one (a start, a continue-as-new, a replacement) starts afresh.
        let session = format!(
            "{instance_id}\n{}",
            request.execution_id.as_deref().unwrap_or_default()
        );
        let starts = request
            .new_events
            .iter()
            .any(|e| matches!(e.event_type, Some(EventType::ExecutionStarted(_))));
        if starts {
            self.sessions.end(&session);
        }
        let turn = self.sessions.turn(&session);
        let built = history::orchestrator_request(&request, &self.settings, turn);
        let mut data = Map::new();
        data.insert(target.binding.clone(), host_base64(&built.encode_to_vec()));
        // The invocation runs under the orchestration's span, as the host's runs under DurableTask.Core's: its
        // context is the one the engine derives from the same history. It is handed on whether or not this process
        // exports spans, since the handler may; finding it reads `ExecutionStarted` only, not the whole history.
        let trace = durable_core::trace::turn_context(&request)
            .map(|t| t.orchestration.to_proto(t.trace_state.as_deref()));
        let reply = self
            .invoker
            .invoke_traced(
                trace,
                &target.function,
                "OrchestrationTrigger",
                data,
                Map::new(),
                None,
            )
            .await;
        // What goes wrong inside the invocation reaches the extension wrapped by the executor.
        let fail = |exception: Exception| {
            self.sessions.end(&session);
            Ok(failures::orchestrator_invocation_failed(
                &instance_id,
                &target.function,
                &exception,
            ))
        };
        let wrapped = |cause: Exception| Exception::invocation_failed(&target.function, cause);
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) if e.is_retried(false) => {
                self.sessions.end(&session);
                return Err(retry(e));
            }
            Err(e) => return fail(e.to_exception(&target.function)),
        };
        let response: proto::OrchestratorResponse =
            match decode_return_value(reply.return_value, NULL_ORCHESTRATOR_RESPONSE) {
                Ok(response) => response,
                Err(cause) => return fail(wrapped(cause)),
            };
        if response.requires_history {
            self.sessions.end(&session);
            return Err(retry(
                "The worker has since ended the extended session and needs an orchestration history to execute \
                 the orchestration request.",
            ));
        }
        let out_of_memory = response
            .actions
            .iter()
            .any(|a| match &a.orchestrator_action_type {
                Some(OrchestratorActionType::CompleteOrchestration(c)) => c
                    .failure_details
                    .as_ref()
                    .is_some_and(failures::is_out_of_memory),
                _ => false,
            });
        if out_of_memory {
            self.sessions.end(&session);
            return Err(retry(
                "the orchestrator ran out of memory; the extension runs it again",
            ));
        }
        let mut accepted = match actions::accept(response) {
            Ok(accepted) => accepted,
            Err(cause) => return fail(wrapped(cause)),
        };
        if completes(&accepted) {
            self.sessions.end(&session);
        } else {
            self.sessions.continue_with(&session);
        }
        accepted.instance_id = instance_id;
        Ok(accepted)
    }

    async fn activity(
        &self,
        request: proto::ActivityRequest,
    ) -> Result<proto::ActivityResponse, ExecutorError> {
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
        // The extension runs the durable HTTP activity itself; so does this host, as the gRPC worker does.
        if request.name == durable_grpc::http_activity::HTTP_ACTIVITY_NAME
            && self.catalog.activity(&request.name).is_none()
        {
            return Ok(durable_grpc::http_activity::shared().execute(request).await);
        }
        let Some(target) = self.catalog.activity(&request.name).cloned() else {
            // The extension's TaskFailed carries only a reason here, no failure details; an empty error type
            // stands for that (see `history::failure_details`).
            response.failure_details = Some(proto::TaskFailureDetails {
                error_message: function_not_found(
                    &request.name,
                    "activity",
                    &self.catalog.names().1,
                ),
                ..Default::default()
            });
            return Ok(response);
        };
        let envelope = activity_envelope(&target.binding, &instance_id, request.input);
        match self
            .invoker
            .invoke_traced(
                request.parent_trace_context,
                &target.function,
                "ActivityTrigger",
                envelope.data,
                envelope.metadata,
                envelope.trigger_text.as_deref(),
            )
            .await
        {
            Ok(reply) => {
                response.result = match reply.return_value {
                    Value::Null => None,
                    value => Some(value.to_string()),
                };
                Ok(response)
            }
            Err(e) if e.is_retried(false) => Err(retry(e)),
            Err(e) => {
                response.failure_details =
                    Some(e.to_exception(&target.function).to_failure_details());
                Ok(response)
            }
        }
    }

    async fn entity(
        &self,
        request: proto::EntityBatchRequest,
    ) -> Result<proto::EntityBatchResult, ExecutorError> {
        let name = entity_messages::split_entity_id(&request.instance_id)
            .0
            .to_lowercase();
        let Some(target) = self.catalog.entity(&name).cloned() else {
            let details = proto::TaskFailureDetails {
                error_type: ENTITY_FUNCTION_NOT_FOUND.to_owned(),
                error_message: function_not_found(&name, "entity", &self.catalog.names().2),
                is_non_retriable: true,
                ..Default::default()
            };
            return Ok(failures::batch_failure(&request, details));
        };
        let turn = self.sessions.turn(&request.instance_id);
        let built = history::entity_request(&request, &self.settings, turn);
        let mut data = Map::new();
        data.insert(target.binding.clone(), host_base64(&built.encode_to_vec()));
        let fail = |exception: Exception| {
            self.sessions.end(&request.instance_id);
            Ok(failures::entity_invocation_failed(
                &request, &name, &exception,
            ))
        };
        let wrapped = |cause: Exception| Exception::invocation_failed(&target.function, cause);
        let trace = request
            .operations
            .iter()
            .find_map(|o| o.trace_context.clone());
        let reply = match self
            .invoker
            .invoke_traced(
                trace,
                &target.function,
                "EntityTrigger",
                data,
                Map::new(),
                None,
            )
            .await
        {
            Ok(reply) => reply,
            Err(e) if e.is_retried(true) => {
                self.sessions.end(&request.instance_id);
                return Err(retry(e));
            }
            Err(e) => return fail(e.to_exception(&target.function)),
        };
        let result: proto::EntityBatchResult =
            match decode_return_value(reply.return_value, NULL_ENTITY_RESPONSE) {
                Ok(result) => result,
                Err(cause) => return fail(wrapped(cause)),
            };
        if result.requires_state {
            self.sessions.end(&request.instance_id);
            return Err(retry(
                "The worker has since ended the extended session and needs an entity state to execute the request.",
            ));
        }
        match accept_entity_result(result, self.settings.default_version.as_deref()) {
            Ok(result) => {
                self.sessions.continue_with(&request.instance_id);
                Ok(result)
            }
            Err(cause) => fail(wrapped(cause)),
        }
    }
}

/// The entity's answer as `ToEntityBatchResult` reads it: every result must be a success or a failure, and the
/// only actions are signals and orchestration starts (which get the default version when they name none).
fn accept_entity_result(
    result: proto::EntityBatchResult,
    default_version: Option<&str>,
) -> Result<proto::EntityBatchResult, Exception> {
    use proto::operation_action::OperationActionType;
    if result.results.iter().any(|r| r.result_type.is_none()) {
        return Err(Exception::new(
            "System.NotSupportedException",
            "Deserialization of None is not supported.",
        ));
    }
    let mut actions = Vec::with_capacity(result.actions.len());
    for mut action in result.actions {
        match &mut action.operation_action_type {
            Some(OperationActionType::SendSignal(_)) => {}
            Some(OperationActionType::StartNewOrchestration(start)) => {
                if start.version.is_none() {
                    start.version = default_version.map(str::to_owned);
                }
            }
            None => {
                return Err(Exception::new(
                    "System.NotSupportedException",
                    "Deserialization of None is not supported.",
                ));
            }
        }
        actions.push(action);
    }
    Ok(proto::EntityBatchResult {
        results: result.results,
        actions,
        entity_state: result.entity_state,
        failure_details: result.failure_details,
        ..Default::default()
    })
}

impl Executor for HttpExecutor {
    fn execute_orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> BoxFuture<Result<proto::OrchestratorResponse, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move { this.orchestrator(request).await })
    }

    fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move { this.activity(request).await })
    }

    fn execute_entity_batch(
        &self,
        request: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move { this.entity(request).await })
    }

    fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (orchestrators, mut activities, entities) = self.catalog.names();
        let http = durable_grpc::http_activity::HTTP_ACTIVITY_NAME;
        if !activities.iter().any(|a| a == http) {
            activities.push(http.to_owned());
        }
        (orchestrators, activities, entities)
    }

    fn versions(&self) -> Vec<String> {
        self.versioning
            .as_ref()
            .map(|v| v.filter_versions())
            .unwrap_or_default()
    }
}

/// An activity invocation's `Data` and `Metadata`, and the trigger value text the host takes binding data from.
#[derive(Debug)]
pub(crate) struct ActivityEnvelope {
    pub(crate) data: Map<String, Value>,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) trigger_text: Option<String>,
}

/// `Data` and `Metadata` of an activity invocation: the trigger binds as a .NET string holding the input's compact
/// JSON text, and the binding data adds `instanceId` and `data`
/// (`Bindings/ActivityTriggerAttributeBindingProvider.cs` in Azure/azure-functions-durable-extension).
pub(crate) fn activity_envelope(
    binding: &str,
    instance_id: &str,
    input: Option<String>,
) -> ActivityEnvelope {
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
    ActivityEnvelope {
        data,
        metadata,
        trigger_text: compact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn activity_input_is_encoded_three_layers_deep() {
        let envelope = activity_envelope("input", "a1b2c3", Some("\"Tokyo\"".into()));
        assert_eq!(
            Value::Object(envelope.data).to_string(),
            r#"{"input":"\"\\\"Tokyo\\\"\""}"#
        );
        assert_eq!(envelope.metadata["instanceId"], json!("\"a1b2c3\""));
        assert_eq!(envelope.metadata["data"], json!("\"Tokyo\""));
        let envelope = activity_envelope("input", "x", Some("{ \"n\" : 1 }".into()));
        assert_eq!(envelope.metadata["data"], json!({"n": 1}));
        assert_eq!(envelope.metadata["input"], json!("\"{\\\"n\\\":1}\""));
        assert_eq!(envelope.trigger_text.as_deref(), Some("{\"n\":1}"));
        let envelope = activity_envelope("input", "x", None);
        assert_eq!(envelope.data["input"], json!("null"));
    }

    #[test]
    fn return_values_are_read_as_the_extension_reads_them() {
        let null = decode_return_value::<proto::OrchestratorResponse>(
            Value::Null,
            NULL_ORCHESTRATOR_RESPONSE,
        );
        assert_eq!(
            null.unwrap_err().type_name,
            "System.InvalidOperationException"
        );
        let number = decode_return_value::<proto::OrchestratorResponse>(
            json!(5),
            NULL_ORCHESTRATOR_RESPONSE,
        );
        assert_eq!(number.unwrap_err().message, NULL_ORCHESTRATOR_RESPONSE);
        let empty = decode_return_value::<proto::OrchestratorResponse>(
            json!(""),
            NULL_ORCHESTRATOR_RESPONSE,
        );
        assert!(empty.is_err());
        let bad = decode_return_value::<proto::OrchestratorResponse>(
            json!("not base64!"),
            NULL_ORCHESTRATOR_RESPONSE,
        );
        assert_eq!(bad.unwrap_err().type_name, "System.FormatException");
        let good = proto::OrchestratorResponse {
            instance_id: "i".into(),
            ..Default::default()
        };
        let decoded = decode_return_value::<proto::OrchestratorResponse>(
            json!(BASE64.encode(good.encode_to_vec())),
            NULL_ORCHESTRATOR_RESPONSE,
        );
        assert_eq!(decoded.unwrap(), good);
    }

    #[test]
    fn settings_come_from_the_durable_task_section() {
        let s = request_settings(&json!({
            "extendedSessionsEnabled": true, "extendedSessionIdleTimeoutInSeconds": 12,
            "defaultVersion": "1.0", "rollbackEntityOperationsOnExceptions": false
        }));
        assert_eq!(s.extended_session_idle_seconds, Some(12));
        assert_eq!(s.default_version.as_deref(), Some("1.0"));
        assert!(!s.rollback_entity_operations_on_exceptions);
        let s = request_settings(&Value::Null);
        assert_eq!(s.extended_session_idle_seconds, None);
        assert!(s.rollback_entity_operations_on_exceptions);
    }

    #[test]
    fn entity_results_need_a_kind_and_get_the_default_version() {
        use proto::operation_action::OperationActionType;
        let start = proto::EntityBatchResult {
            actions: vec![proto::OperationAction {
                id: 0,
                operation_action_type: Some(OperationActionType::StartNewOrchestration(
                    proto::StartNewOrchestrationAction {
                        name: "Orch".into(),
                        ..Default::default()
                    },
                )),
            }],
            completion_token: "x".into(),
            ..Default::default()
        };
        let accepted = accept_entity_result(start, Some("2.0")).unwrap();
        assert_eq!(accepted.completion_token, "");
        let Some(OperationActionType::StartNewOrchestration(s)) =
            &accepted.actions[0].operation_action_type
        else {
            panic!("no start")
        };
        assert_eq!(s.version.as_deref(), Some("2.0"));
        let unset = proto::EntityBatchResult {
            results: vec![proto::OperationResult { result_type: None }],
            ..Default::default()
        };
        assert_eq!(
            accept_entity_result(unset, None).unwrap_err().message,
            "Deserialization of None is not supported."
        );
    }
}
