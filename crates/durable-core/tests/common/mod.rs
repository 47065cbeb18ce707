//! Test support: a history builder, a simulated backend that runs an orchestration turn by turn (appending to
//! history what a real backend appends), golden replay checks and readable action summaries.
#![allow(dead_code, unreachable_pub)]

use durable_core::proto::{
    self, history_event::EventType, orchestrator_action::OrchestratorActionType,
    send_entity_message_action::EntityMessageType,
};
use durable_core::{OffsetDateTime, Registry};

pub const INSTANCE: &str = "inst-1";

/// The clock of the first turn: 2026-01-01T00:00:00Z.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

pub fn at(secs: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(secs)
}

pub fn ts(at: OffsetDateTime) -> proto::prost_types::Timestamp {
    let nanos = at.unix_timestamp_nanos();
    proto::prost_types::Timestamp {
        seconds: (nanos.div_euclid(1_000_000_000)) as i64,
        nanos: (nanos.rem_euclid(1_000_000_000)) as i32,
    }
}

pub fn from_ts(ts: &proto::prost_types::Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos),
    )
    .unwrap()
}

/// The history event builders the engine's testing tools use (`durable_core::testing::history`).
pub use durable_core::testing::history as ev;

/// The execution of [`INSTANCE`] that [`run_incremental`] starts.
pub const EXECUTION: &str = "exec-1";

/// `ExecutionRewound` for [`INSTANCE`], as a backend asks a worker to rewind.
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

/// How the simulated backend records entity messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// Durable Task Scheduler: the entity events themselves.
    Scheduler,
    /// Functions host: every entity message becomes `EventSent` to the entity with a JSON request message.
    FunctionsHost,
}

/// The history event a backend appends for an action: the scheduler's confirmation (`ev::confirmation`), an
/// entity message as the Functions host records it under that shape, and `ExecutionCompleted` for a completion.
pub fn confirmation(
    action: &proto::OrchestratorAction,
    shape: Shape,
) -> Option<proto::HistoryEvent> {
    match action.orchestrator_action_type.as_ref()? {
        OrchestratorActionType::CompleteOrchestration(c) => Some(ev::event(
            action.id,
            EventType::ExecutionCompleted(proto::ExecutionCompletedEvent {
                orchestration_status: c.orchestration_status,
                result: c.result.clone(),
                failure_details: c.failure_details.clone(),
            }),
        )),
        OrchestratorActionType::SendEntityMessage(m) if shape == Shape::FunctionsHost => {
            let (target, request_id, op) = match m.entity_message_type.as_ref()? {
                EntityMessageType::EntityOperationCalled(c) => (
                    c.target_instance_id.clone(),
                    c.request_id.clone(),
                    c.operation.clone(),
                ),
                EntityMessageType::EntityOperationSignaled(s) => (
                    s.target_instance_id.clone(),
                    s.request_id.clone(),
                    s.operation.clone(),
                ),
                EntityMessageType::EntityLockRequested(l) => (
                    l.lock_set.first().cloned(),
                    l.critical_section_id.clone(),
                    "lock".into(),
                ),
                EntityMessageType::EntityUnlockSent(u) => (
                    u.target_instance_id.clone(),
                    u.critical_section_id.clone(),
                    "release".into(),
                ),
            };
            let input = serde_json::json!({"id": request_id, "op": op}).to_string();
            Some(ev::event_sent(
                action.id,
                &target.unwrap_or_default(),
                "op",
                Some(&input),
            ))
        }
        _ => ev::confirmation(action),
    }
}

type StepFn = Box<dyn Fn(&Run) -> Vec<proto::HistoryEvent>>;

/// One turn of inbound events after the first: its clock, and the events (built from the run so far, so they can
/// name request ids or timer times the code produced).
pub struct Step {
    pub at: OffsetDateTime,
    pub make: StepFn,
}

pub fn step(at_secs: i64, make: impl Fn(&Run) -> Vec<proto::HistoryEvent> + 'static) -> Step {
    Step {
        at: at(at_secs),
        make: Box::new(make),
    }
}

/// The result of running a scenario turn by turn.
#[derive(Debug, Default)]
pub struct Run {
    /// The committed history after every turn.
    pub history: Vec<proto::HistoryEvent>,
    /// The request and response of every turn.
    pub turns: Vec<(proto::OrchestratorRequest, proto::OrchestratorResponse)>,
    /// Every action any turn returned, by id.
    pub all_actions: std::collections::BTreeMap<i32, proto::OrchestratorAction>,
}

