//! Property test: arbitrary event sequences never make the engine fail internally, and never make it emit
//! unbounded output.

mod common;

use std::time::Duration;

use common::{EXECUTION, INSTANCE, at, ev, ts};
use durable_core::FailureDetails;
use durable_core::proto::{self, history_event::EventType};
use durable_core::{
    EntityId, OrchestrationContext, OrchestrationError, Registry, RetryPolicy, when_any,
};
use proptest::prelude::*;

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator(
        "mixed",
        |ctx: OrchestrationContext, n: Option<u32>| async move {
            let a = ctx.call_activity::<_, u32>("a", n);
            let t = ctx.create_timer_after(Duration::from_secs(5));
            let (_, _) = when_any([
                Box::pin(async { a.await.map(|_| ()) }) as durable_core::LocalBoxFuture<'_, _>,
                Box::pin(t),
            ])
            .await;
            let e: Option<String> = ctx
                .wait_for_external_event_with_timeout("ev", Duration::from_secs(30))
                .await
                .unwrap_or(None);
            let lock = ctx
                .lock_entities(&[EntityId::new("c", "1"), EntityId::new("c", "2")])
                .await?;
            let _: i64 = ctx.call_entity(&EntityId::new("c", "1"), "add", 1).await?;
            drop(lock);
            let _: u32 = ctx
                .call_activity_with_retry("b", e, RetryPolicy::new(3, Duration::from_secs(1)))
                .await?;
            let _: u32 = ctx.call_sub_orchestrator("mixed", Some(1u32), None).await?;
            if n.unwrap_or(0).is_multiple_of(2) {
                ctx.continue_as_new(&(n.unwrap_or(0) + 1), true)?;
            }
            Ok::<_, OrchestrationError>(n)
        },
    );
    r
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("mixed".to_string()),
        Just("missing".to_string()),
        Just("ev".to_string()),
        Just("a".to_string())
    ]
}

fn arb_json() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("1".to_string())),
        Just(Some("\"x\"".to_string())),
        Just(Some("{bad".to_string())),
        Just(Some(
            r#"{"$durableTaskFailure":{"errorType":"E","errorMessage":"m"}}"#.to_string()
        )),
        Just(Some(r#"{"result":"2"}"#.to_string())),
    ]
}

fn arb_event() -> impl Strategy<Value = proto::HistoryEvent> {
    let id = -2i32..12;
    let secs = 0i64..400_000;
    prop_oneof![
        secs.clone().prop_map(|s| ev::orchestrator_started(at(s))),
        (arb_name(), arb_json()).prop_map(|(n, i)| ev::execution_started(
            INSTANCE,
            EXECUTION,
            &n,
            i.as_deref()
        )),
        (id.clone(), arb_name()).prop_map(|(i, n)| ev::task_scheduled(i, &n)),
        (id.clone(), arb_json()).prop_map(|(i, r)| ev::event(
            -1,
            EventType::TaskCompleted(proto::TaskCompletedEvent {
                task_scheduled_id: i,
                result: r
            })
        )),
        id.clone().prop_map(|i| ev::task_failed(
            i,
            &FailureDetails::new("E", "m").with_non_retriable(i % 2 == 0)
        )),
        (id.clone(), secs.clone()).prop_map(|(i, s)| ev::timer_created(i, at(s))),
        (id.clone(), secs.clone()).prop_map(|(i, s)| ev::timer_fired(i, at(s))),
        (arb_name(), arb_json()).prop_map(|(n, i)| ev::event_raised(&n, i.as_deref())),
        (id.clone(), arb_name()).prop_map(|(i, n)| ev::event_sent(
            i,
            "@c@1",
            &n,
            Some(r#"{"id":"q"}"#)
        )),
        id.clone()
            .prop_map(|i| ev::sub_orchestration_completed(i, Some("1"))),
        id.clone()
            .prop_map(|i| ev::sub_orchestration_failed(i, &FailureDetails::new("E", "m"))),
        id.clone().prop_map(|i| ev::event(
            i,
            EventType::SubOrchestrationInstanceCreated(
                proto::SubOrchestrationInstanceCreatedEvent {
                    name: "mixed".into(),
                    ..Default::default()
                }
            )
        )),
        Just(ev::suspended()),
        Just(ev::resumed()),
        arb_json().prop_map(|o| ev::terminated(o.as_deref())),
        Just(ev::orchestrator_completed()),
        id.clone().prop_map(|i| ev::event(
            i,
            EventType::EntityLockRequested(proto::EntityLockRequestedEvent {
                critical_section_id: format!("cs{i}"),
                ..Default::default()
            })
        )),
        id.clone().prop_map(|i| ev::lock_granted(&format!("cs{i}"))),
        id.clone()
            .prop_map(|i| ev::entity_completed(&format!("r{i}"), Some("1"))),
        id.clone().prop_map(|i| ev::event(
            i,
            EventType::EntityUnlockSent(proto::EntityUnlockSentEvent {
                critical_section_id: format!("cs{i}"),
                ..Default::default()
            })
        )),
        Just(proto::HistoryEvent {
            event_id: 0,
            timestamp: Some(ts(at(0))),
            event_type: None
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_histories_never_break_the_engine(
        past in proptest::collection::vec(arb_event(), 0..40),
        new in proptest::collection::vec(arb_event(), 0..20),
        prefix in any::<bool>(),
    ) {
        let r = registry();
        let mut past = past;
        if prefix {
            // Often give the history a plausible start so the orchestrator code actually runs.
            past.insert(0, ev::execution_started(INSTANCE, EXECUTION, "mixed", Some("2")));
            past.insert(0, ev::orchestrator_started(at(0)));
        }
        let request = proto::OrchestratorRequest {
            instance_id: "p".into(),
            past_events: past.clone(),
            new_events: new.clone(),
            ..Default::default()
        };
        let response = r.execute_orchestrator(&request);
        prop_assert_eq!(&response.instance_id, "p");
        for action in &response.actions {
            if let Some(proto::orchestrator_action::OrchestratorActionType::CompleteOrchestration(c)) =
                &action.orchestrator_action_type
                && let Some(f) = &c.failure_details {
                    prop_assert_ne!(f.error_type.as_str(), "InternalError");
                    // A RefCell conflict inside the engine would surface as a panic during a poll.
                    prop_assert!(!f.error_message.contains("borrow"), "{}", f.error_message);
                }
        }
        // Output is bounded by what the code can decide for this many events.
        prop_assert!(response.actions.len() <= 16 + past.len() + new.len(), "{} actions", response.actions.len());
        // Determinism: the same request gives the same response.
        prop_assert_eq!(r.execute_orchestrator(&request), response);
    }
}
