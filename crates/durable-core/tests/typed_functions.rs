//! Typed functions: the declarations fix the names on the wire, registrations and calls go through them, and typed
//! entity proxies send the same messages as calls by name.

use durable_core::proto;
use durable_core::testing::{Action, OrchestrationHarness};
use durable_core::{
    Activity, ActivityContext, ActivityError, CallOptions, Entity, EntityError, EntityId,
    EntityOperation, EntityType, OrchestrationContext, OrchestrationError, Orchestrator, Registry,
    RetryPolicy,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    item: String,
    quantity: u32,
}

durable_core::activity! {
    /// Prices an order.
    pub PriceOrder: Order => u64;
    /// Named differently on the wire, as a function written in another language would be.
    pub ShipOrder = "ship_order": Order => String;
}

durable_core::orchestrator! {
    pub ProcessOrder: Order => (u64, String);
    pub Parent: Order => (u64, String);
}

durable_core::entity! {
    /// Stock per item.
    pub Stock = "Inventory": u32 {
        pub Reserve = "reserve": u32 => u32;
        pub Restock: u32 => ();
    }
}

durable_core::entity! {
    pub Audit: Vec<String> {
        pub Record = "record": String => ();
    }
}

async fn process_order(
    ctx: OrchestrationContext,
    order: Order,
) -> Result<(u64, String), OrchestrationError> {
    let price = ctx.call(PriceOrder, &order).await?;
    let retry = RetryPolicy::new(2, Duration::from_secs(5));
    let tracking = ctx
        .call_with(ShipOrder, order, CallOptions::new().retry(retry))
        .await?;
    Ok((price, tracking))
}

async fn parent(
    ctx: OrchestrationContext,
    order: Order,
) -> Result<(u64, String), OrchestrationError> {
    let stock = ctx.entity(Stock, order.item.clone());
    let left = stock.call(Reserve, order.quantity).await?;
    stock.signal(Restock, 10 - left.min(10))?;
    let out = ctx
        .call_with(
            ProcessOrder,
            order,
            CallOptions::new().instance_id("child-1"),
        )
        .await?;
    Ok(out)
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register_orchestrator(ProcessOrder, process_order)
        .register_orchestrator(Parent, parent)
        .register_activity(
            PriceOrder,
            |_ctx: ActivityContext, order: Order| async move {
                Ok::<_, ActivityError>(u64::from(order.quantity) * 250)
            },
        )
        .register_activity(
            ShipOrder,
            |_ctx: ActivityContext, order: Order| async move {
                Ok::<_, ActivityError>(format!("track-{}", order.item))
            },
        )
        .register_entity(
            Stock,
            Entity::new()
                .on(Reserve, |stock, ctx, n| {
                    if *stock < n {
                        return Err(EntityError::msg("not enough stock"));
                    }
                    *stock -= n;
                    // Entity to entity: a signal, sent only because the operation succeeds.
                    let line = format!("reserved {n} of {}", ctx.entity_id().key);
                    ctx.entity(Audit, "log").signal(Record, line)?;
                    Ok(*stock)
                })
                .on(Restock, |stock, _ctx, n| {
                    *stock += n;
                    Ok(())
                }),
        );
    registry
}

fn order() -> Order {
    Order {
        item: "lamp".into(),
        quantity: 2,
    }
}

#[test]
fn declarations_fix_the_registered_names() {
    assert_eq!(PriceOrder::NAME, "PriceOrder");
    assert_eq!(ShipOrder::NAME, "ship_order");
    assert_eq!(ProcessOrder::NAME, "ProcessOrder");
    assert_eq!(
        (Stock::NAME, Reserve::NAME, Restock::NAME),
        ("Inventory", "reserve", "Restock")
    );
    assert_eq!(Stock::id("lamp"), EntityId::new("inventory", "lamp"));

    let registry = registry();
    assert_eq!(registry.activity_names(), ["PriceOrder", "ship_order"]);
    assert_eq!(registry.orchestrator_names(), ["Parent", "ProcessOrder"]);
    assert_eq!(registry.entity_names(), ["inventory"]);
}

#[test]
fn typed_calls_schedule_the_declared_names_and_inputs() {
    let registry = registry();
    let mut harness = OrchestrationHarness::new(&registry);
    harness.start(ProcessOrder, order()).unwrap();
    assert_eq!(harness.actions(), [Action::activity(PriceOrder, order())]);
    assert_eq!(
        harness.actions(),
        [Action::CallActivity {
            name: "PriceOrder".into(),
            input: json!({"item": "lamp", "quantity": 2})
        }]
    );

    harness.complete(PriceOrder, 500).unwrap().turn().unwrap();
    assert_eq!(
        harness.actions(),
        [Action::call_activity("ship_order", &order())]
    );

    // The retry policy of `call_with` applies: a failure schedules a durable timer, then the call again.
    let failure = durable_core::FailureDetails::new("Busy", "try later");
    harness.fail(ShipOrder, failure).unwrap().turn().unwrap();
    assert!(
        matches!(harness.actions(), [Action::CreateTimer { .. }]),
        "{:?}",
        harness.actions()
    );
    harness.advance(Duration::from_secs(5)).turn().unwrap();
    assert_eq!(harness.actions(), [Action::activity(ShipOrder, order())]);
    harness
        .complete(ShipOrder, "track-lamp".to_string())
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(
        harness.output_of(ProcessOrder).unwrap(),
        (500, "track-lamp".to_string())
    );
}

