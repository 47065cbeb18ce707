//! Sending one request and judging the answer, and answering work items as a worker would.

use std::time::Duration;

use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::*;
use proptest::test_runner::TestCaseError;
use tonic::{Code, Streaming};

use super::strategies::{ActionSpec, Reply};
use super::{CALL, Client};

pub(crate) fn on_hub<T>(hub: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("taskhub", hub.parse().expect("fuzz hub names are ASCII"));
    request
}

/// Bounds a call and judges its outcome: any answer or refusal is fine, a hang or an internal error is not.
pub(crate) async fn call<T>(
    what: &str,
    future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    also_fine: &[Code],
) -> Result<Option<T>, TestCaseError> {
    match tokio::time::timeout(CALL, future).await {
        Err(_) => Err(TestCaseError::fail(format!(
            "{what} did not answer within {CALL:?}"
        ))),
        Ok(Ok(response)) => Ok(Some(response.into_inner())),
        Ok(Err(status)) => {
            let fine = matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::NotFound
                    | Code::AlreadyExists
                    | Code::FailedPrecondition
                    | Code::ResourceExhausted
            ) || also_fine.contains(&status.code());
            if fine {
                Ok(None)
            } else {
                Err(TestCaseError::fail(format!(
                    "{what} failed with {status:?}"
                )))
            }
        }
    }
}

/// The next work item within `wait`, pings skipped; `None` when nothing came.
pub(crate) async fn next_item(
    stream: &mut Streaming<WorkItem>,
    wait: Duration,
) -> Result<Option<WorkItem>, TestCaseError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) => return Ok(None),
            Ok(Ok(Some(item))) => {
                if !matches!(item.request, Some(work_item::Request::HealthPing(_))) {
                    return Ok(Some(item));
                }
            }
            Ok(Ok(None)) => return Err(TestCaseError::fail("the work-item stream ended")),
            Ok(Err(status)) => {
                return Err(TestCaseError::fail(format!(
                    "the work-item stream failed: {status:?}"
                )));
            }
        }
    }
}

pub(crate) fn to_action(id: i32, spec: &ActionSpec) -> OrchestratorAction {
    let kind = match spec.clone() {
        ActionSpec::Schedule(name, input) => {
            OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
                name,
                input,
                ..ScheduleTaskAction::default()
            })
        }
        ActionSpec::Sub(instance_id, input) => {
            OrchestratorActionType::CreateSubOrchestration(CreateSubOrchestrationAction {
                instance_id,
                name: "o".into(),
                input,
                ..CreateSubOrchestrationAction::default()
            })
        }
        ActionSpec::Timer(at) => {
            OrchestratorActionType::CreateTimer(CreateTimerAction { fire_at: Some(at) })
        }
        ActionSpec::Send(target, data) => OrchestratorActionType::SendEvent(SendEventAction {
            instance: Some(OrchestrationInstance {
                instance_id: target,
                execution_id: None,
            }),
            name: "e".into(),
            data,
        }),
        ActionSpec::Complete {
            status,
            result,
            failure,
            carried,
        } => OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: status,
            result,
            failure_details: failure,
            carryover_events: carried,
            ..CompleteOrchestrationAction::default()
        }),
        ActionSpec::Terminate(instance_id, reason, recurse) => {
            OrchestratorActionType::TerminateOrchestration(TerminateOrchestrationAction {
                instance_id,
                reason,
                recurse,
            })
        }
        ActionSpec::Entity {
            kind,
            target,
            input,
            lock_set,
            position,
        } => {
            let message = match kind {
                0 | 1 => EntityMessageType::EntityOperationSignaled(EntityOperationSignaledEvent {
                    request_id: format!("r{id}"),
                    operation: "op".into(),
                    input,
                    target_instance_id: Some(target),
                    ..EntityOperationSignaledEvent::default()
                }),
                2 => EntityMessageType::EntityOperationCalled(EntityOperationCalledEvent {
                    request_id: format!("r{id}"),
                    operation: "op".into(),
                    input,
                    target_instance_id: Some(target),
                    ..EntityOperationCalledEvent::default()
                }),
                3 => EntityMessageType::EntityLockRequested(EntityLockRequestedEvent {
                    critical_section_id: format!("cs{id}"),
                    lock_set,
                    position,
                    parent_instance_id: None,
                }),
                _ => EntityMessageType::EntityUnlockSent(EntityUnlockSentEvent {
                    critical_section_id: format!("cs{id}"),
                    target_instance_id: Some(target),
                    parent_instance_id: None,
                }),
            };
            OrchestratorActionType::SendEntityMessage(SendEntityMessageAction {
                entity_message_type: Some(message),
            })
        }
        ActionSpec::Rewind(new_history) => {
            OrchestratorActionType::RewindOrchestration(RewindOrchestrationAction { new_history })
        }
    };
    OrchestratorAction {
        id,
        orchestrator_action_type: Some(kind),
    }
}

