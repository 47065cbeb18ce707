//! Durable HTTP in the engine, driven by the testing harness: the built-in activity's request as the orchestrator
//! schedules it, the 202 + `Location` polling with durable timers, and the end of polling.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use durable_core::http::{
    DurableHttpRequest, DurableHttpResponse, HTTP_ACTIVITY_NAME, ManagedIdentityTokenSource,
};
use durable_core::testing::{Action, OrchestrationHarness, RuntimeStatus};
use durable_core::{OrchestrationContext, OrchestrationError, Registry};

fn registry(asynchronous: bool) -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator(
        "restart",
        move |ctx: OrchestrationContext, (): ()| async move {
            let request =
                DurableHttpRequest::new("POST", "https://api.example.com/v1/apps/7/restart")
                    .header("Authorization", "Bearer caller")
                    .token_source(ManagedIdentityTokenSource::new("https://api.example.com"))
                    .asynchronous_pattern(asynchronous);
            let response = ctx.call_http(request).await?;
            Ok::<_, OrchestrationError>((response.status_code, response.content))
        },
    );
    r
}

fn answer(status: u16, headers: &[(&str, &str)], content: &str) -> DurableHttpResponse {
    let headers: BTreeMap<String, Vec<String>> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
        .collect();
    DurableHttpResponse::new(status, headers, Some(content.to_owned()))
}

fn scheduled_request(action: &Action) -> DurableHttpRequest {
    match action {
        Action::CallActivity { name, input } => {
            assert_eq!(name, HTTP_ACTIVITY_NAME);
            serde_json::from_value(input.clone()).expect("the input is a DurableHttpRequest")
        }
        other => panic!("expected the HTTP activity, found {other:?}"),
    }
}

#[test]
fn a_202_is_polled_at_its_location_after_a_durable_timer_until_it_ends() {
    let mut harness = OrchestrationHarness::new(&registry(true));
    let start = harness.start_named("restart", &()).unwrap().at();
    let first = scheduled_request(&harness.actions()[0]);
    assert_eq!(first.method, "POST");
    assert!(first.asynchronous_pattern_enabled);

    let accepted = answer(202, &[("Location", "status/1"), ("Retry-After", "5")], "");
    harness
        .complete_activity(HTTP_ACTIVITY_NAME, &accepted)
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(
        harness.actions(),
        [Action::CreateTimer {
            fire_at: start + Duration::from_secs(5)
        }]
    );

    harness.advance(Duration::from_secs(5)).turn().unwrap();
    let poll = scheduled_request(&harness.actions()[0]);
    assert_eq!(poll.method, "GET");
    assert_eq!(poll.uri, "https://api.example.com/v1/apps/7/status/1");
    assert_eq!(poll.header_value("Authorization"), Some("Bearer caller"));
    assert!(poll.token_source.is_some(), "same origin keeps the token");

    // Still running, now without Retry-After: the default interval (30 s) when the host sends none.
    harness
        .complete_activity(
            HTTP_ACTIVITY_NAME,
            &answer(202, &[("Location", "https://other.example.net/s")], ""),
        )
        .unwrap()
        .turn()
        .unwrap();
    let Action::CreateTimer { fire_at } = harness.actions()[0] else {
        panic!("expected a timer, found {:?}", harness.actions());
    };
    assert_eq!(fire_at, harness.now() + Duration::from_secs(30));
    harness.advance(Duration::from_secs(30)).turn().unwrap();
    let elsewhere = scheduled_request(&harness.actions()[0]);
    assert_eq!(elsewhere.uri, "https://other.example.net/s");
    assert_eq!(elsewhere.header_value("Authorization"), None);
    assert!(elsewhere.token_source.is_none());

    harness
        .complete_activity(HTTP_ACTIVITY_NAME, &answer(200, &[], "done"))
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.status(), RuntimeStatus::Completed);
    assert_eq!(
        harness.output::<(u16, Option<String>)>().unwrap(),
        (200, Some("done".to_owned()))
    );
}

