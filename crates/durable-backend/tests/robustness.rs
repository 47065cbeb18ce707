//! What a hostile or buggy peer can send: instance-ID cycles, absurd deadlines and chunked completions that never
//! end or come under the wrong token. The backend must answer each with a clear error or a clean failure of the work
//! item, and keep serving. (Completions that break the limits: `completion_limits.rs`.)

mod common;

use std::time::Duration;

use common::raw::{self, Client};
use common::work::*;
use durable_proto::history_event::EventType;
use durable_proto::*;
use tonic::Streaming;

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
    let options = common::memory().with_orchestration_lease(Duration::from_secs(1));
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
