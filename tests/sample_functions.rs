//! The sample app's orchestrations, activities and entity, unit-tested without a backend: turn by turn with the
//! harness (results scripted), and whole with the in-process runtime (the real activities and entity, virtual
//! time).

use std::time::Duration;

use azure_durable_functions::EntityId;
use azure_durable_functions::engine::FailureDetails;
use azure_durable_functions::testing::{
    Action, InProcessRuntime, OrchestrationHarness, RuntimeStatus, TestingError,
};
use durable_app::{Add, Counter, HelloCities, SayHello};
use serde_json::{Value, json};

fn counter(key: &str) -> EntityId {
    EntityId::new(durable_app::COUNTER, key)
}

#[test]
fn hello_cities_chains_its_activities_then_signals_the_counter() -> Result<(), TestingError> {
    // Through the declarations: a renamed function or a changed type breaks this test at compile time.
    let registry = durable_app::registry();
    let mut harness = OrchestrationHarness::new(&registry);
    harness.start(
        HelloCities,
        Some(vec!["Lima".to_owned(), "Pune".to_owned()]),
    )?;
    // One city at a time: the second greeting is only asked for once the first is back.
    assert_eq!(
        harness.actions(),
        [Action::activity(SayHello, "Lima".to_owned())]
    );
    harness.complete(SayHello, "Hola Lima".to_owned())?.turn()?;
    assert_eq!(
        harness.actions(),
        [Action::activity(SayHello, "Pune".to_owned())]
    );
    harness
        .complete(SayHello, "Namaste Pune".to_owned())?
        .turn()?;
    assert_eq!(
        harness.actions(),
        [
            Action::signal_entity("greetings", Add, 2),
            Action::complete(&["Hola Lima", "Namaste Pune"]),
        ]
    );
    assert_eq!(
        harness.output_of(HelloCities)?,
        ["Hola Lima", "Namaste Pune"]
    );
    Ok(())
}

#[tokio::test]
async fn hello_cities_runs_whole_and_counts_in_the_entity() -> Result<(), TestingError> {
    let registry = durable_app::registry();
    let mut runtime = InProcessRuntime::new(&registry);
    let first = runtime.start(HelloCities, None)?;
    let second = runtime.start(HelloCities, Some(vec!["Oslo".to_owned()]))?;
    runtime.run_to_completion(&first).await?;
    assert_eq!(
        runtime.output_of(HelloCities, &first)?,
        ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    );
    runtime.run_to_completion(&second).await?;
    assert_eq!(runtime.output_of(HelloCities, &second)?, ["Hello Oslo!"]);
    assert_eq!(runtime.state_of(Counter, "greetings")?, Some(4));
    Ok(())
}

#[tokio::test]
async fn hello_cities_fails_on_a_city_without_a_name() -> Result<(), TestingError> {
    let registry = durable_app::registry();
    let mut runtime = InProcessRuntime::new(&registry);
    let id = runtime.start_named("HelloCities", None, &["Kyiv", " "])?;
    let done = runtime.run_to_completion(&id).await?;
    assert_eq!(done.status(), RuntimeStatus::Failed);
    let cause = done
        .failure()
        .and_then(|f| f.inner.as_deref())
        .expect("the activity's failure");
    assert_eq!(cause.error_message, "a city needs a name");
    assert!(cause.non_retriable);
    // Nothing was counted: the orchestration never got that far.
    assert_eq!(runtime.entity_state::<i64>(&counter("greetings"))?, None);
    Ok(())
}

#[test]
fn fan_out_fan_in_schedules_in_parallel_and_retries_a_failed_count() -> Result<(), TestingError> {
    let registry = durable_app::registry();
    let mut harness = OrchestrationHarness::new(&registry);
    let start = harness
        .start_named("FanOutFanIn", &["Rome", "Bern", "Nice"])?
        .at();
    assert_eq!(
        harness.actions(),
        [
            Action::call_activity("CountLetters", "Rome"),
            Action::call_activity("CountLetters", "Bern"),
            Action::call_activity("CountLetters", "Nice"),
        ]
    );
    // Rome fails once: the retry policy waits one second (a durable timer), then calls it again.
    harness
        .fail_activity(
            "CountLetters",
            FailureDetails::new("Transient", "try again"),
        )?
        .complete_activity("CountLetters", &4)?
        .complete_activity("CountLetters", &4)?
        .turn()?;
    assert_eq!(
        harness.actions(),
        [Action::CreateTimer {
            fire_at: start + Duration::from_secs(1)
        }]
    );
    harness.advance(Duration::from_secs(1)).turn()?;
    assert_eq!(
        harness.actions(),
        [Action::call_activity("CountLetters", "Rome")]
    );
    harness.complete_activity("CountLetters", &4)?.turn()?;
    assert_eq!(
        harness.output::<Value>()?,
        json!({"total": 12, "per_city": [["Rome", 4], ["Bern", 4], ["Nice", 4]]})
    );
    Ok(())
}

