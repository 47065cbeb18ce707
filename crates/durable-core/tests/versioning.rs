//! Versioning in the engine: refused turns (fail, or reject for the transport to abandon), default versions of
//! sub-orchestrations, and version comparison in orchestrator code.

mod common;

use std::cmp::Ordering;

use common::*;
use durable_core::proto::{self, history_event::EventType};
use durable_core::{
    CallOptions, OrchestrationContext, OrchestrationError, Registry, VersionFailureStrategy,
    VersionMatchStrategy, Versioning,
};

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("parent", |ctx: OrchestrationContext, (): ()| async move {
        let newer = ctx.compare_version_to("1.5") == Ordering::Greater;
        let a = ctx.call_sub_orchestrator::<_, ()>("child", newer, None);
        let b = ctx.call_sub_orchestrator_with_options::<_, ()>(
            "child",
            newer,
            CallOptions::new().version("9.9"),
        );
        a.await?;
        b.await?;
        Ok::<_, OrchestrationError>(())
    });
    r
}

fn start(version: Option<&str>, properties: &[(&str, &str)]) -> proto::OrchestratorRequest {
    proto::OrchestratorRequest {
        instance_id: INSTANCE.into(),
        new_events: vec![
            ev::orchestrator_started(t0()),
            ev::event(
                -1,
                EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                    name: "parent".into(),
                    version: version.map(str::to_owned),
                    ..Default::default()
                }),
            ),
        ],
        properties: properties
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue((*v).to_owned())),
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// (child versions, child inputs) of the turn's sub-orchestration actions.
fn children(response: &proto::OrchestratorResponse) -> Vec<(Option<String>, Option<String>)> {
    response
        .actions
        .iter()
        .filter_map(|a| match &a.orchestrator_action_type {
            Some(proto::orchestrator_action::OrchestratorActionType::CreateSubOrchestration(s)) => {
                Some((s.version.clone(), s.input.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn sub_orchestrations_get_the_default_version_and_code_compares_versions() {
    let r = registry();
    // The host's defaultVersion (a turn property) when the worker has none.
    let response = r.execute_orchestrator(&start(Some("2.0"), &[("defaultVersion", "3.1")]));
    assert_eq!(
        children(&response),
        [
            (Some("3.1".into()), Some("true".into())),
            (Some("9.9".into()), Some("true".into()))
        ]
    );
    // The worker's default version wins over the host's; an older orchestration takes the old path.
    let mut r = registry();
    r.set_versioning(Versioning::new("2.0").default_version(Some("2.0".to_owned())));
    let response = r.execute_orchestrator(&start(Some("1.0"), &[("defaultVersion", "3.1")]));
    assert_eq!(
        children(&response),
        [
            (Some("2.0".into()), Some("false".into())),
            (Some("9.9".into()), Some("false".into()))
        ]
    );
    // Neither: no version.
    let response = registry().execute_orchestrator(&start(None, &[]));
    assert_eq!(children(&response)[0], (None, Some("false".into())));
}

#[test]
fn a_refused_version_fails_or_is_handed_back() {
    let mut failing = registry();
    failing.set_versioning(
        Versioning::new("1.0")
            .match_strategy(VersionMatchStrategy::Strict)
            .failure_strategy(VersionFailureStrategy::Fail),
    );
    let refused = start(Some("2.0"), &[]);
    let response = failing.try_execute_orchestrator(&refused).unwrap();
    let f = failure(&response).expect("the orchestration fails");
    assert_eq!(f.error_type, "VersionMismatch");
    assert_eq!(
        f.error_message,
        "The orchestration version '2.0' does not match the worker version '1.0'."
    );
    assert!(f.is_non_retriable);
    assert_eq!(response.actions.len(), 1, "no orchestrator code ran");
    assert!(failure(&failing.execute_orchestrator(&start(Some("1.0"), &[]))).is_none());

    let mut rejecting = registry();
    rejecting.set_versioning(
        Versioning::new("1.0").match_strategy(VersionMatchStrategy::CurrentOrOlder),
    );
    let mismatch = rejecting.try_execute_orchestrator(&refused).unwrap_err();
    assert!(mismatch.reject);
    assert_eq!(
        mismatch.details.error_message,
        "The orchestration version '2.0' is greater than the worker version '1.0'."
    );
    // A transport that must answer gets the failure instead.
    let f = failure(&rejecting.execute_orchestrator(&refused)).unwrap();
    assert_eq!(f.error_type, "VersionMismatch");
    assert!(
        rejecting
            .try_execute_orchestrator(&start(Some("0.5"), &[]))
            .is_ok()
    );
    assert!(
        rejecting
            .try_execute_orchestrator(&start(None, &[]))
            .is_ok()
    );
}

#[test]
fn the_harness_runs_an_orchestration_at_a_version_and_keeps_it_across_continue_as_new() {
    use durable_core::testing::{Action, OrchestrationHarness, RuntimeStatus};

    let mut r = Registry::new();
    r.add_orchestrator("loop", |ctx: OrchestrationContext, round: u32| async move {
        let step = if ctx.compare_version_to("2.0") == Ordering::Less {
            "old-step"
        } else {
            "new-step"
        };
        ctx.call_activity::<_, ()>(step, &round).await?;
        if round == 0 {
            ctx.continue_as_new(&1u32, false)?;
            return Ok::<_, OrchestrationError>(String::new());
        }
        Ok(ctx.version().unwrap_or_default())
    });

    let mut harness = OrchestrationHarness::new(&r).version("2.1");
    harness.start_named("loop", &0u32).unwrap();
    assert_eq!(
        harness.actions(),
        [Action::call_activity("new-step", &0u32)]
    );
    harness
        .complete_activity("new-step", &())
        .unwrap()
        .turn()
        .unwrap();
    // The next generation starts at once, with the same version.
    harness.turn().unwrap();
    assert_eq!(
        harness.actions(),
        [Action::call_activity("new-step", &1u32)]
    );
    harness
        .complete_activity("new-step", &())
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.status(), RuntimeStatus::Completed);
    assert_eq!(harness.output::<String>().unwrap(), "2.1");

    let mut old = OrchestrationHarness::new(&r);
    old.start_named("loop", &1u32).unwrap();
    assert_eq!(old.actions(), [Action::call_activity("old-step", &1u32)]);

    // The registry's versioning judges the harness's version as a worker would.
    r.set_versioning(
        Versioning::new("2.0")
            .match_strategy(VersionMatchStrategy::Strict)
            .failure_strategy(VersionFailureStrategy::Fail),
    );
    let mut refused = OrchestrationHarness::new(&r).version("2.1");
    refused.start_named("loop", &1u32).unwrap();
    assert_eq!(refused.status(), RuntimeStatus::Failed);
    assert_eq!(refused.failure().unwrap().error_type, "VersionMismatch");
}
