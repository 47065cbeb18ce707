//! What a hostile or buggy peer can send: instance-ID cycles, absurd deadlines, chunked completions that never end,
//! and completions whose actions break the limits. The backend must answer each with a clear error or a clean
//! failure of the work item, and keep serving.

mod common;

use std::time::Duration;

use common::raw::{self, Client};
use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
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
