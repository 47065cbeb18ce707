//! What a hostile or buggy peer can send: instance-ID cycles, absurd deadlines, chunked completions that never end,
//! and completions whose actions break the limits. The backend must answer each with a clear error or a clean
//! failure of the work item, and keep serving.

mod common;

use std::time::Duration;

use common::raw::{self, Client};
use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::*;
use tonic::Streaming;

/// Generous bound for "this must arrive"; tests never wait for it to pass.
const ARRIVES: Duration = Duration::from_secs(20);

async fn stream(client: &mut Client, request: GetWorkItemsRequest) -> Streaming<WorkItem> {
    client
        .get_work_items(request)
        .await
        .expect("stream opens")
        .into_inner()
}

/// The next work item that is not a health ping.
async fn next(stream: &mut Streaming<WorkItem>) -> WorkItem {
    tokio::time::timeout(ARRIVES, async {
        loop {
            let item = stream
                .message()
                .await
                .expect("stream ok")
                .expect("stream open");
            if !matches!(item.request, Some(work_item::Request::HealthPing(_))) {
                return item;
            }
        }
    })
    .await
    .expect("a work item arrives")
}

fn orchestration(item: &WorkItem) -> &OrchestratorRequest {
    match &item.request {
        Some(work_item::Request::OrchestratorRequest(r)) => r,
        other => panic!("expected an orchestrator request, got {other:?}"),
    }
}

fn turn(item: &WorkItem, actions: Vec<OrchestratorAction>) -> OrchestratorResponse {
    OrchestratorResponse {
        instance_id: orchestration(item).instance_id.clone(),
        actions,
        completion_token: item.completion_token.clone(),
        ..Default::default()
    }
}

fn sub_orchestration(id: i32, child: &str) -> OrchestratorAction {
    raw::action(
        id,
        OrchestratorActionType::CreateSubOrchestration(CreateSubOrchestrationAction {
            instance_id: child.to_owned(),
            name: "o".into(),
            ..Default::default()
        }),
    )
}

fn finish(id: i32, status: OrchestrationStatus) -> OrchestratorAction {
    raw::action(
        id,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: status as i32,
            ..Default::default()
        }),
    )
}

async fn state(client: &mut Client, id: &str) -> Option<OrchestrationState> {
    client
        .get_instance(GetInstanceRequest {
            instance_id: id.into(),
            get_inputs_and_outputs: true,
        })
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
}

async fn status(client: &mut Client, id: &str) -> Option<OrchestrationStatus> {
    state(client, id)
        .await
        .map(|s| OrchestrationStatus::try_from(s.orchestration_status).unwrap())
}

fn has_event(events: &[HistoryEvent], wanted: fn(&EventType) -> bool) -> bool {
    events
        .iter()
        .any(|e| e.event_type.as_ref().is_some_and(wanted))
}

