//! The replay check over histories recorded turn by turn by the simulated backend: unchanged code is clean, and
//! every kind of change is reported at the right event and sequence number.

mod common;

use std::time::Duration;

use common::*;
use durable_core::FailureDetails;
use durable_core::replay_check::{
    InstanceOutcome, MismatchKind, RecordedHistory, ReplayCheckOptions, ReplayMismatch,
    check_histories, check_history, read_export,
};
use durable_core::{
    EntityId, OrchestrationContext, OrchestrationError, Registry, RetryPolicy, when_all,
};

/// The code as it was when the histories were recorded.
fn v1() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("order", |ctx: OrchestrationContext, n: u32| async move {
        let a: String = ctx.call_activity("reserve", n).await?;
        ctx.create_timer_after(Duration::from_secs(60)).await?;
        let approved: bool = ctx.wait_for_external_event("approval").await?;
        let results = when_all((0..2).map(|i| ctx.call_activity::<_, String>("ship", i))).await;
        let total: i64 = ctx
            .call_entity(&EntityId::new("counter", "orders"), "add", 1)
            .await?;
        let retried: String = ctx
            .call_activity_with_retry("bill", n, RetryPolicy::new(3, Duration::from_secs(5)))
            .await?;
        let child: u32 = ctx.call_sub_orchestrator("child", n, None).await?;
        Ok::<_, OrchestrationError>(format!(
            "{a} {approved} {} {total} {retried} {child}",
            results.len()
        ))
    })
    .add_orchestrator("child", |_ctx: OrchestrationContext, n: u32| async move {
        Ok::<_, OrchestrationError>(n + 1)
    });
    r
}