impl Run {
    pub fn last(&self) -> &proto::OrchestratorResponse {
        &self.turns.last().unwrap().1
    }

    pub fn action(&self, id: i32) -> &proto::OrchestratorAction {
        self.all_actions.get(&id).unwrap_or_else(|| {
            panic!(
                "no action {id}; actions: {:?}",
                summary_of(self.all_actions.values())
            )
        })
    }

    /// The fire time of timer action `id`.
    pub fn fire_at(&self, id: i32) -> OffsetDateTime {
        match &self.action(id).orchestrator_action_type {
            Some(OrchestratorActionType::CreateTimer(t)) => from_ts(t.fire_at.as_ref().unwrap()),
            other => panic!("action {id} is not a timer: {other:?}"),
        }
    }

    /// The request id (or critical section id) of entity action `id`.
    pub fn request_id(&self, id: i32) -> String {
        match &self.action(id).orchestrator_action_type {
            Some(OrchestratorActionType::SendEntityMessage(m)) => {
                match m.entity_message_type.as_ref().unwrap() {
                    EntityMessageType::EntityOperationCalled(c) => c.request_id.clone(),
                    EntityMessageType::EntityOperationSignaled(s) => s.request_id.clone(),
                    EntityMessageType::EntityLockRequested(l) => l.critical_section_id.clone(),
                    EntityMessageType::EntityUnlockSent(u) => u.critical_section_id.clone(),
                }
            }
            other => panic!("action {id} is not an entity message: {other:?}"),
        }
    }
}

pub fn execute(
    registry: &Registry,
    past: &[proto::HistoryEvent],
    new: &[proto::HistoryEvent],
) -> proto::OrchestratorResponse {
    let request = proto::OrchestratorRequest {
        instance_id: INSTANCE.into(),
        past_events: past.to_vec(),
        new_events: new.to_vec(),
        ..Default::default()
    };
    let response = registry.execute_orchestrator(&request);
    assert_eq!(response.instance_id, INSTANCE);
    assert!(response.completion_token.is_empty());
    response
}

/// Runs the orchestration one turn at a time, as a backend would: each turn's new events are
/// `[OrchestratorStarted, ...]`, and after each turn the backend appends the new events, one confirmation per
/// action and `OrchestratorCompleted`.
pub fn run_incremental(
    registry: &Registry,
    name: &str,
    input: Option<&str>,
    steps: Vec<Step>,
    shape: Shape,
) -> Run {
    let mut run = Run::default();
    let first = vec![
        ev::orchestrator_started(t0()),
        ev::execution_started(INSTANCE, EXECUTION, name, input),
    ];
    let mut turns: Vec<(OffsetDateTime, Option<StepFn>)> = vec![(t0(), None)];
    turns.extend(steps.into_iter().map(|s| (s.at, Some(s.make))));
    for (clock, make) in turns {
        let new = match make {
            None => first.clone(),
            Some(make) => {
                let mut events = vec![ev::orchestrator_started(clock)];
                events.extend(make(&run));
                events
            }
        };
        run_turn(registry, &mut run, new, shape);
    }
    run
}

/// One more turn of `run`, as a backend runs it: the new events, then one confirmation per action and
/// `OrchestratorCompleted` are appended to the history.
pub fn run_turn(
    registry: &Registry,
    run: &mut Run,
    new: Vec<proto::HistoryEvent>,
    shape: Shape,
) -> proto::OrchestratorResponse {
    let response = execute(registry, &run.history, &new);
    let request = proto::OrchestratorRequest {
        instance_id: INSTANCE.into(),
        past_events: run.history.clone(),
        new_events: new.clone(),
        ..Default::default()
    };
    run.history.extend(new);
    for action in &response.actions {
        run.all_actions.insert(action.id, action.clone());
        if let Some(event) = confirmation(action, shape) {
            run.history.push(event);
        }
    }
    run.history.push(ev::orchestrator_completed());
    run.turns.push((request, response.clone()));
    response
}

