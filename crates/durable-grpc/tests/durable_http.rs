//! Durable HTTP through the gRPC worker on the embedded backend, against a real HTTP server on a loopback port:
//! a POST answered `202 Accepted` + `Location` is polled (durable timers in between) until it answers 200, with a
//! managed-identity bearer token from a loopback stand-in for the App Service identity endpoint; error statuses
//! are answers; an unreachable server fails the task.
//!
//! `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` are process-wide, so this binary holds one test, which sets them before
//! any other thread exists.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use durable_core::http::{DurableHttpRequest, ManagedIdentityTokenSource};
use durable_core::{OrchestrationContext, OrchestrationError, Registry, TaskError};
use durable_grpc::proto::history_event::EventType;
use durable_grpc::{ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker};
use serde_json::{Value, json};

const SECRET: &str = "loopback-identity-secret";
const TOKEN: &str = "token-for-the-api";

/// What the API server saw: (method, path, authorization, content type, body).
type Seen = Arc<Mutex<Vec<(String, String, Option<String>, Option<String>, String)>>>;

async fn issue_token(
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(SECRET)
    {
        return (StatusCode::UNAUTHORIZED, "bad identity header".into());
    }
    let resource = query.get("resource").cloned().unwrap_or_default();
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let body = json!({
        "access_token": format!("{TOKEN}@{resource}"),
        "expires_on": expires.to_string(),
        "token_type": "Bearer",
        "resource": resource,
    });
    (StatusCode::OK, body.to_string())
}

fn record(seen: &Seen, method: &str, path: &str, headers: &HeaderMap, body: String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    seen.lock().unwrap().push((
        method.to_owned(),
        path.to_owned(),
        header("authorization"),
        header("content-type"),
        body,
    ));
}

async fn start_job(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    record(&seen, "POST", "/jobs", &headers, body);
    (
        StatusCode::ACCEPTED,
        [("Location", "/jobs/7/status"), ("Retry-After", "1")],
        "accepted",
    )
}

async fn job_status(State(seen): State<Seen>, headers: HeaderMap) -> impl IntoResponse {
    record(&seen, "GET", "/jobs/7/status", &headers, String::new());
    let polls = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.1 == "/jobs/7/status")
        .count();
    if polls < 2 {
        (
            StatusCode::ACCEPTED,
            [("Location", "/jobs/7/status"), ("Retry-After", "1")],
            "running".to_owned(),
        )
            .into_response()
    } else {
        (
            StatusCode::OK,
            [("X-Result", "ok")],
            json!({"done": true}).to_string(),
        )
            .into_response()
    }
}

async fn broken() -> impl IntoResponse {
    (StatusCode::INTERNAL_SERVER_ERROR, "nope")
}

fn registry(api: String, unreachable: String) -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("CallApi", move |ctx: OrchestrationContext, (): ()| {
        let (api, unreachable) = (api.clone(), unreachable.clone());
        async move {
            let job = DurableHttpRequest::new("POST", format!("{api}/jobs"))
                .json(&json!({"size": 3}))
                .map_err(OrchestrationError::from)?
                .token_source(ManagedIdentityTokenSource::new("https://api.example"))
                .asynchronous_pattern(true);
            let done = ctx.call_http(job).await?;
            let broken = ctx
                .call_http(DurableHttpRequest::get(format!("{api}/broken")))
                .await?;
            let refused = match ctx
                .call_http(DurableHttpRequest::get(format!("{unreachable}/x")))
                .await
            {
                Err(TaskError::Failed { details, .. }) => details.error_type,
                other => format!("unexpected: {other:?}"),
            };
            Ok::<_, OrchestrationError>(json!({
                "status": done.status_code,
                "body": done.json::<Value>().map_err(OrchestrationError::from)?,
                "result_header": done.header("x-result"),
                "broken": [broken.status_code, broken.content],
                "refused": refused,
            }))
        }
    });
    r
}

