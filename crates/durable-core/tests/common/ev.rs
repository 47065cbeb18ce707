//! History event constructors.

use super::*;

pub fn event(event_id: i32, event_type: EventType) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id,
        timestamp: None,
        event_type: Some(event_type),
    }
}

pub fn orchestrator_started(at: OffsetDateTime) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id: -1,
        timestamp: Some(ts(at)),
        event_type: Some(EventType::OrchestratorStarted(Default::default())),
    }
}

pub fn orchestrator_completed() -> proto::HistoryEvent {
    event(-1, EventType::OrchestratorCompleted(Default::default()))
}

pub fn execution_started(name: &str, input: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::ExecutionStarted(proto::ExecutionStartedEvent {
            name: name.into(),
            input: input.map(str::to_string),
            orchestration_instance: Some(proto::OrchestrationInstance {
                instance_id: INSTANCE.into(),
                execution_id: Some("exec-1".into()),
            }),
            ..Default::default()
        }),
    )
}

pub fn task_scheduled(id: i32, name: &str) -> proto::HistoryEvent {
    event(
        id,
        EventType::TaskScheduled(proto::TaskScheduledEvent {
            name: name.into(),
            ..Default::default()
        }),
    )
}

pub fn task_completed(id: i32, result: &str) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id: id,
            result: Some(result.into()),
        }),
    )
}

pub fn failure(error_type: &str, message: &str, non_retriable: bool) -> proto::TaskFailureDetails {
    proto::TaskFailureDetails {
        error_type: error_type.into(),
        error_message: message.into(),
        is_non_retriable: non_retriable,
        ..Default::default()
    }
}

pub fn task_failed(
    id: i32,
    error_type: &str,
    message: &str,
    non_retriable: bool,
) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id: id,
            failure_details: Some(failure(error_type, message, non_retriable)),
        }),
    )
}

pub fn sub_completed(id: i32, result: &str) -> proto::HistoryEvent {
    event(
        -1,
        EventType::SubOrchestrationInstanceCompleted(
            proto::SubOrchestrationInstanceCompletedEvent {
                task_scheduled_id: id,
                result: Some(result.into()),
            },
        ),
    )
}

pub fn sub_failed(id: i32, error_type: &str, message: &str) -> proto::HistoryEvent {
    event(
        -1,
        EventType::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
            task_scheduled_id: id,
            failure_details: Some(failure(error_type, message, false)),
        }),
    )
}

pub fn timer_created(id: i32, fire_at: OffsetDateTime) -> proto::HistoryEvent {
    event(
        id,
        EventType::TimerCreated(proto::TimerCreatedEvent {
            fire_at: Some(ts(fire_at)),
        }),
    )
}

pub fn timer_fired(id: i32, fire_at: OffsetDateTime) -> proto::HistoryEvent {
    event(
        -1,
        EventType::TimerFired(proto::TimerFiredEvent {
            fire_at: Some(ts(fire_at)),
            timer_id: id,
        }),
    )
}

pub fn event_raised(name: &str, input: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EventRaised(proto::EventRaisedEvent {
            name: name.into(),
            input: input.map(str::to_string),
        }),
    )
}

pub fn event_sent(
    id: i32,
    instance_id: &str,
    name: &str,
    input: Option<&str>,
) -> proto::HistoryEvent {
    event(
        id,
        EventType::EventSent(proto::EventSentEvent {
            instance_id: instance_id.into(),
            name: name.into(),
            input: input.map(str::to_string),
        }),
    )
}

pub fn suspended() -> proto::HistoryEvent {
    event(-1, EventType::ExecutionSuspended(Default::default()))
}

pub fn resumed() -> proto::HistoryEvent {
    event(-1, EventType::ExecutionResumed(Default::default()))
}

pub fn terminated(output: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::ExecutionTerminated(proto::ExecutionTerminatedEvent {
            input: output.map(str::to_string),
            recurse: false,
        }),
    )
}

pub fn entity_completed(request_id: &str, output: Option<&str>) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityOperationCompleted(proto::EntityOperationCompletedEvent {
            request_id: request_id.into(),
            output: output.map(str::to_string),
        }),
    )
}

pub fn entity_failed(request_id: &str, error_type: &str, message: &str) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityOperationFailed(proto::EntityOperationFailedEvent {
            request_id: request_id.into(),
            failure_details: Some(failure(error_type, message, false)),
        }),
    )
}

pub fn lock_granted(section_id: &str) -> proto::HistoryEvent {
    event(
        -1,
        EventType::EntityLockGranted(proto::EntityLockGrantedEvent {
            critical_section_id: section_id.into(),
        }),
    )
}

pub fn execution_rewound(
    at: OffsetDateTime,
    reason: &str,
    parent_execution_id: Option<&str>,
) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id: -1,
        timestamp: Some(ts(at)),
        event_type: Some(EventType::ExecutionRewound(proto::ExecutionRewoundEvent {
            reason: Some(reason.into()),
            parent_execution_id: parent_execution_id.map(str::to_string),
            instance_id: Some(INSTANCE.into()),
            ..Default::default()
        })),
    }
}
