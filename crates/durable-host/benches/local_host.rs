//! The local host's HTTP custom-handler path next to the direct gRPC worker, on the same embedded backend and the
//! same engine: orchestrations that each call 5 activities in sequence.
//!
//! `cargo bench -p durable-host --bench local_host`: N = 5000 orchestrations started at once on each path
//! (`BENCH_ORCHESTRATIONS` overrides N), with the CPU each path spent per work item. `BENCH_LATENCY=K` instead runs
//! K orchestrations one after another on each path (the next starts when the previous one has completed), after
//! one that warms the connections up, and reports the end-to-end times a client sees. `BENCH_ROUNDS=R` repeats
//! either R times, alternating the paths, and ends with the ratio host / direct of each round. The binary is also
//! its own custom handler: the host starts it again with `FUNCTIONS_CUSTOMHANDLER_PORT` set.
//!
//! Both paths store on a fresh SQLite file (WAL, `synchronous=FULL`), as the backend's and the worker's benchmarks
//! do and as `cargo run` does: every completion is on disk before it is acknowledged. The first lines printed are
//! what makes two runs comparable: the machine, its load, the filesystem of the databases and its fsync floor, and
//! the HTTP floor (see `local_host/http_floor.rs`): the CPU of one bare HTTP/1.1 exchange between two processes,
//! which the host path makes once per work item.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker};
use durable_host::{BackendChoice, HostOptions};
use durable_testkit::machine;
use futures::StreamExt as _;

#[path = "local_host/http_floor.rs"]
mod http_floor;

// The sample app's allocator (src/main.rs), in both roles of this binary: the benchmark process (backend, direct
// worker or local host) and the custom handler the host starts. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACTIVITIES: usize = 5;
/// Each orchestration is 1 + ACTIVITIES orchestrator turns and ACTIVITIES activity invocations.
const WORK_ITEMS_PER_ORCHESTRATION: usize = 2 * ACTIVITIES + 1;
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

fn env_number(name: &str) -> Result<Option<usize>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v.parse().with_context(|| name.to_owned())?)),
        Err(_) => Ok(None),
    }
}

fn main() -> Result<()> {
    if std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() {
        return serve_handler();
    }
    if std::env::var_os(http_floor::SERVER_ENV).is_some() {
        return http_floor::serve();
    }
    let n = env_number("BENCH_ORCHESTRATIONS")?.unwrap_or(5000);
    let latency = env_number("BENCH_LATENCY")?;
    let rounds = env_number("BENCH_ROUNDS")?.unwrap_or(1).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    print_machine(dir.path())?;
    runtime.block_on(http_floor::print());
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let direct_db = dir.path().join(format!("direct-{round}.db"));
        let direct = runtime.block_on(Route::Direct.measure(latency, n, &direct_db))?;
        direct.print(round);
        let host_db = dir.path().join(format!("host-{round}.db"));
        let host = runtime.block_on(Route::Host.measure(latency, n, &host_db))?;
        host.print(round);
        ratios.push(direct.ratio(&host));
    }
    let what = if latency.is_some() {
        "p50 end-to-end"
    } else {
        "time, CPU per work item"
    };
    for (round, (a, b)) in ratios.iter().enumerate() {
        println!(
            "round {}: host / direct {what}: {a:.2}{}",
            round + 1,
            b.map_or(String::new(), |b| format!(", {b:.2}"))
        );
    }
    Ok(())
}

fn serve_handler() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let handler = durable_handler::FunctionApp::new(registry()).build()?;
    runtime.block_on(durable_handler::serve(handler))?;
    Ok(())
}

/// The machine, its load, and the filesystem and fsync floor where the databases live.
fn print_machine(dir: &Path) -> Result<()> {
    let facts = machine::Machine::read();
    println!(
        "machine: {} x{} cores, Linux {}, load average {}",
        facts.cpu_model,
        facts.cores,
        facts.kernel,
        machine::load_average()
    );
    let (median, min) = machine::fsync_floor(dir, 50)?;
    println!(
        "storage: a fresh SQLite file per path and round in {} (WAL, synchronous=FULL); fsync floor there \
         (4 KiB write + fdatasync): median {median:.2} ms, min {min:.2} ms",
        dir.display()
    );
    Ok(())
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    machine::process_cpu(pid).map(machine::Cpu::total)
}

/// The two ways a work item reaches the engine.
#[derive(Clone, Copy)]
enum Route {
    Direct,
    Host,
}

/// What one path measured in one round.
enum Measured {
    Throughput {
        path: Route,
        n: usize,
        elapsed: Duration,
        /// CPU of this process (backend, worker or host, client) plus the handler's, per work item, in us.
        cpu_us: Option<f64>,
    },
    Latency {
        path: Route,
        /// End-to-end times as this client sees them, sorted, in milliseconds.
        times: Vec<f64>,
    },
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct gRPC worker",
            Route::Host => "local host, HTTP custom handler",
        }
    }

    async fn measure(self, latency: Option<usize>, n: usize, db: &Path) -> Result<Measured> {
        let running = Running::start(self, db).await?;
        let result = match latency {
            Some(k) => one_at_a_time(&running.client, k)
                .await
                .map(|times| Measured::Latency { path: self, times }),
            None => running
                .throughput(n)
                .await
                .map(|(elapsed, cpu_us)| Measured::Throughput {
                    path: self,
                    n,
                    elapsed,
                    cpu_us,
                }),
        };
        running.stop().await?;
        result
    }
}

