//! `soak`: a bounded soak run of the whole stack, as separate processes.
//!
//! For `--minutes`, a mixed workload (chains, fan-outs, durable timers, external events, entities called and
//! signalled, sub-orchestrations) runs through the `durable-host` command and its custom handler
//! (`soak-handler`) against the `durable-backend` command on a SQLite file, while the backend, the host and the
//! handler are SIGKILLed at random and restarted. Then it checks that every instance completed exactly once with
//! the output its input implies, that no timer fired early, that no entity lost or doubled an operation, that the
//! memory of each process stayed flat, and, once everything has stopped, the store itself
//! (`durable_backend::check_database`). Exits non-zero when any of that fails.
//!
//! The three programs are taken from this program's directory (`--programs` overrides it); `scripts/soak.sh`
//! builds them and runs it.

mod drive;
mod procs;
mod rss;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use durable_grpc::{ConnectionOptions, DurableClient};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::Mutex;

use crate::drive::{DriveStats, lock};
use crate::procs::{Processes, Programs, Role};

/// A bounded soak run with random SIGKILLs of the backend, the host and the handler.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// How long the workload runs (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Instances in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds between kills, drawn uniformly from this range.
    #[arg(long, value_name = "MIN-MAX", default_value = "10-40", value_parser = parse_range)]
    kill_every: (f64, f64),
    /// Kill nothing (a baseline run).
    #[arg(long)]
    no_kills: bool,
    /// Seeds the workload and the kills (random when not given); printed, so a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// Where `durable-backend`, `durable-host` and `soak-handler` are (default: this program's directory).
    #[arg(long, value_name = "DIR")]
    programs: Option<PathBuf>,
    /// Keep the working directory (database, logs, app folder) and print where it is.
    #[arg(long)]
    keep: bool,
}

fn parse_range(text: &str) -> Result<(f64, f64), String> {
    let (low, high) = text
        .split_once('-')
        .ok_or_else(|| format!("'{text}' is not MIN-MAX"))?;
    let number = |s: &str| s.trim().parse::<f64>().map_err(|e| format!("'{s}': {e}"));
    let (low, high) = (number(low)?, number(high)?);
    if !(low > 0.0 && low <= high && high.is_finite()) {
        return Err(format!("'{text}': need 0 < MIN <= MAX"));
    }
    Ok((low, high))
}

/// One kill and how long the role took to come back.
#[derive(Debug)]
struct Kill {
    at: Duration,
    role: Role,
    back_in: Duration,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let programs = Programs::find(args.programs.clone())?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let duration = Duration::from_secs_f64(args.minutes.max(0.0) * 60.0);
    let work = tempfile::Builder::new().prefix("durable-soak-").tempdir()?;
    println!(
        "soak: {:.1} min, concurrency {}, kills every {}-{} s{}, seed {seed}, in {}",
        args.minutes,
        args.concurrency,
        args.kill_every.0,
        args.kill_every.1,
        if args.no_kills { " (off)" } else { "" },
        work.path().display()
    );

    let processes = Processes::start(programs, work.path()).await?;
    let endpoint = processes.endpoint.clone();
    let db = processes.db().to_path_buf();
    let processes = Arc::new(Mutex::new(processes));
    let client = DurableClient::new(&ConnectionOptions::new(&endpoint).with_task_hub("soak"))?;

    let started_at = Instant::now();
    let until = started_at + duration;
    let stats = Arc::new(DriveStats::default());
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample(
        Arc::clone(&processes),
        started_at,
        Arc::clone(&stats),
        Arc::clone(&samples),
    ));
    let chaos = (!args.no_kills).then(|| {
        tokio::spawn(chaos(
            Arc::clone(&processes),
            seed ^ 0x5eed,
            args.kill_every,
            started_at,
            until,
        ))
    });
    let started = drive::drive(
        client.clone(),
        seed,
        args.concurrency,
        started_at,
        until,
        until + Duration::from_secs(600),
        Arc::clone(&stats),
    )
    .await;
    let kills = match chaos {
        Some(chaos) => chaos.await.context("the kill loop")??,
        None => Vec::new(),
    };
    let drained = started_at.elapsed();
    println!(
        "soak: workload done after {:.0} s: {} instances started, {} finished",
        drained.as_secs_f64(),
        started.len(),
        lock(&stats.finished_at).len()
    );

    let mut findings = verify::Findings::default();
    verify::instances(&client, &started, &stats, &mut findings).await;
    verify::tallies(
        &client,
        &started,
        &stats,
        Duration::from_secs(180),
        &mut findings,
    )
    .await;
    sampler.abort();

    // Everything stops before the store is read: leases are only orphans once nobody can hold them.
    let stopped = processes.lock().await.stop().await;
    let store = durable_backend::check_database(&db);

    let mut failures: Vec<String> = lock(&stats.failures).clone();
    failures.extend(findings.failures.iter().cloned());
    if let Err(e) = &stopped {
        failures.push(format!("stopping: {e:#}"));
    }
    let lives = rss::lives(&lock(&samples));
    for life in lives.iter().filter(|l| l.judged(drained) && l.grew()) {
        failures.push(format!(
            "{} pid {}: memory grew from {} KiB to {} KiB",
            life.role, life.pid, life.first_quarter, life.last_quarter
        ));
    }
    match &store {
        Ok(report) if !report.is_ok() => failures.push("the store check failed".to_owned()),
        Ok(_) => {}
        Err(e) => failures.push(format!("the store could not be checked: {e}")),
    }

    report(&started, &stats, &findings, &kills, drained);
    println!(
        "memory (VmRSS):\n{}",
        rss::report(&lives, drained).trim_end()
    );
    match &store {
        Ok(report) => println!("store ({}):\n{report}", db.display()),
        Err(e) => println!("store: {e}"),
    }
    if args.keep {
        let kept = work.keep();
        println!("soak: kept {}", kept.display());
    }
    if failures.is_empty() {
        println!("soak: PASSED");
        Ok(true)
    } else {
        println!("soak: FAILED, {} problems:", failures.len());
        for failure in failures.iter().take(40) {
            println!("  - {failure}");
        }
        Ok(false)
    }
}

