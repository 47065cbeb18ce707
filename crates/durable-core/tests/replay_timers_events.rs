//! Golden replay tests: timers (including long, split timers) and external events.

mod common;

use std::time::Duration;

use common::*;
use durable_core::{
    LocalBoxFuture, OrchestrationContext, OrchestrationError, Registry, ReplayOptions, TaskError,
    when_any,
};

const DAY: u64 = 24 * 60 * 60;

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("sleep", |ctx: OrchestrationContext, secs: u64| async move {
        ctx.create_timer_after(Duration::from_secs(secs)).await?;
        Ok::<_, OrchestrationError>(ctx.current_utc_datetime().unix_timestamp())
    })
    .add_orchestrator("approval", |ctx: OrchestrationContext, (): ()| async move {
        let first: String = ctx.wait_for_external_event("Approval").await?;
        let second: String = ctx.wait_for_external_event("approval").await?;
        Ok::<_, OrchestrationError>(format!("{first},{second}"))
    })
    .add_orchestrator(
        "approval_timeout",
        |ctx: OrchestrationContext, (): ()| async move {
            match ctx
                .wait_for_external_event_with_timeout::<String>("approval", Duration::from_secs(60))
                .await
            {
                Ok(v) => Ok::<_, OrchestrationError>(v),
                Err(TaskError::Timeout { name }) => Ok(format!("timeout {name}")),
                Err(e) => Err(e.into()),
            }
        },
    )
    .add_orchestrator(
        "timeout_then_wait",
        |ctx: OrchestrationContext, (): ()| async move {
            let first = ctx
                .wait_for_external_event_with_timeout::<String>("e", Duration::from_secs(10))
                .await;
            // After a timeout the waiter is gone: the next event goes to the next wait.
            let second: String = ctx.wait_for_external_event("e").await?;
            Ok::<_, OrchestrationError>(format!("{},{second}", first.is_err()))
        },
    )
    .add_orchestrator(
        "timer_or_event",
        |ctx: OrchestrationContext, (): ()| async move {
            let timer = ctx.create_timer_after(Duration::from_secs(60));
            let event = ctx.wait_for_external_event::<String>("go");
            let (winner, _) = when_any([
                Box::pin(async move { timer.await.map(|()| "timer".to_string()) })
                    as LocalBoxFuture<'static, Result<String, TaskError>>,
                Box::pin(event),
            ])
            .await;
            Ok::<_, OrchestrationError>(winner)
        },
    )
    .add_orchestrator(
        "activity_then_timeout_wait",
        |ctx: OrchestrationContext, (): ()| async move {
            let _: () = ctx.call_activity("work", ()).await?;
            // The event arrived while the activity ran: it is taken at once, without a timeout timer.
            let v = ctx
                .wait_for_external_event_with_timeout::<String>("e", Duration::from_secs(60))
                .await?;
            Ok::<_, OrchestrationError>(v)
        },
    )
    .add_orchestrator(
        "long_wait_then_wait",
        |ctx: OrchestrationContext, (): ()| async move {
            let first = ctx
                .wait_for_external_event_with_timeout::<String>("a", Duration::from_secs(7 * DAY))
                .await?;
            let second: String = ctx.wait_for_external_event("b").await?;
            Ok::<_, OrchestrationError>(format!("{first},{second}"))
        },
    );
    r
}

#[test]
fn short_timer() {
    let r = registry();
    let run = run_both(
        &r,
        "sleep",
        Some("30"),
        vec![step(30, |r| vec![ev::timer_fired(0, r.fire_at(0))])],
    );
    assert_eq!(summary(&run.turns[0].1), ["0 CreateTimer +30s"]);
    let expected = format!("1 Complete Completed {}", at(30).unix_timestamp());
    assert_eq!(summary(run.last()), [expected.as_str()]);
}

