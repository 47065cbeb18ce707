//! Activities: where the I/O and the non-deterministic work go.

use azure_durable_functions::{ActivityContext, ActivityError, Registry, activity, tracing};

activity! {
    /// Greets a city: `"Lima"` → `"Hello Lima!"`; an empty name fails for good.
    pub SayHello: String => String;
    /// Counts the letters of a city's name.
    pub CountLetters: String => u64;
    /// Records an approval decision: `(item, status)`.
    pub RecordDecision: (String, String) => ();
}

pub(super) fn register(registry: &mut Registry) {
    // Registered through the declarations: a function whose types drift from its declaration does not compile.
    registry
        .register_activity(SayHello, say_hello)
        .register_activity(CountLetters, count_letters)
        .register_activity(RecordDecision, record_decision);
}

async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, ActivityError> {
    if city.trim().is_empty() {
        return Err(ActivityError::non_retriable("a city needs a name"));
    }
    Ok(format!("Hello {city}!"))
}

async fn count_letters(_ctx: ActivityContext, city: String) -> Result<u64, ActivityError> {
    Ok(city.chars().filter(|c| c.is_alphabetic()).count() as u64)
}

async fn record_decision(
    ctx: ActivityContext,
    (item, status): (String, String),
) -> Result<(), ActivityError> {
    tracing::info!(instance_id = %ctx.instance_id(), %item, %status, "approval decision recorded");
    Ok(())
}
