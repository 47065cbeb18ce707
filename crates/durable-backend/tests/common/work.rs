//! A protocol-level worker's moves for tests that drive work items by hand: open a stream, take the next item,
//! answer it, read the instance back, and check that a fresh orchestration still runs.

use std::time::Duration;

use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::*;
use tonic::Streaming;

use super::raw::{self, Client};

/// Generous bound for "this must arrive"; tests never wait for it to pass.
pub const ARRIVES: Duration = Duration::from_secs(20);

pub async fn stream(client: &mut Client, request: GetWorkItemsRequest) -> Streaming<WorkItem> {
    client
        .get_work_items(request)
        .await
        .expect("stream opens")
        .into_inner()
}

/// The next work item that is not a health ping.
pub async fn next(stream: &mut Streaming<WorkItem>) -> WorkItem {
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

pub fn orchestration(item: &WorkItem) -> &OrchestratorRequest {
    match &item.request {
        Some(work_item::Request::OrchestratorRequest(r)) => r,
        other => panic!("expected an orchestrator request, got {other:?}"),
    }
}

pub fn turn(item: &WorkItem, actions: Vec<OrchestratorAction>) -> OrchestratorResponse {
    OrchestratorResponse {
        instance_id: orchestration(item).instance_id.clone(),
        actions,
        completion_token: item.completion_token.clone(),
        ..Default::default()
    }
}

pub fn sub_orchestration(id: i32, child: &str) -> OrchestratorAction {
    raw::action(
        id,
        OrchestratorActionType::CreateSubOrchestration(CreateSubOrchestrationAction {
            instance_id: child.to_owned(),
            name: "o".into(),
            ..Default::default()
        }),
    )
}

pub fn finish(id: i32, status: OrchestrationStatus) -> OrchestratorAction {
    raw::action(
        id,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: status as i32,
            ..Default::default()
        }),
    )
}

pub async fn state(client: &mut Client, id: &str) -> Option<OrchestrationState> {
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

pub async fn status(client: &mut Client, id: &str) -> Option<OrchestrationStatus> {
    state(client, id)
        .await
        .map(|s| OrchestrationStatus::try_from(s.orchestration_status).unwrap())
}

pub fn has_event(events: &[HistoryEvent], wanted: fn(&EventType) -> bool) -> bool {
    events
        .iter()
        .any(|e| e.event_type.as_ref().is_some_and(wanted))
}

/// A fresh orchestration still runs to the end: the backend is alive and dispatching.
pub async fn fresh_orchestration_completes(client: &mut Client, id: &str) {
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
