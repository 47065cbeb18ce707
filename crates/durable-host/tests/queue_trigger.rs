//! Queue triggers against a real Azurite queue service: the invocation format, deletion on success, retries and
//! the poison queue after five failures.
//!
//! Azurite comes from npm (`npm install azurite`); the test looks for `azurite-queue` in `$DURABLE_AZURITE` or
//! `<workspace>/node_modules/.bin/`, and skips with a message when it is not installed (set
//! `DURABLE_REQUIRE_AZURITE` to make that a failure).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use durable_host::{BackendChoice, HostOptions};
use serde_json::Value;

const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const ACCOUNT: &str = "devstoreaccount1";

#[test]
fn handler_process() {
    if let Some(log) = std::env::var_os(support::LOG_ENV) {
        support::serve(PathBuf::from(log));
    }
}

fn azurite() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DURABLE_AZURITE") {
        return Some(PathBuf::from(path));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let local = workspace.join("node_modules/.bin/azurite-queue");
    local.exists().then_some(local)
}

/// A signed call to the queue service, like the host makes (kept separate so the test checks the host's signing
/// against Azurite rather than against itself).
async fn storage(
    http: &reqwest::Client,
    port: u16,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<String>,
) -> Result<(u16, String)> {
    let date = time::OffsetDateTime::now_utc().format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))?;
    let length = body.as_ref().map_or(String::new(), |b| b.len().to_string());
    let content_type = if body.is_some() {
        "application/xml"
    } else {
        ""
    };
    let mut resource = format!("/{ACCOUNT}/{ACCOUNT}{path}");
    let mut sorted: Vec<_> = query.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let to_sign = format!(
        "{method}\n\n\n{length}\n\n{content_type}\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-12-02\n{resource}"
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &BASE64.decode(KEY)?);
    let signature = BASE64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let mut request = http
        .request(method, format!("http://127.0.0.1:{port}/{ACCOUNT}{path}"))
        .query(query)
        .header("x-ms-date", date)
        .header("x-ms-version", "2021-12-02")
        .header("Authorization", format!("SharedKey {ACCOUNT}:{signature}"));
    if let Some(body) = body {
        request = request.header("Content-Type", content_type).body(body);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

fn records_for(log: &Path, text: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["path"] == "/Orders")
        .filter(|r| {
            let outer = r["body"]["Data"]["msg"].as_str().unwrap_or("");
            serde_json::from_str::<String>(outer).is_ok_and(|t| t == text)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_messages_are_invoked_deleted_retried_and_poisoned() -> Result<()> {
    let Some(azurite) = azurite() else {
        if std::env::var_os("DURABLE_REQUIRE_AZURITE").is_some() {
            panic!("azurite-queue not found (DURABLE_AZURITE or node_modules/.bin)");
        }
        println!(
            "skipped: azurite-queue is not installed (npm install azurite, or set DURABLE_AZURITE)"
        );
        return Ok(());
    };
    let data = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut emulator = tokio::process::Command::new(&azurite)
        .args(["--queuePort", &port.to_string(), "--location"])
        .arg(data.path())
        .args(["--silent", "--skipApiVersionCheck"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start azurite-queue")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if tokio::time::Instant::now() > deadline {
            bail!("azurite never listened on {port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let app = tempfile::tempdir()?;
    std::fs::write(app.path().join("host.json"), r#"{"version":"2.0"}"#)?;
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    );
    std::fs::write(
        app.path().join("local.settings.json"),
        serde_json::json!({ "Values": { "AzureWebJobsStorage": connection } }).to_string(),
    )?;
    std::fs::create_dir_all(app.path().join("Orders"))?;
    std::fs::write(
        app.path().join("Orders/function.json"),
        r#"{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"orders"}]}"#,
    )?;
    let log = app.path().join("requests.jsonl");
    let http = reqwest::Client::new();
    let put = |text: &str| {
        let body = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            BASE64.encode(text)
        );
        storage(
            &http,
            port,
            reqwest::Method::POST,
            "/orders/messages",
            &[],
            Some(body),
        )
    };
    assert_eq!(
        storage(&http, port, reqwest::Method::PUT, "/orders", &[], None)
            .await?
            .0,
        201
    );
    assert_eq!(put(r#"{"order":7}"#).await?.0, 201);
    assert_eq!(put("fail").await?.0, 201);

    let host = durable_host::start(
        HostOptions::new(app.path())
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_handler_args([
                "--exact",
                "handler_process",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .with_handler_env(support::LOG_ENV, log.to_string_lossy())
            .with_backend(BackendChoice::EmbeddedInMemory),
    )
    .await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while records_for(&log, r#"{"order":7}"#).is_empty() || records_for(&log, "fail").len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the messages were not delivered 1 and 5 times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ok = &records_for(&log, r#"{"order":7}"#)[0];
    assert_eq!(
        ok["headers"]["content-type"],
        "application/json; charset=utf-8"
    );
    let metadata = &ok["body"]["Metadata"];
    assert_eq!(metadata["DequeueCount"], "1");
    assert!(
        metadata["Id"]
            .as_str()
            .is_some_and(|id| id.starts_with('"') && id.len() > 2)
    );
    assert!(
        metadata["PopReceipt"]
            .as_str()
            .is_some_and(|p| p.starts_with('"'))
    );
    let inserted = metadata["InsertionTime"]
        .as_str()
        .context("InsertionTime")?;
    assert!(
        inserted.ends_with("+00:00") && inserted.as_bytes()[10] == b'T',
        "{inserted}"
    );
    assert_eq!(metadata["sys"]["MethodName"], "Orders");
    let counts: Vec<Value> = records_for(&log, "fail")
        .iter()
        .map(|r| r["body"]["Metadata"]["DequeueCount"].clone())
        .collect();
    assert_eq!(&counts[..5], ["1", "2", "3", "4", "5"]);

    // The failed message ends in orders-poison, and orders is empty.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, poison) = storage(
            &http,
            port,
            reqwest::Method::GET,
            "/orders-poison/messages",
            &[("peekonly", "true")],
            None,
        )
        .await?;
        let (_, left) = storage(
            &http,
            port,
            reqwest::Method::GET,
            "/orders/messages",
            &[("peekonly", "true"), ("numofmessages", "32")],
            None,
        )
        .await?;
        if poison.contains(&BASE64.encode("fail")) && !left.contains("<QueueMessage>") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "poison: {poison}\nleft: {left}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(records_for(&log, "fail").len(), 5, "no sixth attempt");
    assert_eq!(
        records_for(&log, r#"{"order":7}"#).len(),
        1,
        "deleted after success"
    );

    host.stop().await?;
    emulator.kill().await?;
    Ok(())
}
