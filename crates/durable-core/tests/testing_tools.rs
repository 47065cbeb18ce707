//! The testing module: the turn-by-turn harness and the in-process runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durable_core::testing::{
    Action, InProcessRuntime, OrchestrationHarness, RuntimeStatus, TestingError,
};
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, FailureDetails,
    OrchestrationContext, OrchestrationError, Registry, RetryPolicy, TaskError,
};
use futures::executor::block_on;
use serde_json::json;

durable_core::entity! {
    pub Counter: i64 {
        pub Add = "add": i64 => i64;
        pub Get = "get": () => i64;
        pub Set = "set": i64 => ();
    }
}

fn counter() -> Entity<i64> {
    Entity::new()
        .on(Add, |n, _ctx, by| {
            *n += by;
            Ok::<_, EntityError>(*n)
        })
        .on(Get, |n, _ctx, ()| Ok(*n))
        .on(Set, |n, _ctx, to| {
            *n = to;
            Ok(())
        })
}

async fn approval(
    ctx: OrchestrationContext,
    timeout_secs: u64,
) -> Result<String, OrchestrationError> {
    let decision = match ctx
        .wait_for_external_event_with_timeout::<bool>("Approval", Duration::from_secs(timeout_secs))
        .await
    {
        Ok(true) => "approved",
        Ok(false) => "rejected",
        Err(e) if e.is_timeout() => "timed out",
        Err(e) => return Err(e.into()),
    };
    let recorded: String = ctx.call_activity("Record", decision).await?;
    Ok(recorded)
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Approval", approval)
        .add_activity("Record", |_ctx: ActivityContext, d: String| async move {
            Ok::<_, ActivityError>(format!("recorded {d}"))
        })
        .register_entity(Counter, counter());
    registry
}

#[test]
fn harness_fires_timers_only_when_the_clock_reaches_them() {
    let registry = registry();
    let mut harness = OrchestrationHarness::new(&registry);
    let start = harness.start_named("Approval", &60).unwrap().at();
    assert_eq!(
        harness.actions(),
        [Action::CreateTimer {
            fire_at: start + Duration::from_secs(60)
        }]
    );
    assert_eq!(harness.next_timer(), Some(start + Duration::from_secs(60)));

    harness.advance(Duration::from_secs(59)).turn().unwrap();
    assert_eq!(harness.actions(), []);
    assert_eq!(harness.status(), RuntimeStatus::Running);

    harness.advance(Duration::from_secs(1)).turn().unwrap();
    assert_eq!(
        harness.actions(),
        [Action::call_activity("Record", "timed out")]
    );
    harness
        .complete_activity("Record", "ok")
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.output::<String>().unwrap(), "ok");
    assert_eq!(harness.actions(), [Action::complete("ok")]);
    // A finished instance takes no more turns.
    assert!(matches!(
        harness.turn(),
        Err(TestingError::Finished {
            status: RuntimeStatus::Completed,
            ..
        })
    ));
}

#[test]
fn harness_delivers_events_and_failures() {
    let registry = registry();
    let mut harness = OrchestrationHarness::new(&registry).instance_id("order-7");
    harness.start_named("Approval", &3600).unwrap();
    harness
        .raise_event("approval", &true)
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(
        harness.actions(),
        [Action::call_activity("Record", "approved")]
    );

    harness
        .fail_activity("Record", FailureDetails::new("DiskFull", "no space left"))
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.status(), RuntimeStatus::Failed);
    let failure = harness.failure().unwrap();
    assert_eq!(failure.error_type, "TaskFailedError");
    assert_eq!(failure.inner.as_ref().unwrap().error_type, "DiskFull");
    assert!(matches!(
        harness.output::<String>(),
        Err(TestingError::Failed { .. })
    ));
    // History is what a backend would have recorded: three turns, the last ending the instance.
    let starts = harness
        .history()
        .iter()
        .filter(|e| {
            matches!(
                e.event_type,
                Some(durable_core::proto::history_event::EventType::OrchestratorStarted(_))
            )
        })
        .count();
    assert_eq!(starts, 3);
}

#[test]
fn harness_rejects_results_for_tasks_that_are_not_open() {
    let registry = registry();
    let mut harness = OrchestrationHarness::new(&registry);
    assert_eq!(harness.turn().unwrap_err(), TestingError::NotStarted);
    harness.start_named("Approval", &1).unwrap();
    match harness.complete_activity("Record", "too early") {
        Err(TestingError::NoOpenTask { what, open }) => {
            assert!(what.contains("Record"), "{what}");
            assert_eq!(open.len(), 1, "{open:?}");
            assert!(open[0].contains("Timer"), "{open:?}");
        }
        other => panic!("expected NoOpenTask, got {other:?}"),
    }
    assert!(matches!(
        harness.start_named("Approval", &1),
        Err(TestingError::AlreadyStarted(_))
    ));
}

