//! Golden tests for rewinding: the history a rewind request is answered with, and how the instance goes on from it
//! (only the failed work runs again).

mod common;

use common::*;
use durable_core::FailureDetails;
use durable_core::proto::{self, history_event::EventType};
use durable_core::{
    CallOptions, OrchestrationContext, OrchestrationError, Registry, RetryPolicy, when_all,
};
use std::time::Duration;

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator(
        "two_steps",
        |ctx: OrchestrationContext, (): ()| async move {
            let a: u32 = ctx.call_activity("a", ()).await?;
            let b: u32 = ctx.call_activity("b", ()).await?;
            Ok::<_, OrchestrationError>(a + b)
        },
    )
    .add_orchestrator("fan_out", |ctx: OrchestrationContext, n: u32| async move {
        let tasks: Vec<_> = (0..n)
            .map(|i| ctx.call_activity::<_, u32>("double", i))
            .collect();
        let mut sum = 0;
        for r in when_all(tasks).await {
            sum += r?;
        }
        Ok::<_, OrchestrationError>(sum)
    })
    .add_orchestrator("parent", |ctx: OrchestrationContext, (): ()| async move {
        let a: u32 = ctx.call_activity("a", ()).await?;
        let options = CallOptions::new().instance_id("child-1");
        let child: String = ctx
            .call_sub_orchestrator_with_options("child", a, options)
            .await?;
        Ok::<_, OrchestrationError>(format!("{a}:{child}"))
    })
    .add_orchestrator("retried", |ctx: OrchestrationContext, (): ()| async move {
        let policy = RetryPolicy::new(2, Duration::from_secs(10));
        Ok::<_, OrchestrationError>(
            ctx.call_activity_with_retry::<_, String>("flaky", (), policy)
                .await?,
        )
    })
    .add_orchestrator("child", |ctx: OrchestrationContext, n: u32| async move {
        Ok::<_, OrchestrationError>(ctx.call_activity::<_, String>("flaky", n).await?)
    });
    r
}

/// The new events of a rewind request, as backends send them.
fn rewind_request(secs: i64, parent_execution_id: Option<&str>) -> Vec<proto::HistoryEvent> {
    vec![
        ev::orchestrator_started(at(secs)),
        execution_rewound(at(secs), "try again", parent_execution_id),
    ]
}

/// Sends a rewind request to the (failed) instance of `run` and installs the history it is answered with, as a
/// backend does. Returns that history.
fn rewind(r: &Registry, run: &mut Run, secs: i64) -> Vec<proto::HistoryEvent> {
    let response = execute(r, &run.history, &rewind_request(secs, None));
    let history = rewound_history(&response);
    run.history.clone_from(&history);
    history
}

fn failed_two_steps(r: &Registry) -> Run {
    let run = run_incremental(
        r,
        "two_steps",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(0, Some("1"))]),
            step(2, |_| {
                vec![ev::task_failed(1, &FailureDetails::new("Boom", "b failed"))]
            }),
        ],
        Shape::Scheduler,
    );
    assert!(
        summary(run.last())[0].starts_with("2 Complete Failed"),
        "{:?}",
        summary(run.last())
    );
    run
}

#[test]
fn a_failed_activity_runs_again_and_the_instance_completes() {
    let r = registry();
    let mut run = failed_two_steps(&r);
    let history = rewind(&r, &mut run, 100);
    // The failed call and the end are gone; the successful call and the turns' bookkeeping stay.
    assert_eq!(
        history_summary(&history),
        [
            "-1 OrchestratorStarted",
            "-1 ExecutionStarted two_steps",
            "0 TaskScheduled a",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 TaskCompleted 0 1",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 ExecutionRewound try again",
        ]
    );
    let execution_id = execution_id_of(&history).unwrap();
    assert_ne!(execution_id, "exec-1");
    assert_eq!(execution_id.len(), 32, "{execution_id}");

    // The replay after the rewrite schedules `b` again (only `b`), under its old sequence number.
    let response = run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(at(101))],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), ["1 ScheduleTask b null"]);
    let response = run_turn(
        &r,
        &mut run,
        vec![
            ev::orchestrator_started(at(102)),
            ev::task_completed(1, Some("2")),
        ],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), ["2 Complete Completed 3"]);
    check_replays(&r, &run);
}

#[test]
fn the_rewound_execution_id_is_deterministic_and_new_for_every_rewind() {
    let r = registry();
    let run = failed_two_steps(&r);
    let id_at = |secs| {
        let response = execute(&r, &run.history, &rewind_request(secs, None));
        execution_id_of(&rewound_history(&response)).unwrap()
    };
    assert_eq!(id_at(100), id_at(100));
    assert_ne!(id_at(100), id_at(200));
}

