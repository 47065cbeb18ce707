//! `durable-backend --dashboard-port`: the command serves the web dashboard on a port of its own, over its own
//! gRPC endpoint, with the task hubs it was started with.

use std::process::Stdio;
use std::time::Duration;

use durable_grpc::{ConnectionOptions, DurableClient, StartOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn the_command_serves_the_dashboard_on_its_own_port() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable-backend"))
        .args([
            "--port",
            "0",
            "--in-memory",
            "--task-hubs",
            "orders",
            "--dashboard-port",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the backend starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (endpoint, dashboard) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut endpoint = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(e) = line.strip_prefix("durable-backend listening on ") {
                endpoint = Some(e.to_owned());
            }
            if let Some(d) = line.strip_prefix("durable-backend dashboard on ") {
                return (endpoint.expect("the endpoint first"), d.to_owned());
            }
        }
        panic!("the backend exited before serving the dashboard");
    })
    .await
    .expect("the dashboard is served within 30 s");
    let port = dashboard
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("a port in the dashboard's URL");
    assert!(dashboard.starts_with("http://localhost:"), "{dashboard}");
    let base = format!("http://127.0.0.1:{port}/");

    // No worker: the instance stays pending, and the dashboard lists it from the backend.
    let client = DurableClient::new(&ConnectionOptions::new(&endpoint)).unwrap();
    client
        .schedule_new_orchestration(
            "Waiting",
            &1,
            StartOptions::new().with_instance_id("shown-1"),
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let listed: Value = http
        .get(format!("{base}api/instances"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["instanceId"], "shown-1", "{listed}");
    assert_eq!(listed["items"][0]["status"], "Pending");
    let info: Value = http
        .get(format!("{base}api/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["taskHubs"], serde_json::json!(["default", "orders"]));
    let other: Value = http
        .get(format!("{base}api/instances?hub=orders"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["items"], serde_json::json!([]));
    let page = http.get(&base).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("<base href=\"/\">"));
    child.kill().await.unwrap();
}
