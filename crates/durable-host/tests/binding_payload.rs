//! What an HTTP starter receives, against the recording fake handler (the `durable-host-fake-handler` program):
//! the `durableClient` payload member for member, and request bodies converted as the Functions host converts them
//! (Azure/azure-functions-host `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`).

mod support;

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use durable_host::{BackendChoice, HostHandle, HostOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "host.json",
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"not-used"}},
            "extensions":{"durableTask":{"hubName":"testhub"}}}"#,
    );
    write(
        d,
        "local.settings.json",
        r#"{"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom","OTHER_HUB":"otherhub"}}"#,
    );
    write(
        d,
        "HttpStart/function.json",
        r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous","methods":["post"],"route":"start"},
                        {"name":"starter","type":"durableClient","direction":"in"},{"name":"res","type":"http","direction":"out"}]}"#,
    );
    write(
        d,
        "OtherStart/function.json",
        r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous","methods":["post"],"route":"other"},
                        {"name":"client","type":"durableClient","direction":"in","taskHub":"%OTHER_HUB%","connectionName":"OTHER_DTS"},
                        {"name":"res","type":"http","direction":"out"}]}"#,
    );
    dir
}

async fn start_host(app: &Path, log: &Path) -> Result<HostHandle> {
    let options = HostOptions::new(app)
        .with_port(0)
        .with_handler(env!("CARGO_BIN_EXE_durable-host-fake-handler"))
        .with_handler_env(support::LOG_ENV, log.to_string_lossy())
        .with_backend(BackendChoice::EmbeddedInMemory)
        .with_timers(false);
    Ok(durable_host::start(options).await?)
}

/// The requests the handler received on `path`, in order.
fn requests_to(log: &Path, path: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["path"] == path)
        .collect()
}

/// The binding value as the host sends it: a JSON string whose text is a JSON string of the payload's JSON.
fn payload_text(request: &Value, binding: &str) -> Result<String> {
    let value = request["body"]["Data"][binding]
        .as_str()
        .context("the binding value is a string")?;
    Ok(serde_json::from_str(value)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binding_payload_has_exactly_the_extensions_members() -> Result<()> {
    let app = app_dir();
    let log = app.path().join("requests.jsonl");
    let host = start_host(app.path(), &log).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", host.local_addr());
    for route in ["start", "other"] {
        let response = http.post(format!("{base}/api/{route}")).send().await?;
        assert_eq!(response.status().as_u16(), 202, "{route}");
    }
    let hooks = format!("{}/runtime/webhooks/durabletask", host.base_url());
    let members = [
        "taskHubName",
        "connectionName",
        "creationUrls",
        "managementUrls",
        "baseUrl",
        "requiredQueryStringParameters",
        "rpcBaseUrl",
        "httpBaseUrl",
        "maxGrpcMessageSizeInBytes",
    ];
    for (path, binding, expected) in [
        (
            "/HttpStart",
            "starter",
            json!({"taskHubName": "testhub", "connectionName": null}),
        ),
        (
            "/OtherStart",
            "client",
            json!({"taskHubName": "otherhub", "connectionName": "OTHER_DTS"}),
        ),
    ] {
        let request = &requests_to(&log, path)[0];
        let text = payload_text(request, binding)?;
        let payload: serde_json::Map<String, Value> = serde_json::from_str(&text)?;
        let mut keys: Vec<&str> = payload.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut wanted = members.to_vec();
        wanted.sort_unstable();
        assert_eq!(keys, wanted, "{text}");
        // In the extension's declaration order.
        let positions: Vec<usize> = members
            .iter()
            .map(|m| text.find(&format!("\"{m}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(payload["taskHubName"], expected["taskHubName"]);
        assert_eq!(payload["connectionName"], expected["connectionName"]);
        for unset in ["creationUrls", "managementUrls", "baseUrl"] {
            assert_eq!(payload[unset], Value::Null, "{unset}");
        }
        assert_eq!(payload["requiredQueryStringParameters"], "");
        assert_eq!(payload["rpcBaseUrl"], host.client_endpoint());
        assert_ne!(host.client_endpoint(), host.backend_endpoint());
        assert!(host.client_endpoint().starts_with("http://127.0.0.1:"));
        assert_eq!(payload["httpBaseUrl"], hooks.as_str());
        assert_eq!(payload["maxGrpcMessageSizeInBytes"], 4_194_304);
    }
    host.stop().await?;
    Ok(())
}

/// Sends one HTTP/1.1 request as written and reads the answer's status code.
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .context("a status line")?
        .parse()?;
    Ok(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_arrive_as_the_host_converts_them() -> Result<()> {
    let app = app_dir();
    let log = app.path().join("requests.jsonl");
    let host = start_host(app.path(), &log).await?;
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/start", host.local_addr());
    let binary = vec![0u8, 159, 146, 150, 255, b'x'];
    let multipart =
        b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n\xff\xfe\r\n--b--\r\n".to_vec();
    let sent: [(&str, Vec<u8>); 4] = [
        ("application/octet-stream", binary.clone()),
        ("multipart/form-data; boundary=b", multipart.clone()),
        ("text/plain; charset=utf-8", b"caf\xc3\xa9 \xff!".to_vec()),
        ("application/json", br#"{"city":"Oslo"}"#.to_vec()),
    ];
    for (content_type, body) in &sent {
        let response = http
            .post(&url)
            .header("content-type", *content_type)
            .body(body.clone())
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 202, "{content_type}");
    }
    let empty = http
        .post(&url)
        .header("content-type", "text/plain")
        .send()
        .await?;
    assert_eq!(empty.status().as_u16(), 202);
    let chunked = b"POST /api/start HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(raw_http(host.local_addr(), chunked).await?, 202);

    let requests = requests_to(&log, "/HttpStart");
    assert_eq!(requests.len(), 6);
    let body = |i: usize| requests[i]["body"]["Data"]["req"].get("Body").cloned();
    let base64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(body(0), Some(Value::String(base64.encode(&binary))));
    assert_eq!(body(1), Some(Value::String(base64.encode(&multipart))));
    assert_eq!(body(2), Some(Value::String("café \u{fffd}!".into())));
    assert_eq!(body(3), Some(Value::String(r#"{"city":"Oslo"}"#.into())));
    assert_eq!(body(4), None, "an empty body is left out");
    assert_eq!(
        body(5),
        None,
        "a chunked body (no Content-Length) is left out"
    );
    assert_eq!(
        requests[5]["body"]["Data"]["req"]["Headers"]["Transfer-Encoding"],
        json!(["chunked"])
    );
    host.stop().await?;
    Ok(())
}