#[tokio::test]
async fn fan_out_fan_in_counts_letters_with_the_real_activity() -> Result<(), TestingError> {
    let registry = durable_app::registry();
    let mut runtime = InProcessRuntime::new(&registry);
    let id = runtime.start_named("FanOutFanIn", None, &["São Paulo", "Oslo"])?;
    let done = runtime.run_to_completion(&id).await?;
    assert_eq!(
        done.output::<Value>()?,
        json!({"total": 12, "per_city": [["São Paulo", 8], ["Oslo", 4]]})
    );
    Ok(())
}

#[tokio::test]
async fn approval_workflow_approved_rejected_and_timed_out() -> Result<(), TestingError> {
    let registry = durable_app::registry();
    let mut runtime = InProcessRuntime::new(&registry);
    let request = |item: &str| json!({"item": item, "timeout_seconds": 600});
    let approved = runtime.start_named("ApprovalWorkflow", Some("a"), &request("laptop"))?;
    let rejected = runtime.start_named("ApprovalWorkflow", Some("r"), &request("yacht"))?;
    let forgotten = runtime.start_named("ApprovalWorkflow", Some("f"), &request("chair"))?;

    runtime.run_until_idle().await?;
    let waiting = runtime.instance(&approved).expect("started");
    assert_eq!(waiting.status(), RuntimeStatus::Running);
    assert_eq!(
        waiting.custom_status::<String>()?.as_deref(),
        Some("waiting for approval of laptop")
    );

    runtime.raise_event(&approved, "Approval", &true)?;
    runtime.raise_event(&rejected, "Approval", &false)?;
    runtime.advance(Duration::from_secs(599)).await?;
    let outcome = |runtime: &InProcessRuntime, id: &str| {
        let state = runtime.instance(id).expect("started");
        (state.status(), state.output::<Value>().ok())
    };
    assert_eq!(
        outcome(&runtime, &approved),
        (
            RuntimeStatus::Completed,
            Some(json!({"item": "laptop", "status": "approved"}))
        )
    );
    assert_eq!(
        outcome(&runtime, &rejected),
        (
            RuntimeStatus::Completed,
            Some(json!({"item": "yacht", "status": "rejected"}))
        )
    );
    assert_eq!(outcome(&runtime, &forgotten).0, RuntimeStatus::Running);
    assert_eq!(
        runtime
            .instance(&approved)
            .expect("started")
            .custom_status::<String>()?,
        None
    );

    runtime.advance(Duration::from_secs(1)).await?;
    assert_eq!(
        outcome(&runtime, &forgotten),
        (
            RuntimeStatus::Completed,
            Some(json!({"item": "chair", "status": "timed out"}))
        )
    );
    Ok(())
}

#[tokio::test]
async fn counter_entity_adds_resets_deletes_and_refuses_to_overflow() -> Result<(), TestingError> {
    let registry = durable_app::registry();
    let mut runtime = InProcessRuntime::new(&registry);
    let id = counter("mine");
    runtime.signal_entity(&id, "add", &5)?;
    runtime.signal_entity(&id, "add", &i64::MAX)?; // fails: the state stays 5
    runtime.run_until_idle().await?;
    assert_eq!(runtime.entity_state::<i64>(&id)?, Some(5));
    runtime.signal_entity(&id, "reset", &())?;
    runtime.run_until_idle().await?;
    assert_eq!(runtime.entity_state::<i64>(&id)?, Some(0));
    runtime.signal_entity(&id, "delete", &())?;
    runtime.run_until_idle().await?;
    assert_eq!(runtime.entity_state::<i64>(&id)?, None);
    Ok(())
}