static CALLS: AtomicU32 = AtomicU32::new(0);

#[test]
fn harness_catches_orchestrators_that_decide_differently_on_replay() {
    let mut registry = Registry::new();
    registry.add_orchestrator("Flaky", |ctx: OrchestrationContext, ()| async move {
        // Wrong on purpose: state outside the context changes between replays.
        let n = CALLS.fetch_add(1, Ordering::SeqCst);
        let _: () = ctx.call_activity(format!("Step{n}"), ()).await?;
        Ok(())
    });
    let mut harness = OrchestrationHarness::new(&registry);
    match harness.start_named("Flaky", &()) {
        Err(TestingError::NonDeterministic {
            turn: 1,
            decided,
            replayed,
        }) => {
            assert_ne!(decided, replayed);
        }
        other => panic!("expected NonDeterministic, got {other:?}"),
    }
    // With the check off, the same code passes a turn: the check is what caught it.
    let mut unchecked = OrchestrationHarness::new(&registry).check_replay(false);
    assert_eq!(
        unchecked.start_named("Flaky", &()).unwrap().actions().len(),
        1
    );
}

#[test]
fn harness_scripts_locks_and_entity_calls() {
    let mut registry = registry();
    registry.add_orchestrator(
        "Transfer",
        |ctx: OrchestrationContext, amount: i64| async move {
            let (from, to) = (Counter::id("a"), Counter::id("b"));
            let lock = ctx.lock_entities(&[to.clone(), from.clone()]).await?;
            let left = ctx.entity(Counter, "a").call(Add, -amount).await?;
            ctx.entity(Counter, "b").call(Add, amount).await?;
            lock.release();
            Ok::<_, OrchestrationError>(left)
        },
    );
    let mut harness = OrchestrationHarness::new(&registry);
    harness.start_named("Transfer", &5).unwrap();
    assert_eq!(
        harness.actions(),
        [Action::LockEntities {
            entities: vec![Counter::id("a"), Counter::id("b")]
        }]
    );
    harness.grant_lock().unwrap().turn().unwrap();
    assert_eq!(harness.actions(), [Action::call_entity("a", Add, -5)]);
    harness
        .complete_entity_operation("a", Add, 15)
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.actions(), [Action::call_entity("b", Add, 5)]);
    harness
        .complete_entity_call(&EntityId::new("counter", "b"), "add", &5)
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(
        harness.actions(),
        [
            Action::UnlockEntity {
                entity: Counter::id("a")
            },
            Action::UnlockEntity {
                entity: Counter::id("b")
            },
            Action::complete(&15),
        ]
    );
}

#[test]
fn harness_follows_continue_as_new() {
    let mut registry = Registry::new();
    registry.add_orchestrator("Loop", |ctx: OrchestrationContext, n: u32| async move {
        if n < 2 {
            ctx.continue_as_new(&(n + 1), false)?;
        }
        Ok::<_, OrchestrationError>(n)
    });
    let mut harness = OrchestrationHarness::new(&registry);
    harness.start_named("Loop", &0).unwrap();
    assert_eq!(
        harness.actions(),
        [Action::ContinueAsNew { input: json!(1) }]
    );
    assert_eq!(harness.status(), RuntimeStatus::Running);
    harness.turn().unwrap();
    assert_eq!(
        harness.actions(),
        [Action::ContinueAsNew { input: json!(2) }]
    );
    harness.turn().unwrap();
    assert_eq!(harness.output::<u32>().unwrap(), 2);
}