#[test]
fn an_instance_rewound_twice_keeps_both_markers() {
    let r = registry();
    let mut run = failed_two_steps(&r);
    let first = execution_id_of(&rewind(&r, &mut run, 100));
    run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(at(101))],
        Shape::Scheduler,
    );
    let response = run_turn(
        &r,
        &mut run,
        vec![
            ev::orchestrator_started(at(102)),
            ev::task_failed(1, &FailureDetails::new("Boom", "b failed again")),
        ],
        Shape::Scheduler,
    );
    assert!(summary(&response)[0].starts_with("2 Complete Failed"));
    let history = rewind(&r, &mut run, 200);
    let summary_of_history = history_summary(&history);
    let markers: Vec<_> = summary_of_history
        .iter()
        .filter(|e| e.contains("ExecutionRewound"))
        .collect();
    assert_eq!(markers.len(), 2, "{summary_of_history:#?}");
    assert!(
        !summary_of_history
            .iter()
            .any(|e| e.contains("TaskScheduled b")
                || e.contains("TaskFailed")
                || e.contains("ExecutionCompleted"))
    );
    assert_ne!(execution_id_of(&history), first);

    let response = run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(at(201))],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), ["1 ScheduleTask b null"]);
}

#[test]
fn only_the_failed_calls_of_a_fan_out_run_again() {
    let r = registry();
    let mut run = run_incremental(
        &r,
        "fan_out",
        Some("3"),
        vec![step(1, |_| {
            vec![
                ev::task_failed(1, &FailureDetails::new("Boom", "one failed")),
                ev::task_completed(0, Some("0")),
                ev::task_failed(2, &FailureDetails::new("Boom", "two failed")),
            ]
        })],
        Shape::Scheduler,
    );
    assert!(summary(run.last())[0].starts_with("3 Complete Failed"));
    let history = rewind(&r, &mut run, 100);
    assert_eq!(
        history_summary(&history),
        [
            "-1 OrchestratorStarted",
            "-1 ExecutionStarted fan_out",
            "0 TaskScheduled double",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 TaskCompleted 0 0",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 ExecutionRewound try again",
        ]
    );
    let response = run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(at(101))],
        Shape::Scheduler,
    );
    assert_eq!(
        summary(&response),
        ["1 ScheduleTask double 1", "2 ScheduleTask double 2"]
    );
    let response = run_turn(
        &r,
        &mut run,
        vec![
            ev::orchestrator_started(at(102)),
            ev::task_completed(2, Some("4")),
            ev::task_completed(1, Some("2")),
        ],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), ["3 Complete Completed 6"]);
    check_replays(&r, &run);
}

#[test]
fn a_failed_sub_orchestration_stays_created_and_its_new_outcome_is_awaited() {
    let r = registry();
    let mut run = run_incremental(
        &r,
        "parent",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(0, Some("7"))]),
            step(2, |_| {
                vec![ev::sub_orchestration_failed(
                    1,
                    &FailureDetails::new("Boom", "the child failed"),
                )]
            }),
        ],
        Shape::Scheduler,
    );
    assert!(summary(run.last())[0].starts_with("2 Complete Failed"));
    let history = rewind(&r, &mut run, 100);
    // The creation stays, so the backend knows which child to rewind and the parent does not start another one.
    assert_eq!(
        history_summary(&history),
        [
            "-1 OrchestratorStarted",
            "-1 ExecutionStarted parent",
            "0 TaskScheduled a",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 TaskCompleted 0 7",
            "1 SubOrchestrationCreated child child-1",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 ExecutionRewound try again",
        ]
    );
    // The replay after the rewrite waits for the (rewound) child: nothing to do.
    let response = run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(at(101))],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), Vec::<String>::new());
    let response = run_turn(
        &r,
        &mut run,
        vec![
            ev::orchestrator_started(at(150)),
            ev::sub_orchestration_completed(1, Some(r#""fine""#)),
        ],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), [r#"2 Complete Completed "7:fine""#]);
    check_replays(&r, &run);
}

#[test]
fn a_rewound_sub_orchestration_reports_to_its_parents_new_execution() {
    let r = registry();
    let mut run = run_incremental(
        &r,
        "child",
        Some("7"),
        vec![step(1, |_| {
            vec![ev::task_failed(
                0,
                &FailureDetails::new("Boom", "flaky failed"),
            )]
        })],
        Shape::Scheduler,
    );
    // Started by a parent: ExecutionStarted names it.
    let Some(EventType::ExecutionStarted(started)) = &mut run.history[1].event_type else {
        panic!("the second event is not ExecutionStarted");
    };
    started.parent_instance = Some(proto::ParentInstanceInfo {
        task_scheduled_id: 1,
        name: Some("parent".into()),
        orchestration_instance: Some(proto::OrchestrationInstance {
            instance_id: "parent-1".into(),
            execution_id: Some("parent-exec-1".into()),
        }),
        ..Default::default()
    });

    let mut request = rewind_request(100, Some("parent-exec-2"));
    let trace = proto::TraceContext {
        trace_parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        ..Default::default()
    };
    if let Some(EventType::ExecutionRewound(rewound)) = &mut request[1].event_type {
        rewound.parent_trace_context = Some(trace.clone());
    }
    let response = execute(&r, &run.history, &request);
    let history = rewound_history(&response);
    assert_eq!(
        history_summary(&history),
        [
            "-1 OrchestratorStarted",
            "-1 ExecutionStarted child",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 OrchestratorCompleted",
            "-1 OrchestratorStarted",
            "-1 ExecutionRewound try again",
        ]
    );
    let Some(EventType::ExecutionStarted(started)) = &history[1].event_type else {
        panic!("the second event is not ExecutionStarted");
    };
    let parent = started.parent_instance.as_ref().unwrap();
    let parent_instance = parent.orchestration_instance.as_ref().unwrap();
    assert_eq!(parent_instance.instance_id, "parent-1");
    assert_eq!(
        parent_instance.execution_id.as_deref(),
        Some("parent-exec-2")
    );
    assert_eq!(parent.task_scheduled_id, 1);
    assert_eq!(started.input.as_deref(), Some("7"));
    assert_eq!(started.parent_trace_context, Some(trace));
    assert_ne!(execution_id_of(&history).as_deref(), Some("exec-1"));

    run.history = history;
    let response = run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(at(101))],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), ["0 ScheduleTask flaky 7"]);
}

