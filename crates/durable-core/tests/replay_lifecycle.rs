//! Golden replay tests: continue-as-new, suspend/resume, terminate, panics, non-determinism, malformed requests,
//! deterministic GUIDs, custom status and replay-aware logging.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use durable_core::{ContinueAsNewOptions, OrchestrationContext, OrchestrationError, Registry};

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("counter", |ctx: OrchestrationContext, n: u32| async move {
        let step: u32 = ctx.wait_for_external_event("add").await?;
        ctx.continue_as_new(&(n + step), true)?;
        Ok::<_, OrchestrationError>(())
    })
    .add_orchestrator("upgrade", |ctx: OrchestrationContext, n: u32| async move {
        let step: u32 = ctx.wait_for_external_event("add").await?;
        let options = ContinueAsNewOptions::new()
            .version("2.0")
            .keep_unprocessed_events(n > 0);
        ctx.continue_as_new_with_options(&(n + step), options)?;
        Ok::<_, OrchestrationError>(())
    })
    .add_orchestrator(
        "loop_no_keep",
        |ctx: OrchestrationContext, n: u32| async move {
            ctx.create_timer_after(Duration::from_secs(1)).await?;
            ctx.continue_as_new(&(n + 1), false)?;
            Ok::<_, OrchestrationError>(())
        },
    )
    .add_orchestrator(
        "two_steps",
        |ctx: OrchestrationContext, (): ()| async move {
            let a: u32 = ctx.call_activity("a", ()).await?;
            let b: u32 = ctx.call_activity("b", ()).await?;
            Ok::<_, OrchestrationError>(a + b)
        },
    )
    .add_orchestrator("panics", |ctx: OrchestrationContext, (): ()| async move {
        let _: u32 = ctx.call_activity("a", ()).await?;
        panic!("kaboom");
        #[allow(unreachable_code)]
        Ok::<_, OrchestrationError>(())
    })
    .add_orchestrator("panics_early", |_ctx: OrchestrationContext, (): ()| {
        panic!("before the future");
        #[allow(unreachable_code)]
        async move {
            Ok::<_, OrchestrationError>(())
        }
    })
    .add_orchestrator("fails", |_ctx: OrchestrationContext, (): ()| async move {
        Err::<(), _>(OrchestrationError::new("MyError", "nope"))
    })
    .add_orchestrator("guids", |ctx: OrchestrationContext, (): ()| async move {
        ctx.create_timer_after(Duration::from_secs(1)).await?;
        Ok::<_, OrchestrationError>(vec![ctx.new_guid().to_string(), ctx.new_guid().to_string()])
    })
    .add_orchestrator("status", |ctx: OrchestrationContext, (): ()| async move {
        ctx.set_custom_status(&serde_json::json!({"stage": 1}))?;
        ctx.wait_for_external_event::<()>("next").await?;
        ctx.set_custom_status("done")?;
        Ok::<_, OrchestrationError>(())
    })
    .add_orchestrator("sender", |ctx: OrchestrationContext, (): ()| async move {
        ctx.send_event("other", "Ping", &5)?;
        Ok::<_, OrchestrationError>(())
    })
    .add_orchestrator(
        "info",
        |ctx: OrchestrationContext, input: String| async move {
            let parent = ctx.parent().map(|p| p.instance_id);
            Ok::<_, OrchestrationError>(format!(
                "{}|{}|{:?}|{:?}|{input}|{:?}",
                ctx.instance_id(),
                ctx.name(),
                ctx.version(),
                parent,
                ctx.execution_id()
            ))
        },
    );
    r
}

#[test]
fn continue_as_new_with_a_new_version() {
    let r = registry();
    let events = |_: &Run| {
        vec![
            ev::event_raised("add", Some("2")),
            ev::event_raised("other", Some("4")),
        ]
    };
    let run = run_both(&r, "upgrade", Some("1"), vec![step(1, events)]);
    assert_eq!(
        summary(run.last()),
        ["0 Complete ContinuedAsNew 3 version=2.0 carry(other=4)"]
    );
    // Without carrying events over, the version still moves.
    let run = run_both(&r, "upgrade", Some("0"), vec![step(1, events)]);
    assert_eq!(
        summary(run.last()),
        ["0 Complete ContinuedAsNew 2 version=2.0"]
    );
}

#[test]
fn continue_as_new_carries_unprocessed_events() {
    let r = registry();
    let run = run_both(
        &r,
        "counter",
        Some("1"),
        vec![step(1, |_| {
            vec![
                ev::event_raised("add", Some("2")),
                ev::event_raised("Add", Some("3")),
                ev::event_raised("other", Some("4")),
            ]
        })],
    );
    assert_eq!(
        summary(run.last()),
        ["0 Complete ContinuedAsNew 3 carry(Add=3,other=4)"]
    );
}

