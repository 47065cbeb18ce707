//! The scheduler's throughput workload (N orchestrations x 5 sequential no-op activities), side by side:
//!
//! 1. this crate's worker against the embedded backend,
//! 2. this crate's worker against the Python SDK's reference server,
//! 3. the Python SDK's worker against the embedded backend,
//! 4. the Python SDK's worker against the Python SDK's reference server.
//!
//! Each worker runs in its own process so its peak RSS (`VmHWM`) and CPU time can be read from /proc. Throughput
//! and latency come from the server's own created/completed timestamps. The last lines compare the cases of one
//! round that were run: our worker / the Python worker on our backend, and the Python worker on our backend / on
//! the reference server (work items/s); `--rounds N` repeats every case N times, in turn.
//!
//! The Python SDK's worker runs every work item, and the blocking call that hands in its result, on a thread pool
//! (`os.cpu_count() + 4` threads unless told): `--python-threads N` sets that pool's size, so that a run can show
//! whether the Python worker is limited by its own CPU (its core share near 1.0 and its ceiling, one core divided by
//! its CPU per work item, reached) or by how many completions it keeps in flight.
//!
//! ```text
//! cargo run --release -p durable-grpc --example bench_throughput -- [--orchestrations 5000] [--python PATH]
//!     [--only rust-embedded,rust-python,python-embedded,python-python] [--rounds N] [--python-threads N]
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker};
use durable_testkit::machine::{self, Machine};
use futures::StreamExt;

const CITIES: [&str; 5] = ["Tokyo", "Seattle", "London", "Paris", "Cairo"];
/// Per orchestration: 6 orchestrator turns (start + one per activity result) and 5 activities.
const WORK_ITEMS_PER_ORCHESTRATION: f64 = 11.0;

async fn hello_cities(ctx: OrchestrationContext, _: ()) -> Result<Vec<String>, OrchestrationError> {
    let mut out = Vec::with_capacity(CITIES.len());
    for city in CITIES {
        out.push(ctx.call_activity::<_, String>("say_hello", city).await?);
    }
    Ok(out)
}

async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {city}!"))
}

const PYTHON_WORKER: &str = r#"
import sys
from durabletask import worker

def say_hello(ctx, city):
    return f"Hello {city}!"

def hello_cities(ctx, _):
    out = []
    for city in ["Tokyo", "Seattle", "London", "Paris", "Cairo"]:
        out.append((yield ctx.call_activity(say_hello, input=city)))
    return out

# argv[2]: the size of the worker's thread pool, or "default" for the SDK's own (os.cpu_count() + 4).
options = None
if sys.argv[2] != "default":
    options = worker.ConcurrencyOptions(maximum_thread_pool_workers=int(sys.argv[2]))
w = worker.TaskHubGrpcWorker(host_address=sys.argv[1], concurrency_options=options)
w.add_orchestrator(hello_cities)
w.add_activity(say_hello)
w.start()
print("ready", flush=True)
sys.stdin.read()
w.stop()
"#;

