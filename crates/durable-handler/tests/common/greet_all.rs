//! The app both end-to-end test files run: greets cities, catches a failing activity and counts greetings in an
//! entity, so one orchestration crosses every durable trigger kind.

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext,
    OrchestrationError, Registry,
};
use serde_json::{Value, json};

async fn greet_all(
    ctx: OrchestrationContext,
    cities: Vec<String>,
) -> Result<Value, OrchestrationError> {
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity::<_, String>("SayHello", city).await?);
    }
    // The activity fails; its type and message must survive the trip through the host.
    let caught = match ctx.call_activity::<_, String>("SayHello", "").await {
        Ok(v) => format!("unexpected success: {v}"),
        Err(e) => {
            let details = e
                .failure_details()
                .cloned()
                .unwrap_or_else(|| e.to_failure_details());
            format!("{}: {}", details.error_type, details.error_message)
        }
    };
    let total: i64 = ctx
        .call_entity(
            &EntityId::new("counter", "greetings"),
            "add",
            greetings.len(),
        )
        .await?;
    Ok(json!({ "greetings": greetings, "caught": caught, "total": total }))
}

async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, ActivityError> {
    if city.is_empty() {
        return Err(ActivityError::new("EmptyCity", "a city needs a name"));
    }
    Ok(format!("Hello {city}!"))
}

pub(crate) fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("GreetAll", greet_all)
        .add_activity("SayHello", say_hello)
        .add_entity(
            "counter",
            Entity::<i64>::new().operation("add", |total: &mut i64, _ctx, n: i64| {
                *total += n;
                Ok::<_, EntityError>(*total)
            }),
        );
    registry
}
