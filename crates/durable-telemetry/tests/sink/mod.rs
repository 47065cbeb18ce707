//! Small OTLP collectors for the export tests: each decodes what it receives with the protocol's own messages and
//! hands the spans (with their service name) to the test.

// Each test binary uses part of it.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use tokio::sync::mpsc;

/// One exported span, flattened.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub kind: i32,
    pub attributes: Vec<(String, String)>,
    /// Whether the request carrying it was gzip-compressed (OTLP/HTTP only).
    pub gzipped: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn flatten(request: ExportTraceServiceRequest, gzipped: bool) -> Vec<Received> {
    let mut out = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                Value::StringValue(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                let attributes = span
                    .attributes
                    .iter()
                    .map(|kv| {
                        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Value::StringValue(s)) => s.clone(),
                            Some(Value::IntValue(i)) => i.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), value)
                    })
                    .collect();
                out.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes,
                    gzipped,
                });
            }
        }
    }
    out
}

/// An OTLP/HTTP collector (`POST /v1/traces`, `application/x-protobuf`) on a loopback port.
pub async fn http() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<Received>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let gzipped = headers
                        .get(axum::http::header::CONTENT_ENCODING)
                        .is_some_and(|v| v == "gzip");
                    let body = if gzipped {
                        let mut plain = Vec::new();
                        std::io::Read::read_to_end(
                            &mut flate2::read::GzDecoder::new(&body[..]),
                            &mut plain,
                        )
                        .expect("a gzip body");
                        plain.into()
                    } else {
                        body
                    };
                    let request =
                        ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                    let _ = tx.send(flatten(request, gzipped));
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

struct Collector(mpsc::UnboundedSender<Vec<Received>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(flatten(request.into_inner(), false));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC collector (`TraceService/Export`) on a loopback port.
pub async fn grpc() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<Received>>) {
    grpc_with(None).await
}

/// [`grpc`] over TLS, with this certificate and key (PEM).
pub async fn grpc_tls(
    cert: &str,
    key: &str,
) -> (SocketAddr, mpsc::UnboundedReceiver<Vec<Received>>) {
    let identity = tonic::transport::Identity::from_pem(cert, key);
    grpc_with(Some(
        tonic::transport::ServerTlsConfig::new().identity(identity),
    ))
    .await
}

async fn grpc_with(
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Vec<Received>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls).unwrap();
    }
    tokio::spawn(async move {
        server
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    (addr, rx)
}
