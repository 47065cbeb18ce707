//! Whatever reaches `POST /<Function>` or a forwarded route, the handler answers: a 200 with a reply the host can
//! read, or a 4xx that says what was wrong; never a panic, a 5xx or a hang. Random bytes, hostile JSON in every
//! binding and every part of the envelope, and random but well-typed orchestrator and entity requests (histories
//! that contradict the code, unknown events, wrong IDs), each for a bounded number of cases.

mod common;

use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{entity_data, host_string, orchestrator_data, sys};
use durable_core::proto::history_event::EventType;
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext,
    OrchestrationError, Registry, proto,
};
use durable_handler::{
    AuthLevel, FunctionApp, Handler, HttpResponse, HttpTrigger, QueueTrigger, TimerTrigger,
};
use proptest::prelude::*;
use prost::Message as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// An orchestrator that touches every kind of history event: an activity, an entity call and signal, a
/// critical section, a sub-orchestration, an event with a timeout, a timer, an outgoing event, a custom status.
async fn busy(ctx: OrchestrationContext, input: Value) -> Result<Value, OrchestrationError> {
    let activity = ctx.call_activity::<_, Value>("Act", &input).await.ok();
    let counter = EntityId::new("counter", "k");
    let called = ctx.call_entity::<_, i64>(&counter, "add", 1).await.ok();
    let _ = ctx.signal_entity(&counter, "add", 2);
    if let Ok(lock) = ctx.lock_entities(std::slice::from_ref(&counter)).await {
        lock.release();
    }
    let child = ctx
        .call_sub_orchestrator::<_, Value>("Orch", Value::Null, None)
        .await
        .ok();
    let event = ctx
        .wait_for_external_event_with_timeout::<Value>("go", Duration::from_secs(30))
        .await
        .ok();
    let _ = ctx.create_timer_after(Duration::from_secs(5)).await;
    let _ = ctx.send_event("other", "ping", &1);
    let _ = ctx.set_custom_status(&"done");
    Ok(json!([activity, called, child, event]))
}

fn handler() -> Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Orch", busy)
        .add_activity("Act", |_ctx: ActivityContext, v: Value| async move {
            Ok::<_, ActivityError>(v)
        })
        .add_entity(
            "counter",
            Entity::<i64>::new()
                .operation("add", |total: &mut i64, _ctx, n: i64| {
                    *total = total.wrapping_add(n);
                    Ok::<_, EntityError>(*total)
                })
                .operation("get", |total: &mut i64, _ctx, (): ()| {
                    Ok::<_, EntityError>(*total)
                }),
        );
    FunctionApp::new(registry)
        .http(
            "Echo",
            HttpTrigger::new()
                .route("echo/{id?}")
                .auth_level(AuthLevel::Anonymous),
            |req, _ctx| async move {
                let length = req.body_bytes().map(|b| b.len()).unwrap_or(0);
                Ok(HttpResponse::text(format!("{length}")))
            },
        )
        .http_starter(
            "Start",
            HttpTrigger::new()
                .route("start/{name}")
                .auth_level(AuthLevel::Anonymous),
            |_req, client, _ctx| async move { Ok(client.create_check_status_response("x")) },
        )
        .queue(
            "OnWork",
            QueueTrigger::new("work"),
            |_m: Value, _ctx| async { Ok(()) },
        )
        .timer(
            "Tick",
            TimerTrigger::new("0 */5 * * * *"),
            |_t, _ctx| async { Ok(()) },
        )
        .build()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One request through the router: status and body.
async fn send(handler: &Handler, request: http::Request<Body>) -> (u16, Vec<u8>) {
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        durable_handler::app(handler.clone()).oneshot(request),
    )
    .await
    .expect("the handler answers")
    .unwrap();
    let status = reply.status().as_u16();
    let body = axum::body::to_bytes(reply.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body.to_vec())
}

async fn invoke(handler: &Handler, function: &str, body: Vec<u8>) -> (u16, Value) {
    let request = http::Request::post(format!("/{function}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, body) = send(handler, request).await;
    let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!("{function} answered {status} with a body that is not JSON ({e})")
    });
    (status, value)
}

