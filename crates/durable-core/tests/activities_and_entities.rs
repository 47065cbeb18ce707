//! Activity execution and entity batches through the registry's entry points.

use durable_core::proto::{
    self, operation_action::OperationActionType, operation_result::ResultType,
};
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, Registry, entity_batch_from_v2,
    failure_envelope,
};
use futures::executor::block_on;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct Account {
    balance: i64,
    history: Vec<i64>,
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_activity("greet", |ctx: ActivityContext, name: String| async move {
        Ok::<_, ActivityError>(format!(
            "{} #{}: hello {name}",
            ctx.instance_id(),
            ctx.task_id()
        ))
    })
    .add_activity(
        "fail",
        |_ctx: ActivityContext, permanent: bool| async move {
            if permanent {
                Err::<(), _>(ActivityError::non_retriable("gone for good"))
            } else {
                Err(std::io::Error::other("disk full").into())
            }
        },
    )
    .add_activity("panic", |_ctx: ActivityContext, (): ()| async move {
        if true {
            panic!("activity blew up");
        }
        Ok::<_, ActivityError>(())
    })
    .add_entity(
        "Account",
        Entity::<Account>::new()
            .operation("deposit", |s: &mut Account, _ctx, amount: i64| {
                if amount <= 0 {
                    return Err(EntityError::new(
                        "InvalidAmount",
                        format!("{amount} is not positive"),
                    ));
                }
                s.balance += amount;
                s.history.push(amount);
                Ok(s.balance)
            })
            .operation("withdraw_and_fail", |s: &mut Account, ctx, amount: i64| {
                s.balance -= amount;
                ctx.signal_entity(&EntityId::new("audit", "x"), "note", amount)?;
                Err::<(), _>(EntityError::msg("rolled back"))
            })
            .operation("notify", |s: &mut Account, ctx, (): ()| {
                ctx.signal_entity(&EntityId::new("audit", "x"), "note", s.balance)?;
                let id = ctx.start_new_orchestration("report", s.balance, None)?;
                Ok(id)
            })
            .operation("Get", |s: &mut Account, _ctx, (): ()| {
                Ok::<_, EntityError>(s.balance)
            })
            .operation("close", |_s: &mut Account, ctx, (): ()| {
                ctx.delete_state();
                Ok::<_, EntityError>(())
            })
            .operation(
                "panic",
                |_s: &mut Account, _ctx, (): ()| -> Result<(), EntityError> {
                    panic!("entity blew up")
                },
            ),
    );
    r
}

fn activity(name: &str, input: &str) -> proto::ActivityResponse {
    block_on(registry().execute_activity(proto::ActivityRequest {
        name: name.into(),
        input: Some(input.into()),
        orchestration_instance: Some(proto::OrchestrationInstance {
            instance_id: "i-1".into(),
            execution_id: None,
        }),
        task_id: 7,
        ..Default::default()
    }))
}

