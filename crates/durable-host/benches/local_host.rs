//! Throughput of the local host's HTTP custom-handler path next to the direct gRPC worker, on the same embedded
//! backend and the same engine: N orchestrations, each calling 5 activities in sequence.
//!
//! `cargo bench -p durable-host --bench local_host` (N = 5000; `BENCH_ORCHESTRATIONS` overrides it). The binary
//! is also its own custom handler: the host starts it again with `FUNCTIONS_CUSTOMHANDLER_PORT` set.
//!
//! Both paths store on a fresh SQLite file (WAL, `synchronous=FULL`), as the backend's and the worker's benchmarks
//! do and as `cargo run` does: every completion is on disk before it is acknowledged.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker};
use durable_host::{BackendChoice, HostOptions};
use futures::StreamExt as _;

const ACTIVITIES: usize = 5;
/// Starts in flight at once while seeding the backend.
const START_CONCURRENCY: usize = 64;

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Chain", |ctx: OrchestrationContext, n: u64| async move {
            let mut total = n;
            for _ in 0..ACTIVITIES {
                total = ctx.call_activity::<_, u64>("Step", total).await?;
            }
            Ok::<_, OrchestrationError>(total)
        })
        .add_activity("Step", |_ctx: ActivityContext, n: u64| async move {
            Ok::<_, ActivityError>(n + 1)
        });
    registry
}

fn main() -> Result<()> {
    if std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() {
        return serve_handler();
    }
    let n: usize = match std::env::var("BENCH_ORCHESTRATIONS") {
        Ok(v) => v.parse().context("BENCH_ORCHESTRATIONS")?,
        Err(_) => 5000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    println!(
        "storage: a fresh SQLite file per path in {} (WAL, synchronous=FULL)",
        dir.path().display()
    );
    runtime.block_on(async {
        let direct = run_direct(n, &dir.path().join("direct.db")).await?;
        report("direct gRPC worker", n, direct);
        let host = run_host(n, &dir.path().join("host.db")).await?;
        report("local host, HTTP custom handler", n, host);
        Ok(())
    })
}

fn serve_handler() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let handler = durable_handler::FunctionApp::new(registry()).build()?;
    runtime.block_on(durable_handler::serve(handler))?;
    Ok(())
}

fn report(path: &str, n: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    // Each orchestration is 1 + ACTIVITIES orchestrator turns and ACTIVITIES activity invocations.
    let work_items = n * (2 * ACTIVITIES + 1);
    println!(
        "{path:<34} {n} orchestrations x {ACTIVITIES} activities in {secs:>7.2} s: {:>8.1} orchestrations/s, {:>9.1} work items/s",
        n as f64 / secs,
        work_items as f64 / secs
    );
}

/// Starts `n` instances and waits for all of them; returns the time from the first start to the last completion.
async fn drive(client: &DurableClient, n: usize) -> Result<Duration> {
    let started = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|i| async move {
            client
                .schedule_new_orchestration("Chain", &(i as u64), StartOptions::new())
                .await
        })
        .buffer_unordered(START_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    for id in &ids {
        let done = client
            .wait_for_completion(id, false, Duration::from_secs(600))
            .await?;
        if done.status != OrchestrationStatus::Completed {
            bail!("{id} ended {:?}", done.status);
        }
    }
    Ok(started.elapsed())
}

async fn run_direct(n: usize, db: &std::path::Path) -> Result<Duration> {
    let backend = durable_backend::start(
        durable_backend::Options::new()
            .with_db_path(db)
            .with_synchronous(durable_backend::Synchronous::Full)
            .with_bind(([127, 0, 0, 1], 0).into()),
    )
    .await?;
    let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("bench");
    let worker = Worker::builder()
        .connection(connection.clone())
        .registry(registry())
        .build()?
        .start();
    let client = DurableClient::new(&connection)?;
    let elapsed = drive(&client, n).await?;
    worker.shutdown().await?;
    backend.shutdown().await?;
    Ok(elapsed)
}

async fn run_host(n: usize, db: &std::path::Path) -> Result<Duration> {
    // Unset: the host's default, which is the direct worker's default too.
    let concurrency: Option<u16> = match std::env::var("BENCH_HOST_CONCURRENCY") {
        Ok(v) => Some(v.parse().context("BENCH_HOST_CONCURRENCY")?),
        Err(_) => None,
    };
    let app = tempfile::tempdir()?;
    std::fs::write(
        app.path().join("host.json"),
        r#"{"version":"2.0","extensions":{"durableTask":{"hubName":"bench"}}}"#,
    )?;
    durable_handler::FunctionApp::new(registry())
        .build()?
        .write_function_files(app.path())?;
    let mut options = HostOptions::new(app.path())
        .with_port(0)
        .with_handler(std::env::current_exe()?)
        // The host opens its embedded backend with the backend's defaults: synchronous=FULL.
        .with_backend(BackendChoice::EmbeddedFile(db.to_path_buf()));
    if let Some(c) = concurrency {
        options = options.with_concurrency(c, c, c);
    }
    let host = durable_host::start(options).await?;
    let connection = ConnectionOptions::new(host.backend_endpoint()).with_task_hub(host.task_hub());
    let client = DurableClient::new(&connection)?;
    let elapsed = drive(&client, n).await?;
    host.stop().await?;
    Ok(elapsed)
}
