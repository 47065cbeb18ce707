//! The end of the run, while the backend still serves: every instance (sub-orchestrations included) completed
//! once with the output its input implies, its timers fired no earlier than due, and every tally holds exactly
//! the operations sent to it, each once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use durable_core::EntityId;
use durable_core::proto::history_event::EventType;
use durable_grpc::{DurableClient, OrchestrationStatus};
use durable_soak::workload::{Spec, TALLY, Tally, done_key};
use futures::StreamExt as _;

use crate::drive::{DriveStats, Started, retry};

/// How many instances are checked at once.
const PARALLEL: usize = 16;
/// Nothing in the workload needs more than a few seconds, and a killed process is back within seconds; an instance
/// that took this long waited for something that should not have been waited for (an expired lease, a lost
/// wake-up).
const STALL_LIMIT: Duration = Duration::from_secs(120);

/// What the checks found.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) instances: usize,
    pub(crate) timers: usize,
    /// Lateness of every timer, from its fire time to the dispatch of the turn that delivered it.
    pub(crate) lateness: Vec<Duration>,
    /// Each instance's time from creation to completion, as the backend recorded them.
    pub(crate) latency: Vec<Duration>,
    /// Entity operations the orchestrations made again after a failed batch (their custom status).
    pub(crate) redone: u64,
    pub(crate) tallies: usize,
    pub(crate) operations: usize,
    pub(crate) failures: Vec<String>,
}

/// Every instance the run made: those it started and their sub-orchestrations.
pub(crate) fn all_instances(started: &[Started]) -> Vec<(String, Spec)> {
    let mut all = Vec::new();
    for s in started {
        all.push((s.id.clone(), s.spec.clone()));
        all.extend(s.spec.children(&s.id));
    }
    all
}

pub(crate) async fn instances(
    client: &DurableClient,
    started: &[Started],
    stats: &DriveStats,
    findings: &mut Findings,
) {
    let all = all_instances(started);
    findings.instances = all.len();
    let results: Vec<Result<Checked, String>> = futures::stream::iter(all)
        .map(|(id, spec)| async move { check_instance(client, &id, &spec, stats).await })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for result in results {
        match result {
            Ok(checked) => {
                findings.timers += checked.lateness.len();
                findings.lateness.extend(checked.lateness);
                findings.latency.push(checked.latency);
                findings.redone += checked.redone;
            }
            Err(failure) => findings.failures.push(failure),
        }
    }
}

/// One instance that passed.
struct Checked {
    lateness: Vec<Duration>,
    latency: Duration,
    redone: u64,
}

async fn check_instance(
    client: &DurableClient,
    id: &str,
    spec: &Spec,
    stats: &DriveStats,
) -> Result<Checked, String> {
    let state = retry("get the instance", stats, || client.get_instance(id, true))
        .await
        .map_err(|e| format!("{id}: {e:#}"))?
        .ok_or_else(|| format!("{id}: does not exist"))?;
    if state.status != OrchestrationStatus::Completed {
        return Err(format!(
            "{id}: {:?} ({:?})",
            state.status, state.failure_details
        ));
    }
    let output: serde_json::Value = state
        .serialized_output
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("{id}: output is not JSON: {e}"))?
        .unwrap_or(serde_json::Value::Null);
    let expected = spec.expected_output();
    if output != expected {
        return Err(format!("{id}: output {output}, expected {expected}"));
    }
    let history = retry("get the history", stats, || client.get_history(id))
        .await
        .map_err(|e| format!("{id}: {e:#}"))?;
    let completions = history
        .iter()
        .filter(|e| matches!(e.event_type, Some(EventType::ExecutionCompleted(_))))
        .count();
    if completions != 1 {
        return Err(format!("{id}: completed {completions} times"));
    }
    let timers = durable_testkit::fired_timers(&history).map_err(|e| format!("{id}: {e}"))?;
    let needs_timer = matches!(
        spec,
        Spec::Sleep { .. } | Spec::Approval { approval: None, .. }
    );
    if needs_timer && timers.is_empty() {
        return Err(format!("{id}: no timer fired"));
    }
    let latency = state
        .completed_at
        .zip(state.created_at)
        .and_then(|(done, created)| done.duration_since(created).ok())
        .unwrap_or_default();
    if latency > STALL_LIMIT {
        return Err(format!(
            "{id}: took {:.0} s from creation to completion (stalled)",
            latency.as_secs_f64()
        ));
    }
    Ok(Checked {
        lateness: timers
            .iter()
            .map(durable_testkit::FiredTimer::lateness)
            .collect(),
        latency,
        redone: state
            .custom_status::<serde_json::Value>()
            .ok()
            .flatten()
            .and_then(|status| status["redone"].as_u64())
            .unwrap_or(0),
    })
}

/// What each tally must hold: its operations and their sum.
fn expected_tallies(started: &[Started]) -> BTreeMap<String, (BTreeSet<String>, i64)> {
    let mut expected: BTreeMap<String, (BTreeSet<String>, i64)> = BTreeMap::new();
    for (id, spec) in all_instances(started) {
        let done = expected.entry(done_key(&id)).or_default();
        done.0.insert(id.clone());
        done.1 += 1;
        for (key, op, n) in spec.operations(&id) {
            let tally = expected.entry(key).or_default();
            tally.0.insert(op);
            tally.1 += n;
        }
    }
    expected
}

/// Polls the tallies until each holds what it should (signals may still be on their way) or `limit` passes.
pub(crate) async fn tallies(
    client: &DurableClient,
    started: &[Started],
    stats: &DriveStats,
    limit: Duration,
    findings: &mut Findings,
) {
    let expected = expected_tallies(started);
    findings.tallies = expected.len();
    findings.operations = expected.values().map(|(ops, _)| ops.len()).sum();
    let deadline = Instant::now() + limit;
    loop {
        let mut differences = Vec::new();
        for (key, (ops, sum)) in &expected {
            let entity = EntityId::new(TALLY, key);
            let found = match retry("get a tally", stats, || {
                client.get_entity(entity.clone(), true)
            })
            .await
            {
                Ok(found) => found,
                Err(e) => {
                    differences.push(format!("{entity}: {e:#}"));
                    continue;
                }
            };
            let tally: Tally = match found.map(|m| m.state::<Tally>()) {
                Some(Ok(Some(tally))) => tally,
                Some(Ok(None)) | None => Tally::default(),
                Some(Err(e)) => {
                    differences.push(format!("{entity}: state is not a tally: {e}"));
                    continue;
                }
            };
            if !tally.duplicates.is_empty() {
                differences.push(format!(
                    "{entity}: {} operations applied twice, e.g. {:?}",
                    tally.duplicates.len(),
                    tally.duplicates.iter().take(3).collect::<Vec<_>>()
                ));
            }
            let missing: Vec<&String> = ops.difference(&tally.ops).collect();
            let unexpected: Vec<&String> = tally.ops.difference(ops).collect();
            if !missing.is_empty() || !unexpected.is_empty() || tally.sum != *sum {
                differences.push(format!(
                    "{entity}: sum {} (expected {sum}), {} operations missing (e.g. {:?}), {} unexpected (e.g. {:?})",
                    tally.sum,
                    missing.len(),
                    missing.iter().take(3).collect::<Vec<_>>(),
                    unexpected.len(),
                    unexpected.iter().take(3).collect::<Vec<_>>()
                ));
            }
        }
        if differences.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            findings.failures.extend(differences);
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
