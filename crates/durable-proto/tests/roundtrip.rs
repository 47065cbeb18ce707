//! Every HistoryEvent kind and OrchestratorAction kind survives encode + decode unchanged, and a few wire details
//! that other SDKs depend on hold (field numbers of the oneof members, wrappers keeping "absent" apart from "").

use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::*;
use prost::Message;

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds,
        nanos: 123,
    })
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn failure() -> Option<TaskFailureDetails> {
    Some(TaskFailureDetails {
        error_type: "E".into(),
        error_message: "m".into(),
        stack_trace: s("at x"),
        inner_failure: Some(Box::new(TaskFailureDetails {
            error_type: "I".into(),
            ..Default::default()
        })),
        is_non_retriable: true,
        properties: Default::default(),
    })
}

fn instance() -> Option<OrchestrationInstance> {
    Some(OrchestrationInstance {
        instance_id: "i".into(),
        execution_id: s("x"),
    })
}

fn trace() -> Option<TraceContext> {
    Some(TraceContext {
        trace_parent: "00-abc-def-01".into(),
        trace_state: s("k=v"),
        ..Default::default()
    })
}

fn event_types() -> Vec<EventType> {
    vec![
        EventType::ExecutionStarted(ExecutionStartedEvent {
            name: "o".into(),
            version: s("1"),
            input: s("{}"),
            orchestration_instance: instance(),
            parent_instance: Some(ParentInstanceInfo {
                task_scheduled_id: 3,
                name: s("p"),
                version: s("2"),
                orchestration_instance: instance(),
            }),
            scheduled_start_timestamp: ts(5),
            parent_trace_context: trace(),
            orchestration_span_id: s("span"),
            tags: [("a".to_string(), "b".to_string())].into(),
        }),
        EventType::ExecutionCompleted(ExecutionCompletedEvent {
            orchestration_status: OrchestrationStatus::Failed as i32,
            result: s("1"),
            failure_details: failure(),
        }),
        EventType::ExecutionTerminated(ExecutionTerminatedEvent {
            input: s("\"bye\""),
            recurse: true,
        }),
        EventType::TaskScheduled(TaskScheduledEvent {
            name: "a".into(),
            version: s("1"),
            input: s("1"),
            parent_trace_context: trace(),
            tags: [("t".to_string(), "v".to_string())].into(),
        }),
        EventType::TaskCompleted(TaskCompletedEvent {
            task_scheduled_id: 4,
            result: s("2"),
        }),
        EventType::TaskFailed(TaskFailedEvent {
            task_scheduled_id: 4,
            failure_details: failure(),
        }),
        EventType::SubOrchestrationInstanceCreated(SubOrchestrationInstanceCreatedEvent {
            instance_id: "c".into(),
            name: "child".into(),
            version: s("1"),
            input: s("3"),
            parent_trace_context: trace(),
            tags: Default::default(),
        }),
        EventType::SubOrchestrationInstanceCompleted(SubOrchestrationInstanceCompletedEvent {
            task_scheduled_id: 5,
            result: s("4"),
        }),
        EventType::SubOrchestrationInstanceFailed(SubOrchestrationInstanceFailedEvent {
            task_scheduled_id: 5,
            failure_details: failure(),
        }),
        EventType::TimerCreated(TimerCreatedEvent { fire_at: ts(9) }),
        EventType::TimerFired(TimerFiredEvent {
            fire_at: ts(9),
            timer_id: 6,
        }),
        EventType::OrchestratorStarted(OrchestratorStartedEvent::default()),
        EventType::OrchestratorCompleted(OrchestratorCompletedEvent::default()),
        EventType::EventSent(EventSentEvent {
            instance_id: "other".into(),
            name: "n".into(),
            input: s("5"),
        }),
        EventType::EventRaised(EventRaisedEvent {
            name: "n".into(),
            input: s(""),
        }),
        EventType::GenericEvent(GenericEvent { data: s("d") }),
        EventType::HistoryState(HistoryStateEvent {
            orchestration_state: Some(OrchestrationState {
                instance_id: "i".into(),
                name: "o".into(),
                orchestration_status: OrchestrationStatus::Running as i32,
                custom_status: s("\"busy\""),
                tags: [("a".to_string(), "b".to_string())].into(),
                ..Default::default()
            }),
        }),
        EventType::ContinueAsNew(ContinueAsNewEvent { input: s("6") }),
        EventType::ExecutionSuspended(ExecutionSuspendedEvent { input: s("why") }),
        EventType::ExecutionResumed(ExecutionResumedEvent { input: None }),
        EventType::EntityOperationSignaled(EntityOperationSignaledEvent {
            request_id: "r".into(),
            operation: "op".into(),
            scheduled_time: ts(10),
            input: s("7"),
            target_instance_id: s("@e@k"),
        }),
        EventType::EntityOperationCalled(EntityOperationCalledEvent {
            request_id: "r".into(),
            operation: "op".into(),
            scheduled_time: ts(10),
            input: s("7"),
            parent_instance_id: s("i"),
            parent_execution_id: s("x"),
            target_instance_id: s("@e@k"),
        }),
        EventType::EntityOperationCompleted(EntityOperationCompletedEvent {
            request_id: "r".into(),
            output: s("8"),
        }),
        EventType::EntityOperationFailed(EntityOperationFailedEvent {
            request_id: "r".into(),
            failure_details: failure(),
        }),
        EventType::EntityLockRequested(EntityLockRequestedEvent {
            critical_section_id: "cs".into(),
            lock_set: vec!["@a@1".into(), "@b@2".into()],
            position: 1,
            parent_instance_id: s("i"),
        }),
        EventType::EntityLockGranted(EntityLockGrantedEvent {
            critical_section_id: "cs".into(),
        }),
        EventType::EntityUnlockSent(EntityUnlockSentEvent {
            critical_section_id: "cs".into(),
            parent_instance_id: s("i"),
            target_instance_id: s("@a@1"),
        }),
        EventType::ExecutionRewound(ExecutionRewoundEvent {
            reason: s("oops"),
            parent_execution_id: s("px"),
            instance_id: s("i"),
            parent_trace_context: trace(),
            name: s("o"),
            version: s("1"),
            input: s("9"),
            parent_instance: None,
            tags: Default::default(),
        }),
    ]
}