#[test]
fn rewinding_an_instance_that_did_not_fail_restates_its_outcome() {
    let r = registry();
    let completed = run_incremental(
        &r,
        "two_steps",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(0, Some("1"))]),
            step(2, |_| vec![ev::task_completed(1, Some("2"))]),
        ],
        Shape::Scheduler,
    );
    let response = execute(&r, &completed.history, &rewind_request(100, None));
    assert_eq!(summary(&response), ["-1 Complete Completed 3"]);

    let terminated = run_incremental(
        &r,
        "two_steps",
        None,
        vec![step(1, |_| vec![ev::terminated(Some(r#""stop""#))])],
        Shape::Scheduler,
    );
    let response = execute(&r, &terminated.history, &rewind_request(100, None));
    assert_eq!(summary(&response), [r#"-1 Complete Terminated "stop""#]);
}

#[test]
fn a_rewind_request_for_a_running_instance_changes_nothing() {
    let r = registry();
    let mut run = run_incremental(&r, "two_steps", None, vec![], Shape::Scheduler);
    let response = run_turn(&r, &mut run, rewind_request(1, None), Shape::Scheduler);
    assert_eq!(summary(&response), Vec::<String>::new());
    let response = run_turn(
        &r,
        &mut run,
        vec![
            ev::orchestrator_started(at(2)),
            ev::task_completed(0, Some("1")),
        ],
        Shape::Scheduler,
    );
    assert_eq!(summary(&response), ["1 ScheduleTask b null"]);
    check_replays(&r, &run);
}

/// A known limit shared with the SDKs: the timers between the attempts of a retried call stay in the rewound history,
/// which the replay cannot line up with the call scheduled again. The instance fails clearly instead of misbehaving.
#[test]
fn a_rewound_retried_call_fails_with_a_non_determinism_error() {
    let r = registry();
    let mut run = run_incremental(
        &r,
        "retried",
        None,
        vec![
            step(1, |_| {
                vec![ev::task_failed(0, &FailureDetails::new("Boom", "first"))]
            }),
            step(11, |run| vec![ev::timer_fired(1, run.fire_at(1))]),
            step(12, |_| {
                vec![ev::task_failed(2, &FailureDetails::new("Boom", "second"))]
            }),
        ],
        Shape::Scheduler,
    );
    assert!(summary(run.last())[0].starts_with("3 Complete Failed"));
    let history = rewind(&r, &mut run, 100);
    assert!(history_summary(&history).contains(&"1 TimerCreated".to_string()));
    let response = run_turn(
        &r,
        &mut run,
        vec![ev::orchestrator_started(at(101))],
        Shape::Scheduler,
    );
    let outcome = summary(&response);
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    assert!(
        outcome[0].contains("Complete Failed [NonDeterminism"),
        "{outcome:?}"
    );
}
