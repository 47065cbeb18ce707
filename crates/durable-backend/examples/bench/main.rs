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
//!     [--sync full|normal|off] [--python PATH] [--baseline PATH] [--rounds N] [--dir PATH]
//!     [--commit-batch N] [--latency K] [--seed-completed N | --seed-waiting N] [--entity SENDERS]
//!     [--fan-out N [--fan-outs F]] [--payload BYTES]
//! ```
//!
//! Every run first prints the machine (CPU model, cores, kernel, load average), the filesystem of the database's
//! directory (`--dir`, else the system's temp dir) and its fsync floor, and the gRPC floor: this build's backend's
//! CPU per bare unary call (`Hello`, 64 in flight), the transport's cost before any store work. Each result row
//! splits the backend's CPU per work item into user and system time and names the share of the store's writer
//! thread.
//!
//! `--baseline PATH` names another build of this example (e.g. one built from `main`): each round then runs the
//! workload against the baseline's backend and against this build's, in turn, and the last lines give the ratio of
//! backend CPU per work item (this build / baseline) per round and its median. Pairing the two in one invocation
//! keeps the ratio meaningful on a machine whose speed drifts with other people's work.
//!
//! `--latency K` runs K orchestrations one after another on an otherwise idle backend (end-to-end p50/p90 as the
//! client sees them). `--seed-completed N` fills a database with N completed instances through the store API
//! (kept in `--dir` for later runs) and runs the workload against an empty store and the seeded one in turn;
//! `--seed-waiting N` does the same with N orchestrations waiting for an external event and reports the backend's
//! start-up (recovery) time, RSS and one-at-a-time latency on both. `--commit-batch N` caps the backend's commit
//! groups (1 shows what a commit costs when nothing shares it). `--entity S` has S orchestrations send S signals
//! each to one entity and reports operations/s and how many arrived out of their sender's order. `--fan-out N`
//! has `--fan-outs F` (1) orchestrations schedule N activities each at once and wait for all, with the usual
//! workload of `--orchestrations` instances (0: none) beside them; it reports both wall times and backend CPU.
//! `--payload B` gives the workload's orchestrations an input of B bytes, which each activity takes and returns
//! and the orchestration returns at the end: what an app whose data travels with its
//! orchestrations costs the store.
//!
//! `BENCH_BACKEND_THREADS=N` in the environment gives this build's backend process a runtime of N worker threads
//! instead of one per core (a baseline build ignores it), to measure the runtime's shape.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use durable_backend::{Options, Synchronous};
use durable_core::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker};
use futures::StreamExt;

mod entity;
mod fanin;
mod plan;
mod seed;
use durable_testkit::machine::{self, Cpu};

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

/// The workload with a payload (`--payload`): the input goes to each activity and comes back as its result.
async fn carry(ctx: OrchestrationContext, input: String) -> Result<String, OrchestrationError> {
    let mut value = input;
    for _ in STEPS {
        value = ctx.call_activity::<_, String>("noop", &value).await?;
    }
    Ok(value)
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

def carry(ctx, value):
    for _ in range(5):
        value = yield ctx.call_activity(noop, input=value)
    return value

w = worker.TaskHubGrpcWorker(host_address=sys.argv[1])
w.add_orchestrator(sequence)
w.add_orchestrator(carry)
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
    /// The fan-out scenario's wall times.
    fan_in: Option<fanin::FanIn>,
    /// The entity scenario's (seconds, operations, out of order).
    entity: Option<(f64, u64, u64)>,
    /// From spawning the backend to its endpoint line: opening the store (recovery included) and binding.
    startup_ms: f64,
    /// End-to-end times of the orchestrations run one at a time, sorted.
    one_at_a_time_ms: Vec<f64>,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    backend_rss_mib: Option<f64>,
    backend_cpu: Option<Cpu>,
    /// Backend CPU by thread name (the store's writer and reader, the gRPC runtime's threads).
    backend_threads: Vec<(String, Cpu)>,
    worker_cpu: Option<Cpu>,
    /// Bytes and calls the backend wrote (`wchar`, `syscw`).
    backend_writes: Option<(f64, f64)>,
}

