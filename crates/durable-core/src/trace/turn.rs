//! What one turn means for tracing: the trace fields of the response, and the spans the turn finished.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::context::{Derived, derive, derive_span, parse_span_id};
use super::{SpanKind, SpanRecord, TraceParent, TurnTrace, attributes as attr};
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::time_util;

/// The orchestration's trace, as history and the request say.
struct Orchestration<'a> {
    name: &'a str,
    version: Option<&'a str>,
    instance_id: String,
    execution_id: Option<&'a str>,
    /// The parent from `ExecutionStarted.parentTraceContext`, when it is a valid one.
    parent: Option<TraceParent>,
    trace_state: Option<String>,
    /// The orchestration span's own context.
    span: TraceParent,
    start: OffsetDateTime,
}

impl<'a> Orchestration<'a> {
    fn of(request: &'a proto::OrchestratorRequest) -> Option<Self> {
        let events = || request.past_events.iter().chain(&request.new_events);
        let (event, started) = events().find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => Some((e, s)),
            _ => None,
        })?;
        let instance_id = crate::orchestration::instance_id_of(request);
        let execution_id = started
            .orchestration_instance
            .as_ref()
            .and_then(|i| i.execution_id.as_deref())
            .or(request.execution_id.as_deref());
        let exec = execution_id.unwrap_or_default();
        let parent = started
            .parent_trace_context
            .as_ref()
            .and_then(TraceParent::from_proto);
        let trace_state = parent.and(
            started
                .parent_trace_context
                .as_ref()
                .and_then(|c| c.trace_state.clone())
                .filter(|s| !s.is_empty()),
        );
        let carried = request.orchestration_trace_context.as_ref();
        // The span's ID: what the backend handed back from an earlier turn, or what the scheduler stamped on the
        // start event, or else the derived one, which every turn computes alike even where nothing is handed back.
        let span_id = carried
            .and_then(|c| c.span_id.as_deref())
            .and_then(parse_span_id)
            .or_else(|| {
                started
                    .orchestration_span_id
                    .as_deref()
                    .and_then(parse_span_id)
            })
            .unwrap_or_else(|| derive_span(&instance_id, exec, Derived::Orchestration));
        let span = match parent {
            Some(parent) => parent.with_span_id(span_id),
            None => TraceParent {
                trace_id: derive(&instance_id, exec, Derived::Trace),
                span_id,
                flags: TraceParent::SAMPLED,
            },
        };
        let start = carried
            .and_then(|c| c.span_start_time.as_ref())
            .and_then(time_util::from_timestamp)
            .or_else(|| event.timestamp.as_ref().and_then(time_util::from_timestamp))
            .or_else(|| {
                events().find_map(|e| e.timestamp.as_ref().and_then(time_util::from_timestamp))
            })
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Some(Self {
            name: &started.name,
            version: started.version.as_deref().filter(|v| !v.is_empty()),
            instance_id,
            execution_id,
            parent,
            trace_state,
            span,
            start,
        })
    }

    fn exec(&self) -> &str {
        self.execution_id.unwrap_or_default()
    }

    fn task_context(&self, seq: i32) -> TraceParent {
        self.span.with_span_id(derive_span(
            &self.instance_id,
            self.exec(),
            Derived::Task(seq),
        ))
    }
}

/// Fills the response's trace fields: `parentTraceContext` on each new `ScheduleTask` and `CreateSubOrchestration`
/// action that has none (the context of the call's CLIENT span, a child of the orchestration span), and
/// `orchestrationTraceContext` (the orchestration span's ID and start time, for the backend to hand back).
///
/// [`Registry::execute_orchestrator`](crate::Registry::execute_orchestrator) calls it; a transport that builds
/// responses another way can call it too. Calling it twice changes nothing.
pub fn annotate_response(
    request: &proto::OrchestratorRequest,
    response: &mut proto::OrchestratorResponse,
) {
    if response.requires_history {
        return;
    }
    let Some(orch) = Orchestration::of(request) else {
        return;
    };
    let state = orch.trace_state.as_deref();
    for action in &mut response.actions {
        let slot = match &mut action.orchestrator_action_type {
            Some(OrchestratorActionType::ScheduleTask(a)) => &mut a.parent_trace_context,
            Some(OrchestratorActionType::CreateSubOrchestration(a)) => &mut a.parent_trace_context,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(orch.task_context(action.id).to_proto(state));
        }
    }
    response.orchestration_trace_context = Some(proto::OrchestrationTraceContext {
        span_id: Some(orch.span.span_id_hex()),
        span_start_time: Some(time_util::to_timestamp(orch.start)),
    });
}

