//! Golden replay tests: activities, retries, sub-orchestrations, fan-out/fan-in and `when_any`.

mod common;

use std::time::Duration;

use common::*;
use durable_core::FailureDetails;
use durable_core::{
    ActivityError, CallOptions, OrchestrationContext, OrchestrationError, Registry, RetryPolicy,
    TaskError, when_all, when_any,
};

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("sequence", |ctx: OrchestrationContext, n: u32| async move {
        let mut out = Vec::new();
        for i in 0..n {
            let v: String = ctx.call_activity("hello", format!("c{i}")).await?;
            out.push(v);
        }
        Ok::<_, OrchestrationError>(out)
    })
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
    .add_orchestrator("race", |ctx: OrchestrationContext, (): ()| async move {
        let a = ctx.call_activity::<_, String>("slow", "a");
        let b = ctx.call_activity::<_, String>("slow", "b");
        let (winner, value) = when_any([a, b]).await;
        Ok::<_, OrchestrationError>(format!("{winner}:{}", value?))
    })
    .add_orchestrator(
        "race_late",
        |ctx: OrchestrationContext, (): ()| async move {
            // Both tasks may be complete before when_any is first polled; history order must still decide.
            let a = ctx.call_activity::<_, String>("slow", "a");
            let b = ctx.call_activity::<_, String>("slow", "b");
            ctx.wait_for_external_event::<()>("go").await?;
            let (winner, value) = when_any([a, b]).await;
            Ok::<_, OrchestrationError>(format!("{winner}:{}", value?))
        },
    )
    .add_orchestrator("retry", |ctx: OrchestrationContext, (): ()| async move {
        let policy = RetryPolicy::new(3, Duration::from_secs(10)).backoff_coefficient(2.0);
        let v: String = ctx.call_activity_with_retry("flaky", (), policy).await?;
        Ok::<_, OrchestrationError>(v)
    })
    .add_orchestrator(
        "parallel_retries",
        |ctx: OrchestrationContext, (): ()| async move {
            let policy = RetryPolicy::new(3, Duration::from_secs(10));
            let calls = ["x", "y"]
                .map(|name| ctx.call_activity_with_retry::<_, String>(name, (), policy.clone()));
            let results: Result<Vec<String>, TaskError> =
                when_all(calls).await.into_iter().collect();
            Ok::<_, OrchestrationError>(results?.join(","))
        },
    )
    .add_orchestrator("retry_if", |ctx: OrchestrationContext, (): ()| async move {
        let policy =
            RetryPolicy::new(5, Duration::from_secs(1)).retry_if(|f| f.error_type == "Transient");
        let v: String = ctx.call_activity_with_retry("flaky", (), policy).await?;
        Ok::<_, OrchestrationError>(v)
    })
    .add_orchestrator("options", |ctx: OrchestrationContext, (): ()| async move {
        let opts = CallOptions::new().version("2").tag("team", "blue");
        let a: u32 = ctx
            .call_activity_with_options("v", (), opts.clone())
            .await?;
        let b: u32 = ctx
            .call_sub_orchestrator_with_options(
                "child",
                (),
                opts.instance_id("kid")
                    .retry(RetryPolicy::new(2, Duration::ZERO)),
            )
            .await?;
        Ok::<_, OrchestrationError>(a + b)
    })
    .add_orchestrator("catch", |ctx: OrchestrationContext, (): ()| async move {
        match ctx.call_activity::<_, ()>("boom", ()).await {
            Err(TaskError::Failed {
                kind,
                name,
                details,
            }) => Ok::<_, OrchestrationError>(format!(
                "{kind}/{name}/{}/{}",
                details.error_type, details.error_message
            )),
            other => Err(OrchestrationError::msg(format!("unexpected {other:?}"))),
        }
    })
    .add_orchestrator(
        "propagate",
        |ctx: OrchestrationContext, (): ()| async move {
            ctx.call_activity::<_, ()>("boom", ()).await?;
            Ok::<_, OrchestrationError>(())
        },
    )
    .add_orchestrator("parent", |ctx: OrchestrationContext, (): ()| async move {
        let a: u32 = ctx.call_sub_orchestrator("child", 1, None).await?;
        let b: u32 = ctx
            .call_sub_orchestrator("child", 2, Some("explicit".into()))
            .await?;
        Ok::<_, OrchestrationError>(a + b)
    })
    .add_orchestrator(
        "parent_retry",
        |ctx: OrchestrationContext, (): ()| async move {
            let policy = RetryPolicy::new(2, Duration::from_secs(5));
            let a: u32 = ctx
                .call_sub_orchestrator_with_retry("child", 1, None, policy)
                .await?;
            Ok::<_, OrchestrationError>(a)
        },
    )
    .add_orchestrator("nested", |ctx: OrchestrationContext, (): ()| async move {
        // Each branch runs two activities in sequence; the branches race as groups.
        let branch = |tag: &'static str| {
            let ctx = ctx.clone();
            Box::pin(async move {
                let parts = when_all([
                    ctx.call_activity::<_, u32>("part", format!("{tag}1")),
                    ctx.call_activity::<_, u32>("part", format!("{tag}2")),
                ])
                .await;
                let sum: u32 = parts.into_iter().map(|p| p.unwrap_or(0)).sum();
                let last: u32 = ctx.call_activity("finish", tag).await?;
                Ok::<_, TaskError>(sum + last)
            }) as durable_core::LocalBoxFuture<'static, Result<u32, TaskError>>
        };
        let (winner, total) = when_any([branch("a"), branch("b")]).await;
        Ok::<_, OrchestrationError>(format!("{winner}:{}", total?))
    })
    .add_activity("hello", |_ctx, c: String| async move {
        Ok::<_, ActivityError>(format!("hi {c}"))
    })
    .add_orchestrator(
        "nullable",
        |ctx: OrchestrationContext, input: Option<String>| async move {
            let result: Option<u32> = ctx.call_activity("maybe", &input).await?;
            Ok::<_, OrchestrationError>(format!("{input:?}/{result:?}"))
        },
    );
    r
}

