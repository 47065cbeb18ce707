//! Golden replay tests: entities called, signaled and locked from orchestrations, in both history shapes (Durable
//! Task Scheduler entity events and the Functions host's EventSent/EventRaised encoding).

mod common;

use std::time::Duration;

use common::*;
use durable_core::FailureDetails;
use durable_core::{
    EntityId, OrchestrationContext, OrchestrationError, Registry, TaskError, when_any,
};

fn counter(key: &str) -> EntityId {
    EntityId::new("Counter", key)
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("call", |ctx: OrchestrationContext, (): ()| async move {
        ctx.signal_entity(&counter("a"), "reset", ())?;
        let v: i64 = ctx.call_entity(&counter("a"), "add", 5).await?;
        Ok::<_, OrchestrationError>(v)
    })
    .add_orchestrator(
        "call_catch",
        |ctx: OrchestrationContext, (): ()| async move {
            match ctx
                .call_entity::<_, i64>(&counter("a"), "explode", ())
                .await
            {
                Err(TaskError::Failed { name, details, .. }) => {
                    Ok::<_, OrchestrationError>(format!("{name}: {}", details.error_message))
                }
                other => Err(OrchestrationError::msg(format!("unexpected {other:?}"))),
            }
        },
    )
    .add_orchestrator("transfer", |ctx: OrchestrationContext, (): ()| async move {
        let (a, b) = (counter("a"), counter("b"));
        let lock = ctx
            .lock_entities(&[b.clone(), a.clone(), b.clone()])
            .await?;
        // Calling an entity outside the lock set is refused without scheduling anything.
        let outside = ctx.call_entity::<_, i64>(&counter("z"), "get", ()).await;
        assert!(matches!(outside, Err(TaskError::InvalidOperation(_))));
        // So is signaling a locked entity, and nesting critical sections.
        assert!(ctx.signal_entity(&a, "add", 1).is_err());
        assert!(ctx.lock_entities(std::slice::from_ref(&a)).await.is_err());
        let x: i64 = ctx.call_entity(&a, "add", -10).await?;
        let y: i64 = ctx.call_entity(&b, "add", 10).await?;
        lock.release();
        Ok::<_, OrchestrationError>(x + y)
    })
    .add_orchestrator(
        "hold_and_finish",
        |ctx: OrchestrationContext, (): ()| async move {
            let lock = ctx.lock_entities(&[counter("a")]).await?;
            // Completing while the lock is held still releases it.
            std::mem::forget(lock);
            Ok::<_, OrchestrationError>(1)
        },
    )
    .add_orchestrator(
        "lock_or_give_up",
        |ctx: OrchestrationContext, (): ()| async move {
            let lock = ctx.lock_entities(&[counter("b"), counter("a")]);
            let timeout = ctx.create_timer_after(Duration::from_secs(60));
            let (winner, _) = when_any([
                Box::pin(async move { lock.await.map(drop) })
                    as durable_core::LocalBoxFuture<'static, Result<(), TaskError>>,
                Box::pin(timeout),
            ])
            .await;
            // Giving up on the lock leaves the critical section: entities can be called again.
            let v: i64 = ctx.call_entity(&counter("c"), "get", ()).await?;
            Ok::<_, OrchestrationError>(format!("{winner}:{v}"))
        },
    )
    .add_orchestrator(
        "lock_unused",
        |ctx: OrchestrationContext, (): ()| async move {
            let lock = ctx.lock_entities(&[counter("a")]);
            ctx.create_timer_after(Duration::from_secs(60)).await?;
            // Dropped without being awaited, after its grant came in: the locks are released right here.
            drop(lock);
            let v: i64 = ctx.call_entity(&counter("c"), "get", ()).await?;
            Ok::<_, OrchestrationError>(v)
        },
    )
    .add_orchestrator(
        "hold_and_continue",
        |ctx: OrchestrationContext, n: u32| async move {
            let _lock = ctx.lock_entities(&[counter("a")]).await?;
            ctx.continue_as_new(&(n + 1), false)?;
            Ok::<_, OrchestrationError>(())
        },
    );
    r
}

