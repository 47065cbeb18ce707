//! `showHistory`: the history as the extension lists it. Bookkeeping events (`OrchestratorStarted`,
//! `TaskScheduled`, `TimerCreated`, ...) are folded away; a completion carries its function name and when it was
//! scheduled.

use std::collections::HashMap;
use std::time::SystemTime;

use durable_proto as proto;
use proto::history_event::EventType;
use serde_json::{Map, Value};

use super::payload::{format_time, json_text};

fn ts(t: &Option<prost_types::Timestamp>) -> Value {
    (*t).and_then(|t| SystemTime::try_from(t).ok())
        .map(format_time)
        .map_or(Value::Null, Value::String)
}

fn failure_fields(object: &mut Map<String, Value>, details: Option<&proto::TaskFailureDetails>) {
    if let Some(d) = details {
        object.insert("Reason".into(), Value::String(d.error_message.clone()));
        object.insert("Details".into(), Value::String(d.error_type.clone()));
    }
}

fn status_text(status: i32) -> &'static str {
    match proto::OrchestrationStatus::try_from(status) {
        Ok(proto::OrchestrationStatus::Running) => "Running",
        Ok(proto::OrchestrationStatus::Completed) => "Completed",
        Ok(proto::OrchestrationStatus::ContinuedAsNew) => "ContinuedAsNew",
        Ok(proto::OrchestrationStatus::Failed) => "Failed",
        Ok(proto::OrchestrationStatus::Canceled) => "Canceled",
        Ok(proto::OrchestrationStatus::Terminated) => "Terminated",
        Ok(proto::OrchestrationStatus::Pending) => "Pending",
        Ok(proto::OrchestrationStatus::Suspended) => "Suspended",
        Err(_) => "Unknown",
    }
}

/// The `historyEvents` array. `show_output` adds results and event payloads; `show_input` the start input.
pub(crate) fn history_json(
    events: &[proto::HistoryEvent],
    show_input: bool,
    show_output: bool,
) -> Value {
    // Scheduled events by id, so completions can name what they complete.
    let mut scheduled: HashMap<i32, (String, Value)> = HashMap::new();
    let mut out = Vec::new();
    for event in events {
        let Some(kind) = &event.event_type else {
            continue;
        };
        let mut o = Map::new();
        let name = |o: &mut Map<String, Value>, t: &str| {
            o.insert("EventType".into(), Value::String(t.to_owned()));
        };
        match kind {
            EventType::TaskScheduled(s) => {
                scheduled.insert(event.event_id, (s.name.clone(), ts(&event.timestamp)));
                continue;
            }
            EventType::SubOrchestrationInstanceCreated(s) => {
                scheduled.insert(event.event_id, (s.name.clone(), ts(&event.timestamp)));
                continue;
            }
            EventType::OrchestratorStarted(_)
            | EventType::OrchestratorCompleted(_)
            | EventType::TimerCreated(_) => continue,
            EventType::ExecutionStarted(s) => {
                name(&mut o, "ExecutionStarted");
                o.insert("FunctionName".into(), Value::String(s.name.clone()));
                if show_input {
                    o.insert("Input".into(), json_text(s.input.as_deref()));
                }
            }
            EventType::ExecutionCompleted(c) => {
                name(&mut o, "ExecutionCompleted");
                o.insert(
                    "OrchestrationStatus".into(),
                    Value::String(status_text(c.orchestration_status).into()),
                );
                if show_output {
                    o.insert("Result".into(), json_text(c.result.as_deref()));
                }
                failure_fields(&mut o, c.failure_details.as_ref());
            }
            EventType::ExecutionTerminated(t) => {
                name(&mut o, "ExecutionTerminated");
                o.insert("Input".into(), json_text(t.input.as_deref()));
            }
            EventType::TaskCompleted(c) => {
                name(&mut o, "TaskCompleted");
                completion(&mut o, &scheduled, c.task_scheduled_id);
                if show_output {
                    o.insert("Result".into(), json_text(c.result.as_deref()));
                }
            }
            EventType::TaskFailed(f) => {
                name(&mut o, "TaskFailed");
                completion(&mut o, &scheduled, f.task_scheduled_id);
                failure_fields(&mut o, f.failure_details.as_ref());
            }
            EventType::SubOrchestrationInstanceCompleted(c) => {
                name(&mut o, "SubOrchestrationInstanceCompleted");
                completion(&mut o, &scheduled, c.task_scheduled_id);
                if show_output {
                    o.insert("Result".into(), json_text(c.result.as_deref()));
                }
            }
            EventType::SubOrchestrationInstanceFailed(f) => {
                name(&mut o, "SubOrchestrationInstanceFailed");
                completion(&mut o, &scheduled, f.task_scheduled_id);
                failure_fields(&mut o, f.failure_details.as_ref());
            }
            EventType::TimerFired(t) => {
                name(&mut o, "TimerFired");
                o.insert("FireAt".into(), ts(&t.fire_at));
            }
            EventType::EventRaised(e) => {
                name(&mut o, "EventRaised");
                o.insert("Name".into(), Value::String(e.name.clone()));
                if show_output {
                    o.insert("Input".into(), json_text(e.input.as_deref()));
                }
            }
            EventType::EventSent(e) => {
                name(&mut o, "EventSent");
                o.insert("Name".into(), Value::String(e.name.clone()));
                o.insert("InstanceId".into(), Value::String(e.instance_id.clone()));
            }
            EventType::ContinueAsNew(_) => name(&mut o, "ContinueAsNew"),
            EventType::ExecutionSuspended(_) => name(&mut o, "ExecutionSuspended"),
            EventType::ExecutionResumed(_) => name(&mut o, "ExecutionResumed"),
            other => {
                // Entity and bookkeeping events keep their protobuf name.
                let debug = format!("{other:?}");
                let kind = debug.split('(').next().unwrap_or("Unknown").to_owned();
                name(&mut o, &kind);
            }
        }
        o.insert("Timestamp".into(), ts(&event.timestamp));
        out.push(Value::Object(o));
    }
    Value::Array(out)
}