#[test]
fn durable_http_follows_202_polling_with_a_managed_identity_token() {
    let identity_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    identity_listener.set_nonblocking(true).unwrap();
    let identity_addr = identity_listener.local_addr().unwrap();
    // SAFETY: no other thread exists yet (the runtime is built below), so nothing reads the environment meanwhile.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(
            "IDENTITY_ENDPOINT",
            format!("http://{identity_addr}/msi/token"),
        );
        std::env::set_var("IDENTITY_HEADER", SECRET);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let identity = axum::Router::new().route("/msi/token", get(issue_token));
        let listener = tokio::net::TcpListener::from_std(identity_listener).unwrap();
        tokio::spawn(async move { axum::serve(listener, identity).await });

        let seen: Seen = Arc::default();
        let api = axum::Router::new()
            .route("/jobs", post(start_job))
            .route("/jobs/7/status", get(job_status))
            .route("/broken", get(broken))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, api).await });
        // A port nobody listens on: bound, then closed.
        let unreachable = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };

        let backend = durable_backend::start(
            durable_backend::Options::new()
                .in_memory()
                .with_bind("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("default");
        let worker = Worker::builder()
            .connection(connection.clone())
            .registry(registry(api_url, unreachable))
            .build()
            .unwrap()
            .start();
        let client = DurableClient::new(&connection).unwrap();
        client
            .schedule_new_orchestration("CallApi", &(), StartOptions::new().with_instance_id("job"))
            .await
            .unwrap();
        let done = client
            .wait_for_completion("job", true, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(done.status, OrchestrationStatus::Completed, "{done:?}");
        let output: Value = done.output().unwrap().unwrap();
        assert_eq!(output["status"], 200);
        assert_eq!(output["body"], json!({"done": true}));
        assert_eq!(output["result_header"], "ok");
        assert_eq!(output["broken"], json!([500, "nope"]));
        assert_eq!(output["refused"], "HttpRequestError");

        // One POST with its JSON body and token, then two polls of the Location, with the token again.
        let seen = seen.lock().unwrap().clone();
        let token = Some(format!("Bearer {TOKEN}@https://api.example"));
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[0].0, "POST");
        assert_eq!(seen[0].2, token);
        assert_eq!(seen[0].3.as_deref(), Some("application/json"));
        assert_eq!(seen[0].4, r#"{"size":3}"#);
        for poll in &seen[1..] {
            assert_eq!(
                (poll.0.as_str(), poll.1.as_str()),
                ("GET", "/jobs/7/status")
            );
            assert_eq!(poll.2, token);
        }

        // The history holds exactly what the .NET worker emits: the built-in activity, the request as its input,
        // and a durable timer before each poll.
        let history = client.get_history("job").await.unwrap();
        let scheduled: Vec<Value> = history
            .iter()
            .filter_map(|e| match &e.event_type {
                Some(EventType::TaskScheduled(t)) => {
                    assert_eq!(t.name, "BuiltIn::HttpActivity");
                    Some(serde_json::from_str(t.input.as_deref().unwrap()).unwrap())
                }
                _ => None,
            })
            .collect();
        assert_eq!(scheduled.len(), 5);
        assert_eq!(scheduled[0]["method"], "POST");
        assert_eq!(scheduled[0]["asynchronousPatternEnabled"], true);
        assert_eq!(scheduled[0]["headers"]["Content-Type"], "application/json");
        assert_eq!(scheduled[0]["tokenSource"]["kind"], "AzureManagedIdentity");
        assert_eq!(scheduled[1]["method"], "GET");
        assert!(
            scheduled[1]["uri"]
                .as_str()
                .unwrap()
                .ends_with("/jobs/7/status")
        );
        let timers = history
            .iter()
            .filter(|e| matches!(e.event_type, Some(EventType::TimerCreated(_))))
            .count();
        assert_eq!(timers, 2);

        worker.shutdown().await.unwrap();
        backend.shutdown().await.unwrap();
    });
}
