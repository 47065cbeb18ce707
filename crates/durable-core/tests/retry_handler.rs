//! Retry handlers: the context they see, durable waits and calls made while deciding, cancellation, and the
//! failures they are never asked about. Every scenario also goes through the golden replay checks.

mod common;

use std::time::Duration;

use common::*;
use durable_core::FailureDetails;
use durable_core::replay_check::{RecordedHistory, ReplayCheckOptions, check_histories};
use durable_core::{
    CallOptions, CancellationToken, OrchestrationContext, OrchestrationError, Registry,
    RetryHandler, when_all,
};

/// Retries "Transient" failures up to 3 attempts, waiting 5 s per failed attempt, and records what it saw in the
/// custom status.
fn backoff_handler() -> RetryHandler {
    RetryHandler::new(|retry| async move {
        let seen = (
            retry.attempt_number,
            retry.total_retry_time.as_secs(),
            retry.last_failure.error_message.clone(),
        );
        let ctx = retry.orchestration().clone();
        if ctx.set_custom_status(&seen).is_err() {
            return false;
        }
        if retry.last_failure.error_type != "Transient" || retry.attempt_number >= 3 {
            return false;
        }
        let wait = Duration::from_secs(5 * u64::from(retry.attempt_number));
        ctx.create_timer_after(wait).await.is_ok()
    })
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("activity", |ctx: OrchestrationContext, (): ()| async move {
        let options = CallOptions::new().retry_handler(backoff_handler());
        let v: String = ctx.call_activity_with_options("flaky", (), options).await?;
        Ok::<_, OrchestrationError>(v)
    })
    .add_orchestrator("ask", |ctx: OrchestrationContext, (): ()| async move {
        // The decision is an activity's answer: an asynchronous, durable decision.
        let handler = RetryHandler::new(|retry| async move {
            retry
                .orchestration()
                .call_activity::<_, bool>("should_retry", retry.attempt_number)
                .await
                .unwrap_or(false)
        });
        let options = CallOptions::new()
            .instance_id("child-1")
            .retry_handler(handler);
        let v: u32 = ctx
            .call_sub_orchestrator_with_options("child", 7u32, options)
            .await?;
        Ok::<_, OrchestrationError>(v)
    })
    .add_orchestrator("cancel", |ctx: OrchestrationContext, (): ()| async move {
        // Two calls share a token; the first to give up cancels the other's retries.
        let token = CancellationToken::new();
        let give_up = RetryHandler::sync(|retry| {
            if retry.last_failure.error_type == "Fatal" {
                retry.cancellation.cancel();
                return false;
            }
            true
        });
        let options = CallOptions::new()
            .retry_handler(give_up)
            .cancellation(token.clone());
        let calls = ["a", "b"]
            .map(|name| ctx.call_activity_with_options::<_, String>(name, (), options.clone()));
        let results = when_all(calls).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        Ok::<_, OrchestrationError>((failed, token.is_cancelled()))
    });
    r
}

