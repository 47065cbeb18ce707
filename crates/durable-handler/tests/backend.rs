//! The handler behind a real backend: the embedded backend stores and dispatches, a small stand-in for the Durable
//! extension takes work items over gRPC and POSTs them to the handler in the host's format, and an HTTP starter
//! uses the `durableClient` binding against the backend's gRPC endpoint.

mod common;
#[path = "common/greet_all.rs"]
mod greet_all;

use std::time::Duration;

use common::*;
use durable_core::EntityId;
use durable_core::proto::history_event::EventType;
use durable_grpc::{
    BoxFuture, ConnectionOptions, DurableClient, Executor, ExecutorError, OrchestrationStatus,
    Worker,
};
use durable_handler::{AuthLevel, ClientBinding, FunctionApp, Handler, HttpTrigger};
use durable_proto as proto;
use serde_json::{Value, json};

fn handler() -> Handler {
    FunctionApp::new(greet_all::registry())
        .http_starter(
            "HttpStart",
            HttpTrigger::new()
                .route("orchestrators/{name}")
                .methods(["post"])
                .auth_level(AuthLevel::Anonymous),
            |req, client, ctx| async move {
                let name = req.param("name").unwrap_or_default().to_owned();
                let input: Value = req.json()?;
                let id = client
                    .schedule_new_orchestration(&name, &input, durable_grpc::StartOptions::new())
                    .await?;
                ctx.log(format!("started {name} as {id}"));
                Ok(client.create_check_status_response(&id))
            },
        )
        .build()
        .unwrap()
}

/// What the Durable extension does for a custom handler: turn each work item into an HTTP invocation.
#[derive(Clone)]
struct HostExtension {
    base: String,
    http: reqwest::Client,
}

impl HostExtension {
    async fn invoke(
        &self,
        function: &str,
        data: Value,
        metadata: Value,
    ) -> Result<Value, ExecutorError> {
        let response = self
            .http
            .post(format!("{}/{function}", self.base))
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .json(&json!({ "Data": data, "Metadata": metadata }))
            .send()
            .await
            .map_err(|e| ExecutorError(e.to_string()))?;
        // Like the host: a non-2xx fails the invocation and its body is ignored.
        if !response.status().is_success() {
            return Err(ExecutorError(format!(
                "{function} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| ExecutorError(e.to_string()))
    }
}

fn orchestration_name(request: &proto::OrchestratorRequest) -> Option<String> {
    request
        .past_events
        .iter()
        .chain(&request.new_events)
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => Some(s.name.clone()),
            _ => None,
        })
}

impl Executor for HostExtension {
    fn execute_orchestrator(
        &self,
        request: proto::OrchestratorRequest,
    ) -> BoxFuture<Result<proto::OrchestratorResponse, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move {
            let name = orchestration_name(&request)
                .ok_or_else(|| ExecutorError("no ExecutionStarted".into()))?;
            let reply = this
                .invoke(
                    &name,
                    orchestrator_data(&request),
                    json!({ "sys": sys(&name) }),
                )
                .await?;
            Ok(decode_return(&reply))
        })
    }

    fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> BoxFuture<Result<proto::ActivityResponse, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move {
            let instance_id = request
                .orchestration_instance
                .as_ref()
                .map(|i| i.instance_id.clone())
                .unwrap_or_default();
            let (data, metadata) =
                activity_body(&instance_id, request.input.as_deref(), &request.name);
            let reply = this.invoke(&request.name, data, metadata).await?;
            // The extension stores the ReturnValue as JSON text; the envelope rides along as an ordinary result.
            let result = match &reply["ReturnValue"] {
                Value::Null => None,
                value => Some(value.to_string()),
            };
            Ok(proto::ActivityResponse {
                instance_id,
                task_id: request.task_id,
                result,
                ..Default::default()
            })
        })
    }

    fn execute_entity_batch(
        &self,
        request: proto::EntityBatchRequest,
    ) -> BoxFuture<Result<proto::EntityBatchResult, ExecutorError>> {
        let this = self.clone();
        Box::pin(async move {
            let name = request
                .instance_id
                .parse::<EntityId>()
                .map_err(|e| ExecutorError(format!("{e:?}")))?
                .name;
            let reply = this
                .invoke(&name, entity_data(&request), json!({ "sys": sys(&name) }))
                .await?;
            Ok(decode_return(&reply))
        })
    }
}

