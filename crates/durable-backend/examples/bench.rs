//! Issue #3's benchmark: the scheduler's published workload against the embedded backend.
//!
//! 5,000 orchestrations are started at once; each calls 5 no-op activities in sequence (11 work items: 6
//! orchestrator turns and 5 activities). The backend runs as a child process on a fresh SQLite file (WAL,
//! `synchronous=FULL` unless `--sync` says otherwise) so its peak RSS (`VmHWM`) and CPU time can be read from
//! /proc. The worker is a second child process: this workspace's `durable_grpc::Worker`, or the Python SDK's
//! `TaskHubGrpcWorker` (durabletask 1.12.0). This process only starts the instances and collects results.
//! Throughput and latency come from the server's own created/completed timestamps.
//!
//! ```text
//! cargo run --release -p durable-backend --example bench -- [--orchestrations 5000] [--workers rust,python]
//!     [--sync full|normal|off] [--python PATH]
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use durable_backend::{Options, Synchronous};
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker};
use futures::StreamExt;

const STEPS: [&str; 5] = ["one", "two", "three", "four", "five"];
/// One turn to start plus one per activity result, and the activities themselves.
const WORK_ITEMS_PER_ORCHESTRATION: usize = 2 * STEPS.len() + 1;
/// Calls in flight from this driver while starting and while collecting results.
const DRIVER_CONCURRENCY: usize = 64;

async fn sequence(ctx: OrchestrationContext, _: ()) -> Result<Vec<String>, OrchestrationError> {
    let mut out = Vec::with_capacity(STEPS.len());
    for step in STEPS {
        out.push(ctx.call_activity::<_, String>("noop", step).await?);
    }
    Ok(out)
}

async fn noop(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    Ok(input)
}

const PYTHON_WORKER: &str = r#"
import sys
from durabletask import worker

def noop(ctx, value):
    return value

def sequence(ctx, _):
    out = []
    for step in ["one", "two", "three", "four", "five"]:
        out.append((yield ctx.call_activity(noop, input=step)))
    return out

w = worker.TaskHubGrpcWorker(host_address=sys.argv[1])
w.add_orchestrator(sequence)
w.add_activity(noop)
w.start()
print("ready", flush=True)
sys.stdin.read()
w.stop()
"#;

/// A child process that prints one line when ready and runs until its stdin closes.
struct Proc {
    child: Child,
    first_line: String,
}

impl Proc {
    fn spawn(mut command: Command) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start a child process")?;
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut first_line)?;
        if first_line.trim().is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("a child process exited before it was ready");
        }
        Ok(Proc {
            child,
            first_line: first_line.trim().to_owned(),
        })
    }

    /// Peak resident set size in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// User plus system CPU time so far, in seconds.
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // The command name may hold spaces; the fields after its closing parenthesis do not.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ is 100 on every Linux this runs on.
        Some(ticks / 100.0)
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Report {
    worker: String,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    backend_rss_mib: Option<f64>,
    backend_cpu_s: Option<f64>,
}

async fn drive(endpoint: &str, n: usize) -> Result<(f64, f64, f64)> {
    let client = DurableClient::new(&ConnectionOptions::new(endpoint))?;
    let ids: Vec<String> = (0..n).map(|i| format!("bench-{i:06}")).collect();
    let started: Vec<_> = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let client = client.clone();
            async move {
                client
                    .schedule_new_orchestration(
                        "sequence",
                        &(),
                        StartOptions::new().with_instance_id(id),
                    )
                    .await
            }
        })
        .buffer_unordered(DRIVER_CONCURRENCY)
        .collect()
        .await;
    for s in started {
        s?;
    }
    let finished: Vec<_> = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let client = client.clone();
            async move {
                let state = client
                    .wait_for_completion(&id, false, Duration::from_secs(900))
                    .await?;
                if state.status != OrchestrationStatus::Completed {
                    bail!("{id} ended {:?}: {:?}", state.status, state.failure_details);
                }
                let created = state.created_at.context("no created timestamp")?;
                let done = state
                    .completed_at
                    .or(state.last_updated_at)
                    .context("no completion timestamp")?;
                Ok::<(SystemTime, SystemTime), anyhow::Error>((created, done))
            }
        })
        .buffer_unordered(DRIVER_CONCURRENCY)
        .collect()
        .await;
    let mut spans = Vec::with_capacity(n);
    for f in finished {
        spans.push(f?);
    }
    let first = spans.iter().map(|s| s.0).min().context("no instances")?;
    let last = spans.iter().map(|s| s.1).max().context("no instances")?;
    let mut latencies: Vec<f64> = spans
        .iter()
        .map(|(c, d)| d.duration_since(*c).unwrap_or_default().as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let seconds = last.duration_since(first)?.as_secs_f64();
    Ok((seconds, pct(0.50), pct(0.99)))
}