#[test]
fn activity_success() {
    let response = activity("greet", r#""Tokyo""#);
    assert_eq!(response.instance_id, "i-1");
    assert_eq!(response.task_id, 7);
    assert_eq!(response.result.as_deref(), Some(r#""i-1 #7: hello Tokyo""#));
    assert!(response.failure_details.is_none());
}

#[test]
fn activity_failures_are_retriable_or_not() {
    let retriable = activity("fail", "false").failure_details.unwrap();
    assert_eq!(retriable.error_type, "Error");
    assert_eq!(retriable.error_message, "disk full");
    assert!(!retriable.is_non_retriable);
    let permanent = activity("fail", "true").failure_details.unwrap();
    assert!(permanent.is_non_retriable);
    assert_eq!(permanent.error_message, "gone for good");
}

#[test]
fn activity_panics_unknown_names_and_bad_input_are_failures() {
    let panicked = activity("panic", "null").failure_details.unwrap();
    assert_eq!(panicked.error_type, "Panic");
    assert!(panicked.error_message.contains("activity blew up"));
    let missing = activity("nope", "null").failure_details.unwrap();
    assert_eq!(missing.error_type, "ActivityNotFound");
    let bad = activity("greet", "12").failure_details.unwrap();
    assert_eq!(bad.error_type, "SerializationError");
    assert!(bad.is_non_retriable);
}

#[test]
fn activity_future_is_send() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let fut = registry().execute_activity(proto::ActivityRequest::default());
    assert_send(&fut);
}

#[test]
fn failure_envelope_roundtrips_activity_failures() {
    let details = activity("fail", "true").failure_details.unwrap();
    let value = failure_envelope::encode(&details);
    assert_eq!(failure_envelope::decode(&value.to_string()), Some(details));
}

fn op(operation: &str, input: Option<&str>) -> proto::OperationRequest {
    proto::OperationRequest {
        operation: operation.into(),
        request_id: format!("req-{operation}"),
        input: input.map(str::to_string),
        trace_context: None,
    }
}

fn batch(state: Option<&str>, ops: Vec<proto::OperationRequest>) -> proto::EntityBatchResult {
    registry().execute_entity_batch(&proto::EntityBatchRequest {
        instance_id: "@account@alice".into(),
        entity_state: state.map(str::to_string),
        operations: ops,
        properties: Default::default(),
    })
}

fn outcome(result: &proto::OperationResult) -> Result<Option<String>, String> {
    match result.result_type.as_ref().unwrap() {
        ResultType::Success(s) => Ok(s.result.clone()),
        ResultType::Failure(f) => Err(f.failure_details.as_ref().unwrap().error_type.clone()),
    }
}

#[test]
fn batch_results_and_rollback_of_failed_operations_only() {
    let result = batch(
        None,
        vec![
            op("deposit", Some("10")),
            op("deposit", Some("-1")),
            op("withdraw_and_fail", Some("5")),
            op("GET", None),
            op("panic", None),
            op("unknown", None),
        ],
    );
    let outcomes: Vec<_> = result.results.iter().map(outcome).collect();
    assert_eq!(
        outcomes,
        [
            Ok(Some("10".into())),
            Err("InvalidAmount".into()),
            Err("EntityOperationError".into()),
            Ok(Some("10".into())),
            Err("Panic".into()),
            Err("EntityOperationNotFound".into()),
        ]
    );
    // The failed withdraw's signal is discarded along with its state change.
    assert!(result.actions.is_empty());
    let state: Account = serde_json::from_str(result.entity_state.as_deref().unwrap()).unwrap();
    assert_eq!(
        state,
        Account {
            balance: 10,
            history: vec![10]
        }
    );
    assert!(result.failure_details.is_none());
}

#[test]
fn operations_emit_actions() {
    let result = batch(
        Some(r#"{"balance":3,"history":[]}"#),
        vec![op("notify", None), op("notify", None)],
    );
    assert_eq!(result.results.len(), 2);
    let ids: Vec<i32> = result.actions.iter().map(|a| a.id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    match result.actions[0].operation_action_type.as_ref().unwrap() {
        OperationActionType::SendSignal(s) => {
            assert_eq!(
                (s.instance_id.as_str(), s.name.as_str(), s.input.as_deref()),
                ("@audit@x", "note", Some("3"))
            );
        }
        other => panic!("{other:?}"),
    }
    let started = match result.actions[1].operation_action_type.as_ref().unwrap() {
        OperationActionType::StartNewOrchestration(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(started.name, "report");
    assert_eq!(
        Some(format!("\"{}\"", started.instance_id)),
        outcome(&result.results[0]).unwrap()
    );
    // Derived ids are stable for the same request and distinct across requests.
    let again = batch(
        Some(r#"{"balance":3,"history":[]}"#),
        vec![op("notify", None)],
    );
    assert_eq!(outcome(&again.results[0]), outcome(&result.results[0]));
}

#[test]
fn delete_state_and_recreate() {
    let result = batch(
        Some(r#"{"balance":3,"history":[]}"#),
        vec![op("close", None)],
    );
    assert_eq!(result.entity_state, None);
    let result = batch(
        Some(r#"{"balance":3,"history":[]}"#),
        vec![op("delete", None), op("deposit", Some("1"))],
    );
    let state: Account = serde_json::from_str(result.entity_state.as_deref().unwrap()).unwrap();
    assert_eq!(state.balance, 1);
}

/// Every operation failed with `error_type`, non-retriable, with the state untouched and no actions; no batch-level
/// failure, which backends read as "abandon and retry the batch" (forever, for these causes).
fn assert_all_failed(result: &proto::EntityBatchResult, operations: usize, error_type: &str) {
    assert!(
        result.failure_details.is_none(),
        "{:?}",
        result.failure_details
    );
    assert!(result.actions.is_empty());
    assert_eq!(result.results.len(), operations);
    for r in &result.results {
        match &r.result_type {
            Some(proto::operation_result::ResultType::Failure(f)) => {
                let details = f.failure_details.as_ref().unwrap();
                assert_eq!(details.error_type, error_type);
                assert!(details.is_non_retriable);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn batch_level_failures_fail_each_operation() {
    let result = batch(Some("not json"), vec![op("get", None), op("get", None)]);
    assert_all_failed(&result, 2, "EntityStateDeserializationError");
    assert_eq!(result.entity_state.as_deref(), Some("not json"));

    let result = registry().execute_entity_batch(&proto::EntityBatchRequest {
        instance_id: "@nobody@k".into(),
        entity_state: Some("1".into()),
        operations: vec![op("get", None)],
        ..Default::default()
    });
    assert_all_failed(&result, 1, "EntityFunctionNotFound");
    assert_eq!(result.entity_state.as_deref(), Some("1"));

    let result = registry().execute_entity_batch(&proto::EntityBatchRequest {
        instance_id: "plain".into(),
        operations: vec![op("get", None)],
        ..Default::default()
    });
    assert_all_failed(&result, 1, "InvalidEntityId");
}

#[test]
fn a_state_that_cannot_be_encoded_fails_the_operations_and_keeps_the_old_state() {
    let mut r = Registry::new();
    r.add_entity(
        "keyed",
        Entity::<std::collections::HashMap<(i32, i32), i32>>::new().operation(
            "put",
            |s: &mut std::collections::HashMap<(i32, i32), i32>, ctx, v: i32| {
                s.insert((v, v), v);
                ctx.signal_entity(&EntityId::new("audit", "x"), "note", v)?;
                Ok::<_, EntityError>(())
            },
        ),
    );
    let result = r.execute_entity_batch(&proto::EntityBatchRequest {
        instance_id: "@keyed@k".into(),
        entity_state: None,
        operations: vec![op("put", Some("1"))],
        ..Default::default()
    });
    assert_all_failed(&result, 1, "EntityStateSerializationError");
    assert_eq!(result.entity_state, None);
}

#[test]
fn v2_requests_convert_to_batches_with_routing() {
    use proto::history_event::EventType;
    let event = |t| proto::HistoryEvent {
        event_id: -1,
        timestamp: None,
        event_type: Some(t),
    };
    let request = proto::EntityRequest {
        instance_id: "@account@alice".into(),
        execution_id: "e".into(),
        entity_state: Some("{}".into()),
        operation_requests: vec![
            event(EventType::EntityOperationSignaled(
                proto::EntityOperationSignaledEvent {
                    request_id: "s1".into(),
                    operation: "deposit".into(),
                    input: Some("1".into()),
                    ..Default::default()
                },
            )),
            event(EventType::EntityOperationCalled(
                proto::EntityOperationCalledEvent {
                    request_id: "c1".into(),
                    operation: "get".into(),
                    parent_instance_id: Some("orch".into()),
                    parent_execution_id: Some("x1".into()),
                    ..Default::default()
                },
            )),
        ],
    };
    let (batch_request, infos) = entity_batch_from_v2(&request);
    assert_eq!(batch_request.instance_id, "@account@alice");
    assert_eq!(batch_request.entity_state.as_deref(), Some("{}"));
    let ops: Vec<(&str, &str)> = batch_request
        .operations
        .iter()
        .map(|o| (o.operation.as_str(), o.request_id.as_str()))
        .collect();
    assert_eq!(ops, [("deposit", "s1"), ("get", "c1")]);
    assert_eq!(infos[0].request_id, "s1");
    assert!(infos[0].response_destination.is_none());
    let dest = infos[1].response_destination.as_ref().unwrap();
    assert_eq!(
        (dest.instance_id.as_str(), dest.execution_id.as_deref()),
        ("orch", Some("x1"))
    );
    let result = registry().execute_entity_batch(&batch_request);
    assert_eq!(result.results.len(), 2);
    assert_eq!(
        result.entity_state.as_deref(),
        Some(r#"{"balance":1,"history":[1]}"#)
    );
}

#[test]
fn registry_names_and_lookups() {
    let r = registry();
    assert_eq!(r.activity_names(), ["fail", "greet", "panic"]);
    assert_eq!(r.entity_names(), ["account"]);
    assert!(r.has_entity("ACCOUNT"));
    assert!(r.has_activity("Greet"));
    assert!(!r.has_orchestrator("greet"));
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Registry>();
}

#[test]
fn operation_times_come_from_the_transport_clock() {
    let ticks = std::cell::Cell::new(0i64);
    let now = || {
        ticks.set(ticks.get() + 1);
        durable_core::OffsetDateTime::from_unix_timestamp(1_000 + ticks.get()).unwrap()
    };
    let request = proto::EntityBatchRequest {
        instance_id: "@account@alice".into(),
        operations: vec![op("deposit", Some("1")), op("deposit", Some("0"))],
        ..Default::default()
    };
    let result = registry().execute_entity_batch_with_clock(&request, &now);
    let times: Vec<(i64, i64)> = result
        .results
        .iter()
        .map(|r| match r.result_type.as_ref().unwrap() {
            ResultType::Success(s) => (
                s.start_time_utc.unwrap().seconds,
                s.end_time_utc.unwrap().seconds,
            ),
            ResultType::Failure(f) => (
                f.start_time_utc.unwrap().seconds,
                f.end_time_utc.unwrap().seconds,
            ),
        })
        .collect();
    assert_eq!(times, [(1001, 1002), (1003, 1004)]);
    // Without a clock the times stay absent.
    let plain = registry().execute_entity_batch(&request);
    assert!(matches!(
        plain.results[0].result_type.as_ref().unwrap(),
        ResultType::Success(s) if s.start_time_utc.is_none()
    ));
}
