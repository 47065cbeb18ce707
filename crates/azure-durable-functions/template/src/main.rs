//! A Durable Functions app in Rust: an orchestrator, an activity, an entity, and the HTTP function that starts
//! orchestrations. `cargo run` serves it on http://localhost:7071; `cargo run -- package` makes the zip that Azure
//! Functions deploys. `cargo run -- --help` lists every command.

use std::process::ExitCode;
use std::time::Duration;

use azure_durable_functions::{
    ActivityContext, ActivityError, AuthLevel, CallOptions, DurableFunctionsClient, Entity,
    EntityError, FunctionApp, FunctionError, HttpRequest, HttpResponse, HttpTrigger,
    InvocationContext, OrchestrationContext, OrchestrationError, Registry, RetryPolicy,
    StartOptions, StatusCode, activity, entity, orchestrator, serde_json,
};
use serde::{Deserialize, Serialize};

// Each function is declared once with its name and types; registering, calling and signalling go through the
// declarations, so a renamed function or a changed type is a compile error, not a failed instance.
orchestrator! {
    /// Greets each city (three by default), then counts the greetings.
    Greetings: Option<Vec<String>> => Greeted;
}
activity! {
    /// Greets one city.
    SayHello: String => String;
}
entity! {
    /// A durable counter; its state is the count.
    Counter: i64 {
        /// Adds to the count and returns the new count.
        Add = "add": i64 => i64;
        /// The count.
        Get = "get": () => i64;
    }
}

fn main() -> ExitCode {
    // The local host under `cargo run`; the custom handler when Azure Functions starts the executable.
    azure_durable_functions::run(app())
}

/// Every function of the app, by name: the names are what Functions shows and what the package's folders are
/// called.
fn app() -> FunctionApp {
    let mut registry = Registry::new();
    registry
        .register_orchestrator(Greetings, greetings)
        .register_activity(SayHello, say_hello)
        .register_entity(Counter, counter());
    FunctionApp::new(registry).http_starter(
        "HttpStart",
        // POST /api/orchestrators/Greetings, with the orchestrator's input as the JSON body.
        HttpTrigger::new()
            .route("orchestrators/{name}")
            .methods(["post"])
            .auth_level(AuthLevel::Anonymous),
        http_start,
    )
}

/// What `Greetings` returns.
#[derive(Debug, Serialize, Deserialize)]
struct Greeted {
    greetings: Vec<String>,
    /// Greetings counted so far by the `Counter` entity, across every run.
    total: i64,
}

/// The orchestrator: greets each city in turn, then adds the number of greetings to a counter entity.
///
/// Orchestrator code is replayed from the instance's history after every step, so it only decides what happens
/// next: the I/O goes in activities, and time, IDs and logging come from `ctx`.
async fn greetings(
    ctx: OrchestrationContext,
    cities: Option<Vec<String>>,
) -> Result<Greeted, OrchestrationError> {
    let cities = cities.unwrap_or_else(|| vec!["Tokyo".into(), "Seattle".into(), "London".into()]);
    // Up to three attempts, 1 s then 2 s apart; the waits are durable timers, so nothing sleeps in memory.
    let retry = RetryPolicy::new(3, Duration::from_secs(1)).backoff_coefficient(2.0);
    let mut greetings = Vec::new();
    for city in cities {
        let options = CallOptions::new().retry(retry.clone());
        greetings.push(ctx.call_with(SayHello, city, options).await?);
    }
    let total = ctx
        .entity(Counter, "greetings")
        .call(Add, greetings.len() as i64)
        .await?;
    ctx.log_info(format!("{} greetings, {total} so far", greetings.len()));
    Ok(Greeted { greetings, total })
}

/// The activity: ordinary async Rust, where calls to databases and other services belong.
async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, ActivityError> {
    if city.trim().is_empty() {
        // Retrying would not help: the orchestrator gets this error at once.
        return Err(ActivityError::non_retriable("a city needs a name"));
    }
    Ok(format!("Hello {city}!"))
}

/// The entity: a durable counter. Each key is its own counter (`@counter@greetings`), and its operations run one
/// at a time.
fn counter() -> Entity<i64> {
    Entity::new()
        .on(Add, |total, _ctx, amount| {
            *total = total
                .checked_add(amount)
                .ok_or_else(|| EntityError::msg("the counter would overflow"))?;
            Ok(*total)
        })
        .on(Get, |total, _ctx, ()| Ok(*total))
}

/// The HTTP starter: starts the orchestrator named in the route, with the body as its input, and answers 202
/// with the URLs that follow the instance (`statusQueryGetUri`, `sendEventPostUri`, ...).
async fn http_start(
    req: HttpRequest,
    client: DurableFunctionsClient,
    _ctx: InvocationContext,
) -> Result<HttpResponse, FunctionError> {
    let name = req.param("name").unwrap_or_default().to_owned();
    let input = if req.body.trim().is_empty() {
        serde_json::Value::Null
    } else {
        match req.json::<serde_json::Value>() {
            Ok(input) => input,
            Err(error) => {
                return Ok(HttpResponse::text(format!("the body is not JSON: {error}"))
                    .status(StatusCode::BAD_REQUEST));
            }
        }
    };
    let instance_id = client
        .schedule_new_orchestration(&name, &input, StartOptions::new())
        .await?;
    Ok(client.create_check_status_response(&instance_id))
}