impl Report {
    /// The store's writer thread (a build from before the store's threads had short names shows writer and
    /// reader together).
    fn writer_cpu(&self) -> Option<Cpu> {
        self.backend_threads
            .iter()
            .find(|(name, _)| name == "durable-writer" || name == "durable-backend")
            .map(|(_, cpu)| *cpu)
    }
}

/// Creation and completion time of instance `id`, waiting for it to complete (anything else is an error).
async fn completion_span(client: &DurableClient, id: &str) -> Result<(SystemTime, SystemTime)> {
    let state = client
        .wait_for_completion(id, false, Duration::from_secs(3600))
        .await?;
    if state.status != OrchestrationStatus::Completed {
        bail!("{id} ended {:?}: {:?}", state.status, state.failure_details);
    }
    let created = state.created_at.context("no created timestamp")?;
    let done = state
        .completed_at
        .or(state.last_updated_at)
        .context("no completion timestamp")?;
    Ok((created, done))
}

/// A prefix no earlier run used, so a reused (seeded) database never sees an instance id twice.
fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-{nanos:x}")
}

/// The created and completed times of every instance of `ids`, waited for `DRIVER_CONCURRENCY` at a time.
async fn completion_spans(
    client: &DurableClient,
    ids: &[String],
) -> Result<Vec<(SystemTime, SystemTime)>> {
    futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let client = client.clone();
            async move { completion_span(&client, &id).await }
        })
        .buffer_unordered(DRIVER_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Starts a `sequence` orchestration under each id (a `carry` one with an input of `payload` bytes when that is
/// not 0), `DRIVER_CONCURRENCY` calls at a time.
async fn start_sequences(client: &DurableClient, ids: &[String], payload: usize) -> Result<()> {
    let input = "x".repeat(payload);
    let started: Vec<_> = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let client = client.clone();
            let input = &input;
            async move {
                let options = StartOptions::new().with_instance_id(id);
                if payload == 0 {
                    client
                        .schedule_new_orchestration("sequence", &(), options)
                        .await
                } else {
                    client
                        .schedule_new_orchestration("carry", input, options)
                        .await
                }
            }
        })
        .buffer_unordered(DRIVER_CONCURRENCY)
        .collect()
        .await;
    for s in started {
        s?;
    }
    Ok(())
}

async fn drive(endpoint: &str, n: usize, payload: usize) -> Result<(f64, f64, f64)> {
    let client = DurableClient::new(&ConnectionOptions::new(endpoint))?;
    let prefix = unique_prefix();
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:06}")).collect();
    start_sequences(&client, &ids, payload).await?;
    let spans = completion_spans(&client, &ids).await?;
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

