//! The workload: instances of random specs started at a steady concurrency until the run's end, each followed
//! until it finishes. Every client call survives the backend going away: it is retried until its deadline, and a
//! start whose reply was lost is looked up before it is tried again (starting a finished instance again would
//! replace it, which would run it twice).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use durable_grpc::{DurableClient, StartOptions};
use durable_soak::workload::{APPROVAL_EVENT, ENTITY_KEYS, Spec};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// How long any one client call may keep failing (the backend is never down that long on purpose).
const CALL_DEADLINE: Duration = Duration::from_secs(180);
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// An instance the run started, with the spec its output follows from.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) id: String,
    pub(crate) spec: Spec,
}

/// What happened while driving.
#[derive(Debug, Default)]
pub(crate) struct DriveStats {
    pub(crate) retried_calls: AtomicU64,
    pub(crate) events_raised: AtomicU64,
    /// When each instance was seen finished, from the start of the run.
    pub(crate) finished_at: Mutex<Vec<Duration>>,
    pub(crate) failures: Mutex<Vec<String>>,
}

impl DriveStats {
    pub(crate) fn fail(&self, text: String) {
        eprintln!("soak: {text}");
        lock(&self.failures).push(text);
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts instances until `until`, keeping `concurrency` of them in flight, then waits (until `drain_by`) for the
/// ones still running. Returns every instance started.
pub(crate) async fn drive(
    client: DurableClient,
    seed: u64,
    concurrency: usize,
    started_at: Instant,
    until: Instant,
    drain_by: Instant,
    stats: Arc<DriveStats>,
) -> Vec<Started> {
    let mut rng = StdRng::seed_from_u64(seed);
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        let Ok(Ok(permit)) = tokio::time::timeout(
            until.saturating_duration_since(Instant::now()),
            Arc::clone(&slots).acquire_owned(),
        )
        .await
        else {
            break;
        };
        n += 1;
        let id = format!("soak-{n:06}");
        let spec = random_spec(&mut rng, n);
        let raise_after = Duration::from_millis(rng.random_range(100..=2_000));
        started.push(Started {
            id: id.clone(),
            spec: spec.clone(),
        });
        let (client, stats) = (client.clone(), Arc::clone(&stats));
        tasks.spawn(async move {
            if let Err(e) = follow(&client, &id, &spec, raise_after, started_at, &stats).await {
                stats.fail(format!("{id}: {e:#}"));
            }
            drop(permit);
        });
        // Reap finished followers as we go, so the set stays as small as the concurrency.
        while tasks.try_join_next().is_some() {}
    }
    let drained = tokio::time::timeout(drain_by.saturating_duration_since(Instant::now()), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        stats.fail(format!(
            "{} instances still running when the drain ended",
            tasks.len()
        ));
        tasks.abort_all();
    }
    started
}

fn random_spec(rng: &mut StdRng, n: u64) -> Spec {
    let pick = rng.random_range(0..100u32);
    let seed = rng.random_range(0..1_000_000u64);
    match pick {
        0..25 => Spec::Chain {
            seed,
            steps: rng.random_range(1..=6),
        },
        25..40 => Spec::FanOut {
            seed,
            width: rng.random_range(2..=10),
        },
        40..55 => Spec::Sleep {
            millis: rng.random_range(200..=3_000),
        },
        55..65 => Spec::Approval {
            // Long enough that the event, raised within seconds, always wins.
            timeout_millis: 600_000,
            approval: Some(format!("yes-{n}")),
        },
        65..75 => Spec::Approval {
            timeout_millis: rng.random_range(500..=3_000),
            approval: None,
        },
        75..90 => Spec::Entities {
            key: rng.random_range(0..ENTITY_KEYS),
            calls: rng.random_range(1..=3),
            signals: rng.random_range(1..=3),
            amount: rng.random_range(1..=100),
        },
        _ => {
            let children = rng.random_range(2..=4);
            Spec::Parent {
                seeds: (0..children)
                    .map(|_| rng.random_range(0..1_000_000))
                    .collect(),
                steps: rng.random_range(1..=3),
            }
        }
    }
}

/// Starts one instance, raises its approval if it gets one, and waits until it has finished.
async fn follow(
    client: &DurableClient,
    id: &str,
    spec: &Spec,
    raise_after: Duration,
    started_at: Instant,
    stats: &DriveStats,
) -> Result<()> {
    start(client, id, spec, stats).await?;
    if let Spec::Approval {
        approval: Some(value),
        ..
    } = spec
    {
        tokio::time::sleep(raise_after).await;
        retry("raise the approval", stats, || {
            client.raise_event(id, APPROVAL_EVENT, value)
        })
        .await?;
        stats.events_raised.fetch_add(1, Ordering::Relaxed);
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match client
            .wait_for_completion(id, false, Duration::from_secs(20))
            .await
        {
            Ok(done) if done.status.is_terminal() => {
                lock(&stats.finished_at).push(started_at.elapsed());
                return Ok(());
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
        }
        if Instant::now() > deadline {
            bail!("not finished after 15 minutes");
        }
    }
}

async fn start(client: &DurableClient, id: &str, spec: &Spec, stats: &DriveStats) -> Result<()> {
    let deadline = Instant::now() + CALL_DEADLINE;
    loop {
        let attempt = client
            .schedule_new_orchestration(
                spec.orchestrator(),
                spec,
                StartOptions::new().with_instance_id(id),
            )
            .await;
        let error = match attempt {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        stats.retried_calls.fetch_add(1, Ordering::Relaxed);
        // The start may have been committed and only its reply lost.
        let exists = retry("look up a start", stats, || client.get_instance(id, false)).await?;
        if exists.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("cannot start: {error}");
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Calls until the call succeeds or `CALL_DEADLINE` passes.
pub(crate) async fn retry<T, F, Fut>(what: &str, stats: &DriveStats, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = durable_grpc::Result<T>>,
{
    let deadline = Instant::now() + CALL_DEADLINE;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() > deadline => bail!("{what}: {e}"),
            Err(_) => {
                stats.retried_calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}