#[test]
fn runtime_skips_time_and_delivers_events() {
    let registry = registry();
    let mut runtime = InProcessRuntime::new(&registry);
    let approved = runtime
        .start_named("Approval", Some("approved"), &3600)
        .unwrap();
    let ignored = runtime.start_named("Approval", None, &7200).unwrap();
    assert_eq!(ignored, "instance-1");

    block_on(runtime.run_until_idle()).unwrap();
    assert_eq!(
        runtime.instance(&approved).unwrap().status(),
        RuntimeStatus::Running
    );
    assert_eq!(runtime.now(), runtime.start_time());

    runtime.raise_event(&approved, "Approval", &true).unwrap();
    let done = block_on(runtime.run_to_completion(&approved)).unwrap();
    assert_eq!(done.output::<String>().unwrap(), "recorded approved");
    assert_eq!(runtime.now(), runtime.start_time(), "no timer had to fire");

    let done = block_on(runtime.run_to_completion(&ignored)).unwrap();
    assert_eq!(done.output::<String>().unwrap(), "recorded timed out");
    // The first instance's timer fired (harmlessly) on the way to the second's, two hours in.
    assert_eq!(
        runtime.now() - runtime.start_time(),
        time::Duration::hours(2)
    );
    assert!(matches!(
        runtime.raise_event(&ignored, "Approval", &true),
        Err(TestingError::Finished { .. })
    ));
}

#[test]
fn runtime_reports_instances_nothing_can_wake() {
    let mut registry = Registry::new();
    registry.add_orchestrator("Forever", |ctx: OrchestrationContext, ()| async move {
        let v: u32 = ctx.wait_for_external_event("never").await?;
        Ok::<_, OrchestrationError>(v)
    });
    let mut runtime = InProcessRuntime::new(&registry);
    let id = runtime.start_named("Forever", None, &()).unwrap();
    assert!(matches!(
        block_on(runtime.run_to_completion(&id)),
        Err(TestingError::Stuck { .. })
    ));
    runtime.raise_event(&id, "never", &9).unwrap();
    assert_eq!(
        block_on(runtime.run_to_completion(&id))
            .unwrap()
            .output::<u32>()
            .unwrap(),
        9
    );
}

#[test]
fn runtime_retries_failing_activities_through_durable_timers() {
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let mut registry = Registry::new();
    registry
        .add_activity("Flaky", move |_ctx: ActivityContext, ()| {
            let attempt = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if attempt < 3 {
                    return Err(ActivityError::msg(format!("attempt {attempt} failed")));
                }
                Ok(attempt)
            }
        })
        .add_orchestrator("Retry", |ctx: OrchestrationContext, ()| async move {
            let policy = RetryPolicy::new(5, Duration::from_secs(10)).backoff_coefficient(2.0);
            Ok::<u32, OrchestrationError>(ctx.call_activity_with_retry("Flaky", (), policy).await?)
        });
    let mut runtime = InProcessRuntime::new(&registry);
    let id = runtime.start_named("Retry", None, &()).unwrap();
    let state = block_on(runtime.run_to_completion(&id)).unwrap();
    assert_eq!(state.output::<u32>().unwrap(), 3);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    // Waits of 10 s and 20 s, skipped.
    assert_eq!(
        runtime.now() - runtime.start_time(),
        time::Duration::seconds(30)
    );
}

#[test]
fn runtime_runs_sub_orchestrations_events_and_entities() {
    let mut registry = registry();
    registry
        .add_orchestrator("Child", |ctx: OrchestrationContext, n: i64| async move {
            let total = ctx.entity(Counter, "shared").call(Add, n).await?;
            let parent = ctx.parent().map(|p| p.instance_id).unwrap_or_default();
            ctx.send_event(&parent, "child-done", &total)?;
            Ok::<_, OrchestrationError>(total)
        })
        .add_orchestrator("Parent", |ctx: OrchestrationContext, ()| async move {
            let first: i64 = ctx.call_sub_orchestrator("Child", 2, None).await?;
            let second: i64 = ctx
                .call_sub_orchestrator("Child", 3, Some("second".into()))
                .await?;
            let a: i64 = ctx.wait_for_external_event("child-done").await?;
            let b: i64 = ctx.wait_for_external_event("child-done").await?;
            Ok::<_, OrchestrationError>(vec![first, second, a, b])
        });
    let mut runtime = InProcessRuntime::new(&registry);
    let id = runtime.start_named("Parent", Some("p"), &()).unwrap();
    let state = block_on(runtime.run_to_completion(&id)).unwrap();
    assert_eq!(state.output::<Vec<i64>>().unwrap(), [2, 5, 2, 5]);
    assert_eq!(runtime.state_of(Counter, "shared").unwrap(), Some(5));
    assert_eq!(
        runtime.instance("p:0000").unwrap().status(),
        RuntimeStatus::Completed
    );
    assert_eq!(
        runtime.instance("second").unwrap().output::<i64>().unwrap(),
        5
    );
}

