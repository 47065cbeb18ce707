//! An instance's history as the pages show it: one row per event, and a timeline of spans (the orchestration,
//! each activity, timer, sub-orchestration, entity call, lock and suspension, from the event that started it to
//! the one that ended it) plus points for events that take no time (external events, messages, signals).

use std::collections::HashMap;

use durable_grpc::proto::history_event::EventType;
use durable_grpc::proto::{HistoryEvent, OrchestrationStatus};
use serde_json::{Map, Value, json};

use crate::view::{cut, failure_from_proto};

/// How much of the history the pages get.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Rows in the table (the timeline always covers the whole history).
    pub(crate) rows: usize,
    /// Characters of each payload in a row.
    pub(crate) payload_chars: usize,
}

fn ms(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.map(|t| {
        t.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(t.nanos) / 1_000_000)
    })
}

/// The event's type as the SDKs name it.
pub(crate) fn type_name(event: &HistoryEvent) -> &'static str {
    match &event.event_type {
        Some(EventType::ExecutionStarted(_)) => "ExecutionStarted",
        Some(EventType::ExecutionCompleted(_)) => "ExecutionCompleted",
        Some(EventType::ExecutionTerminated(_)) => "ExecutionTerminated",
        Some(EventType::TaskScheduled(_)) => "TaskScheduled",
        Some(EventType::TaskCompleted(_)) => "TaskCompleted",
        Some(EventType::TaskFailed(_)) => "TaskFailed",
        Some(EventType::SubOrchestrationInstanceCreated(_)) => "SubOrchestrationInstanceCreated",
        Some(EventType::SubOrchestrationInstanceCompleted(_)) => {
            "SubOrchestrationInstanceCompleted"
        }
        Some(EventType::SubOrchestrationInstanceFailed(_)) => "SubOrchestrationInstanceFailed",
        Some(EventType::TimerCreated(_)) => "TimerCreated",
        Some(EventType::TimerFired(_)) => "TimerFired",
        Some(EventType::OrchestratorStarted(_)) => "OrchestratorStarted",
        Some(EventType::OrchestratorCompleted(_)) => "OrchestratorCompleted",
        Some(EventType::EventSent(_)) => "EventSent",
        Some(EventType::EventRaised(_)) => "EventRaised",
        Some(EventType::GenericEvent(_)) => "GenericEvent",
        Some(EventType::HistoryState(_)) => "HistoryState",
        Some(EventType::ContinueAsNew(_)) => "ContinueAsNew",
        Some(EventType::ExecutionSuspended(_)) => "ExecutionSuspended",
        Some(EventType::ExecutionResumed(_)) => "ExecutionResumed",
        Some(EventType::EntityOperationSignaled(_)) => "EntityOperationSignaled",
        Some(EventType::EntityOperationCalled(_)) => "EntityOperationCalled",
        Some(EventType::EntityOperationCompleted(_)) => "EntityOperationCompleted",
        Some(EventType::EntityOperationFailed(_)) => "EntityOperationFailed",
        Some(EventType::EntityLockRequested(_)) => "EntityLockRequested",
        Some(EventType::EntityLockGranted(_)) => "EntityLockGranted",
        Some(EventType::EntityUnlockSent(_)) => "EntityUnlockSent",
        Some(EventType::ExecutionRewound(_)) => "ExecutionRewound",
        None => "Unknown",
    }
}

fn status_name(value: i32) -> String {
    match OrchestrationStatus::try_from(value) {
        Ok(OrchestrationStatus::Running) => "Running",
        Ok(OrchestrationStatus::Completed) => "Completed",
        Ok(OrchestrationStatus::ContinuedAsNew) => "ContinuedAsNew",
        Ok(OrchestrationStatus::Failed) => "Failed",
        Ok(OrchestrationStatus::Canceled) => "Canceled",
        Ok(OrchestrationStatus::Terminated) => "Terminated",
        Ok(OrchestrationStatus::Pending) => "Pending",
        Ok(OrchestrationStatus::Suspended) => "Suspended",
        Err(_) => "Unknown",
    }
    .to_owned()
}

/// What one event says, for its row: a name, the task it belongs to, an instance it points at, a payload and a
/// failure, each when it has one.
#[derive(Default)]
struct Facts<'a> {
    name: Option<&'a str>,
    task_id: Option<i32>,
    target: Option<&'a str>,
    payload: Option<&'a str>,
    failure: Option<&'a durable_grpc::proto::TaskFailureDetails>,
    fire_at: Option<i64>,
    status: Option<String>,
}