fn completion(o: &mut Map<String, Value>, scheduled: &HashMap<i32, (String, Value)>, id: i32) {
    if let Some((function, at)) = scheduled.get(&id) {
        o.insert("FunctionName".into(), Value::String(function.clone()));
        o.insert("ScheduledTime".into(), at.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: i32, secs: i64, kind: EventType) -> proto::HistoryEvent {
        proto::HistoryEvent {
            event_id: id,
            timestamp: Some(prost_types::Timestamp {
                seconds: secs,
                nanos: 0,
            }),
            event_type: Some(kind),
        }
    }

    #[test]
    fn folds_scheduling_into_completions() {
        let events = vec![
            ev(-1, 0, EventType::OrchestratorStarted(Default::default())),
            ev(
                -1,
                0,
                EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                    name: "HelloCities".into(),
                    input: Some("null".into()),
                    ..Default::default()
                }),
            ),
            ev(
                0,
                1,
                EventType::TaskScheduled(proto::TaskScheduledEvent {
                    name: "SayHello".into(),
                    ..Default::default()
                }),
            ),
            ev(
                -1,
                2,
                EventType::TaskCompleted(proto::TaskCompletedEvent {
                    task_scheduled_id: 0,
                    result: Some("\"Hello Tokyo!\"".into()),
                }),
            ),
        ];
        let h = history_json(&events, false, true);
        assert_eq!(h.as_array().unwrap().len(), 2);
        assert_eq!(h[0]["EventType"], "ExecutionStarted");
        assert_eq!(h[0]["FunctionName"], "HelloCities");
        assert!(h[0].get("Input").is_none());
        assert_eq!(h[1]["EventType"], "TaskCompleted");
        assert_eq!(h[1]["FunctionName"], "SayHello");
        assert_eq!(h[1]["Result"], json!("Hello Tokyo!"));
        assert_eq!(h[1]["ScheduledTime"], "1970-01-01T00:00:01Z");
        assert_eq!(h[1]["Timestamp"], "1970-01-01T00:00:02Z");
        let h = history_json(&events, true, false);
        assert!(h[1].get("Result").is_none());
        assert_eq!(h[0]["Input"], Value::Null);
    }
}
