//! Orchestrators: a function chain, a fan-out/fan-in and a human approval with a timeout.

use std::time::Duration;

use azure_durable_functions::{
    CallOptions, OrchestrationContext, OrchestrationError, Registry, RetryPolicy, orchestrator,
    when_all,
};
use serde::{Deserialize, Serialize};

use super::activities::{CountLetters, RecordDecision, SayHello};
use super::entities::{Add, Counter};

orchestrator! {
    /// Function chaining over the given cities (or three defaults).
    pub HelloCities: Option<Vec<String>> => Vec<String>;
    /// Fan-out/fan-in: letters of every city, counted in parallel.
    pub FanOutFanIn: Option<Vec<String>> => LetterCount;
    /// Human interaction: an `Approval` event or a durable timeout.
    pub ApprovalWorkflow: ApprovalRequest => ApprovalOutcome;
}

pub(super) fn register(registry: &mut Registry) {
    registry
        .register_orchestrator(HelloCities, hello_cities)
        .register_orchestrator(FanOutFanIn, fan_out_fan_in)
        .register_orchestrator(ApprovalWorkflow, approval_workflow);
}

const DEFAULT_CITIES: [&str; 3] = ["Tokyo", "Seattle", "London"];

fn cities_or_default(cities: Option<Vec<String>>) -> Vec<String> {
    match cities {
        Some(cities) if !cities.is_empty() => cities,
        _ => DEFAULT_CITIES.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// Function chaining: greets each city in turn, then counts the greetings in the `Counter` entity (key
/// `greetings`). Input: an optional list of cities.
async fn hello_cities(
    ctx: OrchestrationContext,
    cities: Option<Vec<String>>,
) -> Result<Vec<String>, OrchestrationError> {
    let mut greetings = Vec::new();
    for city in cities_or_default(cities) {
        greetings.push(ctx.call(SayHello, city).await?);
    }
    ctx.entity(Counter, "greetings")
        .signal(Add, greetings.len() as i64)?;
    ctx.log_info(format!("greeted {} cities", greetings.len()));
    Ok(greetings)
}

/// What [`FanOutFanIn`] returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct LetterCount {
    /// Letters over all cities.
    pub total: u64,
    /// Letters per city, in input order.
    pub per_city: Vec<(String, u64)>,
}

/// Fan-out/fan-in: counts the letters of every city in parallel activities (retried on transient failure), then
/// sums them.
async fn fan_out_fan_in(
    ctx: OrchestrationContext,
    cities: Option<Vec<String>>,
) -> Result<LetterCount, OrchestrationError> {
    let cities = cities_or_default(cities);
    let retry = RetryPolicy::new(3, Duration::from_secs(1)).backoff_coefficient(2.0);
    let tasks = cities
        .iter()
        .map(|city| ctx.call_with(CountLetters, city, CallOptions::new().retry(retry.clone())))
        .collect::<Vec<_>>();
    let counts = when_all(tasks)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LetterCount {
        total: counts.iter().sum(),
        per_city: cities.into_iter().zip(counts).collect(),
    })
}

/// Input of [`ApprovalWorkflow`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// What is to be approved.
    pub item: String,
    /// How long to wait for the `Approval` event, in seconds (default one hour).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Outcome of [`ApprovalWorkflow`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalOutcome {
    /// What was to be approved.
    pub item: String,
    /// `approved`, `rejected` or `timed out`.
    pub status: String,
}

/// Human interaction: waits for an `Approval` event (`true` or `false`) with a durable timeout, then records the
/// decision with an activity.
async fn approval_workflow(
    ctx: OrchestrationContext,
    request: ApprovalRequest,
) -> Result<ApprovalOutcome, OrchestrationError> {
    let timeout = Duration::from_secs(request.timeout_seconds.unwrap_or(3600));
    ctx.set_custom_status(&format!("waiting for approval of {}", request.item))?;
    let status = match ctx
        .wait_for_external_event_with_timeout::<bool>("Approval", timeout)
        .await
    {
        Ok(true) => "approved",
        Ok(false) => "rejected",
        Err(error) if error.is_timeout() => "timed out",
        Err(error) => return Err(error.into()),
    };
    ctx.clear_custom_status();
    ctx.call(RecordDecision, (request.item.clone(), status.to_owned()))
        .await?;
    Ok(ApprovalOutcome {
        item: request.item,
        status: status.to_owned(),
    })
}