fn facts(event: &HistoryEvent) -> Facts<'_> {
    let mut f = Facts::default();
    match &event.event_type {
        Some(EventType::ExecutionStarted(e)) => {
            f.name = Some(&e.name);
            f.payload = e.input.as_deref();
            f.target = e
                .parent_instance
                .as_ref()
                .and_then(|p| p.orchestration_instance.as_ref())
                .map(|i| i.instance_id.as_str());
        }
        Some(EventType::ExecutionCompleted(e)) => {
            f.payload = e.result.as_deref();
            f.failure = e.failure_details.as_ref();
            f.status = Some(status_name(e.orchestration_status));
        }
        Some(EventType::ExecutionTerminated(e)) => f.payload = e.input.as_deref(),
        Some(EventType::TaskScheduled(e)) => {
            f.name = Some(&e.name);
            f.task_id = Some(event.event_id);
            f.payload = e.input.as_deref();
        }
        Some(EventType::TaskCompleted(e)) => {
            f.task_id = Some(e.task_scheduled_id);
            f.payload = e.result.as_deref();
        }
        Some(EventType::TaskFailed(e)) => {
            f.task_id = Some(e.task_scheduled_id);
            f.failure = e.failure_details.as_ref();
        }
        Some(EventType::SubOrchestrationInstanceCreated(e)) => {
            f.name = Some(&e.name);
            f.task_id = Some(event.event_id);
            f.target = Some(&e.instance_id);
            f.payload = e.input.as_deref();
        }
        Some(EventType::SubOrchestrationInstanceCompleted(e)) => {
            f.task_id = Some(e.task_scheduled_id);
            f.payload = e.result.as_deref();
        }
        Some(EventType::SubOrchestrationInstanceFailed(e)) => {
            f.task_id = Some(e.task_scheduled_id);
            f.failure = e.failure_details.as_ref();
        }
        Some(EventType::TimerCreated(e)) => {
            f.task_id = Some(event.event_id);
            f.fire_at = ms(e.fire_at.as_ref());
        }
        Some(EventType::TimerFired(e)) => {
            f.task_id = Some(e.timer_id);
            f.fire_at = ms(e.fire_at.as_ref());
        }
        Some(EventType::EventSent(e)) => {
            f.name = Some(&e.name);
            f.target = Some(&e.instance_id);
            f.payload = e.input.as_deref();
        }
        Some(EventType::EventRaised(e)) => {
            f.name = Some(&e.name);
            f.payload = e.input.as_deref();
        }
        Some(EventType::GenericEvent(e)) => f.payload = e.data.as_deref(),
        Some(EventType::ContinueAsNew(e)) => f.payload = e.input.as_deref(),
        Some(EventType::ExecutionSuspended(e)) => f.payload = e.input.as_deref(),
        Some(EventType::ExecutionResumed(e)) => f.payload = e.input.as_deref(),
        Some(EventType::EntityOperationSignaled(e)) => {
            f.name = Some(&e.operation);
            f.target = e.target_instance_id.as_deref();
            f.payload = e.input.as_deref();
        }
        Some(EventType::EntityOperationCalled(e)) => {
            f.name = Some(&e.operation);
            f.task_id = Some(event.event_id);
            f.target = e.target_instance_id.as_deref();
            f.payload = e.input.as_deref();
        }
        Some(EventType::EntityOperationCompleted(e)) => f.payload = e.output.as_deref(),
        Some(EventType::EntityOperationFailed(e)) => f.failure = e.failure_details.as_ref(),
        Some(EventType::EntityLockRequested(_)) => f.task_id = Some(event.event_id),
        Some(EventType::EntityUnlockSent(e)) => f.target = e.target_instance_id.as_deref(),
        Some(EventType::ExecutionRewound(e)) => f.payload = e.reason.as_deref(),
        _ => {}
    }
    f
}

fn row(index: usize, event: &HistoryEvent, limits: Limits) -> Value {
    let f = facts(event);
    let (payload, truncated) = cut(f.payload, Some(limits.payload_chars));
    let mut row = Map::new();
    row.insert("seq".into(), json!(index));
    row.insert("eventId".into(), json!(event.event_id));
    row.insert("type".into(), json!(type_name(event)));
    row.insert("timestamp".into(), json!(ms(event.timestamp.as_ref())));
    let optional = [
        ("name", f.name.map(|s| json!(s))),
        ("taskId", f.task_id.map(|id| json!(id))),
        ("target", f.target.map(|s| json!(s))),
        ("fireAt", f.fire_at.map(|t| json!(t))),
        ("status", f.status.map(|s| json!(s))),
        ("payload", payload.map(|s| json!(s))),
        ("failure", f.failure.map(failure_from_proto)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            row.insert(key.into(), value);
        }
    }
    if truncated {
        row.insert(
            "payloadChars".into(),
            json!(f.payload.map_or(0, |p| p.chars().count())),
        );
    }
    Value::Object(row)
}