/// Runs "order" to completion on `registry`, failing "bill" once so that the retry timer is in the history.
fn record_order(registry: &Registry) -> Run {
    let steps = vec![
        step(1, |_| vec![ev::task_completed(0, Some(r#""reserved""#))]),
        step(61, |run| vec![ev::timer_fired(1, run.fire_at(1))]),
        step(62, |_| vec![ev::event_raised("approval", Some("true"))]),
        step(63, |_| {
            vec![
                ev::task_completed(2, Some(r#""s0""#)),
                ev::task_completed(3, Some(r#""s1""#)),
            ]
        }),
        step(64, |run| {
            vec![ev::entity_completed(&run.request_id(4), Some("5"))]
        }),
        step(65, |_| {
            vec![ev::task_failed(
                5,
                &FailureDetails::new("Flaky", "try again"),
            )]
        }),
        step(70, |run| vec![ev::timer_fired(6, run.fire_at(6))]),
        step(71, |_| vec![ev::task_completed(7, Some(r#""billed""#))]),
        step(72, |_| vec![ev::sub_orchestration_completed(8, Some("8"))]),
    ];
    let run = run_incremental(registry, "order", Some("7"), steps, Shape::Scheduler);
    assert!(
        summary(run.last())
            .iter()
            .any(|s| s.contains("Complete") && s.contains("Completed")),
        "the recorded run did not complete: {:?}",
        summary(run.last())
    );
    run
}

fn first_mismatch(
    registry: &Registry,
    history: &[durable_core::proto::HistoryEvent],
) -> ReplayMismatch {
    let check = check_history(
        registry,
        &RecordedHistory::new(INSTANCE, history.to_vec()),
        &ReplayCheckOptions::new(),
    );
    match check.outcome {
        InstanceOutcome::Mismatch(m) => m,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn unchanged_code_matches_every_prefix_of_its_history() {
    let registry = v1();
    let run = record_order(&registry);
    // The history committed after each turn is one a running instance could have (a turn's new events are only
    // recorded together with the actions that turn decided).
    let committed = run.turns[1..]
        .iter()
        .map(|(request, _)| request.past_events.clone());
    assert_eq!(committed.len(), 9);
    for history in committed {
        let check = check_history(
            &registry,
            &RecordedHistory::new(INSTANCE, history),
            &ReplayCheckOptions::new(),
        );
        assert_eq!(check.outcome, InstanceOutcome::Matches);
    }
    let full = RecordedHistory::new(INSTANCE, run.history.clone());
    let report = check_histories(&registry, [&full], &ReplayCheckOptions::new());
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.checked(), 1);
    assert_eq!(report.instances[0].orchestrator.as_deref(), Some("order"));
}

#[test]
fn a_renamed_activity_is_reported_where_it_was_scheduled() {
    let run = record_order(&v1());
    let mut v2 = v1();
    v2.add_orchestrator("order", |ctx: OrchestrationContext, n: u32| async move {
        let a: String = ctx.call_activity("reserve", n).await?;
        ctx.create_timer_after(Duration::from_secs(60)).await?;
        let _: bool = ctx.wait_for_external_event("approval").await?;
        // Renamed: "ship" became "dispatch".
        let results = when_all((0..2).map(|i| ctx.call_activity::<_, String>("dispatch", i))).await;
        Ok::<_, OrchestrationError>(format!("{a} {}", results.len()))
    });
    let mismatch = first_mismatch(&v2, &run.history);
    assert_eq!(mismatch.kind, MismatchKind::NonDeterminism);
    assert_eq!(mismatch.sequence_number, Some(2));
    assert_eq!(mismatch.expected, "TaskScheduled 'ship'");
    assert_eq!(mismatch.found, "ScheduleTask 'dispatch'");
    assert_eq!(mismatch.event, "TaskScheduled 'ship'");
    let index = mismatch.event_index.expect("an event index");
    assert_eq!(run.history[index].event_id, 2);
    assert_eq!(mismatch.event_id, Some(2));
}

#[test]
fn a_timer_inserted_before_an_activity_is_reported() {
    let run = record_order(&v1());
    let mut v2 = v1();
    v2.add_orchestrator("order", |ctx: OrchestrationContext, n: u32| async move {
        ctx.create_timer_after(Duration::from_secs(1)).await?;
        let a: String = ctx.call_activity("reserve", n).await?;
        Ok::<_, OrchestrationError>(a)
    });
    let mismatch = first_mismatch(&v2, &run.history);
    assert_eq!(mismatch.kind, MismatchKind::NonDeterminism);
    assert_eq!(mismatch.sequence_number, Some(0));
    assert_eq!(mismatch.expected, "TaskScheduled 'reserve'");
    assert_eq!(mismatch.found, "CreateTimer");
}

#[test]
fn an_extra_call_where_the_recorded_turn_made_none_is_reported() {
    let mut r = Registry::new();
    r.add_orchestrator("wait", |ctx: OrchestrationContext, (): ()| async move {
        let _: String = ctx.call_activity("a", ()).await?;
        let go: bool = ctx.wait_for_external_event("go").await?;
        Ok::<_, OrchestrationError>(go)
    });
    // Recorded while waiting for "go", after the activity.
    let run = run_incremental(
        &r,
        "wait",
        None,
        vec![step(1, |_| vec![ev::task_completed(0, Some(r#""x""#))])],
        Shape::Scheduler,
    );
    assert_eq!(
        check_history(
            &r,
            &RecordedHistory::new(INSTANCE, run.history.clone()),
            &ReplayCheckOptions::new()
        )
        .outcome,
        InstanceOutcome::Matches
    );
    let mut v2 = Registry::new();
    v2.add_orchestrator("wait", |ctx: OrchestrationContext, (): ()| async move {
        let _: String = ctx.call_activity("a", ()).await?;
        // New: an audit activity before waiting. A worker would only notice when the event arrives.
        let _: () = ctx.call_activity("audit", ()).await?;
        let go: bool = ctx.wait_for_external_event("go").await?;
        Ok::<_, OrchestrationError>(go)
    });
    let mismatch = first_mismatch(&v2, &run.history);
    assert_eq!(mismatch.kind, MismatchKind::UnexpectedAction);
    assert_eq!(mismatch.sequence_number, Some(1));
    assert_eq!(mismatch.found, "ScheduleTask 'audit'");
    assert_eq!(
        mismatch.event_index, None,
        "found at the end of the history"
    );
}

#[test]
fn a_call_moved_to_an_earlier_turn_is_reported_at_the_turn_that_did_not_make_it() {
    let mut v1 = Registry::new();
    v1.add_orchestrator("flow", |ctx: OrchestrationContext, (): ()| async move {
        let _: String = ctx.call_activity("a", ()).await?;
        let _: bool = ctx.wait_for_external_event("go").await?;
        let b: String = ctx.call_activity("b", ()).await?;
        Ok::<_, OrchestrationError>(b)
    });
    let run = run_incremental(
        &v1,
        "flow",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(0, Some(r#""x""#))]),
            step(2, |_| vec![ev::event_raised("go", Some("true"))]),
            step(3, |_| vec![ev::task_completed(1, Some(r#""y""#))]),
        ],
        Shape::Scheduler,
    );
    // v2 schedules "b" before waiting: the sequence numbers still line up, so a worker replaying the whole
    // history would not notice; the turn boundaries show that the recorded code did not call "b" in turn 2.
    let mut v2 = Registry::new();
    v2.add_orchestrator("flow", |ctx: OrchestrationContext, (): ()| async move {
        let _: String = ctx.call_activity("a", ()).await?;
        let b = ctx.call_activity::<_, String>("b", ());
        let _: bool = ctx.wait_for_external_event("go").await?;
        Ok::<_, OrchestrationError>(b.await?)
    });
    let third_turn = run
        .history
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            matches!(
                e.event_type,
                Some(durable_core::proto::history_event::EventType::OrchestratorStarted(_))
            )
        })
        .nth(2)
        .map(|(i, _)| i)
        .expect("three turns");
    let mismatch = first_mismatch(&v2, &run.history);
    assert_eq!(mismatch.kind, MismatchKind::UnexpectedAction);
    assert_eq!(mismatch.sequence_number, Some(1));
    assert_eq!(mismatch.found, "ScheduleTask 'b'");
    assert_eq!(mismatch.event_index, Some(third_turn));
}

#[test]
fn a_different_end_is_reported_at_the_recorded_completion() {
    let run = record_order(&v1());
    let mut v2 = v1();
    v2.add_orchestrator("order", |ctx: OrchestrationContext, n: u32| async move {
        let a: String = ctx.call_activity("reserve", n).await?;
        ctx.create_timer_after(Duration::from_secs(60)).await?;
        let _: bool = ctx.wait_for_external_event("approval").await?;
        let _ = when_all((0..2).map(|i| ctx.call_activity::<_, String>("ship", i))).await;
        let _: i64 = ctx
            .call_entity(&EntityId::new("counter", "orders"), "add", 1)
            .await?;
        let _: String = ctx
            .call_activity_with_retry("bill", n, RetryPolicy::new(3, Duration::from_secs(5)))
            .await?;
        let _: u32 = ctx.call_sub_orchestrator("child", n, None).await?;
        if a == "reserved" {
            return Err(OrchestrationError::msg("refused"));
        }
        Ok::<_, OrchestrationError>(a)
    });
    let mismatch = first_mismatch(&v2, &run.history);
    assert_eq!(mismatch.kind, MismatchKind::Completion);
    assert_eq!(mismatch.expected, "ExecutionCompleted (Completed)");
    assert!(
        mismatch.found.starts_with("CompleteOrchestration (Failed"),
        "{mismatch}"
    );
    assert_eq!(mismatch.sequence_number, Some(9));
}

#[test]
fn changed_outputs_alone_are_not_mismatches() {
    let run = record_order(&v1());
    let mut v2 = v1();
    v2.add_orchestrator("child", |_ctx: OrchestrationContext, n: u32| async move {
        Ok::<_, OrchestrationError>(n * 100)
    });
    let history = RecordedHistory::new(INSTANCE, run.history.clone());
    assert!(check_histories(&v2, [&history], &ReplayCheckOptions::new()).is_clean());
}

#[test]
fn removed_orchestrators_and_changed_inputs_are_reported_or_skipped() {
    let run = record_order(&v1());
    let mut without = Registry::new();
    without.add_orchestrator("child", |_ctx: OrchestrationContext, n: u32| async move {
        Ok::<_, OrchestrationError>(n)
    });
    let mismatch = first_mismatch(&without, &run.history);
    assert_eq!(mismatch.kind, MismatchKind::OrchestratorNotFound);
    assert_eq!(mismatch.event, "ExecutionStarted 'order'");

    let history = RecordedHistory::new(INSTANCE, run.history.clone());
    let skipping = ReplayCheckOptions::new().skip_unknown_orchestrators(true);
    let report = check_histories(&without, [&history], &skipping);
    assert!(report.is_clean());
    assert_eq!(report.checked(), 0);

    let mut new_input = Registry::new();
    new_input.add_orchestrator(
        "order",
        |_ctx: OrchestrationContext, s: Vec<String>| async move { Ok::<_, OrchestrationError>(s) },
    );
    assert_eq!(
        first_mismatch(&new_input, &run.history).kind,
        MismatchKind::Input
    );
}

#[test]
fn entities_and_histories_without_a_turn_are_skipped() {
    let registry = v1();
    let entity = RecordedHistory::new("@counter@orders", vec![ev::orchestrator_started(t0())]);
    let pending = RecordedHistory::new(
        "p",
        vec![ev::execution_started(
            INSTANCE,
            EXECUTION,
            "order",
            Some("1"),
        )],
    );
    let report = check_histories(&registry, [&entity, &pending], &ReplayCheckOptions::new());
    assert_eq!(report.checked(), 0);
    assert!(
        report
            .instances
            .iter()
            .all(|i| matches!(i.outcome, InstanceOutcome::Skipped(_)))
    );
}

#[test]
fn the_export_format_round_trips_and_names_bad_lines() {
    let run = record_order(&v1());
    let history = RecordedHistory::new("order:1", run.history.clone());
    let line = history.to_export_line();
    assert!(!line.contains('\n'));
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["format"], "durable-history/1");
    assert_eq!(value["instanceId"], "order:1");
    assert_eq!(value["orchestrator"], "order");
    assert_eq!(RecordedHistory::from_export_line(&line).unwrap(), history);

    let text = format!("{line}\n\n{line}\n");
    assert_eq!(read_export(&text).unwrap().len(), 2);

    let bad = format!(
        "{line}\n{{\"format\":\"durable-history/1\",\"instanceId\":\"x\",\"history\":\"%%\"}}\n"
    );
    let error = read_export(&bad).unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("base64"), "{error}");
    let error = read_export(r#"{"format":"other","instanceId":"x","history":""}"#).unwrap_err();
    assert!(error.message.contains("unknown format"), "{error}");
}

/// The id of the latest action whose summary contains `what`.
fn latest(run: &Run, what: &str) -> i32 {
    *run.all_actions
        .iter()
        .filter(|(_, a)| describe(a).contains(what))
        .map(|(id, _)| id)
        .next_back()
        .unwrap_or_else(|| panic!("no {what} action"))
}

#[test]
fn split_timers_locks_signals_timeouts_and_continue_as_new_replay_clean() {
    let mut r = Registry::new();
    r.add_orchestrator("mixed", |ctx: OrchestrationContext, n: u32| async move {
        // Longer than the 3-day maximum: two timer slices.
        ctx.create_timer_after(Duration::from_secs(4 * 24 * 3600))
            .await?;
        let counter = EntityId::new("counter", "1");
        let lock = ctx.lock_entities(std::slice::from_ref(&counter)).await?;
        let v: i64 = ctx.call_entity(&counter, "add", 1).await?;
        lock.release();
        ctx.signal_entity(&EntityId::new("counter", "2"), "add", v)?;
        let go: Result<i64, _> = ctx
            .wait_for_external_event_with_timeout("go", Duration::from_secs(60))
            .await;
        if n == 0 {
            ctx.continue_as_new(&(n + 1), false)?;
        }
        Ok::<_, OrchestrationError>(go.unwrap_or(-1) + v)
    });
    let day = 24 * 3600;
    let run = run_incremental(
        &r,
        "mixed",
        Some("0"),
        vec![
            step(3 * day, |run| {
                let id = latest(run, "CreateTimer");
                vec![ev::timer_fired(id, run.fire_at(id))]
            }),
            step(4 * day, |run| {
                let id = latest(run, "CreateTimer");
                vec![ev::timer_fired(id, run.fire_at(id))]
            }),
            step(4 * day + 1, |run| {
                vec![ev::lock_granted(&run.request_id(latest(run, "Lock")))]
            }),
            step(4 * day + 2, |run| {
                vec![ev::entity_completed(
                    &run.request_id(latest(run, "EntityCall")),
                    Some("5"),
                )]
            }),
            step(4 * day + 3, |_| vec![ev::event_raised("go", Some("1"))]),
        ],
        Shape::Scheduler,
    );
    assert!(
        summary(run.last())
            .iter()
            .any(|s| s.contains("ContinuedAsNew")),
        "{:?}",
        summary(run.last())
    );
    for history in run.turns[1..]
        .iter()
        .map(|(request, _)| request.past_events.clone())
        .chain([run.history.clone()])
    {
        let check = check_history(
            &r,
            &RecordedHistory::new(INSTANCE, history),
            &ReplayCheckOptions::new(),
        );
        assert_eq!(check.outcome, InstanceOutcome::Matches);
    }
}
