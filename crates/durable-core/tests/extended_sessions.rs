//! Requests from the Durable extension inside an extended session leave the history (or the entity's state) out
//! and say so in `properties`; the engine keeps nothing between requests, so it asks for them instead of replaying
//! a history it does not have.

mod common;

use std::collections::HashMap;

use common::{EXECUTION, INSTANCE, ev};
use durable_core::proto::prost_types::{Value, value::Kind};
use durable_core::{OrchestrationContext, OrchestrationError, Registry, proto};

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator(
        "hello",
        |ctx: OrchestrationContext, name: String| async move {
            let greeting: String = ctx.call_activity("greet", &name).await?;
            Ok::<_, OrchestrationError>(greeting)
        },
    );
    r
}

fn include_state(value: bool) -> HashMap<String, Value> {
    HashMap::from([
        (
            "IncludeState".to_owned(),
            Value {
                kind: Some(Kind::BoolValue(value)),
            },
        ),
        (
            "IsExtendedSession".to_owned(),
            Value {
                kind: Some(Kind::BoolValue(!value)),
            },
        ),
    ])
}

#[test]
fn a_turn_without_its_history_asks_for_it() {
    let request = proto::OrchestratorRequest {
        instance_id: "i1".into(),
        past_events: Vec::new(),
        new_events: vec![
            ev::orchestrator_started(common::at(5)),
            ev::task_completed(0, Some("\"Hello, Oslo\"")),
        ],
        properties: include_state(false),
        ..Default::default()
    };
    let response = registry().execute_orchestrator(&request);
    assert!(response.requires_history);
    assert!(response.actions.is_empty(), "{:?}", response.actions);
    assert_eq!(response.instance_id, "i1");
}

#[test]
fn the_same_turn_with_its_history_runs() {
    let request = proto::OrchestratorRequest {
        instance_id: "i1".into(),
        past_events: vec![
            ev::orchestrator_started(common::at(0)),
            ev::execution_started(INSTANCE, EXECUTION, "hello", Some("\"Oslo\"")),
            ev::task_scheduled(0, "greet"),
            ev::orchestrator_completed(),
        ],
        new_events: vec![
            ev::orchestrator_started(common::at(5)),
            ev::task_completed(0, Some("\"Hello, Oslo\"")),
        ],
        properties: include_state(true),
        ..Default::default()
    };
    let response = registry().execute_orchestrator(&request);
    assert!(!response.requires_history);
    assert_eq!(
        common::summary(&response),
        ["1 Complete Completed \"Hello, Oslo\""]
    );
}

#[test]
fn an_entity_batch_without_its_state_asks_for_it() {
    let request = proto::EntityBatchRequest {
        instance_id: "@counter@k".into(),
        entity_state: None,
        operations: vec![proto::OperationRequest {
            operation: "add".into(),
            request_id: "r1".into(),
            input: Some("1".into()),
            ..Default::default()
        }],
        properties: include_state(false),
    };
    let result = Registry::new().execute_entity_batch(&request);
    assert!(result.requires_state);
    assert!(result.results.is_empty());
    assert!(result.failure_details.is_none());
}