#[test]
fn sequence_of_activities() {
    let r = registry();
    let run = run_both(
        &r,
        "sequence",
        Some("2"),
        vec![
            step(1, |_| vec![ev::task_completed(0, Some(r#""hi c0""#))]),
            step(2, |_| vec![ev::task_completed(1, Some(r#""hi c1""#))]),
        ],
    );
    assert_eq!(summary(&run.turns[0].1), ["0 ScheduleTask hello \"c0\""]);
    assert_eq!(summary(&run.turns[1].1), ["1 ScheduleTask hello \"c1\""]);
    assert_eq!(
        summary(run.last()),
        [r#"2 Complete Completed ["hi c0","hi c1"]"#]
    );
}

#[test]
fn fan_out_fan_in() {
    let r = registry();
    let run = run_both(
        &r,
        "fan_out",
        Some("3"),
        vec![
            step(1, |_| vec![ev::task_completed(2, Some("4"))]),
            step(2, |_| vec![ev::task_completed(0, Some("0"))]),
            step(3, |_| vec![ev::task_completed(1, Some("2"))]),
        ],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        [
            "0 ScheduleTask double 0",
            "1 ScheduleTask double 1",
            "2 ScheduleTask double 2"
        ]
    );
    assert!(run.turns[1].1.actions.is_empty());
    assert!(run.turns[2].1.actions.is_empty());
    assert_eq!(summary(run.last()), ["3 Complete Completed 6"]);
}

#[test]
fn when_any_picks_the_first_completion_in_history() {
    let r = registry();
    let run = run_both(
        &r,
        "race",
        None,
        vec![step(1, |_| {
            vec![
                ev::task_completed(1, Some(r#""B""#)),
                ev::task_completed(0, Some(r#""A""#)),
            ]
        })],
    );
    assert_eq!(summary(run.last()), [r#"2 Complete Completed "1:B""#]);
}

#[test]
fn when_any_uses_history_order_even_when_both_completed_earlier() {
    let r = registry();
    let run = run_both(
        &r,
        "race_late",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(1, Some(r#""B""#))]),
            step(2, |_| vec![ev::task_completed(0, Some(r#""A""#))]),
            step(3, |_| vec![ev::event_raised("GO", None)]),
        ],
    );
    assert_eq!(summary(run.last()), [r#"2 Complete Completed "1:B""#]);
}

#[test]
fn retry_waits_on_durable_timers_then_succeeds() {
    let r = registry();
    let run = run_both(
        &r,
        "retry",
        None,
        vec![
            step(1, |_| {
                vec![ev::task_failed(0, &FailureDetails::new("Io", "try again"))]
            }),
            step(11, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(12, |_| {
                vec![ev::task_failed(2, &FailureDetails::new("Io", "try again"))]
            }),
            step(32, |r| vec![ev::timer_fired(3, r.fire_at(3))]),
            step(33, |_| vec![ev::task_completed(4, Some(r#""ok""#))]),
        ],
    );
    // First wait 10s after the failure at t+1, second wait 20s (backoff 2.0) after the failure at t+12.
    assert_eq!(summary(&run.turns[1].1), ["1 CreateTimer +11s"]);
    assert_eq!(summary(&run.turns[2].1), ["2 ScheduleTask flaky null"]);
    assert_eq!(summary(&run.turns[3].1), ["3 CreateTimer +32s"]);
    assert_eq!(summary(&run.turns[4].1), ["4 ScheduleTask flaky null"]);
    assert_eq!(summary(run.last()), [r#"5 Complete Completed "ok""#]);
}

#[test]
fn retry_gives_up_after_max_attempts() {
    let r = registry();
    let run = run_both(
        &r,
        "retry",
        None,
        vec![
            step(1, |_| {
                vec![ev::task_failed(0, &FailureDetails::new("Io", "1"))]
            }),
            step(11, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(12, |_| {
                vec![ev::task_failed(2, &FailureDetails::new("Io", "2"))]
            }),
            step(32, |r| vec![ev::timer_fired(3, r.fire_at(3))]),
            step(33, |_| {
                vec![ev::task_failed(4, &FailureDetails::new("Io", "3"))]
            }),
        ],
    );
    let f = failure(run.last()).unwrap();
    assert_eq!(f.error_type, "TaskFailedError");
    assert_eq!(f.inner_failure.unwrap().error_message, "3");
}

#[test]
fn retry_stops_at_non_retriable_failure() {
    let r = registry();
    let run = run_both(
        &r,
        "retry",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(
                0,
                &FailureDetails::new("Bad", "no").with_non_retriable(true),
            )]
        })],
    );
    assert_eq!(
        summary(run.last()),
        ["1 Complete Failed [TaskFailedError: activity 'flaky' failed: no]"]
    );
}

#[test]
fn activity_failure_can_be_caught_and_inspected() {
    let r = registry();
    let run = run_both(
        &r,
        "catch",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(0, &FailureDetails::new("Boom", "bad"))]
        })],
    );
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "activity/boom/Boom/bad""#]
    );
}

#[test]
fn activity_failure_propagates_with_inner_failure() {
    let r = registry();
    let run = run_both(
        &r,
        "propagate",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(0, &FailureDetails::new("Boom", "bad"))]
        })],
    );
    let f = failure(run.last()).unwrap();
    assert_eq!(f.error_type, "TaskFailedError");
    let inner = f.inner_failure.unwrap();
    assert_eq!(
        (inner.error_type.as_str(), inner.error_message.as_str()),
        ("Boom", "bad")
    );
}

#[test]
fn failure_envelope_in_task_completed_is_a_failure() {
    let r = registry();
    let envelope = durable_core::failure_envelope::encode(
        &FailureDetails::new("Boom", "through the host").to_proto(),
    )
    .to_string();
    let run = run_both(
        &r,
        "catch",
        None,
        vec![step(1, move |_| {
            vec![ev::task_completed(0, Some(envelope.as_str()))]
        })],
    );
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "activity/boom/Boom/through the host""#]
    );
}

#[test]
fn sub_orchestrations_get_derived_or_explicit_ids() {
    let r = registry();
    let run = run_both(
        &r,
        "parent",
        None,
        vec![
            step(1, |_| vec![ev::sub_orchestration_completed(0, Some("10"))]),
            step(2, |_| vec![ev::sub_orchestration_completed(1, Some("20"))]),
        ],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        ["0 CreateSubOrchestration child inst-1:0000 1"]
    );
    assert_eq!(
        summary(&run.turns[1].1),
        ["1 CreateSubOrchestration child explicit 2"]
    );
    assert_eq!(summary(run.last()), ["2 Complete Completed 30"]);
}

#[test]
fn sub_orchestration_retry_keeps_the_child_id() {
    let r = registry();
    let run = run_both(
        &r,
        "parent_retry",
        None,
        vec![
            step(1, |_| {
                vec![ev::sub_orchestration_failed(
                    0,
                    &FailureDetails::new("X", "first"),
                )]
            }),
            step(6, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(7, |_| vec![ev::sub_orchestration_completed(2, Some("7"))]),
        ],
    );
    assert_eq!(
        summary(&run.turns[2].1),
        ["2 CreateSubOrchestration child inst-1:0000 1"]
    );
    assert_eq!(summary(run.last()), ["3 Complete Completed 7"]);
}

#[test]
fn unknown_completion_ids_are_ignored() {
    let r = registry();
    let run = run_both(
        &r,
        "sequence",
        Some("1"),
        vec![
            step(1, |_| {
                vec![ev::task_completed(42, Some("1")), ev::timer_fired(7, at(0))]
            }),
            step(2, |_| vec![ev::task_completed(0, Some(r#""hi c0""#))]),
        ],
    );
    assert!(run.turns[1].1.actions.is_empty());
    assert_eq!(summary(run.last()), [r#"1 Complete Completed ["hi c0"]"#]);
}

#[test]
fn a_result_of_the_wrong_type_is_a_decode_error() {
    let r = registry();
    let run = run_both(
        &r,
        "sequence",
        Some("1"),
        vec![step(1, |_| vec![ev::task_completed(0, Some("12"))])],
    );
    let f = failure(run.last()).unwrap();
    assert_eq!(f.error_type, "SerializationError");
    assert!(
        f.error_message
            .contains("could not decode the result of activity 'hello'"),
        "{}",
        f.error_message
    );
}

#[test]
fn nested_combinators_wake_the_right_branches() {
    let r = registry();
    let run = run_both(
        &r,
        "nested",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(3, Some("1"))]),
            step(2, |_| vec![ev::task_completed(0, Some("10"))]),
            step(3, |_| vec![ev::task_completed(2, Some("2"))]),
            step(4, |_| vec![ev::task_completed(1, Some("20"))]),
            step(5, |_| vec![ev::task_completed(5, Some("300"))]),
            step(6, |_| vec![ev::task_completed(4, Some("100"))]),
        ],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        [
            "0 ScheduleTask part \"a1\"",
            "1 ScheduleTask part \"a2\"",
            "2 ScheduleTask part \"b1\"",
            "3 ScheduleTask part \"b2\""
        ]
    );
    // Branch b finishes its parts first (turn 3), branch a at turn 4.
    assert_eq!(summary(&run.turns[3].1), ["4 ScheduleTask finish \"b\""]);
    assert_eq!(summary(&run.turns[4].1), ["5 ScheduleTask finish \"a\""]);
    // a's finish (id 5) completes before b's (id 4) in history.
    assert_eq!(summary(run.last()), ["6 Complete Completed \"0:330\""]);
}

#[test]
fn retry_predicate_decides_which_failures_are_retried() {
    let r = registry();
    let run = run_both(
        &r,
        "retry_if",
        None,
        vec![
            step(1, |_| {
                vec![ev::task_failed(
                    0,
                    &FailureDetails::new("Transient", "again"),
                )]
            }),
            step(2, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(3, |_| {
                vec![ev::task_failed(2, &FailureDetails::new("Fatal", "stop"))]
            }),
        ],
    );
    assert_eq!(summary(&run.turns[1].1), ["1 CreateTimer +2s"]);
    let f = failure(run.last()).unwrap();
    assert_eq!(f.inner_failure.unwrap().error_type, "Fatal");
}

#[test]
fn call_options_carry_version_tags_and_instance_id() {
    use durable_core::proto::orchestrator_action::OrchestratorActionType;
    let r = registry();
    let run = run_both(
        &r,
        "options",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(0, Some("1"))]),
            step(2, |_| {
                vec![ev::sub_orchestration_failed(
                    1,
                    &FailureDetails::new("X", "once"),
                )]
            }),
            step(2, |r| vec![ev::timer_fired(2, r.fire_at(2))]),
            step(3, |_| vec![ev::sub_orchestration_completed(3, Some("2"))]),
        ],
    );
    match &run.action(0).orchestrator_action_type {
        Some(OrchestratorActionType::ScheduleTask(t)) => {
            assert_eq!(t.version.as_deref(), Some("2"));
            assert_eq!(t.tags.get("team").map(String::as_str), Some("blue"));
        }
        other => panic!("{other:?}"),
    }
    for id in [1, 3] {
        match &run.action(id).orchestrator_action_type {
            Some(OrchestratorActionType::CreateSubOrchestration(s)) => {
                assert_eq!(
                    (s.instance_id.as_str(), s.version.as_deref()),
                    ("kid", Some("2"))
                );
                assert_eq!(s.tags.get("team").map(String::as_str), Some("blue"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(summary(run.last()), ["4 Complete Completed 3"]);
}

#[test]
fn absent_and_null_inputs_and_results_both_read_as_none() {
    let r = registry();
    // Absent input, and an activity result recorded without a value.
    let run = run_both(
        &r,
        "nullable",
        None,
        vec![step(1, |_| {
            vec![ev::event(
                -1,
                durable_core::proto::history_event::EventType::TaskCompleted(
                    durable_core::proto::TaskCompletedEvent {
                        task_scheduled_id: 0,
                        result: None,
                    },
                ),
            )]
        })],
    );
    assert_eq!(summary(&run.turns[0].1), ["0 ScheduleTask maybe null"]);
    assert_eq!(summary(run.last()), [r#"1 Complete Completed "None/None""#]);

    // An explicit JSON null behaves the same; a value still decodes.
    let run = run_both(
        &r,
        "nullable",
        Some("null"),
        vec![step(1, |_| vec![ev::task_completed(0, Some("null"))])],
    );
    assert_eq!(summary(run.last()), [r#"1 Complete Completed "None/None""#]);
    let run = run_both(
        &r,
        "nullable",
        Some(r#""x""#),
        vec![step(1, |_| vec![ev::task_completed(0, Some("7"))])],
    );
    assert_eq!(summary(&run.turns[0].1), [r#"0 ScheduleTask maybe "x""#]);
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "Some(\"x\")/Some(7)""#]
    );
}

#[test]
fn parallel_retries_interleave_with_their_own_timers() {
    let r = registry();
    let run = run_both(
        &r,
        "parallel_retries",
        None,
        vec![
            // Both first attempts fail, in reverse order; each retry gets its own timer and a new sequence number.
            step(1, |_| {
                vec![
                    ev::task_failed(1, &FailureDetails::new("Io", "y1")),
                    ev::task_failed(0, &FailureDetails::new("Io", "x1")),
                ]
            }),
            step(11, |r| vec![ev::timer_fired(2, r.fire_at(2))]),
            step(12, |r| {
                vec![
                    ev::timer_fired(3, r.fire_at(3)),
                    ev::task_completed(4, Some(r#""Y""#)),
                ]
            }),
            step(13, |_| vec![ev::task_completed(5, Some(r#""X""#))]),
        ],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        ["0 ScheduleTask x null", "1 ScheduleTask y null"]
    );
    assert_eq!(
        summary(&run.turns[1].1),
        ["2 CreateTimer +11s", "3 CreateTimer +11s"]
    );
    assert_eq!(summary(&run.turns[2].1), ["4 ScheduleTask y null"]);
    assert_eq!(summary(&run.turns[3].1), ["5 ScheduleTask x null"]);
    assert_eq!(summary(run.last()), [r#"6 Complete Completed "X,Y""#]);
}
