//! The local host runs durable HTTP's built-in activity itself (as the Durable extension does) and applies
//! host.json's versioning before it invokes the handler. The handler is this test binary run again as a child
//! process, with `DURABLE_HOST_HTTP_VERSIONS_HANDLER` set: the binary has its own `main` (`harness = false`), which
//! serves the handler then and runs the tests otherwise. The HTTP calls go to a real server on a loopback port.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use durable_core::http::DurableHttpRequest;
use durable_core::{OrchestrationContext, OrchestrationError, Registry};
use durable_host::{BackendChoice, HostOptions};
use durable_testkit::harness::{Test, block_on};
use serde_json::{Value, json};

const HANDLER_ENV: &str = "DURABLE_HOST_HTTP_VERSIONS_HANDLER";

fn function_app() -> durable_handler::Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator(
            "CallApi",
            |ctx: OrchestrationContext, api: String| async move {
                let request = DurableHttpRequest::new("POST", format!("{api}/jobs"))
                    .content("go")
                    .asynchronous_pattern(true);
                let response = ctx.call_http(request).await?;
                Ok::<_, OrchestrationError>(json!([response.status_code, response.content]))
            },
        )
        .add_orchestrator(
            "Versioned",
            |ctx: OrchestrationContext, _: Value| async move {
                Ok::<_, OrchestrationError>(ctx.version())
            },
        );
    durable_handler::FunctionApp::new(registry)
        .http_starter(
            "StartVersioned",
            durable_handler::HttpTrigger::new()
                .route("versioned/{version}")
                .methods(["post"])
                .auth_level(durable_handler::AuthLevel::Anonymous),
            |req, client, _ctx| async move {
                let version = req.param("version").unwrap_or_default().to_owned();
                let id = client
                    .schedule_new_orchestration(
                        "Versioned",
                        &(),
                        durable_grpc::StartOptions::new()
                            .with_instance_id(format!("v-{version}"))
                            .with_version(version),
                    )
                    .await?;
                Ok(client.create_check_status_response(&id))
            },
        )
        .build()
        .unwrap()
}

fn main() -> std::process::ExitCode {
    if std::env::var_os(HANDLER_ENV).is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime
            .block_on(durable_handler::serve(function_app()))
            .unwrap();
        return std::process::ExitCode::SUCCESS;
    }
    durable_testkit::harness::run(&[
        Test::new("the_host_runs_durable_http_with_202_polling", || {
            block_on(the_host_runs_durable_http_with_202_polling())
        }),
        Test::new(
            "host_json_versioning_is_applied_before_the_handler_runs",
            || block_on(host_json_versioning_is_applied_before_the_handler_runs()),
        ),
        Test::new(
            "a_bad_version_strategy_in_host_json_stops_the_start",
            || block_on(a_bad_version_strategy_in_host_json_stops_the_start()),
        ),
    ])
}

fn app_dir(durable_task: Value) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let host = json!({
        "version": "2.0",
        "customHandler": {"description": {"defaultExecutablePath": "not-used"}},
        "extensions": {"durableTask": durable_task},
    });
    std::fs::write(dir.path().join("host.json"), host.to_string())?;
    function_app().write_function_files(dir.path())?;
    Ok(dir)
}

async fn start_host(app: &Path) -> Result<durable_host::HostHandle> {
    Ok(durable_host::start(
        HostOptions::new(app)
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_handler_env(HANDLER_ENV, "1")
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_timers(false),
    )
    .await?)
}

/// Polls the instance's status until it has ended.
async fn final_status(http: &reqwest::Client, hooks: &str, id: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let response = http.get(format!("{hooks}/instances/{id}")).send().await?;
        if response.status().as_u16() == 200 {
            return Ok(response.json().await?);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{id} not done: {}", response.text().await?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_host_runs_durable_http_with_202_polling() -> Result<()> {
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    let status_seen = calls.clone();
    let api = axum::Router::new()
        .route(
            "/jobs",
            post(move |body: String| async move {
                seen.lock().unwrap().push(format!("POST {body}"));
                (
                    StatusCode::ACCEPTED,
                    [("Location", "/jobs/1"), ("Retry-After", "1")],
                )
            }),
        )
        .route(
            "/jobs/1",
            get(move || async move {
                status_seen.lock().unwrap().push("GET".into());
                (StatusCode::OK, "finished").into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, api).await });

    let app = app_dir(json!({}))?;
    let host = start_host(app.path()).await?;
    let http = reqwest::Client::new();
    let hooks = format!("http://{}/runtime/webhooks/durabletask", host.local_addr());
    let started = http
        .post(format!("{hooks}/orchestrators/CallApi/http-1"))
        .json(&api_url)
        .send()
        .await?;
    assert_eq!(started.status().as_u16(), 202);
    let status = final_status(&http, &hooks, "http-1").await?;
    host.stop().await?;
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], json!([200, "finished"]));
    assert_eq!(*calls.lock().unwrap(), ["POST go", "GET"]);
    Ok(())
}

async fn host_json_versioning_is_applied_before_the_handler_runs() -> Result<()> {
    let app = app_dir(json!({
        "defaultVersion": "2.0",
        "versionMatchStrategy": "CurrentOrOlder",
        "versionFailureStrategy": "Fail",
    }))?;
    let host = start_host(app.path()).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", host.local_addr());
    let hooks = format!("{base}/runtime/webhooks/durabletask");
    for version in ["1.0", "3.0"] {
        let started = http
            .post(format!("{base}/api/versioned/{version}"))
            .send()
            .await?;
        assert_eq!(started.status().as_u16(), 202, "{version}");
    }
    let started = http
        .post(format!("{hooks}/orchestrators/Versioned/v-default"))
        .send()
        .await?;
    assert_eq!(started.status().as_u16(), 202);

    let older = final_status(&http, &hooks, "v-1.0").await?;
    let newer = final_status(&http, &hooks, "v-3.0").await?;
    let default = final_status(&http, &hooks, "v-default").await?;
    host.stop().await?;
    assert_eq!(older["runtimeStatus"], "Completed", "{older}");
    assert_eq!(older["output"], "1.0");
    assert_eq!(default["runtimeStatus"], "Completed", "{default}");
    assert_eq!(default["output"], "2.0");
    assert_eq!(newer["runtimeStatus"], "Failed", "{newer}");
    assert!(
        newer
            .to_string()
            .contains("The orchestration version '3.0' is greater than the worker version '2.0'."),
        "{newer}"
    );
    Ok(())
}

async fn a_bad_version_strategy_in_host_json_stops_the_start() -> Result<()> {
    let app = app_dir(json!({"versionMatchStrategy": "Sometimes"}))?;
    match start_host(app.path()).await {
        Ok(host) => {
            host.stop().await?;
            bail!("the host started with a bad versionMatchStrategy")
        }
        Err(error) => {
            let text = format!("{error:#}");
            assert!(text.contains("versionMatchStrategy"), "{text}");
            Ok(())
        }
    }
}
