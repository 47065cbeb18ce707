//! A fake custom handler that misbehaves on purpose, function by function, so that the tests can hold the local
//! host's reactions against the Durable extension's. It records every request it gets as a JSON line.
//!
//! Functions: `Status500` (answers 500), `TextReply` (a reply without a JSON content type), `NullReturn` (no
//! `ReturnValue`), `Terminator` (an action the extension does not support), `ActivityFailures` (calls `Broken`,
//! which answers 500, and `Missing`, which does not exist), `EntityCalls` (calls `@counter@k` and
//! `@brokenentity@k`), `Sleepy` (hangs once), `Empty` (an empty 200 once), `Session` (needs its history when it is
//! left out), `ApplyData` (calls `Echo` with an object input whose keys collide with the binding data),
//! `Rewindable` (fails when `Flaky` fails, which it does once).
//!
//! It runs as its own program (`tests/bin/fidelity_handler.rs`); `tests/fidelity.rs` reads its log with the
//! helpers at the end. Each side uses part of this module.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use durable_proto as proto;
use prost::Message as _;
use proto::history_event::EventType;
use proto::orchestrator_action::OrchestratorActionType as A;
use serde_json::{Value, json};

pub(crate) const LOG_ENV: &str = "DURABLE_HOST_FIDELITY_LOG";

#[derive(Clone)]
struct Recorder {
    file: Arc<Mutex<std::fs::File>>,
    root: PathBuf,
}

impl Recorder {
    fn write(&self, line: Value) {
        let mut file = self.file.lock().unwrap();
        writeln!(file, "{line}").unwrap();
        file.flush().unwrap();
    }

    /// True the first time `name` is asked for in this app (across handler restarts).
    fn first_time(&self, name: &str) -> bool {
        let marker = self.root.join(format!("{name}.once"));
        if marker.exists() {
            return false;
        }
        std::fs::write(marker, b"x").unwrap();
        true
    }
}

/// Runs the handler until the host kills it.
pub(crate) fn serve(log: PathBuf) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let recorder = Recorder {
        file: Arc::new(Mutex::new(file)),
        root: PathBuf::from(std::env::var("FUNCTIONS_APP_ROOT_PATH").unwrap()),
    };
    recorder.write(json!({ "pid": std::process::id() }));
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
            .route("/{function}", post(invoke))
            .with_state(recorder);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

fn json_reply(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn return_value(value: Value) -> Response {
    json_reply(json!({ "Outputs": {}, "Logs": [], "ReturnValue": value }))
}

fn encoded<M: prost::Message>(message: &M) -> Value {
    Value::String(BASE64.encode(message.encode_to_vec()))
}

/// Peels the host's layers: a JSON string holding a JSON string literal of base64.
pub(crate) fn decode_payload(value: &Value) -> Vec<u8> {
    let inner: String =
        serde_json::from_str(value.as_str().expect("a string binding value")).unwrap();
    BASE64.decode(inner).unwrap()
}

async fn invoke(
    State(recorder): State<Recorder>,
    UrlPath(function): UrlPath<String>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    recorder.write(json!({ "function": function, "body": body }));
    match function.as_str() {
        "Flaky" => {
            if recorder.first_time("flaky") {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            return_value(json!("steady"))
        }
        "Status500" | "Broken" | "BrokenEntity" => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        "TextReply" => {
            let response = proto::OrchestratorResponse::default();
            let text = json!({ "ReturnValue": encoded(&response) }).to_string();
            ([(header::CONTENT_TYPE, "text/plain")], text).into_response()
        }
        "NullReturn" => json_reply(json!({ "Outputs": {}, "Logs": [] })),
        "Sleepy" => {
            if recorder.first_time("sleepy") {
                std::future::pending::<()>().await;
            }
            return_value(encoded(&complete(
                &orchestrator_request(&body),
                json!("awake"),
            )))
        }
        "Empty" => {
            if recorder.first_time("empty") {
                return ([(header::CONTENT_TYPE, "application/json")], "").into_response();
            }
            return_value(encoded(&complete(
                &orchestrator_request(&body),
                json!("filled"),
            )))
        }
        "Echo" => return_value(body["Metadata"].clone()),
        "SayHello" => {
            let text: String =
                serde_json::from_str(body["Data"]["input"].as_str().unwrap()).unwrap();
            let city: String = serde_json::from_str(&text).unwrap();
            return_value(json!(format!("Hello {city}!")))
        }
        "Counter" => return_value(encoded(&count(&body))),
        "SlowEntity" => {
            if recorder.first_time("slow-entity") {
                std::future::pending::<()>().await;
            }
            return_value(encoded(&count(&body)))
        }
        orchestrator => {
            let request = orchestrator_request(&body);
            return_value(encoded(&orchestrate(orchestrator, &request)))
        }
    }
}

fn orchestrator_request(body: &Value) -> proto::OrchestratorRequest {
    proto::OrchestratorRequest::decode(decode_payload(&body["Data"]["context"]).as_slice()).unwrap()
}

fn action(id: i32, kind: A) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id,
        orchestrator_action_type: Some(kind),
    }
}

