//! `function.json` generation: one folder per registered function, bindings from the templates.

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, OrchestrationContext, OrchestrationError,
    Registry,
};
use durable_handler::{
    AuthLevel, FunctionApp, Handler, HttpResponse, HttpTrigger, OutputBinding, QueueTrigger,
    TimerTrigger,
};
use serde_json::{Value, json};

fn handler() -> Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator(
            "HelloCities",
            |_ctx: OrchestrationContext, _: Value| async move { Ok::<_, OrchestrationError>(()) },
        )
        .add_activity("SayHello", |_ctx: ActivityContext, s: String| async move {
            Ok::<_, ActivityError>(s)
        })
        .add_entity(
            "counter",
            Entity::<i64>::new().operation("get", |n: &mut i64, _ctx, _: Value| {
                Ok::<_, EntityError>(*n)
            }),
        );
    FunctionApp::new(registry)
        .http_starter(
            "HttpStart",
            HttpTrigger::new()
                .route("orchestrators/{name}")
                .methods(["POST"])
                .auth_level(AuthLevel::Anonymous),
            |_req, client, _ctx| async move { Ok(client.create_check_status_response("x")) },
        )
        .http("Hello", HttpTrigger::new(), |_req, _ctx| async move {
            Ok(HttpResponse::text("hi"))
        })
        .queue(
            "OnWork",
            QueueTrigger::new("work")
                .connection("Storage2")
                .output(OutputBinding::queue("done", "work-done").connection("Storage3")),
            |_m: Value, _ctx| async move { Ok(()) },
        )
        .timer(
            "Tick",
            TimerTrigger::new("0 */5 * * * *").run_on_startup(true),
            |_t, _ctx| async move { Ok(()) },
        )
        .build()
        .unwrap()
}

fn read(dir: &std::path::Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(name).join("function.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn writes_one_folder_per_function_with_the_right_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let written = handler().write_function_files(dir.path()).unwrap();
    assert_eq!(written.len(), 7);

    assert_eq!(
        read(dir.path(), "HelloCities")["bindings"],
        json!([{ "name": "context", "type": "orchestrationTrigger", "direction": "in" }])
    );
    assert_eq!(
        read(dir.path(), "SayHello")["bindings"],
        json!([{ "name": "input", "type": "activityTrigger", "direction": "in" }])
    );
    assert_eq!(
        read(dir.path(), "counter")["bindings"],
        json!([{ "name": "context", "type": "entityTrigger", "direction": "in" }])
    );
    assert_eq!(
        read(dir.path(), "HttpStart")["bindings"],
        json!([
            { "name": "req", "type": "httpTrigger", "direction": "in", "authLevel": "anonymous",
              "methods": ["post"], "route": "orchestrators/{name}" },
            { "name": "starter", "type": "durableClient", "direction": "in" },
            { "name": "res", "type": "http", "direction": "out" }
        ])
    );
    // No route or methods given: the host's defaults apply (route = function name, any method).
    assert_eq!(
        read(dir.path(), "Hello")["bindings"],
        json!([
            { "name": "req", "type": "httpTrigger", "direction": "in", "authLevel": "function" },
            { "name": "res", "type": "http", "direction": "out" }
        ])
    );
    assert_eq!(
        read(dir.path(), "OnWork")["bindings"],
        json!([
            { "name": "message", "type": "queueTrigger", "direction": "in", "queueName": "work", "connection": "Storage2" },
            { "name": "done", "type": "queue", "direction": "out", "queueName": "work-done", "connection": "Storage3", "dataType": "binary" }
        ])
    );
    assert_eq!(
        read(dir.path(), "Tick")["bindings"],
        json!([{ "name": "timer", "type": "timerTrigger", "direction": "in", "schedule": "0 */5 * * * *", "runOnStartup": true }])
    );
    // Durable triggers never declare `$return` (the host would base64-decode the reply).
    for name in ["HelloCities", "SayHello", "counter"] {
        assert!(!read(dir.path(), name).to_string().contains("$return"));
    }
}

#[test]
fn removes_stale_generated_functions_but_not_hand_written_ones() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("Removed");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(
        stale.join("function.json"),
        r#"{"bindings":[],"generatedBy":"durable-handler"}"#,
    )
    .unwrap();
    let manual = dir.path().join("Manual");
    std::fs::create_dir_all(&manual).unwrap();
    std::fs::write(manual.join("function.json"), r#"{"bindings":[]}"#).unwrap();

    handler().write_function_files(dir.path()).unwrap();
    assert!(
        !stale.exists(),
        "a function that is no longer registered is removed"
    );
    assert!(
        manual.join("function.json").exists(),
        "a hand-written function is left alone"
    );
    assert!(
        dir.path()
            .join("HelloCities")
            .join("function.json")
            .exists()
    );
}

#[test]
fn function_json_matches_the_written_files() {
    let dir = tempfile::tempdir().unwrap();
    let handler = handler();
    handler.write_function_files(dir.path()).unwrap();
    for (name, json) in handler.function_json().unwrap() {
        assert_eq!(read(dir.path(), &name), json);
    }
}