#[test]
fn long_timer_is_split_at_the_maximum_interval() {
    let r = registry();
    let total = 7 * DAY;
    let run = run_both(
        &r,
        "sleep",
        Some(&total.to_string()),
        vec![
            step(3 * DAY as i64, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
            step(6 * DAY as i64, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(7 * DAY as i64, |r| vec![ev::timer_fired(2, r.fire_at(2))]),
        ],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        [format!("0 CreateTimer +{}s", 3 * DAY)]
    );
    assert_eq!(
        summary(&run.turns[1].1),
        [format!("1 CreateTimer +{}s", 6 * DAY)]
    );
    assert_eq!(
        summary(&run.turns[2].1),
        [format!("2 CreateTimer +{}s", 7 * DAY)]
    );
    let expected = format!(
        "3 Complete Completed {}",
        at(7 * DAY as i64).unix_timestamp()
    );
    assert_eq!(summary(run.last()), [expected.as_str()]);
}

#[test]
fn maximum_timer_interval_is_configurable() {
    let mut r = registry();
    r.set_replay_options(
        ReplayOptions::default().maximum_timer_interval(Some(Duration::from_secs(DAY))),
    );
    let run = run_incremental(
        &r,
        "sleep",
        Some(&(2 * DAY).to_string()),
        vec![],
        Shape::Scheduler,
    );
    assert_eq!(summary(run.last()), [format!("0 CreateTimer +{DAY}s")]);

    r.set_replay_options(ReplayOptions::default().maximum_timer_interval(None));
    let run = run_incremental(
        &r,
        "sleep",
        Some(&(20 * DAY).to_string()),
        vec![],
        Shape::Scheduler,
    );
    assert_eq!(
        summary(run.last()),
        [format!("0 CreateTimer +{}s", 20 * DAY)]
    );
}

#[test]
fn events_are_case_insensitive_and_buffered_in_order() {
    let r = registry();
    // Both events arrive before the code waits for the second one; the first arrives in the start turn.
    let run = run_both(
        &r,
        "approval",
        None,
        vec![step(1, |_| {
            vec![
                ev::event_raised("APPROVAL", Some(r#""one""#)),
                ev::event_raised("approval", Some(r#""two""#)),
            ]
        })],
    );
    assert_eq!(summary(run.last()), [r#"0 Complete Completed "one,two""#]);
}

#[test]
fn events_buffered_before_the_wait_are_delivered() {
    let r = registry();
    let mut first = vec![
        ev::orchestrator_started(t0()),
        ev::event_raised("approval", Some(r#""early""#)),
    ];
    first.push(ev::execution_started(INSTANCE, EXECUTION, "approval", None));
    first.push(ev::event_raised("Approval", Some(r#""late""#)));
    let response = execute(&r, &[], &first);
    assert_eq!(summary(&response), [r#"0 Complete Completed "early,late""#]);
}

#[test]
fn event_wait_with_timeout_gets_the_event() {
    let r = registry();
    let run = run_both(
        &r,
        "approval_timeout",
        None,
        vec![step(5, |_| {
            vec![ev::event_raised("Approval", Some(r#""yes""#))]
        })],
    );
    assert_eq!(summary(&run.turns[0].1), ["0 CreateTimer +60s"]);
    assert_eq!(summary(run.last()), [r#"1 Complete Completed "yes""#]);
}

#[test]
fn event_wait_times_out() {
    let r = registry();
    let run = run_both(
        &r,
        "approval_timeout",
        None,
        vec![step(60, |r| vec![ev::timer_fired(0, r.fire_at(0))])],
    );
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "timeout approval""#]
    );
}

#[test]
fn timeout_and_event_in_one_batch_follow_history_order() {
    let r = registry();
    let run = run_both(
        &r,
        "approval_timeout",
        None,
        vec![step(60, |r| {
            vec![
                ev::timer_fired(0, r.fire_at(0)),
                ev::event_raised("approval", Some(r#""late""#)),
            ]
        })],
    );
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "timeout approval""#]
    );
}

#[test]
fn a_timed_out_wait_no_longer_takes_events() {
    let r = registry();
    let run = run_both(
        &r,
        "timeout_then_wait",
        None,
        vec![
            step(10, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
            step(11, |_| vec![ev::event_raised("E", Some(r#""x""#))]),
        ],
    );
    assert_eq!(summary(run.last()), [r#"1 Complete Completed "true,x""#]);
}

#[test]
fn a_long_timeout_stops_splitting_once_the_event_arrived() {
    let r = registry();
    let run = run_both(
        &r,
        "long_wait_then_wait",
        None,
        vec![
            step(3600, |_| vec![ev::event_raised("a", Some(r#""x""#))]),
            // The first slice of the 7-day timeout fires while the code waits for "b": the wait it guarded is over,
            // so no further slice is scheduled.
            step(3 * DAY as i64, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
            step(3 * DAY as i64 + 1, |_| {
                vec![ev::event_raised("b", Some(r#""y""#))]
            }),
        ],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        [format!("0 CreateTimer +{}s", 3 * DAY)]
    );
    assert!(run.turns[1].1.actions.is_empty());
    assert!(
        run.turns[2].1.actions.is_empty(),
        "{:?}",
        summary(&run.turns[2].1)
    );
    assert_eq!(summary(run.last()), [r#"1 Complete Completed "x,y""#]);
}

#[test]
fn a_long_timeout_is_split_and_still_times_out() {
    let r = registry();
    let run = run_both(
        &r,
        "long_wait_then_wait",
        None,
        vec![
            step(3 * DAY as i64, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
            step(6 * DAY as i64, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(7 * DAY as i64, |r| {
                vec![
                    ev::timer_fired(2, r.fire_at(2)),
                    ev::event_raised("a", Some(r#""late""#)),
                ]
            }),
        ],
    );
    assert_eq!(
        summary(&run.turns[2].1),
        [format!("2 CreateTimer +{}s", 7 * DAY)]
    );
    assert_eq!(
        summary(run.last()),
        ["3 Complete Failed [TimeoutError: timed out waiting for external event 'a']"]
    );
}

#[test]
fn when_any_of_a_timer_and_an_event_follows_history_order() {
    let r = registry();
    let run = run_both(
        &r,
        "timer_or_event",
        None,
        vec![step(60, |r| {
            vec![
                ev::event_raised("GO", Some(r#""e""#)),
                ev::timer_fired(0, r.fire_at(0)),
            ]
        })],
    );
    assert_eq!(summary(&run.turns[0].1), ["0 CreateTimer +60s"]);
    assert_eq!(summary(run.last()), ["1 Complete Completed 1"]);

    let run = run_both(
        &r,
        "timer_or_event",
        None,
        vec![step(60, |r| {
            vec![
                ev::timer_fired(0, r.fire_at(0)),
                ev::event_raised("GO", Some(r#""e""#)),
            ]
        })],
    );
    assert_eq!(summary(run.last()), ["1 Complete Completed 0"]);
}

#[test]
fn a_wait_with_timeout_takes_a_buffered_event_without_a_timer() {
    let r = registry();
    let run = run_both(
        &r,
        "activity_then_timeout_wait",
        None,
        vec![
            step(1, |_| vec![ev::event_raised("E", Some(r#""early""#))]),
            step(2, |_| vec![ev::task_completed(0, Some("null"))]),
        ],
    );
    assert!(run.turns[1].1.actions.is_empty());
    assert_eq!(summary(run.last()), [r#"1 Complete Completed "early""#]);
}

#[test]
fn events_and_timeouts_during_a_suspension_are_applied_in_history_order_on_resume() {
    let r = registry();
    let run = run_both(
        &r,
        "approval_timeout",
        None,
        vec![
            step(1, |_| vec![ev::suspended()]),
            // Both the event and the timeout arrive while suspended; the event is first in history, so it wins.
            step(30, |_| vec![ev::event_raised("approval", Some(r#""yes""#))]),
            step(60, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
            step(61, |_| vec![ev::resumed()]),
        ],
    );
    for turn in &run.turns[1..4] {
        assert!(turn.1.actions.is_empty(), "{:?}", summary(&turn.1));
    }
    assert_eq!(summary(run.last()), [r#"1 Complete Completed "yes""#]);

    let run = run_both(
        &r,
        "approval_timeout",
        None,
        vec![
            step(1, |_| vec![ev::suspended()]),
            step(60, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
            step(61, |_| {
                vec![ev::event_raised("approval", Some(r#""late""#))]
            }),
            step(62, |_| vec![ev::resumed()]),
        ],
    );
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "timeout approval""#]
    );
}