/// Answers one work item as `reply` says. Items a reply keeps are released when the case's stream closes.
#[allow(deprecated)]
pub(crate) async fn answer(
    client: &mut Client,
    hub: &str,
    item: WorkItem,
    reply: &Reply,
) -> Result<(), TestCaseError> {
    let token = item.completion_token.clone();
    let abandon = reply.mode == 6;
    if reply.mode == 7 {
        return Ok(());
    }
    match item.request {
        Some(work_item::Request::OrchestratorRequest(_)) if abandon => {
            let request = AbandonOrchestrationTaskRequest {
                completion_token: token,
            };
            call(
                "abandon orchestration",
                client.abandon_task_orchestrator_work_item(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Some(work_item::Request::OrchestratorRequest(r)) => {
            let actions: Vec<OrchestratorAction> = reply
                .actions
                .iter()
                .enumerate()
                .map(|(n, spec)| to_action(i32::try_from(n).unwrap_or(0), spec))
                .collect();
            let parts = usize::from(reply.chunks) + 1;
            let per_part = actions.len().div_ceil(parts).max(1);
            let mut chunks: Vec<Vec<OrchestratorAction>> =
                actions.chunks(per_part).map(<[_]>::to_vec).collect();
            chunks.resize(parts.max(chunks.len()), Vec::new());
            let last = chunks.len() - 1;
            for (n, chunk) in chunks.into_iter().enumerate() {
                let response = OrchestratorResponse {
                    instance_id: r.instance_id.clone(),
                    actions: chunk,
                    custom_status: reply.payload.clone().filter(|_| n == last),
                    completion_token: token.clone(),
                    is_partial: n != last,
                    chunk_index: Some(i32::try_from(n).unwrap_or(0)),
                    ..OrchestratorResponse::default()
                };
                call(
                    "complete orchestration",
                    client.complete_orchestrator_task(on_hub(hub, response)),
                    &[],
                )
                .await?;
            }
        }
        Some(work_item::Request::ActivityRequest(_)) if abandon => {
            let request = AbandonActivityTaskRequest {
                completion_token: token,
            };
            call(
                "abandon activity",
                client.abandon_task_activity_work_item(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Some(work_item::Request::ActivityRequest(a)) => {
            let response = ActivityResponse {
                instance_id: a
                    .orchestration_instance
                    .map(|i| i.instance_id)
                    .unwrap_or_default(),
                task_id: a.task_id,
                result: reply.payload.clone(),
                failure_details: reply.failure.clone().filter(|_| reply.mode % 2 == 1),
                completion_token: token,
            };
            call(
                "complete activity",
                client.complete_activity_task(on_hub(hub, response)),
                &[],
            )
            .await?;
        }
        Some(work_item::Request::EntityRequest(_) | work_item::Request::EntityRequestV2(_))
            if abandon =>
        {
            let request = AbandonEntityTaskRequest {
                completion_token: token,
            };
            call(
                "abandon entity",
                client.abandon_task_entity_work_item(on_hub(hub, request)),
                &[],
            )
            .await?;
        }
        Some(work_item::Request::EntityRequest(_) | work_item::Request::EntityRequestV2(_)) => {
            let results = (0..reply.results)
                .map(|n| OperationResult {
                    result_type: Some(if n % 2 == 0 {
                        operation_result::ResultType::Success(OperationResultSuccess {
                            result: reply.payload.clone(),
                            ..OperationResultSuccess::default()
                        })
                    } else {
                        operation_result::ResultType::Failure(OperationResultFailure {
                            failure_details: reply.failure.clone(),
                            ..OperationResultFailure::default()
                        })
                    }),
                })
                .collect();
            let actions = reply
                .entity_actions
                .iter()
                .enumerate()
                .map(|(n, (start, target, input))| OperationAction {
                    id: i32::try_from(n).unwrap_or(0),
                    operation_action_type: Some(if *start {
                        operation_action::OperationActionType::StartNewOrchestration(
                            StartNewOrchestrationAction {
                                instance_id: target.clone(),
                                name: "o".into(),
                                input: input.clone(),
                                ..StartNewOrchestrationAction::default()
                            },
                        )
                    } else {
                        operation_action::OperationActionType::SendSignal(SendSignalAction {
                            instance_id: target.clone(),
                            name: "op".into(),
                            input: input.clone(),
                            ..SendSignalAction::default()
                        })
                    }),
                })
                .collect();
            let response = EntityBatchResult {
                results,
                actions,
                entity_state: reply.payload.clone(),
                failure_details: reply.failure.clone().filter(|_| reply.mode == 5),
                completion_token: token,
                ..EntityBatchResult::default()
            };
            call(
                "complete entity batch",
                client.complete_entity_task(on_hub(hub, response)),
                &[],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

pub(crate) fn query(
    prefix: Option<String>,
    page: i32,
    continuation: Option<String>,
    statuses: Vec<i32>,
) -> InstanceQuery {
    InstanceQuery {
        runtime_status: statuses,
        max_instance_count: page,
        continuation_token: continuation,
        instance_id_prefix: prefix,
        fetch_inputs_and_outputs: true,
        ..InstanceQuery::default()
    }
}
