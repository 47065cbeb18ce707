//! Test helpers: a real server on 127.0.0.1:0 and requests in exactly the shape the Functions host sends.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use durable_core::proto;
use durable_core::proto::history_event::EventType;
use durable_core::testing::history;
use durable_handler::Handler;
use prost::Message as _;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A handler served over real HTTP for the duration of a test.
pub struct Server {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(handler: Handler) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            durable_handler::serve_listener(handler, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /<function>` with the host's headers and `{"Data", "Metadata"}` body.
    pub async fn invoke(&self, function: &str, data: Value, metadata: Value) -> (u16, Value) {
        let body = json!({ "Data": data, "Metadata": metadata });
        self.invoke_raw(function, serde_json::to_vec(&body).unwrap())
            .await
    }

    pub async fn invoke_raw(&self, function: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(&format!("/{function}")))
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("X-Azure-Functions-HostVersion", "4.1040.0.0")
            .header("User-Agent", "Azure-Functions-Host/4.1040.0.0")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// What the host does to a .NET string binding value: `JsonConvert.SerializeObject(value)`.
pub fn host_string(text: &str) -> Value {
    Value::String(serde_json::to_string(text).unwrap())
}

/// `Metadata.sys` as the host fills it.
pub fn sys(method: &str) -> Value {
    json!({
        "MethodName": method,
        "UtcNow": "2026-11-25T17:41:21.1Z",
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// The host's orchestrator trigger value: base64 protobuf, double-encoded.
pub fn orchestrator_data(request: &proto::OrchestratorRequest) -> Value {
    json!({ "context": host_string(&BASE64.encode(request.encode_to_vec())) })
}

pub fn entity_data(request: &proto::EntityBatchRequest) -> Value {
    json!({ "context": host_string(&BASE64.encode(request.encode_to_vec())) })
}

/// The host's activity invocation: input JSON text double-encoded in `Data.input`, repeated in `Metadata`.
pub fn activity_body(
    instance_id: &str,
    input_json: Option<&str>,
    function: &str,
) -> (Value, Value) {
    let input = input_json.unwrap_or("null");
    let data = json!({ "input": host_string(input) });
    let metadata = json!({
        "instanceId": host_string(instance_id),
        "input": host_string(input),
        "data": input,
        "sys": sys(function),
    });
    (data, metadata)
}

pub fn decode_return<M: prost::Message + Default>(reply: &Value) -> M {
    let text = reply["ReturnValue"]
        .as_str()
        .unwrap_or_else(|| panic!("ReturnValue is not a string: {reply}"));
    M::decode(BASE64.decode(text).unwrap().as_slice()).unwrap()
}

pub fn event(event_id: i32, event_type: EventType) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id,
        timestamp: Some(std::time::SystemTime::now().into()),
        event_type: Some(event_type),
    }
}

/// A first turn's new events, stamped now like every [`event`].
pub fn started(name: &str, instance_id: &str, input: Option<&str>) -> Vec<proto::HistoryEvent> {
    let mut execution = history::execution_started(instance_id, "exec-1", name, input);
    execution.timestamp = Some(std::time::SystemTime::now().into());
    vec![
        event(-1, EventType::OrchestratorStarted(Default::default())),
        execution,
    ]
}

/// Where the Python interop SDKs live, or `None` (with a "skipped" line) when they are not installed.
pub fn python() -> Option<std::path::PathBuf> {
    durable_testkit::python()
}