const PYTHON_SERVER: &str = r#"
import sys
from durabletask.testing.in_memory_backend import create_test_backend
backend = create_test_backend(port=int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
backend.stop()
"#;

/// A child process that runs until its stdin closes.
struct Proc(Child);

impl Proc {
    fn spawn(mut command: Command) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("child did not start: {line:?}");
        }
        Ok(Self(child))
    }

    /// Peak resident set size in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// User plus system CPU time so far, in seconds.
    fn cpu_seconds(&self) -> Option<f64> {
        machine::process_cpu(self.0.id()).map(machine::Cpu::total)
    }

    fn stop(mut self) {
        drop(self.0.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Report {
    name: &'static str,
    orchestrations: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: Option<f64>,
    /// Worker CPU (user + system) spent on the run, in seconds.
    cpu_s: Option<f64>,
    /// The server's CPU spent on the run, in seconds: the reference server's process, or this process for the
    /// embedded backend (with this driver's share).
    server_cpu_s: Option<f64>,
}

/// What one run measured: seconds, p50 and p99 latency, worker RSS, worker CPU, server CPU.
type Measured = (f64, f64, f64, Option<f64>, Option<f64>, Option<f64>);

async fn drive(endpoint: &str, n: usize, worker: &Proc, server: Option<&Proc>) -> Result<Measured> {
    let server_cpu = || match server {
        Some(server) => server.cpu_seconds(),
        None => machine::process_cpu(std::process::id()).map(machine::Cpu::total),
    };
    let cpu_before = worker.cpu_seconds();
    let server_before = server_cpu();
    let client = DurableClient::new(&ConnectionOptions::new(endpoint))?;
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:05}")).collect();
    let scheduled = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let client = client.clone();
            async move {
                client
                    .schedule_new_orchestration(
                        "hello_cities",
                        &(),
                        StartOptions::new().with_instance_id(id),
                    )
                    .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for s in scheduled {
        s?;
    }
    let mut first_created: Option<SystemTime> = None;
    let mut last_done: Option<SystemTime> = None;
    let mut latencies = Vec::with_capacity(n);
    // One waiter at a time: the Python server has 10 threads and the worker needs them.
    for id in &ids {
        let done = client
            .wait_for_completion(id, false, Duration::from_secs(600))
            .await?;
        if done.status != OrchestrationStatus::Completed {
            bail!("{id} ended {:?}: {:?}", done.status, done.failure_details);
        }
        let created = done.created_at.context("created timestamp")?;
        let finished = done
            .completed_at
            .or(done.last_updated_at)
            .context("completion timestamp")?;
        first_created = Some(first_created.map_or(created, |f| f.min(created)));
        last_done = Some(last_done.map_or(finished, |l| l.max(finished)));
        latencies.push(
            finished
                .duration_since(created)
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0,
        );
    }
    let seconds = last_done
        .zip(first_created)
        .and_then(|(l, f)| l.duration_since(f).ok())
        .context("timestamps")?
        .as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    let cpu = worker.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let server = server_cpu().zip(server_before).map(|(a, b)| a - b);
    Ok((
        seconds,
        pct(0.50),
        pct(0.99),
        worker.peak_rss_mib(),
        cpu,
        server,
    ))
}

fn rust_worker(endpoint: &str) -> Result<Proc> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["worker", endpoint]);
    Proc::spawn(command)
}

fn python_worker(python: &Path, threads: Option<usize>, endpoint: &str) -> Result<Proc> {
    let mut command = Command::new(python);
    let threads = threads.map_or("default".to_owned(), |n| n.to_string());
    command.args([
        "-c",
        PYTHON_WORKER,
        endpoint.trim_start_matches("http://"),
        &threads,
    ]);
    Proc::spawn(command)
}

/// Where the Python SDK is and how its worker is set up.
struct PythonSetup {
    python: PathBuf,
    /// The worker's thread pool size; `None` for the SDK's default.
    threads: Option<usize>,
}

async fn run_case(name: &'static str, n: usize, py: &PythonSetup) -> Result<Report> {
    let (seconds, p50_ms, p99_ms, rss_mib, cpu_s, server_cpu_s) = match name {
        "rust-embedded" | "python-embedded" => {
            let dir = tempfile::tempdir()?;
            let options = durable_backend::Options::new()
                .with_db_path(dir.path().join("bench.db"))
                .with_bind("127.0.0.1:0".parse()?);
            let backend = durable_backend::start(options).await?;
            let worker = if name == "rust-embedded" {
                rust_worker(&backend.endpoint())?
            } else {
                python_worker(&py.python, py.threads, &backend.endpoint())?
            };
            let result = drive(&backend.endpoint(), n, &worker, None).await;
            worker.stop();
            backend.shutdown().await?;
            result?
        }
        "rust-python" | "python-python" => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut command = Command::new(&py.python);
            command.args(["-c", PYTHON_SERVER, &port.to_string()]);
            let server = Proc::spawn(command)?;
            let endpoint = format!("http://127.0.0.1:{port}");
            let worker = if name == "rust-python" {
                rust_worker(&endpoint)?
            } else {
                python_worker(&py.python, py.threads, &endpoint)?
            };
            let result = drive(&endpoint, n, &worker, Some(&server)).await;
            worker.stop();
            server.stop();
            result?
        }
        other => bail!("unknown case {other}"),
    };
    Ok(Report {
        name,
        orchestrations: n,
        seconds,
        p50_ms,
        p99_ms,
        rss_mib,
        cpu_s,
        server_cpu_s,
    })
}