/// The golden checks every scenario goes through:
/// - the last turn replayed with its new events as past events (one full replay, everything `is_replaying`)
///   decides exactly what the incremental run decided;
/// - the complete history replayed again adds nothing but the completion (if any), without non-determinism.
pub fn check_replays(registry: &Registry, run: &Run) {
    let (last_request, last_response) = run.turns.last().unwrap();
    let mut past = last_request.past_events.clone();
    past.extend(last_request.new_events.iter().cloned());
    let full = execute(registry, &past, &[]);
    assert_eq!(
        summary(&full),
        summary(last_response),
        "full replay differs from the incremental run"
    );
    assert_eq!(full.custom_status, last_response.custom_status);

    let again = execute(registry, &run.history, &[]);
    let expected: Vec<String> = summary(last_response)
        .into_iter()
        .filter(|s| s.contains("Complete"))
        .collect();
    let got = summary(&again);
    assert_eq!(
        got, expected,
        "replaying the committed history changed the decisions"
    );
}

/// Incremental run plus golden replay checks.
pub fn run_both(registry: &Registry, name: &str, input: Option<&str>, steps: Vec<Step>) -> Run {
    let run = run_incremental(registry, name, input, steps, Shape::Scheduler);
    check_replays(registry, &run);
    run
}

pub fn summary(response: &proto::OrchestratorResponse) -> Vec<String> {
    summary_of(response.actions.iter())
}

pub fn summary_of<'a>(actions: impl Iterator<Item = &'a proto::OrchestratorAction>) -> Vec<String> {
    actions.map(describe).collect()
}

fn status_name(status: i32) -> String {
    proto::OrchestrationStatus::try_from(status)
        .map(|s| format!("{s:?}"))
        .unwrap_or_else(|_| status.to_string())
}

/// `"<id> <Kind> <details>"`, stable and readable.
pub fn describe(action: &proto::OrchestratorAction) -> String {
    let id = action.id;
    match action.orchestrator_action_type.as_ref() {
        Some(OrchestratorActionType::ScheduleTask(t)) => {
            format!(
                "{id} ScheduleTask {} {}",
                t.name,
                t.input.as_deref().unwrap_or("-")
            )
        }
        Some(OrchestratorActionType::CreateSubOrchestration(s)) => format!(
            "{id} CreateSubOrchestration {} {} {}",
            s.name,
            s.instance_id,
            s.input.as_deref().unwrap_or("-")
        ),
        Some(OrchestratorActionType::CreateTimer(t)) => {
            let fire = from_ts(t.fire_at.as_ref().unwrap());
            format!("{id} CreateTimer +{}s", (fire - t0()).whole_seconds())
        }
        Some(OrchestratorActionType::SendEvent(e)) => format!(
            "{id} SendEvent {} {} {}",
            e.instance.as_ref().unwrap().instance_id,
            e.name,
            e.data.as_deref().unwrap_or("-")
        ),
        Some(OrchestratorActionType::CompleteOrchestration(c)) => {
            let mut s = format!("{id} Complete {}", status_name(c.orchestration_status));
            if let Some(r) = &c.result {
                s.push_str(&format!(" {r}"));
            }
            if let Some(f) = &c.failure_details {
                s.push_str(&format!(" [{}: {}]", f.error_type, f.error_message));
            }
            if let Some(v) = &c.new_version {
                s.push_str(&format!(" version={v}"));
            }
            if !c.carryover_events.is_empty() {
                let names: Vec<String> = c
                    .carryover_events
                    .iter()
                    .map(|e| match &e.event_type {
                        Some(EventType::EventRaised(r)) => {
                            format!("{}={}", r.name, r.input.as_deref().unwrap_or("-"))
                        }
                        _ => "?".into(),
                    })
                    .collect();
                s.push_str(&format!(" carry({})", names.join(",")));
            }
            s
        }
        Some(OrchestratorActionType::SendEntityMessage(m)) => {
            match m.entity_message_type.as_ref().unwrap() {
                EntityMessageType::EntityOperationCalled(c) => format!(
                    "{id} EntityCall {} {} {}",
                    c.target_instance_id.as_deref().unwrap_or("-"),
                    c.operation,
                    c.input.as_deref().unwrap_or("-")
                ),
                EntityMessageType::EntityOperationSignaled(s) => format!(
                    "{id} EntitySignal {} {} {}",
                    s.target_instance_id.as_deref().unwrap_or("-"),
                    s.operation,
                    s.input.as_deref().unwrap_or("-")
                ),
                EntityMessageType::EntityLockRequested(l) => {
                    format!("{id} Lock {}", l.lock_set.join(","))
                }
                EntityMessageType::EntityUnlockSent(u) => {
                    format!(
                        "{id} Unlock {}",
                        u.target_instance_id.as_deref().unwrap_or("-")
                    )
                }
            }
        }
        Some(OrchestratorActionType::TerminateOrchestration(t)) => {
            format!("{id} Terminate {}", t.instance_id)
        }
        Some(OrchestratorActionType::RewindOrchestration(r)) => {
            format!("{id} Rewind {} events", r.new_history.len())
        }
        None => format!("{id} <empty>"),
    }
}