/// Backend (SQLite file in a temp dir) + handler over HTTP + the stand-in extension between them.
struct Stack {
    endpoint: String,
    server: Server,
    worker: durable_grpc::WorkerHandle,
    backend: durable_backend::Handle,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = durable_backend::start(
            durable_backend::Options::new()
                .with_db_path(dir.path().join("hub.db"))
                .with_bind("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let endpoint = backend.endpoint();
        let server = Server::start(handler()).await;
        let extension = HostExtension {
            base: server.url(""),
            http: reqwest::Client::new(),
        };
        let worker = Worker::builder()
            .connection(ConnectionOptions::new(&endpoint))
            .executor(extension)
            .build()
            .unwrap()
            .start();
        Self {
            endpoint,
            server,
            worker,
            backend,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.worker.shutdown().await.unwrap();
        self.server.stop().await;
        self.backend.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn starter_and_durable_functions_run_against_the_embedded_backend() {
    let stack = Stack::start().await;
    let (endpoint, server) = (stack.endpoint.clone(), &stack.server);

    // The starter, invoked the way the host invokes an HTTP function with a durableClient input.
    let binding = ClientBinding::new(endpoint.clone(), "default")
        .with_http_base_url("http://localhost:7071/runtime/webhooks/durabletask")
        .with_required_query_string_parameters("code=k1");
    let binding_text = serde_json::to_string(&binding).unwrap();
    let data = json!({
        "req": {
            "Url": "http://localhost:7071/api/orchestrators/GreetAll",
            "Method": "POST",
            "Query": {},
            "Headers": { "Content-Type": ["application/json"] },
            "Params": { "name": "GreetAll" },
            "Body": "[\"Tokyo\",\"Seattle\"]"
        },
        "starter": host_string(&binding_text),
    });
    let (status, reply) = server
        .invoke("HttpStart", data, json!({ "sys": sys("HttpStart") }))
        .await;
    assert_eq!(status, 200, "{reply}");
    let res = &reply["Outputs"]["res"];
    assert_eq!(res["statusCode"], 202, "{reply}");
    let payload: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    let id = payload["id"].as_str().unwrap().to_owned();
    let status_url =
        format!("http://localhost:7071/runtime/webhooks/durabletask/instances/{id}?code=k1");
    assert_eq!(payload["statusQueryGetUri"], status_url);
    assert_eq!(res["headers"]["Location"], status_url);
    assert!(
        reply["Logs"]
            .to_string()
            .contains(&format!("started GreetAll as {id}"))
    );

    let client = DurableClient::new(&ConnectionOptions::new(&endpoint)).unwrap();
    let done = client
        .wait_for_completion(&id, true, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed, "{done:?}");
    let output: Value = done.output().unwrap().unwrap();
    assert_eq!(
        output,
        json!({
            "greetings": ["Hello Tokyo!", "Hello Seattle!"],
            "caught": "EmptyCity: a city needs a name",
            "total": 2
        })
    );

    stack.stop().await;
}

/// Microsoft's Python client starts the orchestration and reads its result; everything in between is our handler.
#[tokio::test]
async fn python_client_sees_an_orchestration_run_by_the_handler() {
    let Some(python) = python() else {
        return;
    };
    let stack = Stack::start().await;
    let address = stack.endpoint.trim_start_matches("http://").to_owned();
    let script = r#"
import json, sys
from durabletask import client
c = client.TaskHubGrpcClient(host_address=sys.argv[1])
instance_id = c.schedule_new_orchestration("GreetAll", input=["Lisbon", "Oslo"])
state = c.wait_for_orchestration_completion(instance_id, timeout=60)
print(json.dumps({"status": state.runtime_status.name, "output": json.loads(state.serialized_output)}))
"#;
    let run = tokio::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&address)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the Python client finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(
        result["output"],
        json!({
            "greetings": ["Hello Lisbon!", "Hello Oslo!"],
            "caught": "EmptyCity: a city needs a name",
            "total": 2
        })
    );
    stack.stop().await;
}