async fn worker_main(endpoint: String) -> Result<()> {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("hello_cities", hello_cities)
        .add_activity("say_hello", say_hello);
    let worker = Worker::builder()
        .connection(ConnectionOptions::new(endpoint))
        .registry(registry)
        .build()?;
    println!("ready");
    let stdin_closed = async {
        // Blocks a thread until the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    };
    worker.run_until(stdin_closed).await?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.first().map(String::as_str) == Some("worker") {
        let endpoint = args.get(1).context("worker needs an endpoint")?.clone();
        return runtime.block_on(worker_main(endpoint));
    }
    let mut n = 5000;
    let mut py = PythonSetup {
        python: std::env::var_os("DURABLE_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
            }),
        threads: None,
    };
    let mut cases = vec![
        "rust-embedded",
        "rust-python",
        "python-embedded",
        "python-python",
    ];
    let mut rounds = 1usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--orchestrations" => n = it.next().context("--orchestrations N")?.parse()?,
            "--python" => py.python = it.next().context("--python PATH")?.into(),
            "--python-threads" => {
                py.threads = Some(it.next().context("--python-threads N")?.parse()?)
            }
            "--rounds" => rounds = it.next().context("--rounds N")?.parse()?,
            "--only" => {
                let only = it.next().context("--only CASES")?.clone();
                cases.retain(|c| only.split(',').any(|o| o == *c));
            }
            other => bail!("unknown argument {other}"),
        }
    }
    let host = Machine::read();
    println!(
        "machine: {} x{} cores, Linux {}, load average {}",
        host.cpu_model,
        host.cores,
        host.kernel,
        machine::load_average()
    );
    println!(
        "workload: {n} orchestrations x {} sequential no-op activities; Python worker thread pool: {}",
        CITIES.len(),
        py.threads
            .map_or("the SDK's default".to_owned(), |n| n.to_string())
    );
    println!(
        "| round | case | orchestrations/s | work items/s | p50 latency | p99 latency | worker peak RSS | worker CPU per work item | worker's share of a core | server CPU per work item | load after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut summaries = Vec::new();
    for round in 1..=rounds.max(1) {
        let mut rows = std::collections::HashMap::new();
        for case in &cases {
            let report = runtime.block_on(run_case(case, n, &py))?;
            rows.insert(report.name, print_row(round, &report));
        }
        summaries.push(summary(&rows));
    }
    for (round, line) in summaries.iter().enumerate() {
        println!("round {}: {line}", round + 1);
    }
    Ok(())
}

/// What one case of a round gave, for the summary lines.
struct Row {
    items_per_s: f64,
    /// The worker's CPU per work item, in microseconds.
    worker_us: Option<f64>,
}

/// The ratios of one round: our worker / the Python worker on our backend; the Python worker on our backend / on
/// the reference server; and the Python worker's ceiling (one core / its CPU per work item on our backend) against
/// the reference server's rate, which says how far the Python worker could go if nothing but its own CPU held it.
fn summary(rows: &std::collections::HashMap<&'static str, Row>) -> String {
    let rate = |case: &str| rows.get(case).map(|r| r.items_per_s);
    let ratio = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .map_or("n/a".to_owned(), |(a, b)| format!("{:.2}x", a / b))
    };
    let ceiling = rows
        .get("python-embedded")
        .and_then(|r| r.worker_us)
        .map(|us| 1e6 / us);
    format!(
        "our worker / Python worker on our backend: {}; Python worker on our backend / on the reference server: \
         {}; the Python worker's one-core ceiling on our backend ({}) / the reference server's rate: {}",
        ratio(rate("rust-embedded"), rate("python-embedded")),
        ratio(rate("python-embedded"), rate("python-python")),
        ceiling.map_or("n/a".to_owned(), |c| format!("{c:.0} work items/s")),
        ratio(ceiling, rate("python-python")),
    )
}

/// Prints one result row.
fn print_row(round: usize, report: &Report) -> Row {
    let per_s = report.orchestrations as f64 / report.seconds;
    let items = report.orchestrations as f64 * WORK_ITEMS_PER_ORCHESTRATION;
    let us = |cpu: Option<f64>| cpu.map(|cpu| cpu * 1e6 / items);
    let show = |us: Option<f64>| us.map_or("n/a".to_owned(), |us| format!("{us:.0} us"));
    let worker_us = us(report.cpu_s);
    println!(
        "| {round} | {} | {:.0} | {:.0} | {:.0} ms | {:.0} ms | {} | {} | {} | {} | {} |",
        report.name,
        per_s,
        per_s * WORK_ITEMS_PER_ORCHESTRATION,
        report.p50_ms,
        report.p99_ms,
        report
            .rss_mib
            .map_or("n/a".to_owned(), |m| format!("{m:.1} MiB")),
        show(worker_us),
        report.cpu_s.map_or("n/a".to_owned(), |cpu| format!(
            "{:.2}",
            cpu / report.seconds
        )),
        show(us(report.server_cpu_s)),
        machine::load_average(),
    );
    Row {
        items_per_s: per_s * WORK_ITEMS_PER_ORCHESTRATION,
        worker_us,
    }
}