fn respond(
    request: &proto::OrchestratorRequest,
    actions: Vec<proto::OrchestratorAction>,
) -> proto::OrchestratorResponse {
    proto::OrchestratorResponse {
        instance_id: request.instance_id.clone(),
        actions,
        ..Default::default()
    }
}

fn complete(request: &proto::OrchestratorRequest, result: Value) -> proto::OrchestratorResponse {
    respond(
        request,
        vec![action(
            -1,
            A::CompleteOrchestration(proto::CompleteOrchestrationAction {
                orchestration_status: proto::OrchestrationStatus::Completed as i32,
                result: Some(result.to_string()),
                ..Default::default()
            }),
        )],
    )
}

fn schedule(id: i32, name: &str, input: Value) -> proto::OrchestratorAction {
    action(
        id,
        A::ScheduleTask(proto::ScheduleTaskAction {
            name: name.into(),
            input: Some(input.to_string()),
            ..Default::default()
        }),
    )
}

fn events(request: &proto::OrchestratorRequest) -> impl Iterator<Item = &EventType> {
    request
        .past_events
        .iter()
        .chain(&request.new_events)
        .filter_map(|e| e.event_type.as_ref())
}

fn details_json(details: &Option<proto::TaskFailureDetails>) -> Value {
    match details {
        None => Value::Null,
        Some(d) => json!({
            "errorType": d.error_type,
            "errorMessage": d.error_message,
            "isNonRetriable": d.is_non_retriable,
            "inner": details_json(&d.inner_failure.as_deref().cloned()),
        }),
    }
}

const COUNTER_CALL: &str = "6f1f7a52-8a4b-4a8e-9d35-0c6f4f2a9b10";
const BROKEN_CALL: &str = "0b0d6c1e-3f2a-4b5c-8d7e-9f0a1b2c3d4e";

fn call_entity(id: i32, request_id: &str, target: &str, parent: &str) -> proto::OrchestratorAction {
    use proto::send_entity_message_action::EntityMessageType;
    action(
        id,
        A::SendEntityMessage(proto::SendEntityMessageAction {
            entity_message_type: Some(EntityMessageType::EntityOperationCalled(
                proto::EntityOperationCalledEvent {
                    request_id: request_id.into(),
                    operation: "add".into(),
                    input: Some("5".into()),
                    parent_instance_id: Some(parent.into()),
                    target_instance_id: Some(target.into()),
                    ..Default::default()
                },
            )),
        }),
    )
}