#[test]
fn call_and_signal() {
    let r = registry();
    let run = run_both(
        &r,
        "call",
        None,
        vec![step(1, |r| {
            vec![ev::entity_completed(&r.request_id(1), Some("5"))]
        })],
    );
    assert_eq!(
        summary(&run.turns[0].1),
        [
            "0 EntitySignal @counter@a reset null",
            "1 EntityCall @counter@a add 5"
        ]
    );
    assert_eq!(summary(run.last()), ["2 Complete Completed 5"]);
    // Request ids are deterministic GUIDs, different per call.
    assert_ne!(run.request_id(0), run.request_id(1));
}

#[test]
fn entity_failure_reaches_the_orchestrator() {
    let r = registry();
    let run = run_both(
        &r,
        "call_catch",
        None,
        vec![step(1, |r| {
            vec![ev::entity_failed(
                &r.request_id(0),
                &FailureDetails::new("Boom", "bad op"),
            )]
        })],
    );
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "explode on @counter@a: bad op""#]
    );
}

#[test]
fn critical_section_locks_sorted_and_unlocks_each_entity() {
    let r = registry();
    let run = run_both(
        &r,
        "transfer",
        None,
        vec![
            step(1, |r| vec![ev::lock_granted(&r.request_id(0))]),
            step(2, |r| {
                vec![ev::entity_completed(&r.request_id(1), Some("-10"))]
            }),
            step(3, |r| {
                vec![ev::entity_completed(&r.request_id(2), Some("10"))]
            }),
        ],
    );
    assert_eq!(summary(&run.turns[0].1), ["0 Lock @counter@a,@counter@b"]);
    assert_eq!(
        summary(&run.turns[1].1),
        ["1 EntityCall @counter@a add -10"]
    );
    assert_eq!(
        summary(run.last()),
        [
            "3 Unlock @counter@a",
            "4 Unlock @counter@b",
            "5 Complete Completed 0"
        ]
    );
}

#[test]
fn locks_are_released_on_completion() {
    let r = registry();
    let run = run_both(
        &r,
        "hold_and_finish",
        None,
        vec![step(1, |r| vec![ev::lock_granted(&r.request_id(0))])],
    );
    assert_eq!(
        summary(run.last()),
        ["1 Unlock @counter@a", "2 Complete Completed 1"]
    );
}

#[test]
fn locks_are_released_on_continue_as_new() {
    let r = registry();
    let run = run_both(
        &r,
        "hold_and_continue",
        Some("0"),
        vec![step(1, |r| vec![ev::lock_granted(&r.request_id(0))])],
    );
    assert_eq!(
        summary(run.last()),
        ["1 Unlock @counter@a", "2 Complete ContinuedAsNew 1"]
    );
}

fn legacy_response(result: &str) -> String {
    serde_json::json!({ "result": result }).to_string()
}

#[test]
fn functions_host_shape_for_calls() {
    let r = registry();
    let run = run_incremental(
        &r,
        "call",
        None,
        vec![step(1, |r| {
            vec![ev::event_raised(
                &r.request_id(1),
                Some(&legacy_response("7")),
            )]
        })],
        Shape::FunctionsHost,
    );
    check_replays(&r, &run);
    assert_eq!(summary(run.last()), ["2 Complete Completed 7"]);
}

