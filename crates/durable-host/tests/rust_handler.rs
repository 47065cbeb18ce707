//! This workspace's own handler (`durable_handler` on the `durable_core` engine) behind the local host, on the
//! request shapes the Durable extension builds: entity calls and critical sections arrive as `EventSent` /
//! `EventRaised`, and with extended sessions every continued turn first arrives without its history.
//!
//! The handler is this test binary run again as a child process, with `DURABLE_HOST_RUST_HANDLER` set: the
//! binary has its own `main` (`harness = false`), which serves the handler then and runs the tests otherwise.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext,
    OrchestrationError, Registry,
};
use durable_host::{BackendChoice, HostOptions};
use durable_testkit::harness::Test;
use serde_json::{Value, json};

const HANDLER_ENV: &str = "DURABLE_HOST_RUST_HANDLER";

async fn entity_work(ctx: OrchestrationContext, key: String) -> Result<i64, OrchestrationError> {
    let a = EntityId::new("counter", format!("{key}-a"));
    let b = EntityId::new("counter", format!("{key}-b"));
    let first: i64 = ctx.call_entity(&a, "add", 5).await?;
    let doubled: i64 = ctx.call_activity("Double", first).await?;
    let lock = ctx.lock_entities(&[a.clone(), b.clone()]).await?;
    let in_a: i64 = ctx.call_entity(&a, "add", 1).await?;
    let in_b: i64 = ctx.call_entity(&b, "add", doubled).await?;
    lock.release();
    ctx.signal_entity(&b, "add", 100)?;
    Ok(in_a + in_b)
}

fn function_app() -> durable_handler::Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("EntityWork", entity_work)
        .add_activity("Double", |_ctx: ActivityContext, n: i64| async move {
            Ok::<_, ActivityError>(n * 2)
        })
        .add_entity(
            "counter",
            Entity::<i64>::new()
                .operation("add", |total: &mut i64, _ctx, n: i64| {
                    *total += n;
                    Ok::<_, EntityError>(*total)
                })
                .operation("get", |total: &mut i64, _ctx, (): ()| {
                    Ok::<_, EntityError>(*total)
                }),
        );
    durable_handler::FunctionApp::new(registry)
        .http_starter(
            "Start",
            durable_handler::HttpTrigger::new()
                .route("start/{key}")
                .methods(["post"])
                .auth_level(durable_handler::AuthLevel::Anonymous),
            |req, client, _ctx| async move {
                let key = req.param("key").unwrap_or_default().to_owned();
                let id = client
                    .schedule_new_orchestration(
                        "EntityWork",
                        &key,
                        durable_grpc::StartOptions::new().with_instance_id(format!("work-{key}")),
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
        Test::new(
            "entity_calls_and_critical_sections_run_on_the_extensions_history_shape",
            || {
                durable_testkit::harness::block_on(
                    entity_calls_and_critical_sections_run_on_the_extensions_history_shape(),
                )
            },
        ),
        Test::new(
            "the_engine_asks_for_its_history_inside_an_extended_session",
            || {
                durable_testkit::harness::block_on(
                    the_engine_asks_for_its_history_inside_an_extended_session(),
                )
            },
        ),
        Test::new(
            "a_starters_check_status_urls_carry_the_system_key_and_work",
            || {
                durable_testkit::harness::block_on(
                    a_starters_check_status_urls_carry_the_system_key_and_work(),
                )
            },
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

async fn run_entity_work(app: &Path, key: &str) -> Result<Value> {
    let host = durable_host::start(
        HostOptions::new(app)
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_handler_env(HANDLER_ENV, "1")
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_timers(false),
    )
    .await?;
    let http = reqwest::Client::new();
    let hooks = format!("http://{}/runtime/webhooks/durabletask", host.local_addr());
    let started = http
        .post(format!("{hooks}/orchestrators/EntityWork/work-{key}"))
        .json(&key)
        .send()
        .await?;
    if started.status().as_u16() != 202 {
        bail!("start: {}", started.status());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        let response = http
            .get(format!("{hooks}/instances/work-{key}"))
            .send()
            .await?;
        if response.status().as_u16() == 200 {
            break response.json::<Value>().await?;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not done: {}", response.text().await?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The signal sent after the critical section reaches the entity too.
    let entity = loop {
        let state: Value = http
            .get(format!("{hooks}/entities/counter/{key}-b"))
            .send()
            .await?
            .json()
            .await?;
        if state == json!(110) || tokio::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    host.stop().await?;
    Ok(json!({ "status": status, "entity": entity }))
}

async fn entity_calls_and_critical_sections_run_on_the_extensions_history_shape() -> Result<()> {
    let app = app_dir(json!({}))?;
    let outcome = run_entity_work(app.path(), "plain").await?;
    assert_eq!(outcome["status"]["runtimeStatus"], "Completed", "{outcome}");
    // a: 5 then 6 inside the lock; b: 0 + 2 * 5 inside the lock, then 100 more by signal.
    assert_eq!(outcome["status"]["output"], 16);
    assert_eq!(outcome["entity"], 110);
    Ok(())
}

async fn the_engine_asks_for_its_history_inside_an_extended_session() -> Result<()> {
    let app = app_dir(json!({ "extendedSessionsEnabled": true }))?;
    let outcome = run_entity_work(app.path(), "session").await?;
    assert_eq!(outcome["status"]["runtimeStatus"], "Completed", "{outcome}");
    assert_eq!(outcome["status"]["output"], 16);
    Ok(())
}

async fn a_starters_check_status_urls_carry_the_system_key_and_work() -> Result<()> {
    let app = app_dir(json!({}))?;
    let host = durable_host::start(
        HostOptions::new(app.path())
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_handler_env(HANDLER_ENV, "1")
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_timers(false)
            .with_enable_auth(true),
    )
    .await?;
    let system = host.system_key().expect("checks are on").to_owned();
    let http = reqwest::Client::new();
    let started = http
        .post(format!("http://{}/api/start/keyed", host.local_addr()))
        .send()
        .await?;
    assert_eq!(started.status().as_u16(), 202);
    let location = started
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a Location header")
        .to_owned();
    let links: Value = started.json().await?;
    assert_eq!(links["statusQueryGetUri"], location.as_str());
    for name in [
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "purgeHistoryDeleteUri",
    ] {
        let url = links[name].as_str().unwrap_or_default();
        assert!(url.contains(&format!("code={system}")), "{name}: {url}");
    }
    // The URL works as handed out; without its key it does not.
    let unkeyed = location
        .split("code=")
        .next()
        .unwrap_or_default()
        .trim_end_matches(['?', '&']);
    let refused = http.get(unkeyed).send().await?;
    assert_eq!(refused.status().as_u16(), 401);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let status = http.get(&location).send().await?;
        match status.status().as_u16() {
            200 => {
                let body: Value = status.json().await?;
                assert_eq!(body["runtimeStatus"], "Completed", "{body}");
                break;
            }
            202 if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => bail!("{location}: {other} {}", status.text().await?),
        }
    }
    host.stop().await?;
    Ok(())
}