#[test]
fn without_the_asynchronous_pattern_a_202_is_the_answer() {
    let mut harness = OrchestrationHarness::new(&registry(false));
    harness.start_named("restart", &()).unwrap();
    harness
        .complete_activity(
            HTTP_ACTIVITY_NAME,
            &answer(202, &[("Location", "status/1")], "queued"),
        )
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.status(), RuntimeStatus::Completed);
    assert_eq!(
        harness.output::<(u16, Option<String>)>().unwrap(),
        (202, Some("queued".to_owned()))
    );
}

#[test]
fn a_failed_http_call_fails_the_task() {
    let mut harness = OrchestrationHarness::new(&registry(true));
    harness.start_named("restart", &()).unwrap();
    harness
        .fail_activity(
            HTTP_ACTIVITY_NAME,
            durable_core::FailureDetails::new("HttpRequestError", "connection refused"),
        )
        .unwrap()
        .turn()
        .unwrap();
    assert_eq!(harness.status(), RuntimeStatus::Failed);
    assert!(
        harness
            .failure()
            .unwrap()
            .error_message
            .contains("connection refused"),
        "{:?}",
        harness.failure()
    );
}

#[test]
fn without_retry_after_the_poll_waits_the_interval_the_host_sends() {
    use common::*;
    use durable_core::proto::{self, prost_types};

    let accepted = serde_json::to_string(&answer(202, &[("Location", "/status/1")], "")).unwrap();
    let request = proto::OrchestratorRequest {
        instance_id: INSTANCE.into(),
        past_events: vec![
            ev::orchestrator_started(t0()),
            ev::execution_started(INSTANCE, EXECUTION, "restart", None),
            ev::task_scheduled(0, HTTP_ACTIVITY_NAME),
            ev::orchestrator_completed(),
        ],
        new_events: vec![
            ev::orchestrator_started(at(1)),
            ev::task_completed(0, Some(accepted.as_str())),
        ],
        properties: [(
            "HttpDefaultAsyncRequestSleepTimeMilliseconds".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(5000.0)),
            },
        )]
        .into(),
        ..Default::default()
    };
    let response = registry(true).execute_orchestrator(&request);
    let timers: Vec<_> = response
        .actions
        .iter()
        .filter_map(|a| match &a.orchestrator_action_type {
            Some(proto::orchestrator_action::OrchestratorActionType::CreateTimer(t)) => {
                t.fire_at.as_ref().map(from_ts)
            }
            _ => None,
        })
        .collect();
    assert_eq!(timers, [at(1) + Duration::from_secs(5)]);
}

#[test]
fn the_in_process_runtime_runs_a_stand_in_for_the_http_activity() {
    use durable_core::testing::InProcessRuntime;
    use durable_core::{ActivityContext, ActivityError};

    let mut r = registry(true);
    // The service: accepted first, done at the second poll.
    r.add_activity(
        HTTP_ACTIVITY_NAME,
        |_ctx: ActivityContext, request: DurableHttpRequest| async move {
            Ok::<_, ActivityError>(match request.uri.as_str() {
                "https://api.example.com/v1/apps/7/restart" => {
                    answer(202, &[("Location", "/ops/1?n=1")], "")
                }
                "https://api.example.com/ops/1?n=1" => {
                    answer(202, &[("Location", "/ops/1?n=2")], "")
                }
                _ => answer(200, &[], &request.uri),
            })
        },
    );
    let mut runtime = InProcessRuntime::new(&r);
    let id = runtime.start_named("restart", None, &()).unwrap();
    let state = futures::executor::block_on(runtime.run_to_completion(&id)).unwrap();
    assert_eq!(state.status(), RuntimeStatus::Completed);
    assert_eq!(
        state.output::<(u16, Option<String>)>().unwrap(),
        (200, Some("https://api.example.com/ops/1?n=2".to_owned()))
    );
    // Two polls, each after the default 30 s: the runtime skipped the timers.
    assert_eq!(
        runtime.now(),
        runtime.start_time() + Duration::from_secs(60)
    );
}