#[test]
fn functions_host_shape_for_failures() {
    let r = registry();
    let run = run_incremental(
        &r,
        "call_catch",
        None,
        vec![step(1, |r| {
            let body =
                serde_json::json!({"result": "\"it broke\"", "exceptionType": "System.Exception"});
            vec![ev::event_raised(&r.request_id(0), Some(&body.to_string()))]
        })],
        Shape::FunctionsHost,
    );
    check_replays(&r, &run);
    assert_eq!(
        summary(run.last()),
        [r#"1 Complete Completed "explode on @counter@a: it broke""#]
    );
}

#[test]
fn functions_host_shape_for_locks() {
    let r = registry();
    let run = run_incremental(
        &r,
        "transfer",
        None,
        vec![
            step(1, |r| vec![ev::event_raised(&r.request_id(0), None)]),
            step(2, |r| {
                vec![ev::event_raised(
                    &r.request_id(1),
                    Some(&legacy_response("-10")),
                )]
            }),
            step(3, |r| {
                vec![ev::event_raised(
                    &r.request_id(2),
                    Some(&legacy_response("10")),
                )]
            }),
        ],
        Shape::FunctionsHost,
    );
    check_replays(&r, &run);
    assert_eq!(
        summary(run.last()),
        [
            "3 Unlock @counter@a",
            "4 Unlock @counter@b",
            "5 Complete Completed 0"
        ]
    );
}

#[test]
fn event_sent_to_the_wrong_entity_is_non_determinism() {
    let r = registry();
    let past = vec![
        ev::orchestrator_started(t0()),
        ev::execution_started(INSTANCE, EXECUTION, "call", None),
        ev::event_sent(0, "@counter@zzz", "op", Some(r#"{"id":"x"}"#)),
    ];
    let response = execute(&r, &past, &[ev::orchestrator_started(at(1))]);
    let f = failure(&response).unwrap();
    assert_eq!(f.error_type, "NonDeterminismError");
    assert!(
        f.error_message
            .contains("EntityOperationSignaled 'reset' to '@counter@a'"),
        "{}",
        f.error_message
    );
}

#[test]
fn entity_call_to_another_operation_is_non_determinism() {
    let r = registry();
    let run = run_incremental(&r, "call", None, vec![], Shape::Scheduler);
    let mut history = run.history.clone();
    for event in &mut history {
        if let Some(durable_core::proto::history_event::EventType::EntityOperationCalled(c)) =
            &mut event.event_type
        {
            c.operation = "subtract".into();
        }
    }
    let response = execute(&r, &history, &[ev::orchestrator_started(at(1))]);
    let f = failure(&response).unwrap();
    assert_eq!(f.error_type, "NonDeterminismError");
    assert!(
        f.error_message.contains("EntityOperationCalled 'subtract'"),
        "{}",
        f.error_message
    );
}

fn unlock_event(id: i32, section: &str, target: &str) -> durable_core::proto::HistoryEvent {
    ev::event(
        id,
        durable_core::proto::history_event::EventType::EntityUnlockSent(
            durable_core::proto::EntityUnlockSentEvent {
                critical_section_id: section.into(),
                parent_instance_id: Some(INSTANCE.into()),
                target_instance_id: Some(target.into()),
            },
        ),
    )
}

#[test]
fn unlock_where_the_code_did_something_else_is_non_determinism() {
    let r = registry();
    // The history says sequence number 0 released a lock; the code signals an entity there instead. Without the
    // check the signal would silently be dropped or, worse, sent again.
    let past = vec![
        ev::orchestrator_started(t0()),
        ev::execution_started(INSTANCE, EXECUTION, "call", None),
        unlock_event(0, "section", "@counter@a"),
        ev::orchestrator_completed(),
    ];
    let response = execute(&r, &past, &[ev::orchestrator_started(at(1))]);
    let f = failure(&response).unwrap_or_else(|| panic!("{:?}", summary(&response)));
    assert_eq!(f.error_type, "NonDeterminismError");
    assert!(
        f.error_message.contains("EntityUnlockSent")
            && f.error_message.contains("EntityOperationSignaled 'reset'"),
        "{}",
        f.error_message
    );
}

#[test]
fn unlock_the_code_never_sent_is_non_determinism() {
    let r = registry();
    let run = run_incremental(&r, "call", None, vec![], Shape::Scheduler);
    let mut history = run.history.clone();
    history.insert(history.len() - 1, unlock_event(7, "section", "@counter@a"));
    let response = execute(&r, &history, &[ev::orchestrator_started(at(1))]);
    let f = failure(&response).unwrap_or_else(|| panic!("{:?}", summary(&response)));
    assert_eq!(f.error_type, "NonDeterminismError");
    assert!(
        f.error_message.contains("sequence number 7"),
        "{}",
        f.error_message
    );
}

#[test]
fn unlocks_recorded_without_sequence_numbers_still_confirm() {
    let r = registry();
    let run = run_both(
        &r,
        "hold_and_finish",
        None,
        vec![step(1, |r| vec![ev::lock_granted(&r.request_id(0))])],
    );
    // A backend that records the unlock without the action's id: matched by critical section and target.
    let section = run.request_id(0);
    let mut history: Vec<_> = run.history.clone();
    for event in &mut history {
        if matches!(
            event.event_type,
            Some(durable_core::proto::history_event::EventType::EntityUnlockSent(_))
        ) {
            event.event_id = -1;
        }
    }
    let again = execute(&r, &history, &[]);
    assert_eq!(summary(&again), ["2 Complete Completed 1"], "{section}");
}

#[test]
fn a_lock_on_other_entities_is_non_determinism() {
    let r = registry();
    let run = run_incremental(&r, "transfer", None, vec![], Shape::Scheduler);
    let mut history = run.history.clone();
    for event in &mut history {
        if let Some(durable_core::proto::history_event::EventType::EntityLockRequested(l)) =
            &mut event.event_type
        {
            l.lock_set = vec!["@counter@a".into(), "@counter@c".into()];
        }
    }
    let response = execute(&r, &history, &[ev::orchestrator_started(at(1))]);
    let f = failure(&response).unwrap_or_else(|| panic!("{:?}", summary(&response)));
    assert_eq!(f.error_type, "NonDeterminismError");
    assert!(
        f.error_message.contains("@counter@c"),
        "{}",
        f.error_message
    );
}

#[test]
fn a_lock_given_up_before_the_grant_is_released_when_the_grant_arrives() {
    let r = registry();
    for shape in [Shape::Scheduler, Shape::FunctionsHost] {
        let grant = move |r: &Run| match shape {
            Shape::Scheduler => ev::lock_granted(&r.request_id(0)),
            Shape::FunctionsHost => ev::event_raised(&r.request_id(0), None),
        };
        let answer = move |r: &Run| match shape {
            Shape::Scheduler => ev::entity_completed(&r.request_id(2), Some("7")),
            Shape::FunctionsHost => ev::event_raised(&r.request_id(2), Some(&legacy_response("7"))),
        };
        let run = run_incremental(
            &r,
            "lock_or_give_up",
            None,
            vec![
                step(60, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
                step(61, move |r| vec![grant(r)]),
                step(62, move |r| vec![answer(r)]),
            ],
            shape,
        );
        check_replays(&r, &run);
        assert_eq!(
            summary(&run.turns[0].1),
            ["0 Lock @counter@a,@counter@b", "1 CreateTimer +60s"],
            "{shape:?}"
        );
        assert_eq!(
            summary(&run.turns[1].1),
            ["2 EntityCall @counter@c get null"],
            "{shape:?}"
        );
        // The late grant is answered with the unlocks at once; nothing is held for the rest of the instance.
        assert_eq!(
            summary(&run.turns[2].1),
            ["3 Unlock @counter@a", "4 Unlock @counter@b"],
            "{shape:?}"
        );
        assert_eq!(
            summary(run.last()),
            [r#"5 Complete Completed "1:7""#],
            "{shape:?}"
        );
    }
}

#[test]
fn a_lock_future_dropped_after_its_grant_releases_at_once() {
    let r = registry();
    let run = run_both(
        &r,
        "lock_unused",
        None,
        vec![
            step(1, |r| vec![ev::lock_granted(&r.request_id(0))]),
            step(60, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(61, |r| {
                vec![ev::entity_completed(&r.request_id(3), Some("7"))]
            }),
        ],
    );
    assert!(run.turns[1].1.actions.is_empty());
    assert_eq!(
        summary(&run.turns[2].1),
        ["2 Unlock @counter@a", "3 EntityCall @counter@c get null"]
    );
    assert_eq!(summary(run.last()), ["4 Complete Completed 7"]);
}