async fn run_case(worker: &str, n: usize, sync: &str, python: &PathBuf) -> Result<Report> {
    let dir = tempfile::tempdir()?;
    let mut backend = Command::new(std::env::current_exe()?);
    backend.args([
        "backend",
        &dir.path().join("bench.db").display().to_string(),
        sync,
    ]);
    let backend = Proc::spawn(backend)?;
    let endpoint = backend.first_line.clone();
    let worker_proc = match worker {
        "rust" => {
            let mut command = Command::new(std::env::current_exe()?);
            command.args(["worker", &endpoint]);
            Proc::spawn(command)?
        }
        "python" => {
            let mut command = Command::new(python);
            command.args(["-c", PYTHON_WORKER, endpoint.trim_start_matches("http://")]);
            Proc::spawn(command)?
        }
        other => bail!("unknown worker '{other}' (rust or python)"),
    };
    let cpu_before = backend.cpu_seconds();
    let result = drive(&endpoint, n).await;
    let backend_cpu_s = backend
        .cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let backend_rss_mib = backend.peak_rss_mib();
    worker_proc.stop();
    backend.stop();
    let (seconds, p50_ms, p99_ms) = result?;
    Ok(Report {
        worker: worker.to_owned(),
        seconds,
        p50_ms,
        p99_ms,
        backend_rss_mib,
        backend_cpu_s,
    })
}

/// `bench backend DB SYNC`: serves the file until stdin closes; the first stdout line is the endpoint.
async fn backend_main(db: String, sync: String) -> Result<()> {
    let synchronous = match sync.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        "off" => Synchronous::Off,
        other => bail!("unknown synchronous mode '{other}'"),
    };
    let backend = durable_backend::start(
        Options::new()
            .with_db_path(db)
            .with_synchronous(synchronous)
            .with_bind("127.0.0.1:0".parse()?),
    )
    .await?;
    println!("{}", backend.endpoint());
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    backend.shutdown().await?;
    Ok(())
}

/// `bench worker ENDPOINT`: this workspace's worker until stdin closes.
async fn worker_main(endpoint: String) -> Result<()> {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("sequence", sequence)
        .add_activity("noop", noop);
    let worker = Worker::builder()
        .connection(ConnectionOptions::new(endpoint))
        .registry(registry)
        .build()?;
    println!("ready");
    let stdin_closed = async {
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
    match args.first().map(String::as_str) {
        Some("backend") => {
            let db = args.get(1).context("backend DB SYNC")?.clone();
            let sync = args.get(2).context("backend DB SYNC")?.clone();
            return runtime.block_on(backend_main(db, sync));
        }
        Some("worker") => {
            let endpoint = args.get(1).context("worker ENDPOINT")?.clone();
            return runtime.block_on(worker_main(endpoint));
        }
        _ => {}
    }
    let mut n = 5000;
    let mut sync = "full".to_owned();
    let mut workers = vec!["rust".to_owned(), "python".to_owned()];
    let mut python = std::env::var_os("DURABLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--orchestrations" => n = value()?.parse()?,
            "--sync" => sync = value()?.clone(),
            "--workers" => workers = value()?.split(',').map(str::to_owned).collect(),
            "--python" => python = value()?.into(),
            other => bail!("unknown argument {other}"),
        }
    }
    if n == 0 {
        bail!("--orchestrations must be at least 1");
    }
    println!(
        "workload: {n} orchestrations x {} sequential no-op activities, synchronous={sync}",
        STEPS.len()
    );
    println!(
        "| worker | orchestrations/s | work items/s | p50 latency | p99 latency | backend peak RSS | backend CPU per work item |"
    );
    println!("|---|---|---|---|---|---|---|");
    for worker in &workers {
        let r = runtime.block_on(run_case(worker, n, &sync, &python))?;
        let items = (n * WORK_ITEMS_PER_ORCHESTRATION) as f64;
        println!(
            "| {} | {:.0} | {:.0} | {:.0} ms | {:.0} ms | {} | {} |",
            r.worker,
            n as f64 / r.seconds,
            items / r.seconds,
            r.p50_ms,
            r.p99_ms,
            r.backend_rss_mib
                .map_or("n/a".to_owned(), |m| format!("{m:.1} MiB")),
            r.backend_cpu_s
                .map_or("n/a".to_owned(), |s| format!("{:.0} us", s * 1e6 / items)),
        );
    }
    Ok(())
}
