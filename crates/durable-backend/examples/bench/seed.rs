//! Fills a database for the growth benchmarks through the store API (no gRPC, no worker): every instance is
//! started, leased and given a real turn by the store's own code, so its rows, history and indexes are those a
//! worker would have left.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use durable_backend::{LeaseRequest, SqliteStore, Storage, Store, Synchronous};
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::{
    CompleteOrchestrationAction, CreateInstanceRequest, OrchestrationStatus, OrchestratorAction,
    OrchestratorResponse, work_item,
};

const HUB: &str = "default";
/// Instances started, leased and completed per step: large enough that commit groups fill up.
const STEP: usize = 2000;

/// How the seeded instances end their first turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seeded {
    /// Completed with a small result (goal 3a: a store full of finished work).
    Completed,
    /// Running, waiting for an external event that never comes (goal 3b): the turn schedules nothing.
    Waiting,
}

/// Adds `n` instances named `{prefix}-{i}` to the database at `db`, `synchronous=OFF` (seeding is set-up, not
/// the thing measured). Prints progress to stderr.
pub(crate) async fn seed(db: &Path, n: usize, kind: Seeded, prefix: &str) -> Result<()> {
    let store = SqliteStore::open(&Storage::File(db.to_owned()), Synchronous::Off, 1024)?;
    store.ensure_hubs(vec![HUB.to_owned()]).await?;
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let count = STEP.min(n - done);
        let starts = (done..done + count).map(|i| {
            let request = CreateInstanceRequest {
                instance_id: format!("{prefix}-{i:08}"),
                name: "sequence".to_owned(),
                input: Some("null".to_owned()),
                ..CreateInstanceRequest::default()
            };
            store.start_instance(HUB.to_owned(), request)
        });
        for started in futures::future::join_all(starts).await {
            started?;
        }
        let mut leased = Vec::with_capacity(count);
        while leased.len() < count {
            let mut request = LeaseRequest::default();
            request.orchestrations = count - leased.len();
            request.orchestration_lease_ms = 600_000;
            let got = store.lease(HUB.to_owned(), request).await?;
            if got.is_empty() {
                bail!(
                    "seeding: {} instances were started but not leased",
                    count - leased.len()
                );
            }
            leased.extend(got);
        }
        let completions = leased.into_iter().map(|work| {
            let Some(work_item::Request::OrchestratorRequest(turn)) = work.item.request else {
                return futures::future::Either::Left(futures::future::ready(Err(
                    durable_backend::StoreError::Internal("not an orchestrator turn".to_owned()),
                )));
            };
            let actions = match kind {
                Seeded::Waiting => Vec::new(),
                Seeded::Completed => vec![OrchestratorAction {
                    id: 0,
                    orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
                        CompleteOrchestrationAction {
                            orchestration_status: OrchestrationStatus::Completed as i32,
                            result: Some(
                                "[\"one\",\"two\",\"three\",\"four\",\"five\"]".to_owned(),
                            ),
                            ..CompleteOrchestrationAction::default()
                        },
                    )),
                }],
            };
            futures::future::Either::Right(store.complete_orchestration(
                HUB.to_owned(),
                OrchestratorResponse {
                    instance_id: turn.instance_id,
                    completion_token: work.token,
                    actions,
                    ..OrchestratorResponse::default()
                },
            ))
        });
        for completed in futures::future::join_all(completions).await {
            completed.context("seeding: a turn was not applied")?;
        }
        done += count;
        if done % 100_000 == 0 || done == n {
            eprintln!(
                "  seeded {done} of {n} {kind:?} instances in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