#[test]
fn the_handler_sees_attempts_elapsed_time_and_failures_and_waits_durably() {
    let r = registry();
    let run = run_both(
        &r,
        "activity",
        None,
        vec![
            step(1, |_| {
                vec![ev::task_failed(
                    0,
                    &FailureDetails::new("Transient", "first"),
                )]
            }),
            step(6, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(7, |_| {
                vec![ev::task_failed(
                    2,
                    &FailureDetails::new("Transient", "second"),
                )]
            }),
            step(17, |r| vec![ev::timer_fired(3, r.fire_at(3))]),
            step(18, |_| {
                vec![ev::task_failed(
                    4,
                    &FailureDetails::new("Transient", "third"),
                )]
            }),
        ],
    );
    assert_eq!(summary(&run.turns[0].1), ["0 ScheduleTask flaky null"]);
    // 5 s after the failure at t+1, then 10 s after the one at t+7.
    assert_eq!(summary(&run.turns[1].1), ["1 CreateTimer +6s"]);
    assert_eq!(summary(&run.turns[2].1), ["2 ScheduleTask flaky null"]);
    assert_eq!(summary(&run.turns[3].1), ["3 CreateTimer +17s"]);
    assert_eq!(summary(&run.turns[4].1), ["4 ScheduleTask flaky null"]);
    assert_eq!(
        run.turns[1].1.custom_status.as_deref(),
        Some(r#"[1,1,"first"]"#)
    );
    assert_eq!(
        run.turns[3].1.custom_status.as_deref(),
        Some(r#"[2,7,"second"]"#)
    );
    // The third failure: attempt 3, 18 s after the first attempt; the handler says no and the call fails.
    assert_eq!(
        run.last().custom_status.as_deref(),
        Some(r#"[3,18,"third"]"#)
    );
    let f = failure(run.last()).expect("the orchestration failed");
    assert_eq!(f.error_type, "TaskFailedError");
    assert_eq!(f.inner_failure.unwrap().error_message, "third");
    // The history, handler decisions included, replays as recorded.
    let history = RecordedHistory::new(INSTANCE, run.history.clone());
    assert!(check_histories(&r, [&history], &ReplayCheckOptions::new()).is_clean());
}

#[test]
fn a_success_after_a_retry_is_the_result() {
    let r = registry();
    let run = run_both(
        &r,
        "activity",
        None,
        vec![
            step(1, |_| {
                vec![ev::task_failed(
                    0,
                    &FailureDetails::new("Transient", "first"),
                )]
            }),
            step(6, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(7, |_| vec![ev::task_completed(2, Some(r#""ok""#))]),
        ],
    );
    assert_eq!(summary(run.last()), [r#"3 Complete Completed "ok""#]);
}

#[test]
fn non_retriable_failures_and_other_errors_do_not_reach_the_handler() {
    let r = registry();
    let run = run_both(
        &r,
        "activity",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(
                0,
                &FailureDetails::new("Transient", "no").with_non_retriable(true),
            )]
        })],
    );
    assert_eq!(run.last().custom_status, None, "the handler was asked");
    let f = failure(run.last()).expect("failed");
    assert_eq!(f.inner_failure.unwrap().error_message, "no");

    let run = run_both(
        &r,
        "activity",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(
                0,
                &FailureDetails::new("Permanent", "nope"),
            )]
        })],
    );
    // Asked once, said no: no timer, no second attempt.
    assert_eq!(run.last().custom_status.as_deref(), Some(r#"[1,1,"nope"]"#));
    assert!(
        summary(run.last())
            .iter()
            .all(|s| !s.contains("CreateTimer") && !s.contains("ScheduleTask"))
    );
}

#[test]
fn a_handler_may_decide_with_an_activity_and_sub_orchestrations_keep_their_instance_id() {
    let r = registry();
    let run = run_both(
        &r,
        "ask",
        None,
        vec![
            step(1, |_| {
                vec![ev::sub_orchestration_failed(
                    0,
                    &FailureDetails::new("Boom", "child failed"),
                )]
            }),
            step(2, |_| vec![ev::task_completed(1, Some("true"))]),
            step(3, |_| {
                vec![ev::sub_orchestration_failed(
                    2,
                    &FailureDetails::new("Boom", "again"),
                )]
            }),
            step(4, |_| vec![ev::task_completed(3, Some("false"))]),
        ],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        ["0 CreateSubOrchestration child child-1 7"]
    );
    assert_eq!(summary(&run.turns[1].1), ["1 ScheduleTask should_retry 1"]);
    assert_eq!(
        summary(&run.turns[2].1),
        ["2 CreateSubOrchestration child child-1 7"]
    );
    assert_eq!(summary(&run.turns[3].1), ["3 ScheduleTask should_retry 2"]);
    let f = failure(run.last()).expect("failed after the activity said no");
    assert_eq!(f.inner_failure.unwrap().error_message, "again");
}

#[test]
fn a_cancelled_token_stops_the_other_calls_retries() {
    let r = registry();
    let run = run_both(
        &r,
        "cancel",
        None,
        vec![
            // "a" fails for good and cancels; "b" then fails retriably but is not tried again.
            step(1, |_| {
                vec![ev::task_failed(
                    0,
                    &FailureDetails::new("Fatal", "a is broken"),
                )]
            }),
            step(2, |_| {
                vec![ev::task_failed(
                    1,
                    &FailureDetails::new("Transient", "b hiccup"),
                )]
            }),
        ],
    );
    assert_eq!(summary(&run.turns[1].1), Vec::<String>::new());
    assert_eq!(summary(run.last()), ["2 Complete Completed [2,true]"]);

    // Without the cancellation, "b" is retried at once (a sync handler adds no wait).
    let run = run_both(
        &r,
        "cancel",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(
                1,
                &FailureDetails::new("Transient", "b hiccup"),
            )]
        })],
    );
    assert_eq!(summary(run.last()), ["2 ScheduleTask b null"]);
}

#[test]
fn a_call_cancelled_before_it_fails_does_not_ask_its_handler() {
    let mut r = Registry::new();
    r.add_orchestrator(
        "precancelled",
        |ctx: OrchestrationContext, (): ()| async move {
            let token = CancellationToken::new();
            // A handler that would wait durably before retrying: asking it would show as a timer.
            let handler = RetryHandler::new(|retry| async move {
                retry
                    .orchestration()
                    .create_timer_after(Duration::from_secs(1))
                    .await
                    .is_ok()
            });
            let call = ctx.call_activity_with_options::<_, String>(
                "c",
                (),
                CallOptions::new()
                    .retry_handler(handler)
                    .cancellation(token.clone()),
            );
            token.cancel();
            Ok::<_, OrchestrationError>(call.await.is_err())
        },
    );
    let run = run_both(
        &r,
        "precancelled",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(
                0,
                &FailureDetails::new("Transient", "c hiccup"),
            )]
        })],
    );
    assert_eq!(summary(run.last()), ["1 Complete Completed true"]);
}