#[test]
fn continue_as_new_without_keeping_events() {
    let r = registry();
    let run = run_both(
        &r,
        "loop_no_keep",
        Some("7"),
        vec![step(1, |r| {
            vec![
                ev::timer_fired(0, r.fire_at(0)),
                ev::event_raised("x", None),
            ]
        })],
    );
    assert_eq!(summary(run.last()), ["1 Complete ContinuedAsNew 8"]);
}

#[test]
fn suspended_instances_return_no_actions_and_resume_later() {
    let r = registry();
    let run = run_both(
        &r,
        "two_steps",
        None,
        vec![
            step(1, |_| vec![ev::suspended()]),
            step(2, |_| vec![ev::task_completed(0, Some("1"))]),
            step(3, |_| vec![ev::resumed()]),
            step(4, |_| vec![ev::task_completed(1, Some("2"))]),
        ],
    );
    assert!(run.turns[1].1.actions.is_empty());
    assert!(
        run.turns[2].1.actions.is_empty(),
        "{:?}",
        summary(&run.turns[2].1)
    );
    assert_eq!(summary(&run.turns[3].1), ["1 ScheduleTask b null"]);
    assert_eq!(summary(run.last()), ["2 Complete Completed 3"]);
}

#[test]
fn terminate_completes_with_the_given_output() {
    let r = registry();
    let run = run_both(
        &r,
        "two_steps",
        None,
        vec![step(1, |_| vec![ev::terminated(Some(r#""stop""#))])],
    );
    assert_eq!(summary(run.last()), [r#"1 Complete Terminated "stop""#]);
}

#[test]
fn terminate_is_honoured_while_suspended() {
    let r = registry();
    let run = run_both(
        &r,
        "two_steps",
        None,
        vec![
            step(1, |_| vec![ev::suspended()]),
            step(2, |_| vec![ev::terminated(None)]),
        ],
    );
    assert_eq!(summary(run.last()), ["1 Complete Terminated"]);
}

#[test]
fn panics_fail_the_orchestration() {
    let r = registry();
    let run = run_both(
        &r,
        "panics",
        None,
        vec![step(1, |_| vec![ev::task_completed(0, Some("1"))])],
    );
    let f = failure(run.last()).unwrap();
    assert_eq!(f.error_type, "Panic");
    assert!(f.error_message.contains("kaboom"), "{}", f.error_message);

    let run = run_both(&r, "panics_early", None, vec![]);
    let f = failure(run.last()).unwrap();
    assert_eq!(f.error_type, "Panic");
    assert!(f.error_message.contains("before the future"));
}

#[test]
fn orchestrator_errors_keep_their_type() {
    let r = registry();
    let run = run_both(&r, "fails", None, vec![]);
    assert_eq!(summary(run.last()), ["0 Complete Failed [MyError: nope]"]);
}

#[test]
fn unknown_orchestrator_fails_clearly() {
    let r = registry();
    let response = execute(
        &r,
        &[],
        &[
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "nope", None),
        ],
    );
    let f = failure(&response).unwrap();
    assert_eq!(f.error_type, "OrchestratorNotFound");
    assert!(f.error_message.contains("'nope'"));
}

#[test]
fn request_without_execution_started_fails_clearly() {
    let r = registry();
    let response = execute(
        &r,
        &[],
        &[
            ev::orchestrator_started(t0()),
            ev::task_completed(0, Some("1")),
        ],
    );
    assert_eq!(
        failure(&response).unwrap().error_type,
        "InvalidHistoryError"
    );
    let response = execute(&r, &[], &[]);
    assert_eq!(
        failure(&response).unwrap().error_type,
        "InvalidHistoryError"
    );
}

#[test]
fn bad_input_fails_clearly() {
    let r = registry();
    let response = execute(
        &r,
        &[],
        &[
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "counter", Some("\"x\"")),
        ],
    );
    let f = failure(&response).unwrap();
    assert_eq!(f.error_type, "SerializationError");
}

#[test]
fn empty_new_events_replays_without_new_decisions() {
    let r = registry();
    let run = run_incremental(&r, "two_steps", None, vec![], Shape::Scheduler);
    let response = execute(&r, &run.history, &[]);
    assert!(response.actions.is_empty());
}

#[test]
fn non_determinism_wrong_name() {
    let r = registry();
    let case = ReplayCase {
        past: vec![
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "two_steps", None),
            ev::task_scheduled(0, "renamed"),
            ev::orchestrator_completed(),
        ],
        new: vec![
            ev::orchestrator_started(at(1)),
            ev::task_completed(0, Some("1")),
        ],
        expected: vec![
            "1 Complete Failed [NonDeterminismError: non-deterministic orchestration: at sequence number 0 the \
             history has TaskScheduled 'renamed' but the orchestrator code produced ScheduleTask 'a']",
        ],
    };
    case.check(&r);
}

#[test]
fn non_determinism_wrong_kind_and_missing_action() {
    let r = registry();
    let case = ReplayCase {
        past: vec![
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "two_steps", None),
            ev::timer_created(0, at(5)),
        ],
        new: vec![ev::orchestrator_started(at(1))],
        expected: vec![
            "1 Complete Failed [NonDeterminismError: non-deterministic orchestration: at sequence number 0 the \
             history has TimerCreated but the orchestrator code produced ScheduleTask 'a']",
        ],
    };
    case.check(&r);
    let case = ReplayCase {
        past: vec![
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "two_steps", None),
            ev::task_scheduled(0, "a"),
            ev::task_scheduled(5, "b"),
        ],
        new: vec![ev::orchestrator_started(at(1))],
        expected: vec![
            "1 Complete Failed [NonDeterminismError: non-deterministic orchestration: at sequence number 5 the \
             history has TaskScheduled 'b' but the orchestrator code produced no action with this sequence number]",
        ],
    };
    let response = case.check(&r);
    assert!(failure(&response).unwrap().is_non_retriable);
}

#[test]
fn non_determinism_event_sent_target() {
    let r = registry();
    let case = ReplayCase {
        past: vec![
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "sender", None),
            ev::event_sent(0, "someone-else", "Ping", Some("5")),
        ],
        new: vec![ev::orchestrator_started(at(1))],
        expected: vec![
            "2 Complete Failed [NonDeterminismError: non-deterministic orchestration: at sequence number 0 the \
             history has EventSent 'Ping' to 'someone-else' but the orchestrator code produced SendEvent 'Ping' \
             to 'other']",
        ],
    };
    case.check(&r);
}

#[test]
fn send_event_action() {
    let r = registry();
    let run = run_both(&r, "sender", None, vec![]);
    assert_eq!(
        summary(run.last()),
        ["0 SendEvent other Ping 5", "1 Complete Completed null"]
    );
}

#[test]
fn guids_match_the_python_sdk() {
    let r = registry();
    let fired = at(5) + time::Duration::milliseconds(250);
    let run = run_incremental(
        &r,
        "guids",
        None,
        vec![Step {
            at: fired,
            make: Box::new(|r| vec![ev::timer_fired(0, r.fire_at(0))]),
        }],
        Shape::Scheduler,
    );
    check_replays(&r, &run);
    // Computed with Python's uuid module exactly as durabletask-python's new_uuid does, for instance "inst-1"
    // at 2026-01-01T00:00:05.250000Z, counters 0 and 1.
    assert_eq!(
        summary(run.last()),
        [
            r#"1 Complete Completed ["8c91b84f-7d03-53e6-af55-14af975fccef","a4893c5d-a184-5b88-8505-714680c44803"]"#
        ]
    );
}

#[test]
fn custom_status_is_reported_every_turn() {
    let r = registry();
    let run = run_both(
        &r,
        "status",
        None,
        vec![step(1, |_| vec![ev::event_raised("next", None)])],
    );
    assert_eq!(
        run.turns[0].1.custom_status.as_deref(),
        Some(r#"{"stage":1}"#)
    );
    assert_eq!(run.last().custom_status.as_deref(), Some(r#""done""#));
}

#[test]
fn context_exposes_identity_and_input() {
    let r = registry();
    let mut started = ev::execution_started(INSTANCE, EXECUTION, "info", Some(r#""in""#));
    if let Some(durable_core::proto::history_event::EventType::ExecutionStarted(s)) =
        &mut started.event_type
    {
        s.version = Some("2.0".into());
        s.parent_instance = Some(durable_core::proto::ParentInstanceInfo {
            task_scheduled_id: 3,
            name: Some("p".into()),
            version: None,
            orchestration_instance: Some(durable_core::proto::OrchestrationInstance {
                instance_id: "parent-1".into(),
                execution_id: None,
            }),
        });
    }
    let response = execute(&r, &[], &[ev::orchestrator_started(t0()), started]);
    assert_eq!(
        summary(&response),
        [
            r#"0 Complete Completed "inst-1|info|Some(\"2.0\")|Some(\"parent-1\")|in|Some(\"exec-1\")""#
        ]
    );
}

#[test]
fn replay_flag_and_logging_follow_history() {
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let mut r = Registry::new();
    let log = seen.clone();
    r.add_orchestrator("observe", move |ctx: OrchestrationContext, (): ()| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(ctx.is_replaying());
            ctx.log_info("started");
            ctx.create_timer_after(Duration::from_secs(1)).await?;
            log.lock().unwrap().push(ctx.is_replaying());
            Ok::<_, OrchestrationError>(())
        }
    });
    let run = run_incremental(
        &r,
        "observe",
        None,
        vec![step(1, |r| vec![ev::timer_fired(0, r.fire_at(0))])],
        Shape::Scheduler,
    );
    assert_eq!(summary(run.last()), ["1 Complete Completed null"]);
    // Turn 1: live start. Turn 2: replayed start, then live resume.
    assert_eq!(*seen.lock().unwrap(), [false, true, false]);
}

#[test]
fn an_instance_suspended_before_it_started_waits_instead_of_failing() {
    let r = registry();
    // The suspension was queued ahead of ExecutionStarted (e.g. a scheduled start): the start is buffered with the
    // rest, so the history does have an ExecutionStarted and the instance simply waits for its resumption.
    let first = vec![
        ev::orchestrator_started(t0()),
        ev::suspended(),
        ev::execution_started(INSTANCE, EXECUTION, "two_steps", None),
    ];
    let response = execute(&r, &[], &first);
    assert!(response.actions.is_empty(), "{:?}", summary(&response));

    let mut past = first;
    past.push(ev::orchestrator_completed());
    let response = execute(&r, &past, &[ev::orchestrator_started(at(1)), ev::resumed()]);
    assert_eq!(summary(&response), ["0 ScheduleTask a null"]);
}

/// Every kind of "scheduled" history event, recorded at sequence number 0, where the code's action 0 is
/// `ScheduleTask 'a'`: each must be reported as non-determinism naming the sequence number and both sides, and none
/// may let the code's action through again.
#[test]
fn non_determinism_is_detected_for_every_scheduled_event_kind() {
    use durable_core::proto::{self, history_event::EventType};
    let r = registry();
    let at0 = |event_type| ev::event(0, event_type);
    let target = || Some("@counter@a".to_string());
    let cases = vec![
        ("TaskScheduled 'b'", ev::task_scheduled(0, "b")),
        ("TimerCreated", ev::timer_created(0, at(5))),
        (
            "SubOrchestrationInstanceCreated 'a'",
            at0(EventType::SubOrchestrationInstanceCreated(
                proto::SubOrchestrationInstanceCreatedEvent {
                    name: "a".into(),
                    ..Default::default()
                },
            )),
        ),
        ("EventSent 'a' to 'x'", ev::event_sent(0, "x", "a", None)),
        (
            "EntityOperationCalled 'a'",
            at0(EventType::EntityOperationCalled(
                proto::EntityOperationCalledEvent {
                    operation: "a".into(),
                    request_id: "r".into(),
                    target_instance_id: target(),
                    ..Default::default()
                },
            )),
        ),
        (
            "EntityOperationSignaled 'a'",
            at0(EventType::EntityOperationSignaled(
                proto::EntityOperationSignaledEvent {
                    operation: "a".into(),
                    request_id: "r".into(),
                    target_instance_id: target(),
                    ..Default::default()
                },
            )),
        ),
        (
            "EntityLockRequested on [@counter@a]",
            at0(EventType::EntityLockRequested(
                proto::EntityLockRequestedEvent {
                    critical_section_id: "s".into(),
                    lock_set: vec!["@counter@a".into()],
                    ..Default::default()
                },
            )),
        ),
        (
            "EntityUnlockSent to '@counter@a'",
            at0(EventType::EntityUnlockSent(proto::EntityUnlockSentEvent {
                critical_section_id: "s".into(),
                target_instance_id: target(),
                ..Default::default()
            })),
        ),
    ];
    for (expected, event) in cases {
        let past = vec![
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "two_steps", None),
            event,
            ev::orchestrator_completed(),
        ];
        let response = execute(&r, &past, &[ev::orchestrator_started(at(1))]);
        let want = format!(
            "1 Complete Failed [NonDeterminismError: non-deterministic orchestration: at sequence number 0 the \
             history has {expected} but the orchestrator code produced ScheduleTask 'a']"
        );
        assert_eq!(summary(&response), [want.as_str()], "{expected}");
    }
}
