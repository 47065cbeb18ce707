//! A minimal protocol-level worker and client helpers, for tests that must control every message.

use std::time::Duration;

use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use durable_proto::*;
use tonic::transport::Channel;

pub type Client = TaskHubSidecarServiceClient<Channel>;

pub async fn connect(endpoint: &str) -> Client {
    TaskHubSidecarServiceClient::connect(endpoint.to_owned())
        .await
        .expect("connects")
}

/// A request carrying the `taskhub` header.
pub fn on_hub<T>(hub: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("taskhub", hub.parse().unwrap());
    r
}

pub fn start_request(id: &str, name: &str, input: &str) -> CreateInstanceRequest {
    CreateInstanceRequest {
        instance_id: id.to_owned(),
        name: name.to_owned(),
        input: Some(input.to_owned()),
        ..Default::default()
    }
}

pub fn action(id: i32, kind: OrchestratorActionType) -> OrchestratorAction {
    OrchestratorAction {
        id,
        orchestrator_action_type: Some(kind),
    }
}

pub fn schedule(id: i32, name: &str, input: &str) -> OrchestratorAction {
    action(
        id,
        OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
            name: name.to_owned(),
            input: Some(input.to_owned()),
            ..Default::default()
        }),
    )
}

pub fn complete(id: i32, result: &str) -> OrchestratorAction {
    action(
        id,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::Completed as i32,
            result: Some(result.to_owned()),
            ..Default::default()
        }),
    )
}

/// The "double then nap" orchestration: activity `double(input)` (action 0), a timer of `nap` (action 1), then
/// complete with the activity's result (action 2). Returns only the actions not yet confirmed in history.
pub fn double_then_nap(request: &OrchestratorRequest, nap: Duration) -> Vec<OrchestratorAction> {
    let events = request.past_events.iter().chain(&request.new_events);
    let mut input = None;
    let mut scheduled = false;
    let mut result = None;
    let mut timer_created = false;
    let mut timer_fired = false;
    let mut now = None;
    for e in events {
        match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => input = s.input.clone(),
            Some(EventType::OrchestratorStarted(_)) => now = e.timestamp,
            Some(EventType::TaskScheduled(_)) => scheduled = true,
            Some(EventType::TaskCompleted(c)) => result = c.result.clone(),
            Some(EventType::TimerCreated(_)) => timer_created = true,
            Some(EventType::TimerFired(_)) => timer_fired = true,
            _ => {}
        }
    }
    let mut actions = Vec::new();
    if !scheduled {
        actions.push(schedule(0, "double", input.as_deref().unwrap_or("0")));
    }
    if let Some(result) = &result {
        if !timer_created {
            let now = now.unwrap_or_default();
            let nanos = i64::from(now.nanos) + i64::try_from(nap.as_nanos()).unwrap();
            let fire_at = prost_types::Timestamp {
                seconds: now.seconds + nanos / 1_000_000_000,
                nanos: (nanos % 1_000_000_000) as i32,
            };
            actions.push(action(
                1,
                OrchestratorActionType::CreateTimer(CreateTimerAction {
                    fire_at: Some(fire_at),
                }),
            ));
        }
        if timer_fired {
            actions.push(complete(2, result));
        }
    }
    actions
}

/// Runs one work item of the "double then nap" app and reports its completion. Errors are returned, not panics,
/// so callers can tolerate a backend that goes away.
pub async fn handle(
    client: &mut Client,
    item: WorkItem,
    nap: Duration,
) -> Result<(), tonic::Status> {
    match item.request {
        Some(work_item::Request::OrchestratorRequest(r)) => {
            let actions = double_then_nap(&r, nap);
            client
                .complete_orchestrator_task(OrchestratorResponse {
                    instance_id: r.instance_id,
                    actions,
                    completion_token: item.completion_token,
                    ..Default::default()
                })
                .await?;
        }
        Some(work_item::Request::ActivityRequest(a)) => {
            let n: i64 = a.input.as_deref().unwrap_or("0").parse().unwrap_or(0);
            client
                .complete_activity_task(ActivityResponse {
                    instance_id: a
                        .orchestration_instance
                        .map(|i| i.instance_id)
                        .unwrap_or_default(),
                    task_id: a.task_id,
                    result: Some((n * 2).to_string()),
                    completion_token: item.completion_token,
                    ..Default::default()
                })
                .await?;
        }
        _ => {}
    }
    Ok(())
}
