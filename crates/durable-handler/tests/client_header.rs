//! The `durableClient` binding's client talks to `rpcBaseUrl` and names the task hub in the `Durable-TaskHub`
//! header and the binding's connection in `Durable-ConnectionName`, which is what the Durable extension's local
//! gRPC endpoint reads (Azure/azure-functions-durable-extension `src/WebJobs.Extensions.DurableTask/TaskHubGrpcServer.cs`,
//! `GetAttribute`). A minimal gRPC stand-in records what it receives.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use common::*;
use durable_core::Registry;
use durable_handler::{ClientBinding, FunctionApp, HttpTrigger};
use durable_proto as proto;
use serde_json::{Value, json};
use tonic::body::Body;
use tonic::server::{NamedService, UnaryService};

/// (path, durable-taskhub header, durable-connectionname header, orchestration name) per call.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>, String)>>>;

/// Answers `StartInstance` and records what each call carried.
#[derive(Clone, Default)]
struct Recorder {
    seen: Seen,
}

impl NamedService for Recorder {
    const NAME: &'static str = "TaskHubSidecarService";
}

struct StartInstance(Seen, String, Option<String>, Option<String>);

impl UnaryService<proto::CreateInstanceRequest> for StartInstance {
    type Response = proto::CreateInstanceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<proto::CreateInstanceRequest>) -> Self::Future {
        let request = request.into_inner();
        self.0
            .lock()
            .unwrap()
            .push((self.1.clone(), self.2.clone(), self.3.clone(), request.name));
        std::future::ready(Ok(tonic::Response::new(proto::CreateInstanceResponse {
            instance_id: request.instance_id,
        })))
    }
}

impl tower::Service<http::Request<Body>> for Recorder {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let hub = header("durable-taskhub");
        let connection = header("durable-connectionname");
        let seen = self.seen.clone();
        Box::pin(async move {
            Ok(match path.as_str() {
                "/TaskHubSidecarService/StartInstance" => {
                    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                        .unary(StartInstance(seen, path, hub, connection), request)
                        .await
                }
                _ => tonic::Status::unimplemented("not in this stand-in").into_http(),
            })
        })
    }
}

#[tokio::test]
async fn starter_client_sends_the_task_hub_header_to_rpc_base_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc = format!("http://{}", listener.local_addr().unwrap());
    let recorder = Recorder::default();
    let seen = recorder.seen.clone();
    let grpc = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(recorder)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    let handler = FunctionApp::new(Registry::new())
        .http_starter(
            "Start",
            HttpTrigger::new(),
            |_req, client, _ctx| async move {
                let options = durable_grpc::StartOptions::new().with_instance_id("fixed-id");
                let id = client
                    .schedule_new_orchestration("Remote", &json!(1), options)
                    .await?;
                Ok(client.create_check_status_response(&id))
            },
        )
        .build()
        .unwrap();
    let server = Server::start(handler).await;
    for (hub, connection) in [("hub-a", Some("OTHER_DTS")), ("hub-b", None), ("", None)] {
        let mut binding = ClientBinding::new(rpc.clone(), hub)
            .with_http_base_url("https://app.example/runtime/webhooks/durabletask");
        if let Some(name) = connection {
            binding = binding.with_connection_name(name);
        }
        let data = json!({
            "req": { "Url": "https://app.example/api/Start", "Method": "POST", "Body": "" },
            "starter": host_string(&serde_json::to_string(&binding).unwrap()),
        });
        let (status, reply) = server.invoke("Start", data, json!({})).await;
        assert_eq!(status, 200, "{reply}");
        let body: Value =
            serde_json::from_str(reply["Outputs"]["res"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["id"], "fixed-id");
    }
    {
        let seen = seen.lock().unwrap();
        let hubs: Vec<_> = seen.iter().map(|(_, hub, _, _)| hub.as_deref()).collect();
        assert_eq!(hubs, [Some("hub-a"), Some("hub-b"), None], "{seen:?}");
        let connections: Vec<_> = seen.iter().map(|(_, _, c, _)| c.as_deref()).collect();
        assert_eq!(connections, [Some("OTHER_DTS"), None, None], "{seen:?}");
        assert!(
            seen.iter()
                .all(|(path, _, _, name)| path.ends_with("/StartInstance") && name == "Remote")
        );
    }

    // An rpcBaseUrl that is not a URL is the binding's fault: a 400 that says so.
    let binding = ClientBinding::new("not a url", "hub");
    let data = json!({ "req": { "Method": "POST" }, "starter": host_string(&serde_json::to_string(&binding).unwrap()) });
    let (status, reply) = server.invoke("Start", data, json!({})).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("rpcBaseUrl"),
        "{reply}"
    );

    server.stop().await;
    grpc.abort();
}
