//! The authentication path end to end: a loopback stand-in for the App Service managed identity endpoint issues a
//! token through azure_identity, and a small gRPC server checks the `authorization` header it receives.
//!
//! `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` are process-wide, so this binary holds one test, which sets them before
//! any other thread exists.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use durable_grpc::proto;
use durable_grpc::{ConnectionOptions, DurableClient, Error, Worker, WorkerOptions};
use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::server::{NamedService, UnaryService};

const SECRET: &str = "loopback-identity-secret";
const TOKEN: &str = "token-from-the-identity-endpoint";

#[derive(Default)]
struct Identity {
    issued: AtomicU32,
    refuse: AtomicBool,
}

async fn issue_token(
    State(identity): State<Arc<Identity>>,
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
    if identity.refuse.load(Ordering::SeqCst) {
        return (StatusCode::BAD_REQUEST, "no identity assigned".into());
    }
    assert_eq!(
        query.get("resource").map(String::as_str),
        Some("https://durabletask.io")
    );
    identity.issued.fetch_add(1, Ordering::SeqCst);
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

/// What the gRPC stand-in saw, per call: (path, headers we care about).
type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

/// Answers `Hello` and `GetInstance` (not found) when the bearer token is right; refuses everything else.
#[derive(Clone)]
struct AuthChecking {
    seen: Seen,
}

impl NamedService for AuthChecking {
    const NAME: &'static str = "TaskHubSidecarService";
}

struct Hello;
impl UnaryService<()> for Hello {
    type Response = ();
    type Future = futures::future::Ready<Result<tonic::Response<()>, tonic::Status>>;
    fn call(&mut self, _: tonic::Request<()>) -> Self::Future {
        futures::future::ready(Ok(tonic::Response::new(())))
    }
}

struct GetInstance;
impl UnaryService<proto::GetInstanceRequest> for GetInstance {
    type Response = proto::GetInstanceResponse;
    type Future =
        futures::future::Ready<Result<tonic::Response<proto::GetInstanceResponse>, tonic::Status>>;
    fn call(&mut self, _: tonic::Request<proto::GetInstanceRequest>) -> Self::Future {
        futures::future::ready(Ok(tonic::Response::new(
            proto::GetInstanceResponse::default(),
        )))
    }
}

impl tower::Service<http::Request<Body>> for AuthChecking {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let headers: HashMap<String, String> =
            ["authorization", "taskhub", "x-user-agent", "workerid"]
                .into_iter()
                .filter_map(|h| {
                    Some((
                        h.to_owned(),
                        request.headers().get(h)?.to_str().ok()?.to_owned(),
                    ))
                })
                .collect();
        let authorized =
            headers.get("authorization").map(String::as_str) == Some(&format!("Bearer {TOKEN}"));
        self.seen.lock().unwrap().push((path.clone(), headers));
        Box::pin(async move {
            if !authorized {
                return Ok(
                    tonic::Status::unauthenticated("missing or invalid bearer token").into_http(),
                );
            }
            Ok(match path.as_str() {
                "/TaskHubSidecarService/Hello" => {
                    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(Hello, request)
                        .await
                }
                "/TaskHubSidecarService/GetInstance" => {
                    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(GetInstance, request)
                        .await
                }
                _ => tonic::Status::unimplemented("not in this stand-in").into_http(),
            })
        })
    }
}

