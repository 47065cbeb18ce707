//! A scheduler that needs a token, from a laptop: the host runs against a stand-in scheduler (an HTTP/2 proxy in
//! front of the embedded backend) that refuses every call without the right `authorization: Bearer` header, with
//! `Authentication=ManagedIdentity` and a loopback stand-in for the App Service managed identity endpoint. A real
//! handler (this binary, re-run as a child process and built with `durable_handler::FunctionApp`) starts an
//! orchestration through its `durableClient` binding, which has no token of its own; the host's client endpoint,
//! worker and management API must all carry the host's token.
//!
//! `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` are process-wide, so this binary has its own `main` (no test harness)
//! and sets them before any thread exists.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, Error, InstanceIdQuery, StartOptions};
use durable_handler::{AuthLevel, FunctionApp, Handler, HttpResponse, HttpTrigger};
use durable_host::{BackendChoice, HostOptions};
use durable_proto as proto;
use serde_json::Value;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::Channel;

const TEST_NAME: &str = "a_scheduler_that_needs_a_token_works_end_to_end";
const SECRET: &str = "loopback-identity-secret";
const TOKEN: &str = "token-from-the-identity-endpoint";
/// Set in the handler's environment: run as the custom handler.
const HANDLER_ENV: &str = "DURABLE_TOKEN_TEST_HANDLER";
const WAIT: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(HANDLER_ENV).is_some() {
        return run_handler();
    }
    if let [command, dir] = args.as_slice()
        && command == "write-functions"
    {
        handler()
            .write_function_files(std::path::Path::new(dir))
            .unwrap();
        return;
    }
    if args.iter().any(|a| a == "--list") {
        println!("{TEST_NAME}: test");
        return;
    }
    if !selected(&args) {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n"
        );
        return;
    }
    println!("\nrunning 1 test");
    let identity = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    identity.set_nonblocking(true).unwrap();
    // SAFETY: no other thread exists yet (the runtime is built below), so nothing reads the environment
    // concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(
            "IDENTITY_ENDPOINT",
            format!("http://{}/msi/token", identity.local_addr().unwrap()),
        );
        std::env::set_var("IDENTITY_HEADER", SECRET);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(the_test(identity));
    println!(
        "test {TEST_NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}

/// Whether the standard harness would run this test with these arguments: name filters (`--exact` for whole
/// names) and `--skip`; other flags are accepted and ignored, with the values of those that take one.
fn selected(args: &[String]) -> bool {
    let (mut filters, mut skips, mut exact) = (Vec::new(), Vec::new(), false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exact" => exact = true,
            "--skip" => skips.extend(args.next()),
            "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                args.next();
            }
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter),
        }
    }
    let matches = |pattern: &str| {
        if exact {
            TEST_NAME == pattern
        } else {
            TEST_NAME.contains(pattern)
        }
    };
    (filters.is_empty() || filters.iter().any(|f| matches(f))) && !skips.iter().any(|s| matches(s))
}

// ---- the handler -------------------------------------------------------------------------------------------------

async fn greet(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity::<_, String>("SayHello", name).await?)
}

async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {name}!"))
}