/// How something was scheduled, from its scheduling event.
struct Scheduled<'a> {
    kind: &'static str,
    name: &'a str,
    version: Option<&'a str>,
    at: Option<OffsetDateTime>,
    context: Option<TraceParent>,
    fire_at: Option<OffsetDateTime>,
}

/// The orchestration's identity and span context for a turn, without the spans: what a transport needs before the
/// turn runs (the turn's parent span, the context it hands on), at the cost of finding `ExecutionStarted` instead
/// of walking the whole history as [`turn_trace`] does. Its `spans` is always empty.
pub fn turn_context(request: &proto::OrchestratorRequest) -> Option<TurnTrace> {
    let orch = Orchestration::of(request)?;
    Some(TurnTrace {
        name: orch.name.to_string(),
        version: orch.version.map(str::to_string),
        instance_id: orch.instance_id,
        execution_id: orch.execution_id.map(str::to_string),
        orchestration: orch.span,
        trace_state: orch.trace_state,
        spans: Vec::new(),
    })
}

/// The tracing of the turn that `request` asked for and `response` answered: the orchestration span's context and
/// the spans this turn finished. `None` when the request has no `ExecutionStarted` event, or asked only for
/// history.
///
/// Spans come only from `newEvents` (results that arrive in this turn) and from the response completing the
/// execution, so a replayed result never yields a span twice.
pub fn turn_trace(
    request: &proto::OrchestratorRequest,
    response: &proto::OrchestratorResponse,
) -> Option<TurnTrace> {
    if response.requires_history {
        return None;
    }
    let orch = Orchestration::of(request)?;
    let mut scheduled: HashMap<i32, Scheduled<'_>> = HashMap::new();
    // Work is scheduled when its turn runs; a scheduling event without a time of its own takes its turn's.
    let mut turn_started = None;
    for event in request.past_events.iter().chain(&request.new_events) {
        let own = event.timestamp.as_ref().and_then(time_util::from_timestamp);
        if let Some(EventType::OrchestratorStarted(_)) = &event.event_type {
            turn_started = own;
        }
        let at = own.or(turn_started);
        let entry = match &event.event_type {
            Some(EventType::TaskScheduled(s)) => Scheduled {
                kind: "activity",
                name: &s.name,
                version: s.version.as_deref(),
                at,
                context: s
                    .parent_trace_context
                    .as_ref()
                    .and_then(TraceParent::from_proto),
                fire_at: None,
            },
            Some(EventType::SubOrchestrationInstanceCreated(s)) => Scheduled {
                kind: "orchestration",
                name: &s.name,
                version: s.version.as_deref(),
                at,
                context: s
                    .parent_trace_context
                    .as_ref()
                    .and_then(TraceParent::from_proto),
                fire_at: None,
            },
            Some(EventType::TimerCreated(t)) => Scheduled {
                kind: "timer",
                name: orch.name,
                version: None,
                at,
                context: None,
                fire_at: t.fire_at.as_ref().and_then(time_util::from_timestamp),
            },
            _ => continue,
        };
        scheduled.insert(event.event_id, entry);
    }

    let mut spans = Vec::new();
    for event in &request.new_events {
        let end = event.timestamp.as_ref().and_then(time_util::from_timestamp);
        let (seq, error) = match &event.event_type {
            Some(EventType::TaskCompleted(c)) => (c.task_scheduled_id, None),
            Some(EventType::TaskFailed(f)) => (
                f.task_scheduled_id,
                Some(failure_message(&f.failure_details)),
            ),
            Some(EventType::SubOrchestrationInstanceCompleted(c)) => (c.task_scheduled_id, None),
            Some(EventType::SubOrchestrationInstanceFailed(f)) => (
                f.task_scheduled_id,
                Some(failure_message(&f.failure_details)),
            ),
            Some(EventType::TimerFired(t)) => (t.timer_id, None),
            _ => continue,
        };
        let Some(s) = scheduled.get(&seq) else {
            continue;
        };
        spans.push(finished_span(&orch, seq, s, end, error));
    }

    let completion = response
        .actions
        .iter()
        .find_map(|a| match &a.orchestrator_action_type {
            Some(OrchestratorActionType::CompleteOrchestration(c)) => Some(c),
            _ => None,
        });
    if let Some(done) = completion {
        let failed = done.orchestration_status == proto::OrchestrationStatus::Failed as i32;
        let mut attributes =
            base_attributes("orchestration", orch.name, orch.version, &orch.instance_id);
        if let Some(exec) = orch.execution_id {
            attributes.push((attr::EXECUTION_ID, exec.to_string()));
        }
        attributes.push((
            attr::STATUS,
            if failed { "Failed" } else { "Completed" }.into(),
        ));
        spans.push(SpanRecord {
            name: span_name("orchestration", orch.name, orch.version),
            kind: SpanKind::Server,
            context: orch.span,
            parent_span_id: orch.parent.map(|p| p.span_id),
            trace_state: orch.trace_state.clone(),
            start: orch.start,
            end: None,
            attributes,
            error: failed.then(|| failure_message(&done.failure_details)),
        });
    }

    Some(TurnTrace {
        name: orch.name.to_string(),
        version: orch.version.map(str::to_string),
        instance_id: orch.instance_id.clone(),
        execution_id: orch.execution_id.map(str::to_string),
        orchestration: orch.span,
        trace_state: orch.trace_state.clone(),
        spans,
    })
}

