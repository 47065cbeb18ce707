//! Responses and errors in the shapes the extension produces (Azure/azure-functions-durable-extension
//! `src/WebJobs.Extensions.DurableTask/TaskHubGrpcServer.cs`, `ProtobufUtils.cs`, `DurableClient.cs`), from what
//! the backend answered.

use durable_proto as proto;
use proto::OrchestrationStatus;
use tonic::{Code, Status};

/// `CreateGetInstanceResponse`: the instance's ID, name, status and two timestamps; its input, output, custom
/// status and failure details (type, message and stack trace only) when asked for. Nothing else: no version,
/// execution ID, parent, tags, scheduled start or completion time.
pub(super) fn instance_response(
    response: proto::GetInstanceResponse,
    with_payloads: bool,
) -> proto::GetInstanceResponse {
    match response.orchestration_state.filter(|_| response.exists) {
        None => proto::GetInstanceResponse {
            exists: false,
            orchestration_state: None,
        },
        Some(state) => proto::GetInstanceResponse {
            exists: true,
            orchestration_state: Some(instance_state(state, with_payloads)),
        },
    }
}

fn instance_state(
    state: proto::OrchestrationState,
    with_payloads: bool,
) -> proto::OrchestrationState {
    let payload = |value: Option<String>| value.filter(|_| with_payloads);
    proto::OrchestrationState {
        instance_id: state.instance_id,
        name: state.name,
        orchestration_status: state.orchestration_status,
        created_timestamp: state.created_timestamp,
        last_updated_timestamp: state.last_updated_timestamp,
        input: payload(state.input),
        output: payload(state.output),
        custom_status: payload(state.custom_status),
        failure_details: state.failure_details.filter(|_| with_payloads).map(|f| {
            proto::TaskFailureDetails {
                error_type: f.error_type,
                error_message: f.error_message,
                stack_trace: f.stack_trace,
                ..Default::default()
            }
        }),
        ..Default::default()
    }
}

/// `ProtobufUtils.CreateQueryInstancesResponse`: ID, name, version, parent ID, input, output, scheduled start,
/// timestamps, status and custom status; no failure details, execution ID, completion time or tags. The query
/// excludes entities (`ExcludeEntities = true` in `ToOrchestrationQuery`).
pub(super) fn query_response(
    response: proto::QueryInstancesResponse,
) -> proto::QueryInstancesResponse {
    proto::QueryInstancesResponse {
        orchestration_state: response
            .orchestration_state
            .into_iter()
            .filter(|s| !s.instance_id.starts_with('@'))
            .map(|s| proto::OrchestrationState {
                instance_id: s.instance_id,
                name: s.name,
                version: s.version,
                parent_instance_id: s.parent_instance_id,
                input: s.input,
                output: s.output,
                scheduled_start_timestamp: s.scheduled_start_timestamp,
                created_timestamp: s.created_timestamp,
                last_updated_timestamp: s.last_updated_timestamp,
                orchestration_status: s.orchestration_status,
                custom_status: s.custom_status,
                ..Default::default()
            })
            .collect(),
        continuation_token: response.continuation_token,
    }
}

/// The .NET name of a status (`OrchestrationStatus.ToString()`), as the extension's messages print it.
pub(super) fn status_name(status: i32) -> &'static str {
    match OrchestrationStatus::try_from(status) {
        Ok(OrchestrationStatus::Running) => "Running",
        Ok(OrchestrationStatus::Completed) => "Completed",
        Ok(OrchestrationStatus::ContinuedAsNew) => "ContinuedAsNew",
        Ok(OrchestrationStatus::Failed) => "Failed",
        Ok(OrchestrationStatus::Canceled) => "Canceled",
        Ok(OrchestrationStatus::Terminated) => "Terminated",
        Ok(OrchestrationStatus::Pending) => "Pending",
        Ok(OrchestrationStatus::Suspended) => "Suspended",
        Err(_) => "Unknown",
    }
}

/// `DurableClient.IsOrchestrationRunning`: what can still take events and be terminated.
pub(super) fn is_running(status: i32) -> bool {
    matches!(
        OrchestrationStatus::try_from(status),
        Ok(OrchestrationStatus::Running
            | OrchestrationStatus::Suspended
            | OrchestrationStatus::Pending
            | OrchestrationStatus::ContinuedAsNew)
    )
}

/// `DurableClient.IsOrchestrationSuspendable`.
pub(super) fn is_suspendable(status: i32) -> bool {
    matches!(
        OrchestrationStatus::try_from(status),
        Ok(OrchestrationStatus::Running
            | OrchestrationStatus::Pending
            | OrchestrationStatus::ContinuedAsNew)
    )
}

/// The message of .NET's `ArgumentNullException(nameof(param))`.
pub(super) fn null_argument(param: &str) -> String {
    format!("Value cannot be null. (Parameter '{param}')")
}

/// The message of the `ArgumentException` `DurableClient.GetOrchestrationInstanceStateAsync` throws.
pub(super) fn no_instance(instance_id: &str) -> String {
    format!("No instance with ID '{instance_id}' was found. (Parameter 'instanceId')")
}