fn handler() -> Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Greet", greet)
        .add_activity("SayHello", say_hello);
    let anonymous = |route: &str, method: &str| {
        HttpTrigger::new()
            .route(route)
            .methods([method])
            .auth_level(AuthLevel::Anonymous)
    };
    FunctionApp::new(registry)
        .http_starter(
            "Start",
            anonymous("start/{name}", "post"),
            |req, client, _ctx| async move {
                let name = req.param("name").unwrap_or_default().to_owned();
                let id = client
                    .schedule_new_orchestration("Greet", &name, StartOptions::new())
                    .await?;
                Ok(client.create_check_status_response(&id))
            },
        )
        // A starter that goes around the binding's client to call an RPC Azure's endpoint does not serve.
        .http_starter(
            "ListIds",
            anonymous("listids", "get"),
            |_req, client, _ctx| async move {
                let raw = DurableClient::new(
                    &ConnectionOptions::new(&client.binding().rpc_base_url)
                        .with_task_hub_header(durable_grpc::FUNCTIONS_TASK_HUB_HEADER),
                )?;
                Ok(match raw.list_instance_ids(&InstanceIdQuery::new()).await {
                    Ok(_) => HttpResponse::text("served"),
                    Err(Error::Rpc { code, message }) => {
                        HttpResponse::text(format!("{code:?}: {message}"))
                            .status(StatusCode::NOT_IMPLEMENTED)
                    }
                    Err(other) => {
                        HttpResponse::text(other.to_string()).status(StatusCode::BAD_GATEWAY)
                    }
                })
            },
        )
        .build()
        .unwrap()
}

fn run_handler() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { durable_handler::serve(handler()).await.unwrap() });
}

// ---- the identity endpoint ---------------------------------------------------------------------------------------

async fn issue_token(
    State(issued): State<Arc<AtomicU32>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(SECRET)
        || query.get("resource").map(String::as_str) != Some("https://durabletask.io")
    {
        return (StatusCode::BAD_REQUEST, "wrong identity request".into());
    }
    issued.fetch_add(1, Ordering::SeqCst);
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let body = serde_json::json!({
        "access_token": TOKEN,
        "expires_on": expires.to_string(),
        "token_type": "Bearer",
        "resource": "https://durabletask.io",
    });
    (StatusCode::OK, body.to_string())
}

// ---- the scheduler stand-in --------------------------------------------------------------------------------------

/// One call the stand-in saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    authorization: Option<String>,
    worker: bool,
}

impl Seen {
    fn authorized(&self) -> bool {
        self.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))
    }
}

/// Refuses calls without the token with `UNAUTHENTICATED`, passes the others to the backend.
#[derive(Clone)]
struct Gate {
    backend: Channel,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl NamedService for Gate {
    const NAME: &'static str = "TaskHubSidecarService";
}

impl Service<http::Request<Body>> for Gate {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = Seen {
            method: request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            authorization: header("authorization"),
            worker: header("workerid").is_some(),
        };
        let authorized = seen.authorized();
        self.seen.lock().unwrap().push(seen);
        let mut backend = self.backend.clone();
        Box::pin(async move {
            if !authorized {
                return Ok(
                    tonic::Status::unauthenticated("missing or invalid bearer token").into_http(),
                );
            }
            // A channel must be ready before each call.
            if let Err(e) = futures::future::poll_fn(|cx| backend.poll_ready(cx)).await {
                return Ok(tonic::Status::unavailable(format!("backend: {e}")).into_http());
            }
            Ok(match backend.call(request).await {
                Ok(response) => response,
                Err(e) => tonic::Status::unavailable(format!("backend: {e}")).into_http(),
            })
        })
    }
}

async fn spawn_gate(backend: &str, seen: Arc<Mutex<Vec<Seen>>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gate = Gate {
        backend: Channel::from_shared(backend.to_owned())
            .unwrap()
            .connect_lazy(),
        seen,
    };
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(gate)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    addr
}

// ---- the test ----------------------------------------------------------------------------------------------------

