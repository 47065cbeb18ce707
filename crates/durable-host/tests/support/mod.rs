//! A custom handler for the tests: it records every request the host sends (method, path, headers, body) as a
//! JSON line and answers like a tiny durable app: orchestrator `HelloOrch` calls activity `SayHello` once and
//! returns its result, `Counter` adds numbers, `HttpStart` answers through its `res` binding, `Secure` answers 200.
//!
//! It runs as its own program (`tests/bin/fake_handler.rs`, the `durable-host-fake-handler` binary); the tests
//! share the constants and the payload decoding. Each side uses part of this module.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{any, get};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use durable_proto as proto;
use prost::Message as _;
use proto::history_event::EventType;
use proto::orchestrator_action::OrchestratorActionType;
use serde_json::{Value, json};

pub(crate) const LOG_ENV: &str = "DURABLE_HOST_TEST_RECORDER_LOG";
pub(crate) const HANG_MARKER_ENV: &str = "DURABLE_HOST_TEST_HANG_ONCE";
/// `COUNT:FILE`: the first COUNT starts of the handler (counted in FILE) exit at once with status 3, as a handler
/// that found its port taken does.
pub(crate) const EXIT_EARLY_ENV: &str = "DURABLE_HOST_TEST_EXIT_EARLY";

#[derive(Clone)]
struct Recorder {
    file: Arc<Mutex<std::fs::File>>,
    hang_marker: Option<PathBuf>,
}

impl Recorder {
    fn write(&self, line: Value) {
        let mut file = self.file.lock().unwrap();
        writeln!(file, "{line}").unwrap();
        file.flush().unwrap();
    }
}

/// Runs the fake handler until the host kills it.
pub(crate) fn serve(log: PathBuf) {
    if let Some((count, file)) = std::env::var(EXIT_EARLY_ENV)
        .ok()
        .and_then(|v| v.split_once(':').map(|(c, f)| (c.to_owned(), f.to_owned())))
    {
        let started = std::fs::read_to_string(&file).map_or(0, |t| t.len());
        std::fs::write(&file, "x".repeat(started + 1)).unwrap();
        if started < count.parse::<usize>().unwrap() {
            std::process::exit(3);
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let recorder = Recorder {
        file: Arc::new(Mutex::new(file)),
        hang_marker: std::env::var_os(HANG_MARKER_ENV).map(PathBuf::from),
    };
    let env: serde_json::Map<String, Value> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FUNCTIONS_") || k.starts_with("MY_"))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    recorder.write(json!({ "env": env, "pid": std::process::id() }));
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let app = Router::new()
            .route("/", get(|| async { "fake handler" }))
            .route("/{*function}", any(invoke))
            .with_state(recorder)
            .layer(axum::middleware::from_fn(json_replies));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

/// Invocation replies are JSON, as the host requires (it reads them with a JSON formatter); forwarded HTTP
/// requests answer as they like.
async fn json_replies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let forwarded = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if !forwarded {
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
    }
    response
}

async fn invoke(
    State(recorder): State<Recorder>,
    Path(function): Path<String>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    let header_map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(v.to_str().unwrap_or("").to_owned()),
            )
        })
        .collect();
    let parsed: Value = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    recorder.write(json!({
        "method": method.as_str(),
        "path": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "headers": header_map,
        "body": parsed,
    }));
    let ok = |v: Value| (axum::http::StatusCode::OK, v.to_string());
    match function.as_str() {
        "HelloOrch" => ok(
            json!({ "Outputs": {}, "Logs": ["orchestrator turn"], "ReturnValue": orchestrate(&parsed) }),
        ),
        "SayHello" => {
            if let Some(marker) = &recorder.hang_marker
                && !marker.exists()
            {
                std::fs::write(marker, b"hung once").unwrap();
                // Never answers: the test kills this process while the host waits.
                std::future::pending::<()>().await;
            }
            let text: String =
                serde_json::from_str(parsed["Data"]["input"].as_str().unwrap()).unwrap();
            let city: String = serde_json::from_str(&text).unwrap();
            ok(
                json!({ "Outputs": {}, "Logs": ["said hello"], "ReturnValue": format!("Hello {city}!") }),
            )
        }
        "Counter" => ok(json!({ "Outputs": {}, "Logs": [], "ReturnValue": count(&parsed) })),
        "HttpStart" | "OtherStart" => ok(json!({
            "Outputs": { "res": { "statusCode": 202, "body": "started", "headers": { "X-Test": "1" } } },
            "Logs": ["http start"],
            "ReturnValue": null
        })),
        // Asked to, a forwarded request's bytes come back as base64, so a test can compare them exactly.
        forwarded if forwarded.starts_with("api/") && headers.contains_key("x-echo-base64") => {
            (axum::http::StatusCode::CREATED, BASE64.encode(&body))
        }
        forwarded if forwarded.starts_with("api/") => (
            axum::http::StatusCode::CREATED,
            format!("forwarded {} {}", method, String::from_utf8_lossy(&body)),
        ),
        "Orders" => {
            let text: String =
                serde_json::from_str(parsed["Data"]["msg"].as_str().unwrap_or("\"\""))
                    .unwrap_or_default();
            if text == "fail" {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new())
            } else {
                ok(json!({ "Outputs": {}, "Logs": [format!("order {text}")], "ReturnValue": null }))
            }
        }
        "Tick" => ok(json!({ "Outputs": {}, "Logs": ["tick"], "ReturnValue": null })),
        "Secure" => ok(
            json!({ "Outputs": {}, "Logs": [], "ReturnValue": { "statusCode": "200", "body": "secret" } }),
        ),
        _ => (axum::http::StatusCode::NOT_FOUND, String::new()),
    }
}

