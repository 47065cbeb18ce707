//! Completions and client requests that break the limits: every ID and payload a worker's completion carries is held
//! to the same rules as a client's request, with the same messages, and a completion that breaks one fails its work
//! item as a whole without applying anything else of it.

mod common;

use common::raw::{self, Client};
use common::work::*;
use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::*;

/// Runs one turn of a fresh instance `id` with `actions` and returns the instance's state afterwards.
async fn one_turn(
    client: &mut Client,
    id: &str,
    actions: Vec<OrchestratorAction>,
) -> OrchestrationState {
    client
        .start_instance(raw::start_request(id, id, "1"))
        .await
        .unwrap();
    let only_this = GetWorkItemsRequest {
        work_item_filters: Some(WorkItemFilters {
            orchestrations: vec![OrchestrationFilter {
                name: id.into(),
                versions: vec![],
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut s = stream(client, only_this).await;
    let item = next(&mut s).await;
    client
        .complete_orchestrator_task(turn(&item, actions))
        .await
        .expect("a bad turn is answered, not refused");
    state(client, id).await.unwrap()
}

fn assert_failed_with(state: &OrchestrationState, error_type: &str, message: &str) {
    assert_eq!(
        state.orchestration_status,
        OrchestrationStatus::Failed as i32,
        "{state:?}"
    );
    let failure = state.failure_details.as_ref().unwrap();
    assert_eq!(failure.error_type, error_type, "{failure:?}");
    assert!(
        failure.error_message.contains(message),
        "{:?} does not contain {message:?}",
        failure.error_message
    );
}

#[tokio::test]
async fn every_payload_of_a_turn_is_held_to_the_limit_and_a_bad_turn_changes_nothing_else() {
    let options = common::memory().with_max_payload_bytes(1000);
    let backend = common::backend(options).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let big = "x".repeat(1001);
    client
        .start_instance(raw::start_request("victim", "victim", "1"))
        .await
        .unwrap();

    // Each bad action comes after a good one: the good one must not happen either.
    let signal = raw::action(
        1,
        OrchestratorActionType::SendEntityMessage(SendEntityMessageAction {
            entity_message_type: Some(EntityMessageType::EntityOperationSignaled(
                EntityOperationSignaledEvent {
                    request_id: "r".into(),
                    operation: "add".into(),
                    input: Some(big.clone()),
                    target_instance_id: Some("@counter@big".into()),
                    ..Default::default()
                },
            )),
        }),
    );
    let failed = one_turn(
        &mut client,
        "entity-input",
        vec![raw::schedule(0, "a", "1"), signal],
    )
    .await;
    assert_failed_with(
        &failed,
        "PayloadTooLarge",
        "1001 bytes; the payload limit is 1000 bytes",
    );
    let entity = client
        .get_entity(GetEntityRequest {
            instance_id: "@counter@big".into(),
            include_state: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!entity.exists, "the signal was not sent");

    let terminate = raw::action(
        1,
        OrchestratorActionType::TerminateOrchestration(TerminateOrchestrationAction {
            instance_id: "victim".into(),
            reason: Some(big.clone()),
            recurse: false,
        }),
    );
    let failed = one_turn(
        &mut client,
        "terminate-reason",
        vec![raw::schedule(0, "a", "1"), terminate],
    )
    .await;
    assert_failed_with(&failed, "PayloadTooLarge", "1001 bytes");
    assert_ne!(
        status(&mut client, "victim").await,
        Some(OrchestrationStatus::Terminated)
    );

    let continue_as_new = raw::action(
        1,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::ContinuedAsNew as i32,
            result: Some("2".into()),
            carryover_events: vec![HistoryEvent {
                event_id: -1,
                timestamp: None,
                event_type: Some(EventType::EventRaised(EventRaisedEvent {
                    name: "e".into(),
                    input: Some(big.clone()),
                })),
            }],
            ..Default::default()
        }),
    );
    let failed = one_turn(&mut client, "carry-over", vec![continue_as_new]).await;
    assert_failed_with(&failed, "PayloadTooLarge", "1001 bytes");
    assert_eq!(failed.input.as_deref(), Some("1"), "no new generation");
    client.hello(()).await.unwrap();
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn child_ids_and_event_targets_are_validated_like_client_ids() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let long = "c".repeat(101);
    let hostile: [(&str, &str); 4] = [
        ("@counter@x", "may not start with '@'"),
        ("tab\there", "printable ASCII"),
        ("caf\u{e9}", "printable ASCII"),
        (&long, "101 characters long; the limit is 100"),
    ];
    for (n, (child, message)) in hostile.iter().enumerate() {
        let id = format!("parent-{n}");
        let failed = one_turn(
            &mut client,
            &id,
            vec![raw::schedule(0, "a", "1"), sub_orchestration(1, child)],
        )
        .await;
        assert_failed_with(&failed, "InvalidAction", message);
        assert!(
            failed
                .failure_details
                .unwrap()
                .error_message
                .contains("sub-orchestration")
        );
        assert_eq!(status(&mut client, child).await, None, "no child {child:?}");

        let id = format!("sender-{n}");
        let send = raw::action(
            1,
            OrchestratorActionType::SendEvent(SendEventAction {
                instance: Some(OrchestrationInstance {
                    instance_id: (*child).to_owned(),
                    execution_id: None,
                }),
                name: "e".into(),
                data: None,
            }),
        );
        let failed = one_turn(&mut client, &id, vec![raw::schedule(0, "a", "1"), send]).await;
        assert_failed_with(&failed, "InvalidAction", message);
    }
    // A generated child ID must fit as well: a 97-character parent would make a 102-character child.
    let parent = "p".repeat(97);
    let failed = one_turn(&mut client, &parent, vec![sub_orchestration(0, "")]).await;
    assert_failed_with(&failed, "InvalidAction", "the limit is 100");
    fresh_orchestration_completes(&mut client, "still-fine").await;
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_entity_batch_fails_as_a_whole_and_keeps_the_old_state() {
    let options = common::memory().with_max_payload_bytes(1000);
    let backend = common::backend(options).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let bad_actions: Vec<(OperationAction, &str)> = vec![
        (
            OperationAction {
                id: 0,
                operation_action_type: Some(operation_action::OperationActionType::SendSignal(
                    SendSignalAction {
                        instance_id: "@other@k".into(),
                        name: "op".into(),
                        input: Some("x".repeat(1001)),
                        ..Default::default()
                    },
                )),
            },
            "1001 bytes",
        ),
        (
            OperationAction {
                id: 0,
                operation_action_type: Some(operation_action::OperationActionType::SendSignal(
                    SendSignalAction {
                        instance_id: "not-an-entity".into(),
                        name: "op".into(),
                        ..Default::default()
                    },
                )),
            },
            "not an entity ID",
        ),
        (
            OperationAction {
                id: 0,
                operation_action_type: Some(
                    operation_action::OperationActionType::StartNewOrchestration(
                        StartNewOrchestrationAction {
                            instance_id: "@not@allowed".into(),
                            name: "o".into(),
                            ..Default::default()
                        },
                    ),
                ),
            },
            "may not start with '@'",
        ),
    ];
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    for (n, (action, message)) in bad_actions.into_iter().enumerate() {
        let entity = format!("@counter@{n}");
        client
            .signal_entity(SignalEntityRequest {
                instance_id: entity.clone(),
                name: "set".into(),
                input: Some("1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let first = next(&mut s).await;
        client
            .complete_entity_task(EntityBatchResult {
                results: vec![OperationResult {
                    result_type: Some(operation_result::ResultType::Success(
                        OperationResultSuccess::default(),
                    )),
                }],
                entity_state: Some("1".into()),
                completion_token: first.completion_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        client
            .signal_entity(SignalEntityRequest {
                instance_id: entity.clone(),
                name: "set".into(),
                input: Some("2".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let second = next(&mut s).await;
        client
            .complete_entity_task(EntityBatchResult {
                results: vec![OperationResult {
                    result_type: Some(operation_result::ResultType::Success(
                        OperationResultSuccess::default(),
                    )),
                }],
                actions: vec![action],
                entity_state: Some("2".into()),
                completion_token: second.completion_token.clone(),
                ..Default::default()
            })
            .await
            .expect("a bad batch is answered, not refused");
        let kept = client
            .get_entity(GetEntityRequest {
                instance_id: entity.clone(),
                include_state: true,
            })
            .await
            .unwrap()
            .into_inner()
            .entity
            .unwrap();
        assert_eq!(kept.serialized_state.as_deref(), Some("1"), "{message}");
        for absent in ["@other@k", "@not@allowed"] {
            let other = client
                .get_entity(GetEntityRequest {
                    instance_id: absent.into(),
                    include_state: false,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(!other.exists, "{message}");
        }
    }
    assert_eq!(status(&mut client, "@not@allowed").await, None);
    client.hello(()).await.unwrap();
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_reasons_and_batch_terminations_are_held_to_the_limits() {
    let options = common::memory().with_max_payload_bytes(1000);
    let backend = common::backend(options).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("i", "o", "1"))
        .await
        .unwrap();
    let big = Some("x".repeat(1001));
    let refused = [
        client
            .suspend_instance(SuspendRequest {
                instance_id: "i".into(),
                reason: big.clone(),
            })
            .await
            .unwrap_err(),
        client
            .resume_instance(ResumeRequest {
                instance_id: "i".into(),
                reason: big.clone(),
            })
            .await
            .unwrap_err(),
        client
            .rewind_instance(RewindInstanceRequest {
                instance_id: "i".into(),
                reason: big.clone(),
            })
            .await
            .unwrap_err(),
        client
            .skip_graceful_orchestration_terminations(
                SkipGracefulOrchestrationTerminationsRequest {
                    instance_batch: Some(InstanceBatch {
                        instance_ids: vec!["i".into()],
                    }),
                    reason: big.clone(),
                },
            )
            .await
            .unwrap_err(),
    ];
    for status in refused {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status
                .message()
                .contains("1001 bytes; the payload limit is 1000 bytes"),
            "{}",
            status.message()
        );
    }
    let skipped = client
        .skip_graceful_orchestration_terminations(SkipGracefulOrchestrationTerminationsRequest {
            instance_batch: Some(InstanceBatch {
                instance_ids: vec!["@bad".into()],
            }),
            reason: None,
        })
        .await
        .unwrap_err();
    assert_eq!(skipped.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status(&mut client, "i").await,
        Some(OrchestrationStatus::Pending)
    );
    backend.shutdown().await.unwrap();
}