/// A span under construction.
struct Span {
    kind: &'static str,
    name: String,
    start: Option<i64>,
    end: Option<i64>,
    planned_end: Option<i64>,
    status: &'static str,
    task_id: Option<i32>,
    instance_id: Option<String>,
    failure: Option<Value>,
}

impl Span {
    fn new(kind: &'static str, name: impl Into<String>, start: Option<i64>) -> Span {
        Span {
            kind,
            name: name.into(),
            start,
            end: None,
            planned_end: None,
            status: "running",
            task_id: None,
            instance_id: None,
            failure: None,
        }
    }

    fn point(kind: &'static str, name: impl Into<String>, at: Option<i64>) -> Span {
        let mut span = Span::new(kind, name, at);
        span.end = at;
        span.status = "done";
        span
    }

    fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "plannedEnd": self.planned_end,
            "status": self.status,
            "taskId": self.task_id,
            "instanceId": self.instance_id,
            "failure": self.failure,
        })
    }
}

/// The rows, the spans, the children and the parent of one history, as JSON.
pub(crate) fn build(events: &[HistoryEvent], limits: Limits) -> Value {
    let mut spans: Vec<Span> = Vec::new();
    // Open spans by what their ending event names: a task (scheduled event id), a request or a critical section.
    let mut by_task: HashMap<(&'static str, i32), usize> = HashMap::new();
    let mut by_request: HashMap<&str, usize> = HashMap::new();
    let mut by_section: HashMap<&str, usize> = HashMap::new();
    let mut suspended: Option<usize> = None;
    let mut orchestration: Option<usize> = None;
    let mut parent: Option<&str> = None;

    let close = |spans: &mut Vec<Span>, index: Option<usize>, at, status, failure| {
        if let Some(span) = index.and_then(|i| spans.get_mut(i)) {
            span.end = at;
            span.status = status;
            span.failure = failure;
        }
    };

    for event in events {
        let at = ms(event.timestamp.as_ref());
        match &event.event_type {
            Some(EventType::ExecutionStarted(e)) => {
                parent = e
                    .parent_instance
                    .as_ref()
                    .and_then(|p| p.orchestration_instance.as_ref())
                    .map(|i| i.instance_id.as_str())
                    .filter(|id| !id.is_empty());
                orchestration = Some(spans.len());
                spans.push(Span::new("orchestration", e.name.clone(), at));
            }
            Some(EventType::ExecutionCompleted(e)) => {
                let status = match OrchestrationStatus::try_from(e.orchestration_status) {
                    Ok(OrchestrationStatus::Completed | OrchestrationStatus::ContinuedAsNew) => {
                        "completed"
                    }
                    Ok(OrchestrationStatus::Terminated | OrchestrationStatus::Canceled) => {
                        "terminated"
                    }
                    _ => "failed",
                };
                let failure = e.failure_details.as_ref().map(failure_from_proto);
                close(&mut spans, orchestration, at, status, failure);
                close(&mut spans, suspended.take(), at, "done", None);
            }
            Some(EventType::TaskScheduled(e)) => {
                let mut span = Span::new("activity", e.name.clone(), at);
                span.task_id = Some(event.event_id);
                by_task.insert(("task", event.event_id), spans.len());
                spans.push(span);
            }
            Some(EventType::TaskCompleted(e)) => {
                let open = by_task.remove(&("task", e.task_scheduled_id));
                close(&mut spans, open, at, "completed", None);
            }
            Some(EventType::TaskFailed(e)) => {
                let open = by_task.remove(&("task", e.task_scheduled_id));
                let failure = e.failure_details.as_ref().map(failure_from_proto);
                close(&mut spans, open, at, "failed", failure);
            }
            Some(EventType::SubOrchestrationInstanceCreated(e)) => {
                let mut span = Span::new("suborchestration", e.name.clone(), at);
                span.task_id = Some(event.event_id);
                span.instance_id = Some(e.instance_id.clone());
                by_task.insert(("sub", event.event_id), spans.len());
                spans.push(span);
            }
            Some(EventType::SubOrchestrationInstanceCompleted(e)) => {
                let open = by_task.remove(&("sub", e.task_scheduled_id));
                close(&mut spans, open, at, "completed", None);
            }
            Some(EventType::SubOrchestrationInstanceFailed(e)) => {
                let open = by_task.remove(&("sub", e.task_scheduled_id));
                let failure = e.failure_details.as_ref().map(failure_from_proto);
                close(&mut spans, open, at, "failed", failure);
            }
            Some(EventType::TimerCreated(e)) => {
                let mut span = Span::new("timer", "timer", at);
                span.task_id = Some(event.event_id);
                span.planned_end = ms(e.fire_at.as_ref());
                span.status = "waiting";
                by_task.insert(("timer", event.event_id), spans.len());
                spans.push(span);
            }
            Some(EventType::TimerFired(e)) => {
                let open = by_task.remove(&("timer", e.timer_id));
                close(&mut spans, open, at, "fired", None);
            }
            Some(EventType::EventRaised(e)) => spans.push(Span::point("event", e.name.clone(), at)),
            Some(EventType::EventSent(e)) => {
                let mut span = Span::point("message", e.name.clone(), at);
                span.instance_id = Some(e.instance_id.clone());
                spans.push(span);
            }
            Some(EventType::EntityOperationSignaled(e)) => {
                let mut span = Span::point("signal", e.operation.clone(), at);
                span.instance_id = e.target_instance_id.clone();
                spans.push(span);
            }
            Some(EventType::EntityOperationCalled(e)) => {
                let mut span = Span::new("entity", e.operation.clone(), at);
                span.task_id = Some(event.event_id);
                span.instance_id = e.target_instance_id.clone();
                by_request.insert(&e.request_id, spans.len());
                spans.push(span);
            }
            Some(EventType::EntityOperationCompleted(e)) => {
                let open = by_request.remove(e.request_id.as_str());
                close(&mut spans, open, at, "completed", None);
            }
            Some(EventType::EntityOperationFailed(e)) => {
                let open = by_request.remove(e.request_id.as_str());
                let failure = e.failure_details.as_ref().map(failure_from_proto);
                close(&mut spans, open, at, "failed", failure);
            }
            Some(EventType::EntityLockRequested(e)) => {
                let mut span = Span::new("lock", e.lock_set.join(", "), at);
                span.task_id = Some(event.event_id);
                by_section.insert(&e.critical_section_id, spans.len());
                spans.push(span);
            }
            Some(EventType::EntityLockGranted(e)) => {
                let open = by_section.remove(e.critical_section_id.as_str());
                close(&mut spans, open, at, "completed", None);
            }
            Some(EventType::EntityUnlockSent(e)) => {
                let mut span = Span::point("unlock", "unlock", at);
                span.instance_id = e.target_instance_id.clone();
                spans.push(span);
            }
            // A second suspension while suspended changes nothing.
            Some(EventType::ExecutionSuspended(_)) if suspended.is_none() => {
                suspended = Some(spans.len());
                spans.push(Span::new("suspended", "suspended", at));
            }
            Some(EventType::ExecutionResumed(_)) => {
                close(&mut spans, suspended.take(), at, "done", None);
            }
            Some(EventType::ExecutionTerminated(_)) => {
                spans.push(Span::point("terminated", "terminated", at));
            }
            Some(EventType::ExecutionRewound(_)) => {
                spans.push(Span::point("rewound", "rewound", at));
            }
            _ => {}
        }
    }

    let start = events.iter().filter_map(|e| ms(e.timestamp.as_ref())).min();
    let end = events.iter().filter_map(|e| ms(e.timestamp.as_ref())).max();
    let children: Vec<Value> = spans
        .iter()
        .filter(|s| s.kind == "suborchestration")
        .map(|s| json!({ "instanceId": s.instance_id, "name": s.name, "status": s.status }))
        .collect();
    let rows: Vec<Value> = events
        .iter()
        .take(limits.rows)
        .enumerate()
        .map(|(i, e)| row(i, e, limits))
        .collect();
    json!({
        "events": rows,
        "eventCount": events.len(),
        "timeline": {
            "start": start,
            "end": end,
            "spans": spans.iter().map(Span::to_json).collect::<Vec<_>>(),
        },
        "children": children,
        "parentInstanceId": parent,
    })
}

#[cfg(test)]
mod tests;