/// A fresh orchestration still runs to the end: the backend is alive and dispatching.
async fn fresh_orchestration_completes(client: &mut Client, id: &str) {
    client
        .start_instance(raw::start_request(id, "fresh", "1"))
        .await
        .unwrap();
    let only_fresh = GetWorkItemsRequest {
        work_item_filters: Some(WorkItemFilters {
            orchestrations: vec![OrchestrationFilter {
                name: "fresh".into(),
                versions: vec![],
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut s = stream(client, only_fresh).await;
    let item = next(&mut s).await;
    assert_eq!(orchestration(&item).instance_id, id);
    client
        .complete_orchestrator_task(turn(&item, vec![raw::complete(0, "\"fresh\"")]))
        .await
        .unwrap();
    assert_eq!(
        status(client, id).await,
        Some(OrchestrationStatus::Completed)
    );
}

/// Builds the cycle of the report: A starts child B and finishes; B then starts a child that reuses the ID "A",
/// so A's parent is B and B's parent is A. Returns the stream and A's new, still unanswered, work item.
async fn make_cycle(client: &mut Client) -> (Streaming<WorkItem>, WorkItem) {
    client
        .start_instance(raw::start_request("A", "o", "1"))
        .await
        .unwrap();
    let mut s = stream(client, GetWorkItemsRequest::default()).await;
    let a = next(&mut s).await;
    client
        .complete_orchestrator_task(turn(
            &a,
            vec![
                sub_orchestration(0, "B"),
                finish(1, OrchestrationStatus::Completed),
            ],
        ))
        .await
        .unwrap();
    let b = next(&mut s).await;
    assert_eq!(orchestration(&b).instance_id, "B");
    client
        .complete_orchestrator_task(turn(&b, vec![sub_orchestration(0, "A")]))
        .await
        .unwrap();
    let a_again = next(&mut s).await;
    assert_eq!(orchestration(&a_again).instance_id, "A");
    let a_state = state(client, "A").await.unwrap();
    assert_eq!(a_state.parent_instance_id.as_deref(), Some("B"));
    let b_state = state(client, "B").await.unwrap();
    assert_eq!(b_state.parent_instance_id.as_deref(), Some("A"));
    (s, a_again)
}

/// Answers every terminated instance's next turn with a terminated completion until `ids` are all terminated.
async fn finish_terminations(client: &mut Client, s: &mut Streaming<WorkItem>, ids: &[&str]) {
    for _ in 0..ids.len() * 3 {
        let mut done = true;
        for id in ids {
            if status(client, id).await != Some(OrchestrationStatus::Terminated) {
                done = false;
            }
        }
        if done {
            return;
        }
        let item = next(s).await;
        let request = orchestration(&item);
        let terminated = has_event(&request.new_events, |e| {
            matches!(e, EventType::ExecutionTerminated(_))
        });
        let actions = if terminated {
            vec![finish(99, OrchestrationStatus::Terminated)]
        } else {
            vec![]
        };
        client
            .complete_orchestrator_task(turn(&item, actions))
            .await
            .unwrap();
    }
    panic!("{ids:?} were not all terminated");
}

#[tokio::test]
async fn recursive_terminate_and_purge_survive_an_instance_id_cycle() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let (mut s, a) = make_cycle(&mut client).await;

    client
        .terminate_instance(TerminateRequest {
            instance_id: "A".into(),
            output: Some("\"stop\"".into()),
            recursive: true,
        })
        .await
        .expect("a recursive terminate over a cycle is answered");
    client.hello(()).await.expect("the backend is alive");

    client
        .complete_orchestrator_task(turn(&a, vec![]))
        .await
        .unwrap();
    finish_terminations(&mut client, &mut s, &["A", "B"]).await;

    let purged = client
        .purge_instances(PurgeInstancesRequest {
            request: Some(purge_instances_request::Request::InstanceId("A".into())),
            recursive: true,
            is_orchestration: true,
        })
        .await
        .expect("a recursive purge over a cycle is answered")
        .into_inner();
    assert_eq!(purged.deleted_instance_count, 2);
    assert_eq!(status(&mut client, "A").await, None);
    assert_eq!(status(&mut client, "B").await, None);
    drop(s);
    fresh_orchestration_completes(&mut client, "after-cycle").await;
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_database_that_holds_a_cycle_opens_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cycle.db");
    let backend = common::backend(common::memory().with_db_path(&file)).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let (s, _) = make_cycle(&mut client).await;
    drop(s);
    drop(client);
    backend.shutdown().await.unwrap();

    let backend = common::backend(common::memory().with_db_path(&file)).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client.hello(()).await.unwrap();
    client
        .terminate_instance(TerminateRequest {
            instance_id: "B".into(),
            output: None,
            recursive: true,
        })
        .await
        .expect("a recursive terminate over a stored cycle is answered");
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    finish_terminations(&mut client, &mut s, &["A", "B"]).await;
    drop(s);
    let purged = client
        .purge_instances(PurgeInstancesRequest {
            request: Some(purge_instances_request::Request::PurgeInstanceFilter(
                PurgeInstanceFilter::default(),
            )),
            recursive: true,
            is_orchestration: true,
        })
        .await
        .expect("a recursive purge by filter over a stored cycle is answered")
        .into_inner();
    assert_eq!(purged.deleted_instance_count, 2);
    fresh_orchestration_completes(&mut client, "after-reopen").await;
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn absurd_grpc_timeouts_are_refused_and_the_longest_valid_one_is_honoured() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    fresh_orchestration_completes(&mut client, "done").await;
    let wait = |timeout: &str| {
        let mut request = tonic::Request::new(GetInstanceRequest {
            instance_id: "done".into(),
            get_inputs_and_outputs: false,
        });
        request
            .metadata_mut()
            .insert("grpc-timeout", timeout.parse().unwrap());
        request
    };
    for absurd in ["18446744073709551615S", "999999999H", "12x", "S"] {
        let refused = client
            .wait_for_instance_completion(wait(absurd))
            .await
            .expect_err(absurd);
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{absurd}");
        assert!(
            refused.message().contains("grpc-timeout"),
            "{absurd}: {}",
            refused.message()
        );
        let refused = client
            .wait_for_instance_start(wait(absurd))
            .await
            .expect_err(absurd);
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{absurd}");
    }
    // The gRPC maximum, 99,999,999 hours: accepted, and the finished instance is returned at once.
    let done = client
        .wait_for_instance_completion(wait("99999999H"))
        .await
        .unwrap()
        .into_inner();
    assert!(done.exists);
    client.hello(()).await.unwrap();
    backend.shutdown().await.unwrap();
}

#[tokio::test]
#[allow(deprecated)]
async fn chunks_under_a_token_that_is_not_a_live_lease_are_refused() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let mut chunk = OrchestratorResponse {
        instance_id: "made-up".into(),
        completion_token: "not-a-lease".into(),
        actions: vec![raw::schedule(0, "a", "1")],
        is_partial: true,
        ..Default::default()
    };
    let refused = client
        .complete_orchestrator_task(chunk.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);

    // An activity's lease is live but is not an orchestrator turn: no chunks either.
    client
        .start_instance(raw::start_request("i", "o", "1"))
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    client
        .complete_orchestrator_task(turn(&item, vec![raw::schedule(0, "a", "1")]))
        .await
        .unwrap();
    let activity = next(&mut s).await;
    chunk.completion_token = activity.completion_token.clone();
    let refused = client.complete_orchestrator_task(chunk).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
#[allow(deprecated)]
async fn chunks_past_the_per_lease_bound_fail_the_turn_and_nothing_of_it_is_applied() {
    let options = common::memory().with_max_chunked_turn_bytes(64 * 1024);
    let backend = common::backend(options).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("chunky", "o", "1"))
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    let chunk = |id: i32| {
        let mut part = turn(&item, vec![raw::schedule(id, "a", &"x".repeat(40 * 1024))]);
        part.is_partial = true;
        part
    };
    client.complete_orchestrator_task(chunk(0)).await.unwrap();
    let refused = client
        .complete_orchestrator_task(chunk(1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("65536 bytes"),
        "{}",
        refused.message()
    );
    let failed = state(&mut client, "chunky").await.unwrap();
    assert_eq!(
        failed.orchestration_status,
        OrchestrationStatus::Failed as i32
    );
    assert_eq!(
        failed.failure_details.unwrap().error_type,
        "PayloadTooLarge"
    );
    // The turn is over: its last chunk finds no lease, and none of its actions ran.
    let last = turn(&item, vec![raw::complete(2, "\"x\"")]);
    assert_eq!(
        client
            .complete_orchestrator_task(last)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    let history = client
        .stream_instance_history(StreamInstanceHistoryRequest {
            instance_id: "chunky".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap()
        .events;
    assert!(!has_event(&history, |e| matches!(
        e,
        EventType::TaskScheduled(_)
    )));
    backend.shutdown().await.unwrap();
}

#[tokio::test]
#[allow(deprecated)]
async fn a_lapsed_lease_frees_its_slot_and_its_chunks() {
    let options = common::memory().with_orchestration_lease(Duration::from_millis(300));
    let backend = common::backend(options).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("slow", "o", "1"))
        .await
        .unwrap();
    let one = GetWorkItemsRequest {
        max_concurrent_orchestration_work_items: 1,
        ..Default::default()
    };
    let mut s = stream(&mut client, one).await;
    let held = next(&mut s).await;
    let mut part = turn(&held, vec![raw::schedule(0, "a", "1")]);
    part.is_partial = true;
    client.complete_orchestrator_task(part).await.unwrap();
    // The lease runs out while the stream stays open: its slot comes back, so the same stream gets the work again.
    let again = next(&mut s).await;
    assert_eq!(orchestration(&again).instance_id, "slow");
    assert_ne!(again.completion_token, held.completion_token);
    let late = turn(&held, vec![raw::complete(1, "\"late\"")]);
    assert_eq!(
        client
            .complete_orchestrator_task(late)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    client
        .complete_orchestrator_task(turn(&again, vec![raw::complete(1, "\"ok\"")]))
        .await
        .unwrap();
    let done = state(&mut client, "slow").await.unwrap();
    assert_eq!(done.output.as_deref(), Some("\"ok\""));
    backend.shutdown().await.unwrap();
}

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
