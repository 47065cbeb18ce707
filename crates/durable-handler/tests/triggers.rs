//! Every trigger kind, fed the exact request shape and encoding the Functions host sends, over real HTTP.

mod common;

use common::*;
use durable_core::proto::history_event::EventType;
use durable_core::proto::orchestrator_action::OrchestratorActionType;
use durable_core::proto::{self, operation_result::ResultType};
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, OrchestrationContext, OrchestrationError,
    Registry,
};
use durable_handler::{
    FunctionApp, Handler, HttpResponse, HttpTrigger, InvocationContext, OutputBinding,
    QueueTrigger, TimerInfo, TimerTrigger,
};
use serde::Deserialize;
use serde_json::{Value, json};

async fn hello(ctx: OrchestrationContext, city: String) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity::<_, String>("SayHello", city).await?)
}

async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, ActivityError> {
    if city.is_empty() {
        return Err(ActivityError::new("EmptyCity", "a city needs a name"));
    }
    Ok(format!("Hello {city}!"))
}

#[derive(Debug, Deserialize)]
struct WorkItem {
    id: u32,
}

pub fn handler() -> Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("HelloCities", hello)
        .add_activity("SayHello", say_hello)
        .add_activity("Boom", |_ctx: ActivityContext, v: Value| async move {
            if !v.is_null() {
                panic!("boom: {v}");
            }
            Ok::<_, ActivityError>(v)
        })
        .add_activity("Echo", |_ctx: ActivityContext, v: Value| async move {
            Ok::<_, ActivityError>(v)
        })
        .add_activity("WhoCalls", |ctx: ActivityContext, _v: Value| async move {
            Ok::<_, ActivityError>(ctx.instance_id().to_owned())
        })
        .add_entity(
            "counter",
            Entity::<i64>::new().operation("add", |total: &mut i64, _ctx, n: i64| {
                *total += n;
                Ok::<_, EntityError>(*total)
            }),
        );
    FunctionApp::new(registry)
        .http(
            "Greet",
            HttpTrigger::new()
                .route("greet/{name}")
                .methods(["get", "post"]),
            |req, ctx: InvocationContext| async move {
                ctx.log(format!("greeting {}", req.param("name").unwrap_or("?")));
                Ok(HttpResponse::text(format!(
                    "Hello {} via {} with body '{}'",
                    req.param("name").unwrap_or("?"),
                    req.method,
                    req.body
                ))
                .header("X-Greeted", "yes"))
            },
        )
        .queue(
            "OnWork",
            QueueTrigger::new("work-items")
                .output(OutputBinding::queue("done", "work-done"))
                .output(OutputBinding::queue("Audit", "audit").connection("AuditStorage")),
            |item: WorkItem, ctx: InvocationContext| async move {
                ctx.set_output("done", json!({ "id": item.id, "ok": true }))?;
                // Several messages, one call each; the declared spelling of the name is kept.
                ctx.push_output("audit", format!("seen {}", item.id))?;
                ctx.push_output("audit", json!({ "id": item.id }))?;
                Ok(())
            },
        )
        .timer(
            "Tick",
            TimerTrigger::new("0 */5 * * * *"),
            |info: TimerInfo, ctx: InvocationContext| async move {
                ctx.log(format!("tick past_due={}", info.is_past_due));
                Ok(())
            },
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn readiness_probe_answers_on_root() {
    let server = Server::start(handler()).await;
    let response = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = server.http.post(server.url("/")).send().await.unwrap();
    assert!(response.status().is_success());
    server.stop().await;
}

#[tokio::test]
async fn orchestrator_trigger_returns_base64_actions() {
    let server = Server::start(handler()).await;
    let request = proto::OrchestratorRequest {
        instance_id: "inst-1".into(),
        new_events: started("HelloCities", "inst-1", Some("\"Tokyo\"")),
        ..Default::default()
    };
    let metadata = json!({ "sys": sys("HelloCities") });
    let (status, reply) = server
        .invoke("HelloCities", orchestrator_data(&request), metadata)
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Outputs"], json!({}));
    assert!(reply["Logs"].is_array());
    let response: proto::OrchestratorResponse = decode_return(&reply);
    assert_eq!(response.instance_id, "inst-1");
    assert_eq!(response.actions.len(), 1);
    match &response.actions[0].orchestrator_action_type {
        Some(OrchestratorActionType::ScheduleTask(task)) => {
            assert_eq!(task.name, "SayHello");
            assert_eq!(task.input.as_deref(), Some("\"Tokyo\""));
        }
        other => panic!("expected ScheduleTask, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn activity_trigger_decodes_three_layers_and_returns_a_json_value() {
    let server = Server::start(handler()).await;
    let (data, metadata) = activity_body("inst-1", Some("\"Tokyo\""), "SayHello");
    assert_eq!(
        data["input"],
        json!("\"\\\"Tokyo\\\"\""),
        "fixture must match docs/FUNCTIONS-HOST.md §3"
    );
    let (status, reply) = server.invoke("SayHello", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"], json!("Hello Tokyo!"));

    // Objects come back as objects, not as JSON text in a string.
    let (data, metadata) = activity_body("inst-1", Some(r#"{"n":1,"s":"x"}"#), "Echo");
    let (status, reply) = server.invoke("Echo", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"], json!({"n": 1, "s": "x"}));
    server.stop().await;
}

#[tokio::test]
async fn an_input_property_named_instance_id_hides_the_orchestrations_id() {
    let server = Server::start(handler()).await;
    let (data, metadata) = activity_body("inst-1", Some(r#"{"n":1}"#), "WhoCalls");
    let (_, reply) = server.invoke("WhoCalls", data, metadata).await;
    assert_eq!(reply["ReturnValue"], json!("inst-1"));
    // What the host sends when the input is {"InstanceId":"mine"}: its value in place of the orchestration's.
    let (data, mut metadata) =
        activity_body("inst-1", Some(r#"{"InstanceId":"mine"}"#), "WhoCalls");
    metadata["instanceId"] = host_string("mine");
    let (status, reply) = server.invoke("WhoCalls", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"], json!(""), "never the input's value");
    assert!(
        reply["Logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("'instanceId' property")),
        "{reply}"
    );
    server.stop().await;
}

#[tokio::test]
async fn activity_input_falls_back_to_metadata_data() {
    let server = Server::start(handler()).await;
    let metadata =
        json!({ "instanceId": host_string("i"), "data": "\"Osaka\"", "sys": sys("SayHello") });
    let (status, reply) = server.invoke("SayHello", json!({}), metadata).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"], json!("Hello Osaka!"));
    server.stop().await;
}

#[tokio::test]
async fn activity_failure_is_a_200_with_the_failure_envelope() {
    let server = Server::start(handler()).await;
    let (data, metadata) = activity_body("inst-1", Some("\"\""), "SayHello");
    let (status, reply) = server.invoke("SayHello", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    let envelope = &reply["ReturnValue"][durable_core::failure_envelope::KEY];
    assert_eq!(envelope["errorType"], "EmptyCity");
    assert_eq!(envelope["errorMessage"], "a city needs a name");
    let text = reply["ReturnValue"].to_string();
    let details =
        durable_core::failure_envelope::decode(&text).expect("the engine recognises the envelope");
    assert_eq!(details.error_type, "EmptyCity");
    assert!(reply["Logs"].to_string().contains("a city needs a name"));
    server.stop().await;
}

#[tokio::test]
async fn entity_trigger_runs_a_batch() {
    let server = Server::start(handler()).await;
    let op = |n: i64, id: &str| proto::OperationRequest {
        operation: "add".into(),
        request_id: id.into(),
        input: Some(n.to_string()),
        trace_context: None,
    };
    let request = proto::EntityBatchRequest {
        instance_id: "@counter@k1".into(),
        entity_state: Some("10".into()),
        operations: vec![op(5, "r1"), op(2, "r2")],
        ..Default::default()
    };
    let (status, reply) = server
        .invoke(
            "counter",
            entity_data(&request),
            json!({ "sys": sys("counter") }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let result: proto::EntityBatchResult = decode_return(&reply);
    assert_eq!(result.entity_state.as_deref(), Some("17"));
    let results: Vec<_> = result
        .results
        .iter()
        .map(|r| match &r.result_type {
            Some(ResultType::Success(s)) => s.result.clone().unwrap_or_default(),
            other => panic!("operation failed: {other:?}"),
        })
        .collect();
    assert_eq!(results, ["15", "17"]);
    server.stop().await;
}

#[tokio::test]
async fn entity_request_for_another_entity_is_refused() {
    let server = Server::start(handler()).await;
    let request = proto::EntityBatchRequest {
        instance_id: "@other@k".into(),
        ..Default::default()
    };
    let (status, reply) = server
        .invoke("counter", entity_data(&request), json!({}))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to entity 'other'")
    );
    server.stop().await;
}

#[tokio::test]
async fn http_trigger_wrapped_form_answers_through_outputs() {
    let server = Server::start(handler()).await;
    let data = json!({
        "req": {
            "Url": "http://localhost:7071/api/greet/Tokyo",
            "Method": "POST",
            "Query": {},
            "Headers": { "Content-Type": ["text/plain"] },
            "Params": { "name": "Tokyo" },
            "Identities": [],
            "Body": "hi"
        }
    });
    let metadata = json!({ "name": host_string("Tokyo"), "sys": sys("Greet") });
    let (status, reply) = server.invoke("Greet", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    let res = &reply["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    assert_eq!(res["body"], "Hello Tokyo via POST with body 'hi'");
    assert_eq!(res["headers"]["X-Greeted"], "yes");
    assert!(
        reply["Logs"].to_string().contains("greeting Tokyo"),
        "{reply}"
    );
    server.stop().await;
}

#[tokio::test]
async fn http_trigger_forwarded_form_answers_directly() {
    let server = Server::start(handler()).await;
    let response = server
        .http
        .post(server.url("/api/greet/Kyoto?x=1"))
        .header("X-Azure-Functions-InvocationId", "abc")
        .body("hey")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-greeted"], "yes");
    assert_eq!(
        response.text().await.unwrap(),
        "Hello Kyoto via POST with body 'hey'"
    );
    // The host matches routes case-insensitively and forwards the path as the client sent it.
    let response = server
        .http
        .get(server.url("/API/Greet/Nara"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "Hello Nara via GET with body ''"
    );
    // Methods not declared on the trigger are not served.
    let response = server
        .http
        .delete(server.url("/api/greet/Kyoto"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    server.stop().await;
}

#[tokio::test]
async fn queue_trigger_decodes_the_message_and_sets_outputs() {
    let server = Server::start(handler()).await;
    let metadata = json!({
        "DequeueCount": 1, "Id": host_string("m-1"), "QueueTrigger": host_string("{\"id\":7}"), "sys": sys("OnWork")
    });
    let (status, reply) = server
        .invoke(
            "OnWork",
            json!({ "message": host_string("{\"id\":7}") }),
            metadata,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Outputs"]["done"], json!({ "id": 7, "ok": true }));
    assert_eq!(reply["Outputs"]["Audit"], json!(["seen 7", { "id": 7 }]));

    // A message that does not fit the function's type is a 400, not a panic.
    let (status, reply) = server
        .invoke(
            "OnWork",
            json!({ "message": host_string("not json") }),
            json!({}),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn timer_trigger_receives_timer_info() {
    let server = Server::start(handler()).await;
    let timer = json!({
        "Schedule": { "AdjustForDST": true },
        "ScheduleStatus": { "Last": "2026-11-25T17:40:00+00:00", "Next": "2026-11-25T17:45:00+00:00", "LastUpdated": "2026-11-25T17:40:00+00:00" },
        "IsPastDue": true
    });
    let (status, reply) = server
        .invoke(
            "Tick",
            json!({ "timer": timer }),
            json!({ "sys": sys("Tick") }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["Logs"].to_string().contains("tick past_due=true"),
        "{reply}"
    );
    server.stop().await;
}

#[tokio::test]
async fn router_works_with_oneshot_too() {
    use tower::ServiceExt as _;
    let router = durable_handler::app(handler());
    let (data, metadata) = activity_body("i", Some("\"Nara\""), "SayHello");
    let body = json!({ "Data": data, "Metadata": metadata }).to_string();
    let request = axum::http::Request::post("/SayHello")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(reply["ReturnValue"], "Hello Nara!");
}

#[test]
fn history_event_helper_builds_started_events() {
    let events = started("X", "i", None);
    assert!(matches!(
        events[1].event_type,
        Some(EventType::ExecutionStarted(_))
    ));
}

#[tokio::test]
async fn the_apps_own_routes_are_served_next_to_the_handlers() {
    use axum::routing::get;
    let handler = FunctionApp::new(Registry::new())
        .routes(axum::Router::new().route("/health", get(|| async { "healthy" })))
        .routes(axum::Router::new().route(
            "/custom/{id}",
            get(|axum::extract::Path(id): axum::extract::Path<String>| async move { id }),
        ))
        .build()
        .unwrap();
    let server = Server::start(handler).await;
    let health = server.http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "healthy");
    let custom = server
        .http
        .get(server.url("/custom/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(custom.text().await.unwrap(), "42");
    let ready = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    server.stop().await;
}

#[test]
fn app_routes_that_shadow_the_handlers_are_refused() {
    use axum::routing::get;
    let err = FunctionApp::new(Registry::new())
        .routes(axum::Router::new().route("/{anything}", get(|| async { "mine" })))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, durable_handler::BuildError::RouteConflict(_)),
        "{err}"
    );
}

#[tokio::test]
async fn forwarding_works_with_an_empty_route_prefix() {
    let handler = FunctionApp::new(Registry::new())
        .options(durable_handler::HandlerOptions::new().with_route_prefix(""))
        .http(
            "Ping",
            HttpTrigger::new().route("ping").methods(["get"]),
            |_req, _ctx| async move { Ok(HttpResponse::text("pong")) },
        )
        .http(
            "Submit",
            HttpTrigger::new().route("send").methods(["post"]),
            |req, _ctx| async move { Ok(HttpResponse::text(format!("got {}", req.body))) },
        )
        .build()
        .unwrap();
    let server = Server::start(handler).await;
    // One segment, like an invocation path, but not a POST: forwarded.
    let response = server.http.get(server.url("/ping")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "pong");
    // A POST to a path that is a route but not a function name: forwarded too.
    let response = server
        .http
        .post(server.url("/send"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "got x");
    // A POST to a function's own name is still an invocation.
    let req = json!({ "req": { "Url": "http://x/ping", "Method": "GET" } });
    let (status, reply) = server.invoke("Ping", req, json!({})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Outputs"]["res"]["body"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_activity_fails_through_the_envelope_and_the_server_keeps_serving() {
    let server = Server::start(handler()).await;
    let (data, metadata) = activity_body("inst-1", Some("7"), "Boom");
    let (status, reply) = server.invoke("Boom", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    let text = reply["ReturnValue"].to_string();
    let details = durable_core::failure_envelope::decode(&text).expect("a failure envelope");
    assert!(details.error_message.contains("boom: 7"), "{details:?}");
    let (data, metadata) = activity_body("inst-1", Some("\"Kobe\""), "SayHello");
    let (status, reply) = server.invoke("SayHello", data, metadata).await;
    assert_eq!(
        (status, reply["ReturnValue"].clone()),
        (200, json!("Hello Kobe!"))
    );
    server.stop().await;
}
