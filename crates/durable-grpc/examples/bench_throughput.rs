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
//! ```text
//! cargo run --release -p durable-grpc --example bench_throughput -- [--orchestrations 5000] [--python PATH]
//!     [--only rust-embedded,rust-python,python-embedded,python-python] [--rounds N]
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker};
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

w = worker.TaskHubGrpcWorker(host_address=sys.argv[1])
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
        cpu_seconds_of(&self.0.id().to_string())
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

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// User plus system CPU time of a process (a pid, or `self`) so far, in seconds.
fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
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
        None => cpu_seconds_of("self"),
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

fn python_worker(python: &PathBuf, endpoint: &str) -> Result<Proc> {
    let mut command = Command::new(python);
    command.args(["-c", PYTHON_WORKER, endpoint.trim_start_matches("http://")]);
    Proc::spawn(command)
}

async fn run_case(name: &'static str, n: usize, python: &PathBuf) -> Result<Report> {
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
                python_worker(python, &backend.endpoint())?
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
            let mut command = Command::new(python);
            command.args(["-c", PYTHON_SERVER, &port.to_string()]);
            let server = Proc::spawn(command)?;
            let endpoint = format!("http://127.0.0.1:{port}");
            let worker = if name == "rust-python" {
                rust_worker(&endpoint)?
            } else {
                python_worker(python, &endpoint)?
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
    let mut python = std::env::var_os("DURABLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
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
            "--python" => python = it.next().context("--python PATH")?.into(),
            "--rounds" => rounds = it.next().context("--rounds N")?.parse()?,
            "--only" => {
                let only = it.next().context("--only CASES")?.clone();
                cases.retain(|c| only.split(',').any(|o| o == *c));
            }
            other => bail!("unknown argument {other}"),
        }
    }
    println!(
        "workload: {n} orchestrations x {} sequential no-op activities; load average {}",
        CITIES.len(),
        load_average()
    );
    println!(
        "| round | case | orchestrations/s | work items/s | p50 latency | p99 latency | worker peak RSS | worker CPU per work item | server CPU per work item | load after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for round in 1..=rounds.max(1) {
        let mut per_s_of = std::collections::HashMap::new();
        for case in &cases {
            let report = runtime.block_on(run_case(case, n, &python))?;
            per_s_of.insert(report.name, print_row(round, &report));
        }
        let ratio = |a, b| per_s_of.get(a).zip(per_s_of.get(b)).map(|(a, b)| a / b);
        ratios.push((
            ratio("rust-embedded", "python-embedded"),
            ratio("python-embedded", "python-python"),
        ));
    }
    for (round, (ours, python)) in ratios.iter().enumerate() {
        let show = |r: &Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.2}x"));
        println!(
            "round {}: our worker / Python worker on our backend: {}; Python worker on our backend / on the \
             reference server: {}",
            round + 1,
            show(ours),
            show(python)
        );
    }
    Ok(())
}

/// Prints one result row; returns the case's orchestrations per second.
fn print_row(round: usize, report: &Report) -> f64 {
    let per_s = report.orchestrations as f64 / report.seconds;
    let per_item = |cpu: Option<f64>| {
        cpu.map_or("n/a".to_owned(), |cpu| {
            format!(
                "{:.0} us",
                cpu * 1e6 / (report.orchestrations as f64 * WORK_ITEMS_PER_ORCHESTRATION)
            )
        })
    };
    println!(
        "| {round} | {} | {:.0} | {:.0} | {:.0} ms | {:.0} ms | {} | {} | {} | {} |",
        report.name,
        per_s,
        per_s * WORK_ITEMS_PER_ORCHESTRATION,
        report.p50_ms,
        report.p99_ms,
        report
            .rss_mib
            .map_or("n/a".to_owned(), |m| format!("{m:.1} MiB")),
        per_item(report.cpu_s),
        per_item(report.server_cpu_s),
        load_average(),
    );
    per_s
}