/// A 200 whose reply the host can read, or a 4xx with a message: nothing else.
fn assert_clear(function: &str, status: u16, reply: &Value) {
    match status {
        200 => {
            assert!(reply["Outputs"].is_object(), "{function}: {reply}");
            assert!(reply["Logs"].is_array(), "{function}: {reply}");
        }
        400..=499 => {
            let message = reply["Error"]["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{function} {status}: {reply}");
        }
        _ => panic!("{function} answered {status}: {reply}"),
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,16}".prop_map(Value::String),
        ".{0,16}".prop_map(|s| host_string(&s)),
        "[A-Za-z0-9+/]{0,24}={0,2}".prop_map(|s| host_string(&s)),
        any::<Vec<u8>>().prop_map(|b| host_string(&BASE64.encode(b))),
    ];
    let keys = prop_oneof![
        Just("Url".to_owned()),
        Just("Method".to_owned()),
        Just("Query".to_owned()),
        Just("Headers".to_owned()),
        Just("Params".to_owned()),
        Just("Body".to_owned()),
        Just("Content-Type".to_owned()),
        Just("rpcBaseUrl".to_owned()),
        Just("httpBaseUrl".to_owned()),
        Just("taskHubName".to_owned()),
        Just("ScheduleStatus".to_owned()),
        Just("sys".to_owned()),
        Just("MethodName".to_owned()),
        Just("instanceId".to_owned()),
        Just("data".to_owned()),
        "[a-zA-Z]{1,6}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        ".{0,12}",
        Just("\"Tokyo\"".to_owned()),
        Just("1".to_owned()),
        Just("null".to_owned()),
        Just("{\"n\":1}".to_owned()),
        Just("{\"$durableTaskFailure\":{\"errorType\":\"E\",\"errorMessage\":\"m\"}}".to_owned()),
    ])
}

fn arb_time() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    proptest::option::of(prop_oneof![
        (0i64..4_102_444_800, 0i32..1_000_000_000)
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    ])
}

fn arb_failure() -> impl Strategy<Value = Option<proto::TaskFailureDetails>> {
    proptest::option::of((".{0,8}", ".{0,8}", any::<bool>()).prop_map(|(t, m, nr)| {
        proto::TaskFailureDetails {
            error_type: t,
            error_message: m,
            is_non_retriable: nr,
            ..Default::default()
        }
    }))
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Act".to_owned()),
        Just("Orch".to_owned()),
        Just("go".to_owned()),
        Just("add".to_owned()),
        ".{0,8}",
    ]
}

fn arb_id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("@counter@k".to_owned()),
        Just("i:0000".to_owned()),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        ".{0,12}",
    ]
}