#[test]
fn typed_entity_proxy_and_sub_orchestration() {
    let registry = registry();
    let mut harness = OrchestrationHarness::new(&registry);
    harness.start(Parent, order()).unwrap();
    assert_eq!(harness.actions(), [Action::call_entity("lamp", Reserve, 2)]);
    assert_eq!(
        harness.actions(),
        [Action::CallEntity {
            entity: EntityId::new("Inventory", "lamp"),
            operation: "reserve".into(),
            input: json!(2)
        }]
    );

    harness
        .complete_entity_operation("lamp", Reserve, 7)
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(
        harness.actions(),
        [
            Action::signal_entity("lamp", Restock, 3),
            Action::CallSubOrchestrator {
                name: "ProcessOrder".into(),
                instance_id: "child-1".into(),
                input: json!({"item": "lamp", "quantity": 2}),
            },
        ]
    );
    harness
        .complete(ProcessOrder, (500, "t".to_string()))
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.output_of(Parent).unwrap(), (500, "t".to_string()));
}

#[test]
fn typed_entity_operations_run_and_signal_other_entities() {
    let registry = registry();
    let batch = registry.execute_entity_batch(&proto::EntityBatchRequest {
        instance_id: Stock::id("lamp").to_string(),
        entity_state: Some("5".into()),
        operations: vec![
            proto::OperationRequest {
                operation: Reserve::NAME.into(),
                request_id: "r1".into(),
                input: Some("2".into()),
                trace_context: None,
            },
            proto::OperationRequest {
                operation: Reserve::NAME.into(),
                request_id: "r2".into(),
                input: Some("9".into()),
                trace_context: None,
            },
        ],
        properties: Default::default(),
    });
    assert_eq!(batch.entity_state.as_deref(), Some("3"));
    // The failed second operation sent nothing; the first sent its audit signal.
    assert_eq!(batch.actions.len(), 1);
    match &batch.actions[0].operation_action_type {
        Some(proto::operation_action::OperationActionType::SendSignal(s)) => {
            assert_eq!(s.instance_id, "@audit@log");
            assert_eq!(s.name, "record");
            assert_eq!(s.input.as_deref(), Some("\"reserved 2 of lamp\""));
        }
        other => panic!("unexpected action {other:?}"),
    }
}

#[test]
fn entities_start_typed_orchestrations() {
    let mut registry = Registry::new();
    registry.register_entity(
        Audit,
        Entity::new().on(Record, |log, ctx, line| {
            log.push(line.clone());
            ctx.start_orchestration(ProcessOrder, order(), Some(format!("order-{}", log.len())))?;
            Ok(())
        }),
    );
    let batch = registry.execute_entity_batch(&proto::EntityBatchRequest {
        instance_id: "@audit@log".into(),
        entity_state: None,
        operations: vec![proto::OperationRequest {
            operation: "RECORD".into(),
            request_id: "r1".into(),
            input: Some("\"hello\"".into()),
            trace_context: None,
        }],
        properties: Default::default(),
    });
    assert_eq!(batch.entity_state.as_deref(), Some(r#"["hello"]"#));
    match &batch.actions[..] {
        [
            proto::OperationAction {
                operation_action_type:
                    Some(proto::operation_action::OperationActionType::StartNewOrchestration(s)),
                ..
            },
        ] => {
            assert_eq!(
                (s.name.as_str(), s.instance_id.as_str()),
                ("ProcessOrder", "order-1")
            );
            assert_eq!(s.input.as_deref(), Some(r#"{"item":"lamp","quantity":2}"#));
        }
        other => panic!("unexpected actions {other:?}"),
    }
}

#[test]
fn typed_signal_at_carries_the_delivery_time() {
    durable_core::orchestrator! { pub Later: () => (); }
    let mut registry = Registry::new();
    registry.register_orchestrator(Later, |ctx: OrchestrationContext, ()| async move {
        let at = ctx.current_utc_datetime() + Duration::from_secs(90);
        ctx.entity(Stock, "lamp").signal_at(Restock, 1, at)?;
        Ok(())
    });
    let mut harness = OrchestrationHarness::new(&registry);
    let start = harness.start(Later, ()).unwrap().at();
    assert_eq!(
        harness.actions(),
        [
            Action::SignalEntity {
                entity: Stock::id("lamp"),
                operation: "Restock".into(),
                input: json!(1),
                at: Some(start + Duration::from_secs(90)),
            },
            Action::complete(&()),
        ]
    );
}

/// Only used to show that the traits can be implemented by hand, without the macros.
struct HandWritten;

impl Activity for HandWritten {
    const NAME: &'static str = "hand_written";
    type Input = ();
    type Output = u8;
}

impl Orchestrator for HandWritten {
    const NAME: &'static str = "hand_written_flow";
    type Input = u8;
    type Output = u8;
}

#[test]
fn hand_written_declarations_work_like_macro_ones() {
    let mut registry = Registry::new();
    registry.register_activity(HandWritten, |_ctx, ()| async {
        Ok::<_, ActivityError>(7u8)
    });
    // A type that is both an activity and an orchestrator is called through the trait it means.
    registry.register_orchestrator(HandWritten, |ctx: OrchestrationContext, n: u8| async move {
        let seven = ctx
            .call_activity::<_, u8>(<HandWritten as Activity>::NAME, ())
            .await?;
        Ok(seven + n)
    });
    assert_eq!(registry.activity_names(), ["hand_written"]);
    assert_eq!(registry.orchestrator_names(), ["hand_written_flow"]);

    let mut runtime = durable_core::testing::InProcessRuntime::new(&registry);
    let id = runtime
        .start_named("hand_written_flow", None, &1u8)
        .unwrap();
    futures::executor::block_on(runtime.run_to_completion(&id)).unwrap();
    assert_eq!(runtime.output_of(HandWritten, &id).unwrap(), 8);
    assert_eq!(<Reserve as EntityOperation>::NAME, "reserve");
}