/// Starts `n` orchestrations one at a time, each after the previous one completed, and returns the end-to-end
/// times seen by this client (start call to completion seen), sorted, in milliseconds.
async fn one_at_a_time(endpoint: &str, n: usize) -> Result<Vec<f64>> {
    let client = DurableClient::new(&ConnectionOptions::new(endpoint))?;
    let prefix = unique_prefix();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{prefix}-{i:06}");
        let start = Instant::now();
        client
            .schedule_new_orchestration("sequence", &(), StartOptions::new().with_instance_id(&id))
            .await?;
        let state = client
            .wait_for_completion(&id, false, Duration::from_secs(60))
            .await?;
        if state.status != OrchestrationStatus::Completed {
            bail!("{id} ended {:?}: {:?}", state.status, state.failure_details);
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// The value at fraction `p` of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Case<'a> {
    worker: &'a str,
    n: usize,
    sync: &'a str,
    python: &'a PathBuf,
    /// The executable whose `backend` subcommand serves the store.
    backend_exe: &'a PathBuf,
    /// Where the database's temp dir goes (the system's temp dir when `None`).
    dir: Option<&'a PathBuf>,
    /// An existing database to serve instead of a fresh one.
    db: Option<&'a Path>,
    /// Orchestrations run one at a time after the throughput run (0: none).
    one_at_a_time: usize,
    /// The backend's most operations per commit group (its default when `None`).
    commit_batch: Option<usize>,
    /// Instead of the workload: (senders, signals per sender) to one entity.
    entity: Option<(usize, i64)>,
    /// Beside the workload: (activities per fan-out, fan-outs).
    fan_out: Option<(usize, usize)>,
    /// The workload's input size in bytes (0: the plain `sequence`).
    payload: usize,
}

async fn run_case(case: &Case<'_>) -> Result<Report> {
    let Case {
        worker,
        n,
        sync,
        python,
        backend_exe,
        dir,
        db,
        one_at_a_time: sequential,
        commit_batch,
        entity: entity_signals,
        fan_out,
        payload,
    } = *case;
    let dir = match dir {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let db = db.map_or_else(|| dir.path().join("bench.db"), Path::to_path_buf);
    let mut backend = Command::new(backend_exe);
    backend.args(["backend", &db.display().to_string(), sync]);
    if let Some(batch) = commit_batch {
        backend.env("BENCH_COMMIT_BATCH", batch.to_string());
    }
    let spawned = Instant::now();
    let backend = Proc::spawn(backend)?;
    let startup_ms = spawned.elapsed().as_secs_f64() * 1000.0;
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
    let cpu_before = machine::process_cpu(backend.child.id());
    let threads_before = machine::thread_cpu(backend.child.id());
    let worker_before = machine::process_cpu(worker_proc.child.id());
    let writes_before = machine::process_writes(backend.child.id());
    let mut entity_result = None;
    let mut fan_in = None;
    let result = if let Some((width, count)) = fan_out {
        match fanin::drive(&endpoint, width, count, n).await {
            Ok(r) => {
                let seconds = r.fan_out_seconds;
                fan_in = Some(r);
                Ok((seconds, f64::NAN, f64::NAN))
            }
            Err(e) => Err(e),
        }
    } else if let Some((senders, per_sender)) = entity_signals {
        match entity::drive(&endpoint, senders, per_sender).await {
            Ok(r) => {
                entity_result = Some(r);
                Ok((r.0, f64::NAN, f64::NAN))
            }
            Err(e) => Err(e),
        }
    } else if n > 0 {
        drive(&endpoint, n, payload).await
    } else {
        Ok((f64::NAN, f64::NAN, f64::NAN))
    };
    let backend_cpu = machine::process_cpu(backend.child.id())
        .zip(cpu_before)
        .map(|(after, before)| after.minus(before));
    let backend_threads =
        machine::thread_delta(&threads_before, &machine::thread_cpu(backend.child.id()));
    let worker_cpu = machine::process_cpu(worker_proc.child.id())
        .zip(worker_before)
        .map(|(after, before)| after.minus(before));
    let backend_writes = machine::process_writes(backend.child.id())
        .zip(writes_before)
        .map(|((b, c), (b0, c0))| (b - b0, c - c0));
    let sequential = match (&result, sequential) {
        (Ok(_), k) if k > 0 => Some(one_at_a_time(&endpoint, k).await),
        _ => None,
    }
    .transpose();
    let backend_rss_mib = backend.peak_rss_mib();
    worker_proc.stop();
    backend.stop();
    let (seconds, p50_ms, p99_ms) = result?;
    let one_at_a_time_ms = sequential?.unwrap_or_default();
    Ok(Report {
        fan_in,
        entity: entity_result,
        startup_ms,
        one_at_a_time_ms,
        seconds,
        p50_ms,
        p99_ms,
        backend_rss_mib,
        backend_cpu,
        backend_threads,
        worker_cpu,
        backend_writes,
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
    let mut options = Options::new()
        .with_db_path(db)
        .with_synchronous(synchronous)
        .with_bind("127.0.0.1:0".parse()?);
    // `--commit-batch`: the most operations per commit group (the backend's default when unset).
    if let Some(batch) = std::env::var_os("BENCH_COMMIT_BATCH") {
        let batch = batch.to_str().context("BENCH_COMMIT_BATCH")?.parse()?;
        options = options.with_max_commit_batch(batch);
    }
    let backend = durable_backend::start(options).await?;
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
        .add_orchestrator("carry", carry)
        .add_activity("noop", noop);
    entity::register(&mut registry);
    registry
        .add_orchestrator("fan_out", fanin::fan_out)
        .add_activity("echo", fanin::echo);
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
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if args.first().map(String::as_str) == Some("backend")
        && let Some(n) = std::env::var_os("BENCH_BACKEND_THREADS")
    {
        builder.worker_threads(n.to_str().context("BENCH_BACKEND_THREADS")?.parse()?);
    }
    let runtime = builder.enable_all().build()?;
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
    let mut baseline: Option<PathBuf> = None;
    let mut rounds = 1usize;
    let mut dir: Option<PathBuf> = None;
    let mut latency = 0usize;
    let mut seed_completed = 0usize;
    let mut seed_waiting = 0usize;
    let mut commit_batch: Option<usize> = None;
    let mut entity_senders = 0usize;
    let mut fan_out = 0usize;
    let mut fan_outs = 1usize;
    let mut payload = 0usize;
    let mut n_given = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--orchestrations" => {
                n = value()?.parse()?;
                n_given = true;
            }
            "--sync" => sync = value()?.clone(),
            "--workers" => workers = value()?.split(',').map(str::to_owned).collect(),
            "--python" => python = value()?.into(),
            "--baseline" => baseline = Some(value()?.into()),
            "--rounds" => rounds = value()?.parse()?,
            "--dir" => dir = Some(value()?.into()),
            "--latency" => latency = value()?.parse()?,
            "--seed-completed" => seed_completed = value()?.parse()?,
            "--seed-waiting" => seed_waiting = value()?.parse()?,
            // Read by the backend child (this build's only).
            "--commit-batch" => commit_batch = Some(value()?.parse()?),
            "--entity" => entity_senders = value()?.parse()?,
            "--fan-out" => fan_out = value()?.parse()?,
            "--fan-outs" => fan_outs = value()?.parse()?,
            "--payload" => payload = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if fan_out > 0 && !n_given {
        n = 0;
    }
    if (n == 0 && fan_out == 0) || rounds == 0 || fan_outs == 0 {
        bail!("--orchestrations (without --fan-out), --rounds and --fan-outs must be at least 1");
    }
    print_machine(dir.as_ref())?;
    let this = std::env::current_exe()?;
    runtime.block_on(print_rpc_floor(&this, dir.as_ref()))?;
    let mut plan = plan::Plan {
        n,
        sync: &sync,
        python: &python,
        dir: dir.as_ref(),
        rounds,
        runtime: &runtime,
        commit_batch,
        payload,
        ratios: Vec::new(),
    };
    if seed_completed > 0 || seed_waiting > 0 {
        let parent = dir.clone().unwrap_or_else(std::env::temp_dir);
        let (count, kind) = if seed_completed > 0 {
            (seed_completed, seed::Seeded::Completed)
        } else {
            (seed_waiting, seed::Seeded::Waiting)
        };
        let db = parent.join(format!("bench-{kind:?}-{count}.db").to_lowercase());
        // The marker is written once seeding finished; the database keeps its name (its WAL goes with the name).
        let marker = db.with_extension("seeded");
        if !marker.exists() {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            runtime.block_on(seed::seed(&db, count, kind, "seeded"))?;
            std::fs::write(&marker, b"")?;
        }
        eprintln!(
            "seeded database: {} ({:.0} MiB)",
            db.display(),
            std::fs::metadata(&db)?.len() as f64 / 1048576.0
        );
        let label = format!("{count} {kind:?}").to_lowercase();
        let stores = [
            ("empty store".to_owned(), None),
            (label, Some(db.as_path())),
        ];
        return match kind {
            seed::Seeded::Completed => plan.throughput(&workers, &this, &stores),
            seed::Seeded::Waiting => plan.latency(&this, &stores, latency.max(20)),
        };
    }
    let mut backends: Vec<(String, Option<&Path>, PathBuf)> = Vec::new();
    if let Some(base) = &baseline {
        backends.push(("baseline".to_owned(), None, base.clone()));
    }
    backends.push(("this build".to_owned(), None, this.clone()));
    if entity_senders > 0 {
        // As many signals per sender as senders: 100 senders make goal 3d's 10,000 signals.
        return plan.entity(&backends, entity_senders, entity_senders as i64);
    }
    if fan_out > 0 {
        return plan.fan_out_ab(&backends, fan_out, fan_outs);
    }
    if latency > 0 {
        let stores: Vec<(String, Option<&Path>)> = vec![("empty store".to_owned(), None)];
        for (label, _, exe) in &backends {
            println!("backend: {label}");
            plan.latency(exe, &stores, latency)?;
        }
        return Ok(());
    }
    plan.throughput_ab(&workers, &backends)
}

/// Bare `Hello` calls the gRPC floor is measured over, and how many are in flight at once.
const FLOOR_CALLS: usize = 20_000;
const FLOOR_CONCURRENCY: usize = 64;

/// Prints the backend's CPU per bare unary call (`Hello`: no store, no payload) on this machine: what the gRPC
/// transport (HTTP/2, TCP on loopback, the runtime's wake-ups) costs before any work. Every work item is at least
/// one such call (its completion) plus a streamed message, so this is the part of the CPU per item that no store
/// change can touch, and it differs more between machines than the store's part does.
async fn print_rpc_floor(backend_exe: &Path, dir: Option<&PathBuf>) -> Result<()> {
    use durable_proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
    let dir = match dir {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let mut command = Command::new(backend_exe);
    command.args([
        "backend",
        &dir.path().join("floor.db").display().to_string(),
        "full",
    ]);
    let backend = Proc::spawn(command)?;
    let measured = async {
        let client = TaskHubSidecarServiceClient::connect(backend.first_line.clone()).await?;
        let calls = |n: usize| {
            futures::stream::iter(0..n)
                .map(|_| {
                    let mut client = client.clone();
                    async move { client.hello(()).await }
                })
                .buffer_unordered(FLOOR_CONCURRENCY)
                .collect::<Vec<_>>()
        };
        // Warm up the connection and both runtimes first.
        for answer in calls(FLOOR_CALLS / 10).await {
            answer?;
        }
        let before = machine::process_cpu(backend.child.id());
        let started = Instant::now();
        for answer in calls(FLOOR_CALLS).await {
            answer?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = machine::process_cpu(backend.child.id())
            .zip(before)
            .map(|(after, before)| after.minus(before));
        anyhow::Ok((seconds, cpu))
    }
    .await;
    backend.stop();
    let (seconds, cpu) = measured?;
    let per_call = |t: f64| t / FLOOR_CALLS as f64 * 1e6;
    match cpu {
        Some(cpu) => println!(
            "gRPC floor (bare unary Hello, {FLOOR_CONCURRENCY} in flight, {FLOOR_CALLS} calls): backend CPU \
             {:.0} us per call ({:.0} + {:.0}), {:.0} calls/s",
            per_call(cpu.total()),
            per_call(cpu.user),
            per_call(cpu.system),
            FLOOR_CALLS as f64 / seconds
        ),
        None => println!("gRPC floor: the backend's CPU time cannot be read here"),
    }
    Ok(())
}

/// Prints the machine facts a reader needs to tell a different machine from a regression.
fn print_machine(dir: Option<&PathBuf>) -> Result<()> {
    let m = machine::Machine::read();
    let probe = match dir {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let (fsync_median, fsync_min) = machine::fsync_floor(probe.path(), 50)?;
    println!(
        "machine: {} x{} cores, Linux {}, load average {}",
        m.cpu_model,
        m.cores,
        m.kernel,
        machine::load_average()
    );
    println!(
        "database filesystem: {}; fsync floor (4 KiB write + fdatasync): median {fsync_median:.2} ms, \
         min {fsync_min:.2} ms",
        machine::filesystem_of(probe.path())
    );
    Ok(())
}
