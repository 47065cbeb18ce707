//! Trace contexts over several turns: one trace, stable IDs, and each finished piece of work traced exactly once,
//! whether the backend keeps the trace fields in history (the scheduler's shape) or drops them (the Functions
//! host's).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use durable_core::proto::orchestrator_action::OrchestratorActionType;
use durable_core::trace::{SpanKind, SpanRecord, TraceParent, turn_context, turn_trace};
use durable_core::{OrchestrationContext, OrchestrationError, Registry, when_all};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("main", |ctx: OrchestrationContext, _: ()| async move {
        let a = ctx.call_activity::<_, String>("greet", "a");
        let b = ctx.call_activity::<_, String>("greet", "b");
        let sub = ctx.call_sub_orchestrator::<_, String>("child", "c", None);
        let mut out = Vec::new();
        for r in when_all(vec![a, b, sub]).await {
            out.push(r?);
        }
        ctx.create_timer_after(Duration::from_secs(60)).await?;
        Ok::<_, OrchestrationError>(out)
    });
    r
}

fn started(parent: Option<&str>) -> durable_core::proto::HistoryEvent {
    let mut event = ev::execution_started(INSTANCE, EXECUTION, "main", Some("null"));
    event.timestamp = Some(ts(t0()));
    if let Some(Some(durable_core::proto::history_event::EventType::ExecutionStarted(s))) =
        Some(event.event_type.as_mut())
    {
        s.parent_trace_context = parent.map(|p| durable_core::proto::TraceContext {
            trace_parent: p.into(),
            trace_state: Some("vendor=1".into()),
            ..Default::default()
        });
    }
    event
}

fn stamped(
    mut event: durable_core::proto::HistoryEvent,
    secs: i64,
) -> durable_core::proto::HistoryEvent {
    event.timestamp = Some(ts(at(secs)));
    event
}

/// Runs the orchestration in four turns and returns the run and every turn's spans.
fn run(shape: Shape, parent: Option<&str>) -> (Run, Vec<Vec<SpanRecord>>, Vec<TraceParent>) {
    let registry = registry();
    let mut run = Run::default();
    let mut spans = Vec::new();
    let mut contexts = Vec::new();
    let mut turn = |run: &mut Run, new: Vec<durable_core::proto::HistoryEvent>| {
        let response = run_turn(&registry, run, new, shape);
        let (request, _) = run.turns.last().unwrap();
        let trace = turn_trace(request, &response).expect("a turn with history has a trace");
        // What transports read before the turn runs is the same identity and context, without walking history.
        let before = turn_context(request).expect("a turn with history has a context");
        assert!(before.spans.is_empty());
        assert_eq!(
            (&before.name, &before.instance_id, &before.execution_id),
            (&trace.name, &trace.instance_id, &trace.execution_id)
        );
        assert_eq!(
            (before.orchestration, &before.trace_state),
            (trace.orchestration, &trace.trace_state)
        );
        spans.push(trace.spans);
        contexts.push(trace.orchestration);
    };
    turn(
        &mut run,
        vec![ev::orchestrator_started(t0()), started(parent)],
    );
    turn(
        &mut run,
        vec![
            ev::orchestrator_started(at(5)),
            stamped(ev::task_completed(0, Some("\"A\"")), 4),
        ],
    );
    turn(
        &mut run,
        vec![
            ev::orchestrator_started(at(9)),
            stamped(ev::task_completed(1, Some("\"B\"")), 7),
            stamped(ev::sub_orchestration_completed(2, Some("\"C\"")), 8),
        ],
    );
    let fire_at = run.fire_at(3);
    turn(
        &mut run,
        vec![
            ev::orchestrator_started(at(70)),
            stamped(ev::timer_fired(3, fire_at), 69),
        ],
    );
    (run, spans, contexts)
}

fn action_context(run: &Run, id: i32) -> TraceParent {
    let context = match &run.action(id).orchestrator_action_type {
        Some(OrchestratorActionType::ScheduleTask(t)) => t.parent_trace_context.clone(),
        Some(OrchestratorActionType::CreateSubOrchestration(s)) => s.parent_trace_context.clone(),
        other => panic!("action {id} schedules nothing: {other:?}"),
    };
    TraceParent::from_proto(&context.expect("scheduled work carries a trace context")).unwrap()
}