/// SIGKILLs a random role at random intervals until `until`, restarting it each time.
async fn chaos(
    processes: Arc<Mutex<Processes>>,
    seed: u64,
    (low, high): (f64, f64),
    started_at: Instant,
    until: Instant,
) -> Result<Vec<Kill>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = Vec::new();
    loop {
        let wait = Duration::from_secs_f64(rng.random_range(low..=high));
        if Instant::now() + wait >= until {
            return Ok(kills);
        }
        tokio::time::sleep(wait).await;
        let role = Role::ALL[rng.random_range(0..Role::ALL.len())];
        let pause = Duration::from_millis(rng.random_range(0..=2_000));
        let at = started_at.elapsed();
        let back_in = processes.lock().await.kill(role, pause).await?;
        println!(
            "soak: {:>6.1} s  killed the {role}; running again after {:.2} s",
            at.as_secs_f64(),
            (pause + back_in).as_secs_f64()
        );
        kills.push(Kill { at, role, back_in });
    }
}

/// Reads each role's memory every second, and notices a process that died on its own.
async fn sample(
    processes: Arc<Mutex<Processes>>,
    started_at: Instant,
    stats: Arc<DriveStats>,
    samples: Arc<std::sync::Mutex<Vec<rss::Sample>>>,
) {
    let mut reported = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let mut processes = processes.lock().await;
        if let Err(e) = processes.check_alive()
            && !reported
        {
            stats.fail(format!("{e:#}"));
            reported = true;
        }
        for role in Role::ALL {
            if let Some(pid) = processes.pid(role)
                && let Some(kib) = procs::rss_kib(pid)
            {
                lock(&samples).push(rss::Sample {
                    role,
                    pid,
                    at: started_at.elapsed(),
                    kib,
                });
            }
        }
    }
}

/// The `q` quantile of `values` (0.5: median, 1.0: max), in milliseconds.
fn quantiles(values: &[Duration]) -> impl Fn(f64) -> String {
    let mut sorted = values.to_vec();
    sorted.sort();
    move |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".to_owned())
    }
}

fn report(
    started: &[drive::Started],
    stats: &DriveStats,
    findings: &verify::Findings,
    kills: &[Kill],
    drained: Duration,
) {
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for s in started {
        *kinds.entry(s.spec.orchestrator()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "instances: {} started ({}), {} with sub-orchestrations; {} events raised; {} client calls retried",
        started.len(),
        kinds.join(", "),
        findings.instances,
        stats
            .events_raised
            .load(std::sync::atomic::Ordering::Relaxed),
        stats
            .retried_calls
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let finished = lock(&stats.finished_at);
    let minutes = (drained.as_secs_f64() / 60.0).ceil().max(1.0) as usize;
    let mut per_minute = vec![0usize; minutes];
    for at in finished.iter() {
        let minute = (at.as_secs_f64() / 60.0) as usize;
        if let Some(slot) = per_minute.get_mut(minute.min(minutes - 1)) {
            *slot += 1;
        }
    }
    println!("finished per minute: {per_minute:?}");
    let (latency, lateness) = (quantiles(&findings.latency), quantiles(&findings.lateness));
    println!(
        "creation to completion (backend's record): p50 {}, p99 {}, max {}",
        latency(0.5),
        latency(0.99),
        latency(1.0)
    );
    println!(
        "timers: {} fired, none early; lateness p50 {}, p99 {}, max {}",
        findings.timers,
        lateness(0.5),
        lateness(0.99),
        lateness(1.0)
    );
    println!(
        "entities: {} tallies, {} distinct operations expected; {} made again after a failed batch",
        findings.tallies, findings.operations, findings.redone
    );
    for role in Role::ALL {
        let of_role: Vec<&Kill> = kills.iter().filter(|k| k.role == role).collect();
        let slowest = of_role.iter().map(|k| k.back_in).max().unwrap_or_default();
        println!(
            "kills: {role} {} times{} (slowest restart {:.2} s)",
            of_role.len(),
            of_role
                .first()
                .map(|k| format!(", first at {:.0} s", k.at.as_secs_f64()))
                .unwrap_or_default(),
            slowest.as_secs_f64()
        );
    }
}
