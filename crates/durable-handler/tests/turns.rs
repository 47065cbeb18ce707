//! An orchestration run turn by turn through the handler, exactly as the Functions host drives it: this test plays
//! the host and its extension (history bookkeeping, activity and entity dispatch, the legacy entity message shape)
//! and talks to the handler only over HTTP in the host's format.

mod common;
#[path = "common/greet_all.rs"]
mod greet_all;

use common::*;
use durable_core::EntityId;
use durable_core::proto::history_event::EventType;
use durable_core::proto::orchestrator_action::OrchestratorActionType;
use durable_core::proto::send_entity_message_action::EntityMessageType;
use durable_core::proto::{self, operation_result::ResultType};
use durable_handler::FunctionApp;
use serde_json::{Value, json};

/// Work the simulated extension owes the orchestration after a turn.
enum Pending {
    Activity {
        task_id: i32,
        name: String,
        input: Option<String>,
    },
    EntityCall {
        request_id: String,
        entity: String,
        operation: String,
        input: Option<String>,
    },
}

#[tokio::test]
async fn orchestration_runs_turn_by_turn_through_the_handler() {
    let server = Server::start(FunctionApp::new(greet_all::registry()).build().unwrap()).await;
    let instance = "turns-1";
    let mut past: Vec<proto::HistoryEvent> = Vec::new();
    let mut new_events = started("GreetAll", instance, Some(r#"["Tokyo","Seattle"]"#));
    let mut entity_state: Option<String> = None;
    let mut turns = 0;

    let output = loop {
        turns += 1;
        assert!(
            turns < 20,
            "the orchestration should finish in a handful of turns"
        );
        let request = proto::OrchestratorRequest {
            instance_id: instance.into(),
            past_events: past.clone(),
            new_events: new_events.clone(),
            ..Default::default()
        };
        let (status, reply) = server
            .invoke(
                "GreetAll",
                orchestrator_data(&request),
                json!({ "sys": sys("GreetAll") }),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        let response: proto::OrchestratorResponse = decode_return(&reply);

        past.append(&mut new_events);
        let mut pending = Vec::new();
        let mut completed = None;
        for action in response.actions {
            match action.orchestrator_action_type {
                Some(OrchestratorActionType::ScheduleTask(task)) => {
                    past.push(event(
                        action.id,
                        EventType::TaskScheduled(proto::TaskScheduledEvent {
                            name: task.name.clone(),
                            input: task.input.clone(),
                            ..Default::default()
                        }),
                    ));
                    pending.push(Pending::Activity {
                        task_id: action.id,
                        name: task.name,
                        input: task.input,
                    });
                }
                Some(OrchestratorActionType::SendEntityMessage(message)) => {
                    let Some(EntityMessageType::EntityOperationCalled(call)) =
                        message.entity_message_type
                    else {
                        panic!("only entity calls are expected here");
                    };
                    let target = call
                        .target_instance_id
                        .clone()
                        .expect("history shape names the target");
                    // The extension turns the entity message into a legacy SendEvent whose data is a RequestMessage.
                    let request_message = json!({
                        "op": call.operation, "signal": false, "input": call.input,
                        "id": call.request_id, "parent": instance,
                    });
                    past.push(event(
                        action.id,
                        EventType::EventSent(proto::EventSentEvent {
                            instance_id: target.clone(),
                            name: "op".into(),
                            input: Some(request_message.to_string()),
                        }),
                    ));
                    pending.push(Pending::EntityCall {
                        request_id: call.request_id,
                        entity: target,
                        operation: call.operation,
                        input: call.input,
                    });
                }
                Some(OrchestratorActionType::CompleteOrchestration(done)) => completed = Some(done),
                other => panic!("unexpected action {other:?}"),
            }
        }
        past.push(event(
            -1,
            EventType::OrchestratorCompleted(Default::default()),
        ));
        if let Some(done) = completed {
            assert_eq!(
                done.orchestration_status(),
                proto::OrchestrationStatus::Completed,
                "{done:?}"
            );
            break done.result.expect("a result");
        }

        new_events = vec![event(
            -1,
            EventType::OrchestratorStarted(Default::default()),
        )];
        for work in pending {
            match work {
                Pending::Activity {
                    task_id,
                    name,
                    input,
                } => {
                    let (data, metadata) = activity_body(instance, input.as_deref(), &name);
                    let (status, reply) = server.invoke(&name, data, metadata).await;
                    assert_eq!(
                        status, 200,
                        "activities answer 200 even when they fail: {reply}"
                    );
                    // The extension stores the ReturnValue, serialised as JSON text, as the task's result.
                    let result = match &reply["ReturnValue"] {
                        Value::Null => None,
                        value => Some(value.to_string()),
                    };
                    new_events.push(event(
                        -1,
                        EventType::TaskCompleted(proto::TaskCompletedEvent {
                            task_scheduled_id: task_id,
                            result,
                        }),
                    ));
                }
                Pending::EntityCall {
                    request_id,
                    entity,
                    operation,
                    input,
                } => {
                    let name = entity.parse::<EntityId>().unwrap().name;
                    let batch = proto::EntityBatchRequest {
                        instance_id: entity.clone(),
                        entity_state: entity_state.clone(),
                        operations: vec![proto::OperationRequest {
                            operation,
                            request_id: request_id.clone(),
                            input,
                            trace_context: None,
                        }],
                        ..Default::default()
                    };
                    let (status, reply) = server
                        .invoke(&name, entity_data(&batch), json!({ "sys": sys(&name) }))
                        .await;
                    assert_eq!(status, 200, "{reply}");
                    let result: proto::EntityBatchResult = decode_return(&reply);
                    entity_state = result.entity_state.clone();
                    let Some(ResultType::Success(success)) = &result.results[0].result_type else {
                        panic!("entity operation failed: {result:?}");
                    };
                    // The legacy answer: an event named by the request ID carrying a ResponseMessage.
                    let response_message = json!({ "result": success.result });
                    new_events.push(event(
                        -1,
                        EventType::EventRaised(proto::EventRaisedEvent {
                            name: request_id,
                            input: Some(response_message.to_string()),
                        }),
                    ));
                }
            }
        }
    };

    let output: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(
        output,
        json!({
            "greetings": ["Hello Tokyo!", "Hello Seattle!"],
            "caught": "EmptyCity: a city needs a name",
            "total": 2
        })
    );
    assert_eq!(entity_state.as_deref(), Some("2"));
    assert_eq!(
        turns, 5,
        "start, two greetings, the failing call, the entity call"
    );
    server.stop().await;
}