fn arb_event_type() -> impl Strategy<Value = EventType> {
    let task_id = prop_oneof![0i32..6, any::<i32>()];
    prop_oneof![
        (arb_name(), arb_text(), proptest::option::of(arb_id())).prop_map(|(name, input, id)| {
            EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name,
                input,
                orchestration_instance: id.map(|instance_id| proto::OrchestrationInstance {
                    instance_id,
                    execution_id: None,
                }),
                ..Default::default()
            })
        }),
        Just(EventType::OrchestratorStarted(
            proto::OrchestratorStartedEvent {}
        )),
        Just(EventType::OrchestratorCompleted(
            proto::OrchestratorCompletedEvent {}
        )),
        (arb_name(), arb_text()).prop_map(|(name, input)| {
            EventType::TaskScheduled(proto::TaskScheduledEvent {
                name,
                input,
                ..Default::default()
            })
        }),
        (task_id.clone(), arb_text()).prop_map(|(task_scheduled_id, result)| {
            EventType::TaskCompleted(proto::TaskCompletedEvent {
                task_scheduled_id,
                result,
            })
        }),
        (task_id.clone(), arb_failure()).prop_map(|(task_scheduled_id, failure_details)| {
            EventType::TaskFailed(proto::TaskFailedEvent {
                task_scheduled_id,
                failure_details,
            })
        }),
        (arb_id(), arb_name(), arb_text()).prop_map(|(instance_id, name, input)| {
            EventType::SubOrchestrationInstanceCreated(
                proto::SubOrchestrationInstanceCreatedEvent {
                    instance_id,
                    name,
                    input,
                    ..Default::default()
                },
            )
        }),
        (task_id.clone(), arb_text()).prop_map(|(task_scheduled_id, result)| {
            EventType::SubOrchestrationInstanceCompleted(
                proto::SubOrchestrationInstanceCompletedEvent {
                    task_scheduled_id,
                    result,
                },
            )
        }),
        (task_id.clone(), arb_failure()).prop_map(|(task_scheduled_id, failure_details)| {
            EventType::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
                task_scheduled_id,
                failure_details,
            })
        }),
        arb_time()
            .prop_map(|fire_at| EventType::TimerCreated(proto::TimerCreatedEvent { fire_at })),
        (arb_time(), task_id.clone()).prop_map(|(fire_at, timer_id)| EventType::TimerFired(
            proto::TimerFiredEvent { fire_at, timer_id }
        )),
        (arb_id(), arb_name(), arb_text()).prop_map(|(instance_id, name, input)| {
            EventType::EventSent(proto::EventSentEvent {
                instance_id,
                name,
                input,
            })
        }),
        (arb_name(), arb_text()).prop_map(|(name, input)| EventType::EventRaised(
            proto::EventRaisedEvent { name, input }
        )),
        arb_text().prop_map(|data| EventType::GenericEvent(proto::GenericEvent { data })),
        arb_text().prop_map(|input| EventType::ContinueAsNew(proto::ContinueAsNewEvent { input })),
        arb_text().prop_map(|input| EventType::ExecutionSuspended(
            proto::ExecutionSuspendedEvent { input }
        )),
        arb_text()
            .prop_map(|input| EventType::ExecutionResumed(proto::ExecutionResumedEvent { input })),
        (arb_text(), any::<bool>()).prop_map(|(input, recurse)| {
            EventType::ExecutionTerminated(proto::ExecutionTerminatedEvent { input, recurse })
        }),
        (0i32..8, arb_text(), arb_failure()).prop_map(|(status, result, failure_details)| {
            EventType::ExecutionCompleted(proto::ExecutionCompletedEvent {
                orchestration_status: status,
                result,
                failure_details,
            })
        }),
        (
            arb_id(),
            arb_name(),
            arb_text(),
            proptest::option::of(arb_id())
        )
            .prop_map(|(request_id, operation, input, target)| {
                EventType::EntityOperationCalled(proto::EntityOperationCalledEvent {
                    request_id,
                    operation,
                    input,
                    target_instance_id: target,
                    ..Default::default()
                })
            }),
        (arb_id(), arb_text()).prop_map(|(request_id, output)| {
            EventType::EntityOperationCompleted(proto::EntityOperationCompletedEvent {
                request_id,
                output,
            })
        }),
        (arb_id(), arb_failure()).prop_map(|(request_id, failure_details)| {
            EventType::EntityOperationFailed(proto::EntityOperationFailedEvent {
                request_id,
                failure_details,
            })
        }),
        (
            arb_id(),
            proptest::collection::vec(arb_id(), 0..3),
            any::<i32>()
        )
            .prop_map(|(critical_section_id, lock_set, position)| {
                EventType::EntityLockRequested(proto::EntityLockRequestedEvent {
                    critical_section_id,
                    lock_set,
                    position,
                    parent_instance_id: None,
                })
            }),
        arb_id().prop_map(|critical_section_id| {
            EventType::EntityLockGranted(proto::EntityLockGrantedEvent {
                critical_section_id,
            })
        }),
        arb_text().prop_map(
            |reason| EventType::ExecutionRewound(proto::ExecutionRewoundEvent {
                reason,
                ..Default::default()
            })
        ),
    ]
}

fn arb_events() -> impl Strategy<Value = Vec<proto::HistoryEvent>> {
    proptest::collection::vec(
        (
            prop_oneof![-1i32..12, any::<i32>()],
            arb_time(),
            arb_event_type(),
        ),
        0..12,
    )
    .prop_map(|events| {
        events
            .into_iter()
            .map(|(event_id, timestamp, event_type)| proto::HistoryEvent {
                event_id,
                timestamp,
                event_type: Some(event_type),
            })
            .collect()
    })
}

/// A plausible start (so the engine gets past the first event) followed by anything, or anything at all.
fn arb_orchestrator_request() -> impl Strategy<Value = proto::OrchestratorRequest> {
    (
        arb_id(),
        any::<bool>(),
        arb_events(),
        arb_events(),
        arb_text(),
    )
        .prop_map(|(instance_id, plausible, mut past, new, input)| {
            if plausible {
                let start = |event_id, event_type| proto::HistoryEvent {
                    event_id,
                    timestamp: Some(std::time::SystemTime::UNIX_EPOCH.into()),
                    event_type: Some(event_type),
                };
                past.insert(
                    0,
                    start(
                        -1,
                        EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                            name: "Orch".into(),
                            input,
                            orchestration_instance: Some(proto::OrchestrationInstance {
                                instance_id: instance_id.clone(),
                                execution_id: None,
                            }),
                            ..Default::default()
                        }),
                    ),
                );
                past.insert(
                    0,
                    start(
                        -1,
                        EventType::OrchestratorStarted(proto::OrchestratorStartedEvent {}),
                    ),
                );
            }
            proto::OrchestratorRequest {
                instance_id,
                past_events: past,
                new_events: new,
                ..Default::default()
            }
        })
}

fn arb_entity_request() -> impl Strategy<Value = proto::EntityBatchRequest> {
    let operation =
        (arb_name(), arb_id(), arb_text()).prop_map(|(operation, request_id, input)| {
            proto::OperationRequest {
                operation,
                request_id,
                input,
                trace_context: None,
            }
        });
    (
        arb_id(),
        arb_text(),
        proptest::collection::vec(operation, 0..6),
    )
        .prop_map(
            |(instance_id, entity_state, operations)| proto::EntityBatchRequest {
                instance_id,
                entity_state,
                operations,
                ..Default::default()
            },
        )
}