async fn the_test(identity: std::net::TcpListener) {
    let issued = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new()
        .route("/msi/token", axum::routing::get(issue_token))
        .with_state(issued.clone());
    let identity = tokio::net::TcpListener::from_std(identity).unwrap();
    tokio::spawn(async move { axum::serve(identity, app).await });

    let backend = durable_backend::start(
        durable_backend::Options::new()
            .in_memory()
            .with_bind(([127, 0, 0, 1], 0).into()),
    )
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gate = spawn_gate(&backend.endpoint(), seen.clone()).await;

    let app_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        app_dir.path().join("host.json"),
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"not-used"}},
            "extensions":{"durableTask":{"hubName":"tokenhub"}}}"#,
    )
    .unwrap();
    let host = durable_host::start(
        HostOptions::new(app_dir.path())
            .with_port(0)
            .with_handler(std::env::current_exe().unwrap())
            .with_handler_env(HANDLER_ENV, "1")
            .with_function_generator(["write-functions"])
            .with_timers(false)
            .with_backend(BackendChoice::ConnectionString(format!(
                "Endpoint=http://{gate};TaskHub=tokenhub;Authentication=ManagedIdentity"
            ))),
    )
    .await
    .unwrap();
    assert_ne!(host.client_endpoint(), format!("http://{gate}"));
    let http = reqwest::Client::new();
    let base = format!("http://{}", host.local_addr());

    // The starter starts through its binding; the status URL (the management API) follows it to the end.
    let started = http
        .post(format!("{base}/api/start/Tokyo"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        started.status().as_u16(),
        202,
        "{}",
        started.text().await.unwrap()
    );
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    let done: Value = loop {
        let response = http.get(&location).send().await.unwrap();
        let code = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if code == 200 {
            break body;
        }
        assert_eq!(code, 202, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["runtimeStatus"], "Completed", "{done}");
    assert_eq!(done["output"], "Hello Tokyo!");

    // An RPC Azure's endpoint does not serve is refused there, before any scheduler is involved.
    let listed = http
        .get(format!("{base}/api/listids"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 501);
    let text = listed.text().await.unwrap();
    assert!(
        text.starts_with("Unimplemented: ListInstanceIds is not served"),
        "{text}"
    );

    let host_calls = seen.lock().unwrap().clone();
    let refused: Vec<&Seen> = host_calls.iter().filter(|s| !s.authorized()).collect();
    assert!(refused.is_empty(), "calls without the token: {refused:?}");
    let saw = |what: &str, pick: &dyn Fn(&Seen) -> bool| {
        assert!(
            host_calls.iter().any(pick),
            "no {what} call reached the scheduler: {host_calls:?}"
        );
    };
    // StartInstance only comes from the client endpoint (the handler's only way to the scheduler).
    saw("client endpoint", &|s| {
        s.method == "StartInstance" && !s.worker
    });
    saw("worker", &|s| s.method == "GetWorkItems" && s.worker);
    saw("worker completion", &|s| {
        s.method == "CompleteOrchestratorTask"
    });
    saw("activity completion", &|s| {
        s.method == "CompleteActivityTask"
    });
    // GetInstance only comes from the management API's status route here.
    saw("management API", &|s| {
        s.method == "GetInstance" && !s.worker
    });
    assert!(!host_calls.iter().any(|s| s.method == "ListInstanceIds"));
    assert!(issued.load(Ordering::SeqCst) >= 1);

    // The stand-in does refuse: no token, or the wrong one.
    let anonymous = DurableClient::new(
        &ConnectionOptions::new(format!("http://{gate}")).with_task_hub("tokenhub"),
    )
    .unwrap();
    match anonymous.get_instance("any", false).await {
        Err(Error::Unauthenticated(message)) => {
            assert!(message.contains("bearer token"), "{message}")
        }
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    let mut request = anonymous
        .request(proto::GetInstanceRequest {
            instance_id: "any".into(),
            get_inputs_and_outputs: false,
        })
        .await
        .unwrap();
    request
        .metadata_mut()
        .insert("authorization", "Bearer forged".parse().unwrap());
    let forged = anonymous
        .raw_stub()
        .get_instance(request)
        .await
        .unwrap_err();
    assert_eq!(forged.code(), tonic::Code::Unauthenticated);
    let last_two: Vec<bool> = seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .map(Seen::authorized)
        .collect();
    assert_eq!(last_two, [false, false]);

    host.stop().await.unwrap();
    backend.shutdown().await.unwrap();
}