#[test]
fn runtime_entity_locks_keep_critical_sections_apart() {
    let mut registry = registry();
    // Read, then write: without the lock, two instances would both read 0 and the count would end at 1.
    registry.add_orchestrator("Increment", |ctx: OrchestrationContext, ()| async move {
        let counter = ctx.entity(Counter, "locked");
        let _lock = ctx.lock_entities(&[counter.id().clone()]).await?;
        let value = counter.call(Get, ()).await?;
        counter.call(Set, value + 1).await?;
        Ok::<_, OrchestrationError>(value)
    });
    let mut runtime = InProcessRuntime::new(&registry);
    let a = runtime.start_named("Increment", None, &()).unwrap();
    let b = runtime.start_named("Increment", None, &()).unwrap();
    // Signals from outside wait for the lock too.
    runtime.signal("locked", Add, 10).unwrap();
    block_on(runtime.run_until_idle()).unwrap();
    let mut seen = vec![
        runtime.instance(&a).unwrap().output::<i64>().unwrap(),
        runtime.instance(&b).unwrap().output::<i64>().unwrap(),
    ];
    seen.sort();
    assert_eq!(seen, [0, 1]);
    assert_eq!(runtime.state_of(Counter, "locked").unwrap(), Some(12));
}

#[test]
fn runtime_delivers_scheduled_signals_at_their_time() {
    let mut registry = registry();
    registry.add_orchestrator("Later", |ctx: OrchestrationContext, ()| async move {
        let at = ctx.current_utc_datetime() + Duration::from_secs(3600);
        ctx.entity(Counter, "later").signal_at(Add, 1, at)?;
        Ok::<_, OrchestrationError>(())
    });
    let mut runtime = InProcessRuntime::new(&registry);
    runtime.start_named("Later", None, &()).unwrap();
    block_on(runtime.advance(Duration::from_secs(3599))).unwrap();
    assert_eq!(runtime.state_of(Counter, "later").unwrap(), None);
    block_on(runtime.advance(Duration::from_secs(1))).unwrap();
    assert_eq!(runtime.state_of(Counter, "later").unwrap(), Some(1));
}

#[test]
fn runtime_stops_eternal_orchestrations_at_the_step_limit() {
    let mut registry = Registry::new();
    registry.add_orchestrator("Eternal", |ctx: OrchestrationContext, n: u64| async move {
        ctx.create_timer_after(Duration::from_secs(60)).await?;
        ctx.continue_as_new(&(n + 1), false)?;
        Ok::<_, OrchestrationError>(())
    });
    let mut runtime = InProcessRuntime::new(&registry).max_steps(50);
    let id = runtime.start_named("Eternal", None, &0).unwrap();
    assert_eq!(
        block_on(runtime.run_to_completion(&id)).unwrap_err(),
        TestingError::TooManySteps(50)
    );
    // It ran, a minute per generation.
    assert!(runtime.now() - runtime.start_time() >= time::Duration::minutes(20));
    runtime.terminate(&id, "enough").unwrap();
    let state = block_on(runtime.run_to_completion(&id)).unwrap();
    assert_eq!(state.status(), RuntimeStatus::Terminated);
}

#[test]
fn runtime_reports_failed_activities_and_entities_to_the_orchestration() {
    let mut registry = registry();
    registry
        .add_activity("Broken", |_ctx: ActivityContext, ()| async {
            Err::<(), _>(ActivityError::non_retriable("broken on purpose"))
        })
        .add_orchestrator("Errors", |ctx: OrchestrationContext, ()| async move {
            let activity = ctx.call_activity::<_, ()>("Broken", ()).await.unwrap_err();
            let entity = ctx
                .call_entity::<_, ()>(&Counter::id("x"), "no-such-operation", ())
                .await
                .unwrap_err();
            let kind = |e: &TaskError| {
                e.failure_details()
                    .map(|d| d.error_type.clone())
                    .unwrap_or_default()
            };
            Ok::<_, OrchestrationError>((kind(&activity), kind(&entity)))
        });
    let mut runtime = InProcessRuntime::new(&registry);
    let id = runtime.start_named("Errors", None, &()).unwrap();
    let state = block_on(runtime.run_to_completion(&id)).unwrap();
    let (activity, entity) = state.output::<(String, String)>().unwrap();
    assert_eq!(activity, "ActivityError");
    assert_eq!(entity, "EntityOperationNotFound");
}

durable_core::activity! { pub SayHello: String => String; }
durable_core::orchestrator! { pub GreetAll: Vec<String> => Vec<String>; }

