//! `Logs` carries what an invocation logged through `tracing`, once the app installs `InvocationLogLayer`.
//! (Its own test binary: it installs a global subscriber.)

mod common;

use common::*;
use durable_core::proto;
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_handler::{FunctionApp, HttpResponse, HttpTrigger, InvocationLogLayer};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt as _;

#[tokio::test]
async fn tracing_events_during_an_invocation_reach_logs_and_only_that_invocation() {
    let subscriber = tracing_subscriber::registry().with(InvocationLogLayer::new());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut registry = Registry::new();
    registry
        .add_orchestrator("Orch", |ctx: OrchestrationContext, _: Value| async move {
            ctx.log_info("orchestrator says hi");
            Ok::<_, OrchestrationError>(1)
        })
        .add_activity("Act", |_ctx: ActivityContext, n: i64| async move {
            tracing::warn!(n, "activity warns");
            Ok::<_, ActivityError>(n)
        });
    let handler = FunctionApp::new(registry)
        .http("Web", HttpTrigger::new(), |_req, ctx| async move {
            tracing::info!("from tracing");
            ctx.log("from the context");
            Ok(HttpResponse::text("ok"))
        })
        .build()
        .unwrap();
    let server = Server::start(handler).await;

    let request = proto::OrchestratorRequest {
        instance_id: "log-1".into(),
        new_events: started("Orch", "log-1", Some("null")),
        ..Default::default()
    };
    let (status, reply) = server
        .invoke("Orch", orchestrator_data(&request), json!({}))
        .await;
    assert_eq!(status, 200, "{reply}");
    let logs = reply["Logs"].to_string();
    assert!(logs.contains("[info] orchestrator says hi"), "{logs}");

    let (data, metadata) = activity_body("log-1", Some("5"), "Act");
    let (status, reply) = server.invoke("Act", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    let logs = reply["Logs"].to_string();
    assert!(logs.contains("[warn] activity warns n=5"), "{logs}");
    assert!(
        !logs.contains("orchestrator says hi"),
        "lines belong to their own invocation: {logs}"
    );

    let req = json!({ "req": { "Url": "http://x/api/Web", "Method": "GET" } });
    let (status, reply) = server.invoke("Web", req, json!({})).await;
    assert_eq!(status, 200, "{reply}");
    let logs: Vec<String> = serde_json::from_value(reply["Logs"].clone()).unwrap();
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("from the context"))
            .count(),
        1,
        "explicit log lines are not duplicated by the layer: {logs:?}"
    );
    assert!(logs.iter().any(|l| l == "[info] from tracing"), "{logs:?}");
    server.stop().await;
}
