//! Spans and rows built from hand-made histories.

use super::*;
use durable_grpc::proto;

fn at(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms / 1000,
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap(),
    })
}

fn event(id: i32, ms: i64, event_type: EventType) -> HistoryEvent {
    HistoryEvent {
        event_id: id,
        timestamp: at(ms),
        event_type: Some(event_type),
    }
}

const LIMITS: Limits = Limits {
    rows: 100,
    payload_chars: 8,
};

fn history() -> Vec<HistoryEvent> {
    vec![
        event(
            -1,
            1_000,
            EventType::OrchestratorStarted(Default::default()),
        ),
        event(
            -1,
            1_000,
            EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name: "Order".into(),
                input: Some("{\"items\":[1,2,3]}".into()),
                parent_instance: Some(proto::ParentInstanceInfo {
                    orchestration_instance: Some(proto::OrchestrationInstance {
                        instance_id: "parent-1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        ),
        event(
            0,
            1_001,
            EventType::TaskScheduled(proto::TaskScheduledEvent {
                name: "Charge".into(),
                ..Default::default()
            }),
        ),
        event(
            1,
            1_001,
            EventType::TimerCreated(proto::TimerCreatedEvent { fire_at: at(5_000) }),
        ),
        event(
            2,
            1_001,
            EventType::SubOrchestrationInstanceCreated(
                proto::SubOrchestrationInstanceCreatedEvent {
                    instance_id: "child-1".into(),
                    name: "Ship".into(),
                    ..Default::default()
                },
            ),
        ),
        event(
            -1,
            1_250,
            EventType::TaskFailed(proto::TaskFailedEvent {
                task_scheduled_id: 0,
                failure_details: Some(proto::TaskFailureDetails {
                    error_type: "CardDeclined".into(),
                    error_message: "no funds".into(),
                    inner_failure: Some(Box::new(proto::TaskFailureDetails {
                        error_type: "Http".into(),
                        error_message: "402".into(),
                        ..Default::default()
                    })),
                    ..Default::default()
                }),
            }),
        ),
        event(
            -1,
            2_000,
            EventType::EventRaised(proto::EventRaisedEvent {
                name: "Approval".into(),
                input: Some("true".into()),
            }),
        ),
        event(
            -1,
            3_000,
            EventType::SubOrchestrationInstanceCompleted(
                proto::SubOrchestrationInstanceCompletedEvent {
                    task_scheduled_id: 2,
                    result: Some("\"shipped\"".into()),
                },
            ),
        ),
    ]
}

#[test]
fn spans_run_from_their_start_to_the_event_that_ends_them() {
    let view = build(&history(), LIMITS);
    let spans = view["timeline"]["spans"].as_array().unwrap();
    let kinds: Vec<&str> = spans.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "orchestration",
            "activity",
            "timer",
            "suborchestration",
            "event"
        ]
    );
    let charge = &spans[1];
    assert_eq!(charge["name"], "Charge");
    assert_eq!(
        (charge["start"].as_i64(), charge["end"].as_i64()),
        (Some(1_001), Some(1_250))
    );
    assert_eq!(charge["status"], "failed");
    assert_eq!(charge["failure"]["inner"]["type"], "Http");
    let timer = &spans[2];
    assert_eq!(timer["status"], "waiting");
    assert!(timer["end"].is_null());
    assert_eq!(timer["plannedEnd"], 5_000);
    let ship = &spans[3];
    assert_eq!(ship["instanceId"], "child-1");
    assert_eq!(
        (ship["end"].as_i64(), ship["status"].as_str()),
        (Some(3_000), Some("completed"))
    );
    assert_eq!(spans[4]["start"], spans[4]["end"]);
    // Still running: the orchestration span has no end yet.
    assert!(spans[0]["end"].is_null());
    assert_eq!(view["timeline"]["start"], 1_000);
    assert_eq!(view["timeline"]["end"], 3_000);
    assert_eq!(view["parentInstanceId"], "parent-1");
    assert_eq!(view["children"][0]["instanceId"], "child-1");
    assert_eq!(view["children"][0]["status"], "completed");
}

#[test]
fn rows_name_their_task_and_cut_long_payloads() {
    let mut events = history();
    events.push(event(
        -1,
        4_000,
        EventType::ExecutionCompleted(proto::ExecutionCompletedEvent {
            orchestration_status: OrchestrationStatus::Completed as i32,
            result: Some("\"done\"".into()),
            failure_details: None,
        }),
    ));
    let view = build(&events, LIMITS);
    let rows = view["events"].as_array().unwrap();
    assert_eq!(rows.len(), events.len());
    assert_eq!(rows[1]["type"], "ExecutionStarted");
    assert_eq!(rows[1]["payload"], "{\"items\"");
    assert_eq!(rows[1]["payloadChars"], 17);
    assert_eq!(rows[5]["taskId"], 0);
    assert_eq!(rows[5]["failure"]["message"], "no funds");
    assert_eq!(rows[8]["status"], "Completed");
    assert!(rows[8].get("payloadChars").is_none());
    let spans = view["timeline"]["spans"].as_array().unwrap();
    assert_eq!(spans[0]["end"], 4_000);
    assert_eq!(spans[0]["status"], "completed");

    let few = build(&events, Limits { rows: 2, ..LIMITS });
    assert_eq!(few["events"].as_array().unwrap().len(), 2);
    assert_eq!(few["eventCount"], events.len());
}

#[test]
fn entity_calls_locks_and_suspensions_are_spans() {
    let events = vec![
        event(
            0,
            10,
            EventType::EntityLockRequested(proto::EntityLockRequestedEvent {
                critical_section_id: "cs".into(),
                lock_set: vec!["@a@1".into(), "@b@2".into()],
                ..Default::default()
            }),
        ),
        event(
            -1,
            20,
            EventType::EntityLockGranted(proto::EntityLockGrantedEvent {
                critical_section_id: "cs".into(),
            }),
        ),
        event(
            1,
            30,
            EventType::EntityOperationCalled(proto::EntityOperationCalledEvent {
                request_id: "r1".into(),
                operation: "add".into(),
                target_instance_id: Some("@a@1".into()),
                ..Default::default()
            }),
        ),
        event(-1, 35, EventType::ExecutionSuspended(Default::default())),
        event(-1, 45, EventType::ExecutionResumed(Default::default())),
        event(
            -1,
            50,
            EventType::EntityOperationCompleted(proto::EntityOperationCompletedEvent {
                request_id: "r1".into(),
                output: Some("5".into()),
            }),
        ),
    ];
    let view = build(&events, LIMITS);
    let spans = view["timeline"]["spans"].as_array().unwrap();
    let summary: Vec<(&str, &str, i64, i64)> = spans
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap(),
                s["start"].as_i64().unwrap(),
                s["end"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("lock", "@a@1, @b@2", 10, 20),
            ("entity", "add", 30, 50),
            ("suspended", "suspended", 35, 45)
        ]
    );
    assert_eq!(spans[1]["instanceId"], "@a@1");
}