/// The example of the crate README, as written there.
#[test]
fn readme_example() -> Result<(), TestingError> {
    async fn greet_all(
        ctx: OrchestrationContext,
        cities: Vec<String>,
    ) -> Result<Vec<String>, OrchestrationError> {
        let mut greetings = Vec::new();
        for city in cities {
            greetings.push(ctx.call(SayHello, city).await?);
        }
        ctx.entity(Counter, "greetings")
            .signal(Add, greetings.len() as i64)?;
        Ok(greetings)
    }
    let mut registry = Registry::new();
    registry
        .register_orchestrator(GreetAll, greet_all)
        .register_activity(SayHello, |_ctx: ActivityContext, city: String| async move {
            Ok::<_, ActivityError>(format!("Hello {city}!"))
        });

    let mut harness = OrchestrationHarness::new(&registry);
    harness.start(GreetAll, vec!["Oslo".to_string()])?;
    assert_eq!(
        harness.actions(),
        [Action::activity(SayHello, "Oslo".to_string())]
    );
    harness
        .complete(SayHello, "Hei Oslo!".to_string())?
        .turn()?;
    assert_eq!(harness.output_of(GreetAll)?, ["Hei Oslo!"]);

    let mut runtime = InProcessRuntime::new(&registry);
    let id = runtime.start(GreetAll, vec!["Oslo".to_string()])?;
    block_on(runtime.run_to_completion(&id))?; // the README awaits it in an async test
    assert_eq!(runtime.output_of(GreetAll, &id)?, ["Hello Oslo!"]);
    Ok(())
}

#[test]
fn harness_fires_long_timers_slice_by_slice() -> Result<(), TestingError> {
    let mut registry = Registry::new();
    registry.add_orchestrator("Week", |ctx: OrchestrationContext, ()| async move {
        ctx.create_timer_after(Duration::from_secs(7 * 24 * 3600))
            .await?;
        Ok::<_, OrchestrationError>("done")
    });
    let day = Duration::from_secs(24 * 3600);
    let mut harness = OrchestrationHarness::new(&registry);
    let start = harness.start_named("Week", &())?.at();
    // Timers longer than three days are split, as the SDKs split them.
    assert_eq!(
        harness.actions(),
        [Action::CreateTimer {
            fire_at: start + 3 * day
        }]
    );
    harness.advance(3 * day).turn()?;
    assert_eq!(
        harness.actions(),
        [Action::CreateTimer {
            fire_at: start + 6 * day
        }]
    );
    harness.advance(4 * day).turn()?;
    assert_eq!(
        harness.actions(),
        [Action::CreateTimer {
            fire_at: start + 7 * day
        }]
    );
    // The clock is already past the last slice: advancing by nothing fires it.
    harness.advance(Duration::ZERO).turn()?;
    assert_eq!(harness.output::<String>()?, "done");
    Ok(())
}

#[test]
fn runtime_reports_failed_sub_orchestrations_and_starts_orchestrations_from_entities()
-> Result<(), TestingError> {
    durable_core::entity! {
        pub Launcher: u32 {
            pub Launch = "launch": String => ();
        }
    }
    let mut registry = Registry::new();
    registry
        .add_orchestrator(
            "Fails",
            |_ctx: OrchestrationContext, why: String| async move {
                Err::<(), _>(OrchestrationError::msg(why))
            },
        )
        .add_orchestrator(
            "Catches",
            |ctx: OrchestrationContext, why: String| async move {
                let error = ctx
                    .call_sub_orchestrator::<_, ()>("Fails", why, None)
                    .await
                    .unwrap_err();
                let cause = error
                    .failure_details()
                    .map(|d| d.error_message.clone())
                    .unwrap_or_default();
                Ok::<_, OrchestrationError>(cause)
            },
        )
        .register_entity(
            Launcher,
            Entity::new().on(Launch, |launched, ctx, why| {
                *launched += 1;
                ctx.start_new_orchestration("Catches", why, Some(format!("launched-{launched}")))?;
                Ok(())
            }),
        );
    let mut runtime = InProcessRuntime::new(&registry);
    runtime.signal("l", Launch, "out of paper".to_string())?;
    block_on(runtime.run_until_idle())?;
    assert_eq!(runtime.state_of(Launcher, "l")?, Some(1));
    let launched = runtime
        .instance("launched-1")
        .expect("started by the entity");
    assert_eq!(launched.output::<String>()?, "out of paper");
    let child = runtime
        .instance("launched-1:0000")
        .expect("the sub-orchestration");
    assert_eq!(child.status(), RuntimeStatus::Failed);
    Ok(())
}