#[test]
fn one_trace_with_stable_ids_and_no_replayed_spans() {
    let parent = TraceParent::parse(PARENT).unwrap();
    let mut by_shape = Vec::new();
    for shape in [Shape::Scheduler, Shape::FunctionsHost] {
        let (run, spans, contexts) = run(shape, Some(PARENT));
        assert!(matches!(
            run.last()
                .actions
                .last()
                .and_then(|a| a.orchestrator_action_type.as_ref()),
            Some(OrchestratorActionType::CompleteOrchestration(_))
        ));

        // The orchestration span keeps its ID over every turn, and every response hands it back.
        let orchestration = contexts[0];
        assert_eq!(orchestration.trace_id, parent.trace_id);
        assert_ne!(orchestration.span_id, parent.span_id);
        assert!(contexts.iter().all(|c| *c == orchestration), "{contexts:?}");
        for (_, response) in &run.turns {
            let carried = response.orchestration_trace_context.as_ref().unwrap();
            assert_eq!(
                carried.span_id.as_deref(),
                Some(orchestration.span_id_hex().as_str())
            );
            assert_eq!(carried.span_start_time, Some(ts(t0())));
        }

        // The first turn finishes nothing; each later turn finishes exactly what arrived in it.
        let names: Vec<Vec<&str>> = spans
            .iter()
            .map(|t| t.iter().map(|s| s.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec![],
                vec!["activity:greet"],
                vec!["activity:greet", "orchestration:child"],
                vec!["orchestration:main:timer", "orchestration:main"],
            ],
            "{shape:?}"
        );
        let all: Vec<&SpanRecord> = spans.iter().flatten().collect();
        let mut ids = HashMap::new();
        for span in &all {
            assert_eq!(span.context.trace_id, parent.trace_id, "{}", span.name);
            assert_eq!(span.trace_state.as_deref(), Some("vendor=1"));
            assert!(
                ids.insert(span.context.span_id, span.name.clone())
                    .is_none(),
                "duplicate {}",
                span.name
            );
        }

        // The CLIENT spans are the parents the scheduled work carried; all hang under the orchestration span,
        // which hangs under the starter's span.
        for (i, id) in [0, 1, 2].into_iter().enumerate() {
            let carried = action_context(&run, id);
            assert_eq!(carried.trace_id, parent.trace_id);
            let client = all
                .iter()
                .filter(|s| s.kind == SpanKind::Client)
                .nth(i)
                .unwrap();
            assert_eq!(client.context, carried, "{}", client.name);
            assert_eq!(client.parent_span_id, Some(orchestration.span_id));
        }
        let client_a = &spans[1][0];
        assert_eq!(client_a.start, t0());
        assert_eq!(client_a.end, Some(at(4)));
        assert!(
            client_a
                .attributes
                .contains(&("durabletask.task.task_id", "0".into()))
        );
        let timer = &spans[3][0];
        assert_eq!(
            (timer.kind, timer.parent_span_id),
            (SpanKind::Internal, Some(orchestration.span_id))
        );
        assert_eq!(timer.start, at(9));
        let server = &spans[3][1];
        assert_eq!(server.kind, SpanKind::Server);
        assert_eq!(server.context, orchestration);
        assert_eq!(server.parent_span_id, Some(parent.span_id));
        assert_eq!(server.start, t0());
        assert!(
            server
                .attributes
                .contains(&("durabletask.task.status", "Completed".into()))
        );
        assert!(server.error.is_none());
        by_shape.push(
            all.iter()
                .map(|s| (s.name.clone(), s.context))
                .collect::<Vec<_>>(),
        );
    }
    // Where history drops the trace fields, the derived IDs are the very ones the scheduler's history keeps.
    assert_eq!(by_shape[0], by_shape[1]);
}

#[test]
fn a_full_replay_of_a_turn_reuses_the_ids_and_traces_nothing_again() {
    let (run, _, contexts) = run(Shape::FunctionsHost, Some(PARENT));
    // Turn 3 again, everything in it already past: the same decisions, the same IDs, no span.
    let (request, response) = &run.turns[2];
    let mut replay = request.clone();
    replay.past_events.append(&mut replay.new_events);
    let again = Registry::execute_orchestrator(&registry(), &replay);
    let trace = turn_trace(&replay, &again).unwrap();
    assert!(trace.spans.is_empty(), "{:?}", trace.spans);
    assert_eq!(trace.orchestration, contexts[2]);
    assert_eq!(
        again.orchestration_trace_context,
        response.orchestration_trace_context
    );
}

#[test]
fn without_a_parent_the_orchestration_starts_its_own_trace() {
    let (run_a, spans_a, contexts_a) = run(Shape::Scheduler, None);
    let (_, _, contexts_b) = run(Shape::Scheduler, None);
    // Derived, so every worker and every replay agrees on it.
    assert_eq!(contexts_a[0], contexts_b[0]);
    assert!(contexts_a[0].is_sampled());
    assert_eq!(action_context(&run_a, 0).trace_id, contexts_a[0].trace_id);
    let server = spans_a[3].last().unwrap();
    assert_eq!(server.parent_span_id, None);
    assert_eq!(server.trace_state, None);
}

#[test]
fn a_failed_orchestration_marks_its_span() {
    let mut r = Registry::new();
    r.add_orchestrator("boom", |_ctx: OrchestrationContext, _: ()| async move {
        Err::<(), _>(OrchestrationError::new("Broken", "it broke"))
    });
    let mut run = Run::default();
    let mut first = started(Some(PARENT));
    if let Some(durable_core::proto::history_event::EventType::ExecutionStarted(s)) =
        first.event_type.as_mut()
    {
        s.name = "boom".into();
    }
    let response = run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(t0()), first],
        Shape::Scheduler,
    );
    let trace = turn_trace(&run.turns[0].0, &response).unwrap();
    let server = trace.spans.last().unwrap();
    assert_eq!(server.name, "orchestration:boom");
    assert_eq!(server.error.as_deref(), Some("it broke"));
    assert!(
        server
            .attributes
            .contains(&("durabletask.task.status", "Failed".into()))
    );
}