/// A canned case: past + new events and the expected actions.
pub struct ReplayCase {
    pub past: Vec<proto::HistoryEvent>,
    pub new: Vec<proto::HistoryEvent>,
    pub expected: Vec<&'static str>,
}

impl ReplayCase {
    pub fn check(&self, registry: &Registry) -> proto::OrchestratorResponse {
        let response = execute(registry, &self.past, &self.new);
        assert_eq!(summary(&response), self.expected);
        response
    }
}

/// The failure of the completion action in `response`, if it failed.
pub fn failure(response: &proto::OrchestratorResponse) -> Option<proto::TaskFailureDetails> {
    response
        .actions
        .iter()
        .find_map(|a| match &a.orchestrator_action_type {
            Some(OrchestratorActionType::CompleteOrchestration(c)) => c.failure_details.clone(),
            _ => None,
        })
}

/// The history a `RewindOrchestration` action carries (panics if the response is anything else).
pub fn rewound_history(response: &proto::OrchestratorResponse) -> Vec<proto::HistoryEvent> {
    match response.actions.as_slice() {
        [
            proto::OrchestratorAction {
                id: -1,
                orchestrator_action_type: Some(OrchestratorActionType::RewindOrchestration(r)),
            },
        ] => r.new_history.clone(),
        other => panic!(
            "expected one RewindOrchestration action, got {:?}",
            summary_of(other.iter())
        ),
    }
}

/// `"<event_id> <Kind> <details>"` for each event, stable and readable.
pub fn history_summary(history: &[proto::HistoryEvent]) -> Vec<String> {
    history.iter().map(describe_event).collect()
}

pub fn describe_event(event: &proto::HistoryEvent) -> String {
    let id = event.event_id;
    let what = match event.event_type.as_ref() {
        Some(EventType::OrchestratorStarted(_)) => "OrchestratorStarted".to_string(),
        Some(EventType::OrchestratorCompleted(_)) => "OrchestratorCompleted".to_string(),
        Some(EventType::ExecutionStarted(s)) => format!("ExecutionStarted {}", s.name),
        Some(EventType::ExecutionCompleted(c)) => {
            format!("ExecutionCompleted {}", status_name(c.orchestration_status))
        }
        Some(EventType::ExecutionRewound(r)) => {
            format!("ExecutionRewound {}", r.reason.as_deref().unwrap_or("-"))
        }
        Some(EventType::TaskScheduled(t)) => format!("TaskScheduled {}", t.name),
        Some(EventType::TaskCompleted(t)) => format!(
            "TaskCompleted {} {}",
            t.task_scheduled_id,
            t.result.as_deref().unwrap_or("-")
        ),
        Some(EventType::TaskFailed(t)) => format!("TaskFailed {}", t.task_scheduled_id),
        Some(EventType::SubOrchestrationInstanceCreated(s)) => {
            format!("SubOrchestrationCreated {} {}", s.name, s.instance_id)
        }
        Some(EventType::SubOrchestrationInstanceCompleted(s)) => format!(
            "SubOrchestrationCompleted {} {}",
            s.task_scheduled_id,
            s.result.as_deref().unwrap_or("-")
        ),
        Some(EventType::SubOrchestrationInstanceFailed(s)) => {
            format!("SubOrchestrationFailed {}", s.task_scheduled_id)
        }
        Some(EventType::TimerCreated(_)) => "TimerCreated".to_string(),
        Some(EventType::TimerFired(t)) => format!("TimerFired {}", t.timer_id),
        Some(EventType::EventRaised(e)) => format!("EventRaised {}", e.name),
        Some(other) => format!("{other:?}"),
        None => "<empty>".to_string(),
    };
    format!("{id} {what}")
}

/// The execution id an `ExecutionStarted` in `history` names.
pub fn execution_id_of(history: &[proto::HistoryEvent]) -> Option<String> {
    history.iter().find_map(|e| match &e.event_type {
        Some(EventType::ExecutionStarted(s)) => s
            .orchestration_instance
            .as_ref()
            .and_then(|i| i.execution_id.clone()),
        _ => None,
    })
}