#[derive(Debug)]
struct Fixed(&'static str);

#[async_trait::async_trait]
impl TokenCredential for Fixed {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0,
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

#[test]
fn managed_identity_token_reaches_the_server_and_bad_tokens_are_refused() {
    let identity_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let grpc_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    identity_listener.set_nonblocking(true).unwrap();
    grpc_listener.set_nonblocking(true).unwrap();
    let identity_addr = identity_listener.local_addr().unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    // SAFETY: no other thread exists yet (the runtime is built below), so nothing can read the environment
    // concurrently.
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
        let identity = Arc::new(Identity::default());
        let app = axum::Router::new()
            .route("/msi/token", get(issue_token))
            .with_state(identity.clone());
        let listener = tokio::net::TcpListener::from_std(identity_listener).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::from_std(grpc_listener).unwrap();
        let service = AuthChecking { seen: seen.clone() };
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        });

        let endpoint = format!("http://{grpc_addr}");
        let connection_string =
            format!("Endpoint={endpoint};TaskHub=hub-a;Authentication=ManagedIdentity");

        // The managed identity token is fetched once, sent as a bearer token, and reused.
        let client = DurableClient::from_connection_string(&connection_string).unwrap();
        assert!(
            client
                .get_instance("some-id", false)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            client
                .get_instance("some-id", false)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            identity.issued.load(Ordering::SeqCst),
            1,
            "the token is cached"
        );
        {
            let seen = seen.lock().unwrap();
            let (path, headers) = seen.last().unwrap();
            assert_eq!(path, "/TaskHubSidecarService/GetInstance");
            assert_eq!(
                headers.get("authorization").unwrap(),
                &format!("Bearer {TOKEN}")
            );
            assert_eq!(headers.get("taskhub").unwrap(), "hub-a");
            assert!(
                headers
                    .get("x-user-agent")
                    .unwrap()
                    .starts_with("durable-rust/")
            );
            assert!(
                !headers.contains_key("workerid"),
                "clients send no worker id"
            );
        }

        // No credential: refused, and the error carries the server's reason.
        let anonymous = DurableClient::from_connection_string(&format!(
            "Endpoint={endpoint};TaskHub=hub-a;Authentication=None"
        ))
        .unwrap();
        match anonymous.get_instance("some-id", false).await {
            Err(Error::Unauthenticated(message)) => {
                assert!(message.contains("bearer token"), "{message}")
            }
            other => panic!("expected Unauthenticated, got {other:?}"),
        }

        // A wrong token: refused the same way.
        let wrong = ConnectionOptions::new(&endpoint)
            .with_task_hub("hub-a")
            .with_credential(Arc::new(Fixed("forged")));
        let wrong = DurableClient::new(&wrong).unwrap();
        assert!(matches!(
            wrong.get_instance("some-id", false).await,
            Err(Error::Unauthenticated(_))
        ));

        // The identity endpoint refusing: a credential error that says so, and nothing reaches the server.
        identity.refuse.store(true, Ordering::SeqCst);
        let before = seen.lock().unwrap().len();
        let fresh = DurableClient::from_connection_string(&connection_string).unwrap();
        match fresh.get_instance("some-id", false).await {
            Err(Error::Credential(message)) => {
                assert!(message.contains("durabletask.io"), "{message}")
            }
            other => panic!("expected a credential error, got {other:?}"),
        }
        assert_eq!(seen.lock().unwrap().len(), before);
        identity.refuse.store(false, Ordering::SeqCst);

        // Workers send the same headers plus `workerid` (host,pid,uuid) with their Hello.
        let worker = Worker::builder()
            .connection(ConnectionOptions::from_connection_string(&connection_string).unwrap())
            .executor(NoWork)
            .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(1)))
            .build()
            .unwrap()
            .start();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let hello = loop {
            let found = seen
                .lock()
                .unwrap()
                .iter()
                .find(|(p, _)| p.ends_with("/Hello"))
                .cloned();
            if let Some(found) = found {
                break found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the worker never said hello"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let worker_id = hello.1.get("workerid").expect("a workerid header");
        let parts: Vec<_> = worker_id.split(',').collect();
        assert_eq!(parts.len(), 3, "{worker_id}");
        assert_eq!(parts[1], std::process::id().to_string());
        assert_eq!(
            hello.1.get("authorization").unwrap(),
            &format!("Bearer {TOKEN}")
        );
        worker.shutdown().await.unwrap();
    });
}

struct NoWork;

impl durable_grpc::Executor for NoWork {
    fn execute_orchestrator(
        &self,
        _: proto::OrchestratorRequest,
    ) -> durable_grpc::BoxFuture<Result<proto::OrchestratorResponse, durable_grpc::ExecutorError>>
    {
        Box::pin(async { Err(durable_grpc::ExecutorError("not used".into())) })
    }
    fn execute_activity(
        &self,
        _: proto::ActivityRequest,
    ) -> durable_grpc::BoxFuture<Result<proto::ActivityResponse, durable_grpc::ExecutorError>> {
        Box::pin(async { Err(durable_grpc::ExecutorError("not used".into())) })
    }
    fn execute_entity_batch(
        &self,
        _: proto::EntityBatchRequest,
    ) -> durable_grpc::BoxFuture<Result<proto::EntityBatchResult, durable_grpc::ExecutorError>>
    {
        Box::pin(async { Err(durable_grpc::ExecutorError("not used".into())) })
    }
}