#[test]
fn every_history_event_kind_roundtrips() {
    let kinds = event_types();
    assert_eq!(kinds.len(), 28, "one of each oneof member (fields 3..=30)");
    for (i, event_type) in kinds.into_iter().enumerate() {
        let event = HistoryEvent {
            event_id: i as i32 - 1,
            timestamp: ts(1_700_000_000 + i as i64),
            event_type: Some(event_type),
        };
        let bytes = event.encode_to_vec();
        let decoded = HistoryEvent::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded, event);
    }
}

#[test]
fn every_orchestrator_action_kind_roundtrips() {
    let kinds = vec![
        OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
            name: "a".into(),
            version: s("1"),
            input: s("1"),
            tags: [("t".to_string(), "v".to_string())].into(),
            parent_trace_context: trace(),
        }),
        OrchestratorActionType::CreateSubOrchestration(CreateSubOrchestrationAction {
            instance_id: "c".into(),
            name: "child".into(),
            version: s("1"),
            input: s("2"),
            parent_trace_context: trace(),
            tags: Default::default(),
        }),
        OrchestratorActionType::CreateTimer(CreateTimerAction { fire_at: ts(3) }),
        OrchestratorActionType::SendEvent(SendEventAction {
            instance: instance(),
            name: "n".into(),
            data: s("4"),
        }),
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::ContinuedAsNew as i32,
            result: s("5"),
            details: s("d"),
            new_version: s("2"),
            carryover_events: vec![HistoryEvent {
                event_id: -1,
                timestamp: None,
                event_type: Some(EventType::EventRaised(EventRaisedEvent {
                    name: "e".into(),
                    input: None,
                })),
            }],
            failure_details: failure(),
            tags: Default::default(),
        }),
        OrchestratorActionType::TerminateOrchestration(TerminateOrchestrationAction {
            instance_id: "c".into(),
            reason: s("r"),
            recurse: true,
        }),
        OrchestratorActionType::SendEntityMessage(SendEntityMessageAction {
            entity_message_type: Some(EntityMessageType::EntityLockRequested(
                EntityLockRequestedEvent {
                    critical_section_id: "cs".into(),
                    lock_set: vec!["@a@1".into()],
                    position: 0,
                    parent_instance_id: s("i"),
                },
            )),
        }),
        OrchestratorActionType::RewindOrchestration(RewindOrchestrationAction {
            new_history: vec![HistoryEvent {
                event_id: 0,
                timestamp: ts(1),
                event_type: Some(EventType::OrchestratorStarted(Default::default())),
            }],
        }),
    ];
    assert_eq!(kinds.len(), 8, "one of each oneof member (fields 2..=9)");
    for (id, action_type) in kinds.into_iter().enumerate() {
        let action = OrchestratorAction {
            id: id as i32,
            orchestrator_action_type: Some(action_type),
        };
        let decoded =
            OrchestratorAction::decode(action.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded, action);
    }
}

#[test]
fn every_entity_message_kind_roundtrips() {
    let kinds = vec![
        EntityMessageType::EntityOperationSignaled(EntityOperationSignaledEvent {
            request_id: "r".into(),
            operation: "op".into(),
            ..Default::default()
        }),
        EntityMessageType::EntityOperationCalled(EntityOperationCalledEvent {
            request_id: "r".into(),
            operation: "op".into(),
            parent_instance_id: s("i"),
            ..Default::default()
        }),
        EntityMessageType::EntityLockRequested(EntityLockRequestedEvent::default()),
        EntityMessageType::EntityUnlockSent(EntityUnlockSentEvent {
            critical_section_id: "cs".into(),
            ..Default::default()
        }),
    ];
    for kind in kinds {
        let message = SendEntityMessageAction {
            entity_message_type: Some(kind),
        };
        assert_eq!(
            SendEntityMessageAction::decode(message.encode_to_vec().as_slice()).unwrap(),
            message
        );
    }
}

#[test]
fn wire_details_other_sdks_rely_on() {
    // HistoryEvent.eventRaised is field 17 (tag 17 << 3 | 2 = 0x8a 0x01), eventId field 1 varint.
    let event = HistoryEvent {
        event_id: 0,
        timestamp: None,
        event_type: Some(EventType::EventRaised(EventRaisedEvent {
            name: String::new(),
            input: None,
        })),
    };
    assert_eq!(event.encode_to_vec(), [0x8a, 0x01, 0x00]);
    // An empty StringValue is present on the wire; an absent one is not.
    let empty = EventRaisedEvent {
        name: String::new(),
        input: s(""),
    };
    let absent = EventRaisedEvent {
        name: String::new(),
        input: None,
    };
    assert_ne!(empty.encode_to_vec(), absent.encode_to_vec());
    assert_eq!(
        EventRaisedEvent::decode(empty.encode_to_vec().as_slice())
            .unwrap()
            .input
            .as_deref(),
        Some("")
    );
    // OrchestratorAction.completeOrchestration is field 6; RUNNING is the zero status.
    assert_eq!(OrchestrationStatus::Running as i32, 0);
    let complete = OrchestratorAction {
        id: 0,
        orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
            Default::default(),
        )),
    };
    assert_eq!(complete.encode_to_vec(), [0x32, 0x00]);
}