/// The status codes that leave the extension as they are: the caller went away or ran out of time, or the backend
/// is unavailable (its interceptor maps `OrchestrationServiceUnavailableException` to `UNAVAILABLE`).
pub(super) fn passes_through(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Cancelled | Code::DeadlineExceeded | Code::Unavailable
    )
}

/// A backend failure the extension does not catch: its exception interceptor answers `UNKNOWN`. Only the code and
/// message are kept, never the backend's metadata.
pub(super) fn unhandled(status: Status) -> Status {
    if passes_through(&status) {
        return Status::new(status.code(), status.message());
    }
    Status::unknown(status.message())
}

/// A backend failure inside a `catch (Exception ex)` that rethrows with `code` and `prefix + ex.Message`.
pub(super) fn caught(status: Status, code: Code, prefix: &str) -> Status {
    if passes_through(&status) {
        return Status::new(status.code(), status.message());
    }
    Status::new(code, format!("{prefix}{}", status.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_state(id: &str) -> proto::OrchestrationState {
        proto::OrchestrationState {
            instance_id: id.into(),
            name: "Orch".into(),
            version: Some("1.0".into()),
            orchestration_status: OrchestrationStatus::Failed as i32,
            scheduled_start_timestamp: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            created_timestamp: Some(prost_types::Timestamp {
                seconds: 2,
                nanos: 0,
            }),
            last_updated_timestamp: Some(prost_types::Timestamp {
                seconds: 3,
                nanos: 0,
            }),
            input: Some("\"in\"".into()),
            output: Some("\"out\"".into()),
            custom_status: Some("\"cs\"".into()),
            failure_details: Some(proto::TaskFailureDetails {
                error_type: "E".into(),
                error_message: "m".into(),
                stack_trace: Some("at x".into()),
                inner_failure: Some(Box::new(proto::TaskFailureDetails::default())),
                is_non_retriable: true,
                ..Default::default()
            }),
            execution_id: Some("exec".into()),
            completed_timestamp: Some(prost_types::Timestamp {
                seconds: 4,
                nanos: 0,
            }),
            parent_instance_id: Some("parent".into()),
            tags: [("k".to_owned(), "v".to_owned())].into(),
        }
    }

    #[test]
    fn instance_state_keeps_only_what_the_extension_copies() {
        let response = proto::GetInstanceResponse {
            exists: true,
            orchestration_state: Some(full_state("a")),
        };
        let shaped = instance_response(response.clone(), true)
            .orchestration_state
            .unwrap();
        let expected = proto::OrchestrationState {
            instance_id: "a".into(),
            name: "Orch".into(),
            orchestration_status: OrchestrationStatus::Failed as i32,
            created_timestamp: Some(prost_types::Timestamp {
                seconds: 2,
                nanos: 0,
            }),
            last_updated_timestamp: Some(prost_types::Timestamp {
                seconds: 3,
                nanos: 0,
            }),
            input: Some("\"in\"".into()),
            output: Some("\"out\"".into()),
            custom_status: Some("\"cs\"".into()),
            failure_details: Some(proto::TaskFailureDetails {
                error_type: "E".into(),
                error_message: "m".into(),
                stack_trace: Some("at x".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(shaped, expected);
        let bare = instance_response(response, false)
            .orchestration_state
            .unwrap();
        assert_eq!(
            bare,
            proto::OrchestrationState {
                input: None,
                output: None,
                custom_status: None,
                failure_details: None,
                ..expected
            }
        );
        let missing = instance_response(
            proto::GetInstanceResponse {
                exists: false,
                orchestration_state: Some(full_state("ghost")),
            },
            true,
        );
        assert_eq!(missing, proto::GetInstanceResponse::default());
    }

    #[test]
    fn query_states_drop_entities_and_what_the_extension_does_not_copy() {
        let response = proto::QueryInstancesResponse {
            orchestration_state: vec![full_state("a"), full_state("@counter@x")],
            continuation_token: Some("next".into()),
        };
        let shaped = query_response(response);
        assert_eq!(shaped.continuation_token.as_deref(), Some("next"));
        let [state] = shaped.orchestration_state.as_slice() else {
            panic!("one orchestration expected: {shaped:?}")
        };
        let full = full_state("a");
        assert_eq!(
            *state,
            proto::OrchestrationState {
                failure_details: None,
                execution_id: None,
                completed_timestamp: None,
                tags: Default::default(),
                ..full
            }
        );
    }

    #[test]
    fn errors_keep_cancellation_and_unavailability() {
        assert_eq!(unhandled(Status::not_found("x")).code(), Code::Unknown);
        assert_eq!(
            unhandled(Status::unavailable("x")).code(),
            Code::Unavailable
        );
        let caught = caught(Status::invalid_argument("boom"), Code::Internal, "Failed: ");
        assert_eq!(caught.code(), Code::Internal);
        assert_eq!(caught.message(), "Failed: boom");
        assert_eq!(
            status_name(OrchestrationStatus::ContinuedAsNew as i32),
            "ContinuedAsNew"
        );
        assert!(is_running(OrchestrationStatus::Suspended as i32));
        assert!(!is_suspendable(OrchestrationStatus::Suspended as i32));
    }
}