/// A path, up and ready for work.
struct Running {
    client: DurableClient,
    handler_pid: Option<u32>,
    stop: Stop,
    /// The host's app directory, which lives as long as the host.
    _app: Option<tempfile::TempDir>,
}

enum Stop {
    Direct(durable_grpc::WorkerHandle, durable_backend::Handle),
    Host(Box<durable_host::HostHandle>),
}

impl Running {
    async fn start(path: Route, db: &Path) -> Result<Self> {
        match path {
            Route::Direct => {
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
                Ok(Running {
                    client: DurableClient::new(&connection)?,
                    handler_pid: None,
                    stop: Stop::Direct(worker, backend),
                    _app: None,
                })
            }
            Route::Host => {
                let (host, app) = start_host(db).await?;
                let connection =
                    ConnectionOptions::new(host.backend_endpoint()).with_task_hub(host.task_hub());
                Ok(Running {
                    client: DurableClient::new(&connection)?,
                    handler_pid: Some(host.handler_pid()),
                    stop: Stop::Host(Box::new(host)),
                    _app: Some(app),
                })
            }
        }
    }

    fn cpu(&self) -> Option<f64> {
        let handler = match self.handler_pid {
            Some(pid) => cpu_seconds(pid)?,
            None => 0.0,
        };
        Some(cpu_seconds(std::process::id())? + handler)
    }

    /// Starts `n` instances and waits for all of them: the time from the first start to the last completion, and
    /// the CPU spent meanwhile per work item, in microseconds.
    async fn throughput(&self, n: usize) -> Result<(Duration, Option<f64>)> {
        let cpu_before = self.cpu();
        let started = Instant::now();
        let client = &self.client;
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
        let elapsed = started.elapsed();
        let cpu = self.cpu().zip(cpu_before).map(|(after, before)| {
            (after - before) * 1e6 / (n * WORK_ITEMS_PER_ORCHESTRATION) as f64
        });
        Ok((elapsed, cpu))
    }

    async fn stop(self) -> Result<()> {
        match self.stop {
            Stop::Direct(worker, backend) => {
                worker.shutdown().await?;
                backend.shutdown().await?;
            }
            Stop::Host(host) => host.stop().await?,
        }
        Ok(())
    }
}

/// Runs one orchestration to warm the connections up, then `k` one after another: each one's time from the start
/// call to its completion as this client sees it, sorted, in milliseconds.
async fn one_at_a_time(client: &DurableClient, k: usize) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(k);
    for i in 0..=k {
        let start = Instant::now();
        let id = client
            .schedule_new_orchestration("Chain", &(i as u64), StartOptions::new())
            .await?;
        let done = client
            .wait_for_completion(&id, false, Duration::from_secs(60))
            .await?;
        if done.status != OrchestrationStatus::Completed {
            bail!("{id} ended {:?}", done.status);
        }
        if i > 0 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

impl Measured {
    fn print(&self, round: usize) {
        match self {
            Measured::Throughput {
                path,
                n,
                elapsed,
                cpu_us,
            } => {
                let secs = elapsed.as_secs_f64();
                println!(
                    "round {round} {:<32} {n} orchestrations x {ACTIVITIES} activities in {secs:>7.2} s: \
                     {:>8.1} orchestrations/s, {:>9.1} work items/s, CPU per work item {}, load average {}",
                    path.label(),
                    *n as f64 / secs,
                    (n * WORK_ITEMS_PER_ORCHESTRATION) as f64 / secs,
                    cpu_us.map_or("n/a".to_owned(), |c| format!("{c:.0} us")),
                    machine::load_average()
                );
            }
            Measured::Latency { path, times } => println!(
                "round {round} {:<32} {} orchestrations one at a time: p50 {:.1} ms, p90 {:.1} ms, min {:.1} ms, \
                 max {:.1} ms, load average {}",
                path.label(),
                times.len(),
                percentile(times, 0.5),
                percentile(times, 0.9),
                percentile(times, 0.0),
                percentile(times, 1.0),
                machine::load_average()
            ),
        }
    }

    /// Host / direct: the p50, or the time and the CPU per work item.
    fn ratio(&self, host: &Measured) -> (f64, Option<f64>) {
        match (self, host) {
            (Measured::Latency { times: d, .. }, Measured::Latency { times: h, .. }) => {
                (percentile(h, 0.5) / percentile(d, 0.5), None)
            }
            (
                Measured::Throughput {
                    elapsed: d,
                    cpu_us: dc,
                    ..
                },
                Measured::Throughput {
                    elapsed: h,
                    cpu_us: hc,
                    ..
                },
            ) => (
                h.as_secs_f64() / d.as_secs_f64(),
                hc.zip(*dc).map(|(h, d)| h / d),
            ),
            _ => (f64::NAN, None),
        }
    }
}

async fn start_host(db: &Path) -> Result<(durable_host::HostHandle, tempfile::TempDir)> {
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
    Ok((durable_host::start(options).await?, app))
}
