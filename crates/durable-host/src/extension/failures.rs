//! What a failed invocation becomes, as `OutOfProcMiddleware` decides it
//! (Azure/azure-functions-durable-extension `src/WebJobs.Extensions.DurableTask/OutOfProcMiddleware.cs`).
//!
//! Only platform failures (a function timeout, the handler process going away, the host shutting down) abort the
//! work item so that it runs again. Anything else the handler does wrong is final: the orchestration fails, the
//! activity's task fails, every operation of the entity batch fails.

use durable_proto as proto;
use proto::orchestrator_action::OrchestratorActionType;

use super::dotnet::Exception;

/// The batch failure the extension reports for a failed entity invocation.
pub(crate) const FUNCTION_INVOCATION_FAILED: &str = "FunctionInvocationFailed";
/// The batch failure for an entity no function serves.
pub(crate) const ENTITY_FUNCTION_NOT_FOUND: &str = "EntityFunctionNotFound";

/// Whether an operation's failure came from its whole batch failing (the local host reports those two kinds only
/// as batch failures), which DurableTask.Core answers in a shape of its own.
pub(crate) fn is_batch_failure(details: &proto::TaskFailureDetails) -> bool {
    details.is_non_retriable
        && matches!(
            details.error_type.as_str(),
            FUNCTION_INVOCATION_FAILED | ENTITY_FUNCTION_NOT_FOUND
        )
}

/// `GetInvalid{Orchestrator,Activity,Entity}FunctionMessage` of the extension.
pub(crate) fn function_not_found(name: &str, kind: &str, known: &[String]) -> String {
    let mut known: Vec<&String> = known.iter().collect();
    known.sort();
    let additional = if known.is_empty() {
        format!("No {kind} functions are currently registered!")
    } else {
        let list = known
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("The following are the known {kind} functions: {list}.")
    };
    format!(
        "The function '{name}' doesn't exist, is disabled, or is not an {kind} function. Additional info: {additional}"
    )
}

/// The completion DurableTask.Core records for `OrchestratorExecutionResult.ForFailure(message, details)`: FAILED,
/// the output `{"message", "details"}`, and no failure details at all.
pub(crate) fn fail_orchestration(
    instance_id: &str,
    message: &str,
    details: Option<String>,
) -> proto::OrchestratorResponse {
    let output = serde_json::json!({ "message": message, "details": details }).to_string();
    proto::OrchestratorResponse {
        instance_id: instance_id.to_owned(),
        actions: vec![proto::OrchestratorAction {
            id: -1,
            orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
                proto::CompleteOrchestrationAction {
                    orchestration_status: proto::OrchestrationStatus::Failed as i32,
                    result: Some(output),
                    ..Default::default()
                },
            )),
        }],
        ..Default::default()
    }
}

/// An orchestrator invocation that failed: `Function '<name>' failed with an unhandled exception.`, with the
/// exception's text (the executor's wrapper, usually) as the details.
pub(crate) fn orchestrator_invocation_failed(
    instance_id: &str,
    function: &str,
    exception: &Exception,
) -> proto::OrchestratorResponse {
    fail_orchestration(
        instance_id,
        &format!("Function '{function}' failed with an unhandled exception."),
        Some(exception.to_dotnet_string()),
    )
}

/// An entity invocation that failed: the whole batch fails, non-retriable, and the entity keeps its state.
pub(crate) fn entity_invocation_failed(
    request: &proto::EntityBatchRequest,
    entity_name: &str,
    exception: &Exception,
) -> proto::EntityBatchResult {
    batch_failure(
        request,
        proto::TaskFailureDetails {
            error_type: FUNCTION_INVOCATION_FAILED.to_owned(),
            error_message: format!(
                "Invocation of function '{entity_name}' failed with an exception."
            ),
            inner_failure: Some(Box::new(exception.to_failure_details())),
            is_non_retriable: true,
            ..Default::default()
        },
    )
}

/// A batch that failed as a whole: no results, no actions, the state as it was.
pub(crate) fn batch_failure(
    request: &proto::EntityBatchRequest,
    details: proto::TaskFailureDetails,
) -> proto::EntityBatchResult {
    proto::EntityBatchResult {
        entity_state: request.entity_state.clone(),
        failure_details: Some(details),
        ..Default::default()
    }
}

/// A failure the handler reported itself, caused at some level by running out of memory: the extension aborts
/// the session so that the work runs again (`RemoteOrchestratorContext`, `IsCausedBy<OutOfMemoryException>`).
pub(crate) fn is_out_of_memory(details: &proto::TaskFailureDetails) -> bool {
    details.error_type == "System.OutOfMemoryException"
        || details
            .inner_failure
            .as_deref()
            .is_some_and(is_out_of_memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_lists_the_known_functions() {
        assert_eq!(
            function_not_found("Nope", "activity", &["B".into(), "A".into()]),
            "The function 'Nope' doesn't exist, is disabled, or is not an activity function. Additional info: \
             The following are the known activity functions: 'A', 'B'."
        );
        assert!(
            function_not_found("Nope", "orchestrator", &[])
                .ends_with("No orchestrator functions are currently registered!")
        );
    }

    #[test]
    fn a_failed_orchestration_has_an_output_and_no_details() {
        let response = orchestrator_invocation_failed(
            "i1",
            "Hello",
            &Exception::invocation_failed(
                "Hello",
                Exception::new("System.InvalidOperationException", "nope"),
            ),
        );
        let Some(OrchestratorActionType::CompleteOrchestration(complete)) =
            &response.actions[0].orchestrator_action_type
        else {
            panic!("no completion")
        };
        assert_eq!(complete.failure_details, None);
        let output: serde_json::Value =
            serde_json::from_str(complete.result.as_deref().unwrap()).unwrap();
        assert_eq!(
            output["message"],
            "Function 'Hello' failed with an unhandled exception."
        );
        assert!(
            output["details"]
                .as_str()
                .unwrap()
                .contains("\n ---> System.InvalidOperationException: nope")
        );
    }

    #[test]
    fn entity_failures_are_batch_failures() {
        let request = proto::EntityBatchRequest {
            instance_id: "@counter@k".into(),
            entity_state: Some("5".into()),
            ..Default::default()
        };
        let result = entity_invocation_failed(
            &request,
            "counter",
            &Exception::invocation_failed(
                "Counter",
                Exception::new("System.Net.Http.HttpRequestException", "bad"),
            ),
        );
        assert_eq!(result.entity_state.as_deref(), Some("5"));
        assert!(result.results.is_empty());
        let details = result.failure_details.unwrap();
        assert!(is_batch_failure(&details));
        assert_eq!(
            details.error_message,
            "Invocation of function 'counter' failed with an exception."
        );
        let out_of_memory = proto::TaskFailureDetails {
            error_type: "X".into(),
            inner_failure: Some(Box::new(proto::TaskFailureDetails {
                error_type: "System.OutOfMemoryException".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(is_out_of_memory(&out_of_memory));
        assert!(!is_out_of_memory(&details));
    }
}