fn orchestrate(name: &str, request: &proto::OrchestratorRequest) -> proto::OrchestratorResponse {
    let include_state = request
        .properties
        .get("IncludeState")
        .and_then(|v| match v.kind {
            Some(prost_types::value::Kind::BoolValue(b)) => Some(b),
            _ => None,
        });
    match name {
        // Never finishes: no actions, ever.
        "Forever" => respond(request, vec![]),
        "SlowEntityCaller" => {
            let answer = events(request).find_map(|e| match e {
                EventType::EventRaised(r) if r.name == COUNTER_CALL => Some(
                    serde_json::from_str::<Value>(r.input.as_deref().unwrap_or("null")).unwrap(),
                ),
                _ => None,
            });
            match answer {
                Some(answer) => complete(request, answer),
                None if events(request).any(|e| matches!(e, EventType::EventSent(_))) => {
                    respond(request, vec![])
                }
                None => respond(
                    request,
                    vec![call_entity(
                        0,
                        COUNTER_CALL,
                        "@slowentity@k",
                        &request.instance_id,
                    )],
                ),
            }
        }
        "Terminator" => respond(
            request,
            vec![action(
                0,
                A::TerminateOrchestration(proto::TerminateOrchestrationAction {
                    instance_id: "someone".into(),
                    ..Default::default()
                }),
            )],
        ),
        "ActivityFailures" => {
            let failed: Vec<(i32, Value)> = events(request)
                .filter_map(|e| match e {
                    EventType::TaskFailed(f) => {
                        Some((f.task_scheduled_id, details_json(&f.failure_details)))
                    }
                    _ => None,
                })
                .collect();
            if failed.len() == 2 {
                let of = |id| {
                    failed
                        .iter()
                        .find(|(i, _)| *i == id)
                        .map(|(_, d)| d.clone())
                };
                return complete(request, json!({ "broken": of(0), "missing": of(1) }));
            }
            if events(request).any(|e| matches!(e, EventType::TaskScheduled(_))) {
                return respond(request, vec![]);
            }
            respond(
                request,
                vec![
                    schedule(0, "Broken", json!("x")),
                    schedule(1, "Missing", json!("y")),
                ],
            )
        }
        "EntityCalls" => {
            let native = events(request)
                .filter(|e| {
                    matches!(
                        e,
                        EventType::EntityOperationCalled(_)
                            | EventType::EntityOperationCompleted(_)
                            | EventType::EntityOperationFailed(_)
                    )
                })
                .count();
            let sent: Vec<Value> = events(request)
                .filter_map(|e| match e {
                    EventType::EventSent(s) => Some(json!({
                        "instanceId": s.instance_id, "name": s.name,
                        "input": serde_json::from_str::<Value>(s.input.as_deref().unwrap_or("null")).unwrap(),
                    })),
                    _ => None,
                })
                .collect();
            let answer = |id: &str| {
                events(request).find_map(|e| match e {
                    EventType::EventRaised(r) if r.name == id => Some(
                        serde_json::from_str::<Value>(r.input.as_deref().unwrap_or("null"))
                            .unwrap(),
                    ),
                    _ => None,
                })
            };
            if let (Some(counter), Some(broken)) = (answer(COUNTER_CALL), answer(BROKEN_CALL)) {
                return complete(
                    request,
                    json!({ "native": native, "sent": sent, "counter": counter, "broken": broken }),
                );
            }
            if !sent.is_empty() {
                return respond(request, vec![]);
            }
            respond(
                request,
                vec![
                    call_entity(0, COUNTER_CALL, "@counter@k", &request.instance_id),
                    call_entity(1, BROKEN_CALL, "@brokenentity@k", &request.instance_id),
                ],
            )
        }
        "Rewindable" => {
            let outcome = events(request).find_map(|e| match e {
                EventType::TaskCompleted(c) => Some(Ok(c.result.clone().unwrap_or_default())),
                EventType::TaskFailed(_) => Some(Err(())),
                _ => None,
            });
            match outcome {
                Some(Ok(result)) => complete(request, serde_json::from_str(&result).unwrap()),
                Some(Err(())) => respond(
                    request,
                    vec![action(
                        -1,
                        A::CompleteOrchestration(proto::CompleteOrchestrationAction {
                            orchestration_status: proto::OrchestrationStatus::Failed as i32,
                            failure_details: Some(proto::TaskFailureDetails {
                                error_type: "FlakyFailed".into(),
                                error_message: "the activity failed".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                    )],
                ),
                None if events(request).any(|e| matches!(e, EventType::TaskScheduled(_))) => {
                    respond(request, vec![])
                }
                None => respond(request, vec![schedule(0, "Flaky", json!(null))]),
            }
        }
        "Session" | "ApplyData" => {
            if name == "Session" && include_state == Some(false) {
                return proto::OrchestratorResponse {
                    instance_id: request.instance_id.clone(),
                    requires_history: true,
                    ..Default::default()
                };
            }
            let completed = events(request).find_map(|e| match e {
                EventType::TaskCompleted(c) => c.result.clone(),
                _ => None,
            });
            if let Some(result) = completed {
                return complete(request, serde_json::from_str(&result).unwrap());
            }
            if events(request).any(|e| matches!(e, EventType::TaskScheduled(_))) {
                return respond(request, vec![]);
            }
            if name == "Session" {
                return respond(request, vec![schedule(0, "SayHello", json!("Oslo"))]);
            }
            let input = json!({
                "InstanceId": "not-the-orchestration", "flag": true, "count": 3,
                "when": "2025-06-01T12:00:00Z", "nested": {"a": 1}, "list": [1], "nothing": null,
                "sys": "overwritten", "myTrigger": "dropped"
            });
            respond(request, vec![schedule(0, "Echo", input)])
        }
        other => panic!("no fake orchestrator named {other}"),
    }
}

fn count(body: &Value) -> proto::EntityBatchResult {
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
        state += op
            .input
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        results.push(proto::OperationResult {
            result_type: Some(proto::operation_result::ResultType::Success(
                proto::OperationResultSuccess {
                    result: Some(state.to_string()),
                    ..Default::default()
                },
            )),
        });
    }
    proto::EntityBatchResult {
        results,
        entity_state: Some(state.to_string()),
        ..Default::default()
    }
}

/// The recorded requests to one function.
pub(crate) fn requests_to(log: &Path, function: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["function"] == function)
        .collect()
}

/// The handler processes that ran, in order.
pub(crate) fn pids(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).unwrap()["pid"].as_u64())
        .collect()
}