fn finished_span(
    orch: &Orchestration<'_>,
    seq: i32,
    s: &Scheduled<'_>,
    end: Option<OffsetDateTime>,
    error: Option<String>,
) -> SpanRecord {
    let timer = s.kind == "timer";
    let context = if timer {
        orch.span.with_span_id(derive_span(
            &orch.instance_id,
            orch.exec(),
            Derived::Timer(seq),
        ))
    } else {
        // The ID the call carried, as history kept it; the derived one where history dropped it.
        s.context
            .filter(|c| c.trace_id == orch.span.trace_id)
            .unwrap_or_else(|| orch.task_context(seq))
    };
    let (name, kind, mut attributes) = if timer {
        let mut attributes = base_attributes("timer", orch.name, None, &orch.instance_id);
        if let Some(fire_at) = s.fire_at {
            attributes.push((attr::FIRE_AT, time_util::format_rfc3339(fire_at)));
        }
        (
            format!("orchestration:{}:timer", orch.name),
            SpanKind::Internal,
            attributes,
        )
    } else {
        (
            span_name(s.kind, s.name, s.version),
            SpanKind::Client,
            base_attributes(s.kind, s.name, s.version, &orch.instance_id),
        )
    };
    attributes.push((attr::TASK_ID, seq.to_string()));
    if !timer {
        let status = if error.is_some() {
            "Failed"
        } else {
            "Completed"
        };
        attributes.push((attr::STATUS, status.into()));
    }
    SpanRecord {
        name,
        kind,
        context,
        parent_span_id: Some(orch.span.span_id),
        trace_state: orch.trace_state.clone(),
        start: s.at.or(end).unwrap_or(orch.start),
        end,
        attributes,
        error,
    }
}

fn base_attributes(
    kind: &str,
    name: &str,
    version: Option<&str>,
    instance_id: &str,
) -> Vec<(&'static str, String)> {
    let mut attributes = vec![
        (attr::TYPE, kind.to_string()),
        (attr::TASK_NAME, name.to_string()),
        (attr::INSTANCE_ID, instance_id.to_string()),
    ];
    if let Some(version) = version.filter(|v| !v.is_empty()) {
        attributes.push((attr::TASK_VERSION, version.to_string()));
    }
    attributes
}

/// `type:name`, or `type:name@(version)`: the SDKs' span names (`activity:Greet`, `orchestration:Main@(2)`).
pub fn span_name(kind: &str, name: &str, version: Option<&str>) -> String {
    match version.filter(|v| !v.is_empty()) {
        Some(version) => format!("{kind}:{name}@({version})"),
        None => format!("{kind}:{name}"),
    }
}

fn failure_message(details: &Option<proto::TaskFailureDetails>) -> String {
    details
        .as_ref()
        .map(|d| d.error_message.clone())
        .unwrap_or_else(|| "failed".to_string())
}