const FUNCTIONS: [&str; 7] = ["Orch", "counter", "Act", "Echo", "Start", "OnWork", "Tick"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_bytes_are_refused_clearly(function in proptest::sample::select(&FUNCTIONS[..]), body in any::<Vec<u8>>()) {
        let handler = handler();
        runtime().block_on(async {
            let (status, reply) = invoke(&handler, function, body).await;
            assert_clear(function, status, &reply);
            assert_eq!(status, 400, "{reply}");
        });
    }

    #[test]
    fn hostile_envelopes_are_answered_clearly(
        function in proptest::sample::select(&FUNCTIONS[..]),
        data in arb_json(),
        metadata in arb_json(),
        binding in prop_oneof![Just("context"), Just("input"), Just("req"), Just("starter"), Just("message"), Just("timer"), Just("x")],
        value in arb_json(),
        starter in arb_json(),
    ) {
        let handler = handler();
        runtime().block_on(async {
            // The whole envelope hostile, then a well-formed envelope with a hostile binding value.
            let (status, reply) = invoke(&handler, function, json!({"Data": data, "Metadata": metadata}).to_string().into_bytes()).await;
            assert_clear(function, status, &reply);
            let envelope = json!({
                "Data": { binding: value, "starter": starter },
                "Metadata": { "sys": sys(function), "instanceId": host_string("i") },
            });
            let (status, reply) = invoke(&handler, function, envelope.to_string().into_bytes()).await;
            assert_clear(function, status, &reply);
        });
    }

    #[test]
    fn any_well_typed_orchestrator_request_gets_a_valid_reply(request in arb_orchestrator_request()) {
        let handler = handler();
        runtime().block_on(async {
            let envelope = json!({ "Data": orchestrator_data(&request), "Metadata": { "sys": sys("Orch") } });
            let (status, reply) = invoke(&handler, "Orch", envelope.to_string().into_bytes()).await;
            assert_clear("Orch", status, &reply);
            if status == 200 {
                let text = reply["ReturnValue"].as_str().expect("a base64 ReturnValue");
                let response = proto::OrchestratorResponse::decode(BASE64.decode(text).unwrap().as_slice()).unwrap();
                // An empty request ID is taken from ExecutionStarted, when there is one.
                if !request.instance_id.is_empty() {
                    assert_eq!(response.instance_id, request.instance_id);
                }
            }
        });
    }

    #[test]
    fn any_well_typed_entity_batch_gets_a_valid_reply(request in arb_entity_request()) {
        let handler = handler();
        runtime().block_on(async {
            let envelope = json!({ "Data": entity_data(&request), "Metadata": { "sys": sys("counter") } });
            let (status, reply) = invoke(&handler, "counter", envelope.to_string().into_bytes()).await;
            assert_clear("counter", status, &reply);
            if status == 200 {
                let text = reply["ReturnValue"].as_str().expect("a base64 ReturnValue");
                let result = proto::EntityBatchResult::decode(BASE64.decode(text).unwrap().as_slice()).unwrap();
                assert!(result.results.len() <= request.operations.len());
            } else {
                // Only an entity ID that is not this entity's is refused.
                assert_ne!(request.instance_id, "@counter@k", "{reply}");
            }
        });
    }

    #[test]
    fn forwarded_requests_on_any_path_and_query_are_answered(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("PATCH")],
        segments in proptest::collection::vec("[a-zA-Z0-9%._~-]{0,10}", 0..5),
        query in "[a-zA-Z0-9%&=+._-]{0,30}",
        content_type in prop_oneof![Just("application/octet-stream"), Just("multipart/form-data; boundary=x"), Just("text/plain"), Just("bad type")],
        body in any::<Vec<u8>>(),
    ) {
        let handler = handler();
        runtime().block_on(async {
            let path = format!("/{}", segments.join("/"));
            let uri = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
            let Ok(request) = http::Request::builder()
                .method(method)
                .uri(&uri)
                .header("content-type", content_type)
                .body(Body::from(body.clone()))
            else {
                return;
            };
            let (status, reply) = send(&handler, request).await;
            assert!(status < 500, "{method} {uri} answered {status}: {}", String::from_utf8_lossy(&reply));
            if status == 200 && path.to_ascii_lowercase().starts_with("/api/echo") {
                // The function saw exactly the bytes sent.
                assert_eq!(String::from_utf8_lossy(&reply), body.len().to_string());
            }
        });
    }
}
