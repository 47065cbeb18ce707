//! Bad requests get a clear error, the right status and no internal details, and the server keeps serving.

mod common;

use base64::Engine as _;
use common::*;
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_handler::{
    FunctionApp, FunctionError, Handler, HandlerOptions, HttpResponse, HttpTrigger,
};
use serde_json::{Value, json};

fn handler(max_body: usize) -> Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Orch", |_ctx: OrchestrationContext, _: Value| async move {
            Ok::<_, OrchestrationError>(1)
        })
        .add_activity("Act", |_ctx: ActivityContext, s: String| async move {
            Ok::<_, ActivityError>(s)
        });
    FunctionApp::new(registry)
        .options(HandlerOptions::new().with_max_body_bytes(max_body))
        .http("Panics", HttpTrigger::new(), |_req, _ctx| async move {
            if std::env::var_os("NEVER_SET_abc").is_none() {
                panic!("secret internal detail");
            }
            Ok(HttpResponse::text("unreachable"))
        })
        .http("Fails", HttpTrigger::new(), |_req, _ctx| async move {
            Err::<HttpResponse, _>(FunctionError::msg("database password rejected"))
        })
        .build()
        .unwrap()
}

fn message(reply: &Value) -> String {
    reply["Error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn still_serving(server: &Server) {
    let (data, metadata) = activity_body("i", Some("\"ok\""), "Act");
    let (status, reply) = server.invoke("Act", data, metadata).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"], "ok");
}

#[tokio::test]
async fn unknown_function_is_404() {
    let server = Server::start(handler(1 << 20)).await;
    let (status, reply) = server.invoke("Nope", json!({}), json!({})).await;
    assert_eq!(status, 404);
    assert!(message(&reply).contains("'Nope'"), "{reply}");
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_envelopes_are_400() {
    let server = Server::start(handler(1 << 20)).await;
    for body in [
        &b"not json"[..],
        b"[]",
        b"{\"Metadata\":{}}",
        b"{\"Data\":[1]}",
        b"{\"Data\":{},\"Metadata\":3}",
    ] {
        let (status, reply) = server.invoke_raw("Act", body.to_vec()).await;
        assert_eq!(status, 400, "{}: {reply}", String::from_utf8_lossy(body));
        assert!(
            message(&reply).starts_with("malformed invocation request"),
            "{reply}"
        );
        assert!(
            reply["Logs"].to_string().contains("malformed"),
            "the error is logged too: {reply}"
        );
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn bad_base64_bad_protobuf_and_wrong_encodings_are_400() {
    let server = Server::start(handler(1 << 20)).await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let cases = [
        (
            json!({ "context": host_string("%%% not base64 %%%") }),
            "base64",
        ),
        (
            json!({ "context": host_string(&b64(&[0xff, 0xff, 0xff, 0xff])) }),
            "protobuf",
        ),
        // Single-encoded: the host always adds the second layer.
        (json!({ "context": b64(b"\x0a\x01x") }), "double-encodes"),
        (
            json!({ "context": { "instanceId": "x" } }),
            "expected a JSON string",
        ),
        (json!({ "context": host_string("") }), "empty"),
        (json!({ "context": "null" }), "null"),
        (json!({}), "missing"),
    ];
    for (data, expected) in cases {
        let (status, reply) = server.invoke("Orch", data.clone(), json!({})).await;
        assert_eq!(status, 400, "{data}: {reply}");
        assert!(
            message(&reply).contains(expected),
            "{data}: expected '{expected}' in {reply}"
        );
    }
    // An activity input that is not the host's double-encoded JSON text.
    for data in [
        json!({ "input": 42 }),
        json!({ "input": "{not json" }),
        json!({ "input": host_string("{not json") }),
    ] {
        let (status, reply) = server.invoke("Act", data.clone(), json!({})).await;
        assert_eq!(status, 400, "{data}: {reply}");
        assert!(message(&reply).starts_with("binding 'input'"), "{reply}");
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = Server::start(handler(1024)).await;
    let big = json!({ "Data": { "input": host_string(&format!("\"{}\"", "x".repeat(4096))) }, "Metadata": {} });
    let (status, reply) = server
        .invoke_raw("Act", serde_json::to_vec(&big).unwrap())
        .await;
    assert_eq!(status, 413, "{reply}");
    assert!(message(&reply).contains("1024 bytes"), "{reply}");
    still_serving(&server).await;
    server.stop().await;
}

/// The status of the answer to a request head that promises a body it never sends: the handler may not wait
/// for a body it will refuse anyway.
async fn status_without_body(server: &Server, path: &str, content_length: u64) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .unwrap_or_else(|_| panic!("no answer to POST {path} while its body was owed"));
    let text = String::from_utf8_lossy(&received);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn bodies_declared_past_the_limit_or_for_no_function_are_refused_unread() {
    let server = Server::start(handler(1024)).await;
    assert_eq!(status_without_body(&server, "/Act", 1 << 30).await, 413);
    assert_eq!(status_without_body(&server, "/Nope", 1 << 30).await, 404);
    assert_eq!(
        status_without_body(&server, "/api/nowhere", 1 << 30).await,
        404
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn failing_and_panicking_functions_are_500_without_internal_details() {
    let server = Server::start(handler(1 << 20)).await;
    let req = json!({ "req": { "Url": "http://x/api/p", "Method": "GET", "Headers": {}, "Query": {}, "Params": {} } });
    for function in ["Panics", "Fails"] {
        let (status, reply) = server.invoke(function, req.clone(), json!({})).await;
        assert_eq!(status, 500, "{reply}");
        let text = reply.to_string();
        assert!(!text.contains("secret internal detail"), "{text}");
        assert!(!text.contains("database password"), "{text}");
        assert_eq!(message(&reply), format!("function '{function}' failed"));
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn invocations_must_be_posts() {
    let server = Server::start(handler(1 << 20)).await;
    let response = server.http.get(server.url("/Act")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = server
        .http
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    still_serving(&server).await;
    server.stop().await;
}

#[test]
fn invalid_app_definitions_are_build_errors() {
    use durable_handler::BuildError;
    let mut registry = Registry::new();
    registry.add_activity("Same", |_ctx: ActivityContext, s: String| async move {
        Ok::<_, ActivityError>(s)
    });
    let ok = |_req, _ctx| async move { Ok(HttpResponse::text("x")) };
    let err = FunctionApp::new(registry.clone())
        .http("same", HttpTrigger::new(), ok)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::DuplicateFunction(_)), "{err}");
    let err = FunctionApp::new(Registry::new())
        .http("bad.name", HttpTrigger::new(), ok)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidFunctionName(_)), "{err}");
    let err = FunctionApp::new(Registry::new())
        .http("R", HttpTrigger::new().route("a/{x?}/b"), ok)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidRoute { .. }), "{err}");
    let err = FunctionApp::new(Registry::new())
        .http("A", HttpTrigger::new().route("same/{x}"), ok)
        .http("B", HttpTrigger::new().route("same/{y}"), ok)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::RouteConflict(_)), "{err}");
    // The same route with different methods is fine.
    FunctionApp::new(Registry::new())
        .http(
            "A",
            HttpTrigger::new().route("same/{x}").methods(["get"]),
            ok,
        )
        .http(
            "B",
            HttpTrigger::new().route("same/{y}").methods(["post"]),
            ok,
        )
        .build()
        .unwrap();
    let err = FunctionApp::new(Registry::new())
        .http(
            "C",
            HttpTrigger::new().output(durable_handler::OutputBinding::queue("res", "q")),
            ok,
        )
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::DuplicateBinding { .. }), "{err}");
}