/// Peels the host's layers: a JSON string holding a JSON string literal of base64.
pub(crate) fn decode_payload(value: &Value) -> Vec<u8> {
    let inner: String =
        serde_json::from_str(value.as_str().expect("a string binding value")).unwrap();
    BASE64.decode(inner).unwrap()
}

fn orchestrate(body: &Value) -> String {
    let request =
        proto::OrchestratorRequest::decode(decode_payload(&body["Data"]["context"]).as_slice())
            .unwrap();
    let events = request.past_events.iter().chain(&request.new_events);
    let completed = events.clone().find_map(|e| match &e.event_type {
        Some(EventType::TaskCompleted(c)) => Some(c.result.clone()),
        _ => None,
    });
    let scheduled = events
        .clone()
        .any(|e| matches!(e.event_type, Some(EventType::TaskScheduled(_))));
    let action = match completed {
        Some(result) => {
            OrchestratorActionType::CompleteOrchestration(proto::CompleteOrchestrationAction {
                orchestration_status: proto::OrchestrationStatus::Completed as i32,
                result,
                ..Default::default()
            })
        }
        None if scheduled => {
            let response = proto::OrchestratorResponse {
                instance_id: request.instance_id,
                ..Default::default()
            };
            return BASE64.encode(response.encode_to_vec());
        }
        None => OrchestratorActionType::ScheduleTask(proto::ScheduleTaskAction {
            name: "SayHello".into(),
            input: Some("\"Tokyo\"".into()),
            ..Default::default()
        }),
    };
    let response = proto::OrchestratorResponse {
        instance_id: request.instance_id,
        actions: vec![proto::OrchestratorAction {
            id: 0,
            orchestrator_action_type: Some(action),
        }],
        ..Default::default()
    };
    BASE64.encode(response.encode_to_vec())
}

fn count(body: &Value) -> String {
    let request =
        proto::EntityBatchRequest::decode(decode_payload(&body["Data"]["context"]).as_slice())
            .unwrap();
    let mut state: i64 = request
        .entity_state
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut results = Vec::new();
    for op in &request.operations {
        if op.operation == "add" {
            state += op
                .input
                .as_deref()
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0);
        }
        results.push(proto::OperationResult {
            result_type: Some(proto::operation_result::ResultType::Success(
                proto::OperationResultSuccess {
                    result: Some(state.to_string()),
                    ..Default::default()
                },
            )),
        });
    }
    let result = proto::EntityBatchResult {
        results,
        entity_state: Some(state.to_string()),
        ..Default::default()
    };
    BASE64.encode(result.encode_to_vec())
}
