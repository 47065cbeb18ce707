//! Worker-side RPCs: the work-item stream with its per-stream concurrency slots, completions and abandons.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::*;
use futures::Stream;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::work_items::WireWorkItem;
use super::{Shared, checks, lock};
use crate::codec::now_ms;
use crate::store::{LeaseRequest, WorkKind};

/// The most names a work-item filter may list per kind (they become one SQL parameter each).
const MAX_FILTER_NAMES: usize = 1000;

/// How far in the future "never" is for a lease deadline that cannot be represented (options cap leases anyway).
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The stream of `GetWorkItems`.
pub(crate) type WorkItemStream = Pin<Box<dyn Stream<Item = Result<WireWorkItem, Status>> + Send>>;

/// In-flight work of one stream, to honour its `maxConcurrent*`, to give its leases back when it ends and to let
/// go of the ones that lapse: token -> (kind, when the lease runs out).
#[derive(Debug)]
pub(crate) struct StreamSlots {
    limits: [usize; 3],
    in_flight: Mutex<HashMap<String, (WorkKind, tokio::time::Instant)>>,
    freed: Notify,
}

/// A lease this process handed out and that is still live: who holds it and what it is for.
#[derive(Debug)]
pub(crate) struct Lease {
    slots: Arc<StreamSlots>,
    kind: WorkKind,
    hub: String,
    /// The leased orchestration instance (empty for other kinds).
    instance_id: String,
}

/// The chunks of an orchestrator turn received so far (`isPartial` completions), with their encoded size.
#[derive(Debug, Default)]
pub(crate) struct PartialTurn {
    actions: Vec<OrchestratorAction>,
    bytes: usize,
}

fn slot(kind: WorkKind) -> usize {
    match kind {
        WorkKind::Orchestration => 0,
        WorkKind::Activity => 1,
        WorkKind::Entity => 2,
    }
}

impl StreamSlots {
    fn free(&self) -> [usize; 3] {
        let mut used = [0usize; 3];
        for (kind, _) in lock(&self.in_flight).values() {
            used[slot(*kind)] += 1;
        }
        [0, 1, 2].map(|i| self.limits[i].saturating_sub(used[i]))
    }

    fn finish(&self, token: &str) {
        if lock(&self.in_flight).remove(token).is_some() {
            self.freed.notify_one();
        }
    }

    /// When the first of the stream's leases runs out.
    fn next_expiry(&self) -> Option<tokio::time::Instant> {
        lock(&self.in_flight).values().map(|(_, at)| *at).min()
    }
}

/// Frees the slot a lease occupied in its stream (the work item is done, abandoned or stale).
fn finish_lease(shared: &Shared, token: &str) {
    if let Some(lease) = lock(&shared.leases).remove(token) {
        lease.slots.finish(token);
    }
}

/// Forgets leases (and their buffered chunks) that are over: the stream closed or the leases ran out. Both maps
/// are locked together, leases first as everywhere, so a chunk never lands in the buffer of a lease that is gone.
fn forget_leases<'a>(shared: &Shared, tokens: impl IntoIterator<Item = &'a String>) {
    let mut leases = lock(&shared.leases);
    let mut partial = lock(&shared.partial);
    for token in tokens {
        leases.remove(token);
        partial.remove(token);
    }
}

fn stale(token: &str) -> Status {
    Status::not_found(crate::error::StoreError::StaleLease(token.to_owned()).to_string())
}

pub(super) async fn get_work_items(
    shared: &Arc<Shared>,
    request: Request<GetWorkItemsRequest>,
) -> Result<Response<WorkItemStream>, Status> {
    let (hub, signal) = shared.hub(&request).await?;
    let r = request.into_inner();
    if let Some(filters) = &r.work_item_filters {
        let names = [
            filters.orchestrations.len(),
            filters.activities.len(),
            filters.entities.len(),
        ];
        if names.iter().any(|n| *n > MAX_FILTER_NAMES) {
            return Err(Status::invalid_argument(format!(
                "work-item filters may name at most {MAX_FILTER_NAMES} orchestrations, activities and entities each"
            )));
        }
    }
    let limit = |n: i32| match usize::try_from(n) {
        Ok(n) if n > 0 => n,
        _ => shared.options.default_max_concurrency,
    };
    let slots = Arc::new(StreamSlots {
        limits: [
            limit(r.max_concurrent_orchestration_work_items),
            limit(r.max_concurrent_activity_work_items),
            limit(r.max_concurrent_entity_work_items),
        ],
        in_flight: Mutex::new(HashMap::new()),
        freed: Notify::new(),
    });
    let (tx, rx) = mpsc::channel(16);
    let stream = StreamTask {
        shared: shared.clone(),
        hub,
        work: signal.work.subscribe(),
        slots,
        filters: r.work_item_filters,
        history_streaming: r
            .capabilities
            .contains(&(WorkerCapability::HistoryStreaming as i32)),
        tx,
    };
    tokio::spawn(stream.run());
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

struct StreamTask {
    shared: Arc<Shared>,
    hub: String,
    work: tokio::sync::watch::Receiver<u64>,
    slots: Arc<StreamSlots>,
    filters: Option<WorkItemFilters>,
    history_streaming: bool,
    tx: mpsc::Sender<Result<WireWorkItem, Status>>,
}

impl StreamTask {
    async fn run(mut self) {
        tracing::debug!(hub = %self.hub, "work-item stream opened");
        let ping_every = self.shared.options.ping_interval;
        let later = |after: Duration| {
            let now = tokio::time::Instant::now();
            now.checked_add(after).unwrap_or_else(|| now + FAR_FUTURE)
        };
        let mut next_ping = later(ping_every);
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.expire_lapsed().await;
            // Mark the current version seen before looking, so a change made while we look still wakes us.
            self.work.borrow_and_update();
            match self.lease_and_send().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(()) => break,
            }
            let due = match self.shared.store.next_due(self.hub.clone()).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the next due time");
                    None
                }
            };
            let wake_at = due
                .map(|at| {
                    later(Duration::from_millis(
                        u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0),
                    ))
                })
                .into_iter()
                .chain(self.slots.next_expiry())
                .fold(next_ping, tokio::time::Instant::min);
            let mut hub_gone = false;
            tokio::select! {
                changed = self.work.changed() => hub_gone = changed.is_err(),
                _ = self.slots.freed.notified() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = self.tx.closed() => break,
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            if hub_gone {
                // The hub was deleted under this stream: follow the hub of the same name from now on.
                match self.shared.hub_named(&self.hub).await {
                    Ok(signal) => self.work = signal.work.subscribe(),
                    Err(_) => break,
                }
            }
            if tokio::time::Instant::now() >= next_ping {
                next_ping = later(ping_every);
                let ping = WorkItem {
                    request: Some(work_item::Request::HealthPing(HealthPing {})),
                    completion_token: String::new(),
                };
                if self.tx.send(Ok(ping.into())).await.is_err() {
                    break;
                }
            }
        }
        self.give_back().await;
        tracing::debug!(hub = %self.hub, "work-item stream closed");
    }

    /// Leases what the stream has room for and sends it. `Ok(true)` when something was sent, `Err` when the
    /// stream is gone.
    async fn lease_and_send(&mut self) -> Result<bool, ()> {
        let [orchestrations, activities, entities] = self.slots.free();
        if orchestrations + activities + entities == 0 {
            return Ok(false);
        }
        let options = &self.shared.options;
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let request = LeaseRequest {
            orchestrations,
            activities,
            entities,
            filters: self.filters.clone(),
            orchestration_lease_ms: ms(options.orchestration_lease),
            activity_lease_ms: ms(options.activity_lease),
            entity_lease_ms: ms(options.entity_lease),
            max_entity_batch: options.max_entity_batch,
            entity_v2: options.entity_format == crate::options::EntityFormat::V2,
            history_streaming_threshold: self
                .history_streaming
                .then_some(options.history_streaming_threshold),
        };
        let leased = match self.shared.store.lease(self.hub.clone(), request).await {
            Ok(leased) => leased,
            Err(e) => {
                tracing::warn!(error = %e, "leasing work failed");
                return Ok(false);
            }
        };
        let sent = !leased.is_empty();
        // Every lease joins the stream before the first send: a stream that closes mid-batch gives back what it
        // never sent too, instead of leaving it leased until the lease expires.
        for work in &leased {
            let length = match work.kind {
                WorkKind::Orchestration => options.orchestration_lease,
                WorkKind::Activity => options.activity_lease,
                WorkKind::Entity => options.entity_lease,
            };
            let now = tokio::time::Instant::now();
            let ends = now.checked_add(length).unwrap_or_else(|| now + FAR_FUTURE);
            let instance_id = match &work.item.request {
                Some(work_item::Request::OrchestratorRequest(r)) => r.instance_id.clone(),
                _ => String::new(),
            };
            lock(&self.slots.in_flight).insert(work.token.clone(), (work.kind, ends));
            lock(&self.shared.leases).insert(
                work.token.clone(),
                Lease {
                    slots: self.slots.clone(),
                    kind: work.kind,
                    hub: self.hub.clone(),
                    instance_id,
                },
            );
        }
        for work in leased {
            let item = WireWorkItem {
                item: work.item,
                past_events: work.past_events,
            };
            if self.tx.send(Ok(item)).await.is_err() {
                return Err(());
            }
        }
        Ok(sent)
    }

    /// Lets go of the leases that ran out: their slots take new work, their buffered chunks are dropped, and the
    /// store hands the work out again at once, so a late completion under such a token finds nothing (`NOT_FOUND`)
    /// instead of the remains of a turn.
    async fn expire_lapsed(&self) {
        let now = tokio::time::Instant::now();
        let lapsed: Vec<(WorkKind, String)> = {
            let mut in_flight = lock(&self.slots.in_flight);
            let tokens: Vec<String> = in_flight
                .iter()
                .filter(|(_, (_, ends))| *ends <= now)
                .map(|(token, _)| token.clone())
                .collect();
            tokens
                .into_iter()
                .filter_map(|token| in_flight.remove(&token).map(|(kind, _)| (kind, token)))
                .collect()
        };
        if lapsed.is_empty() {
            return;
        }
        tracing::debug!(hub = %self.hub, leases = lapsed.len(), "work-item leases ran out");
        forget_leases(&self.shared, lapsed.iter().map(|(_, token)| token));
        if let Err(e) = self.shared.store.release(self.hub.clone(), lapsed).await {
            tracing::warn!(error = %e, "cannot release lapsed leases; they will be handed out when seen as expired");
        }
    }

    /// The worker is gone: everything it held is handed out again at once.
    async fn give_back(&self) {
        let held: Vec<(WorkKind, String)> = lock(&self.slots.in_flight)
            .drain()
            .map(|(token, (kind, _))| (kind, token))
            .collect();
        if held.is_empty() {
            return;
        }
        forget_leases(&self.shared, held.iter().map(|(_, token)| token));
        if let Err(e) = self.shared.store.release(self.hub.clone(), held).await {
            tracing::warn!(error = %e, "cannot release the leases of a closed stream; they will expire");
        }
    }
}

pub(super) async fn complete_activity(
    shared: &Shared,
    request: Request<ActivityResponse>,
) -> Result<Response<CompleteTaskResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let mut r = request.into_inner();
    let token = r.completion_token.clone();
    if let Err(rejected) = checks::activity(&r, shared.options.max_payload_bytes) {
        // Failing the task keeps the orchestration alive and tells its author why.
        r.result = None;
        r.failure_details = Some(rejected.failure());
    }
    let result = shared.store.complete_activity(hub, r).await;
    finish_lease(shared, &token);
    result?;
    Ok(Response::new(CompleteTaskResponse {}))
}

#[allow(deprecated)]
pub(super) async fn complete_orchestrator(
    shared: &Shared,
    request: Request<OrchestratorResponse>,
) -> Result<Response<CompleteTaskResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let mut r = request.into_inner();
    let token = r.completion_token.clone();
    let bound = shared.options.max_chunked_turn_bytes;
    let added: usize = r.actions.iter().map(prost::Message::encoded_len).sum();
    // Chunked completions (older .NET workers) are kept until the last chunk, only for a live orchestrator lease
    // of this hub, and only up to the bound.
    let (instance_id, chunks) = {
        let leases = lock(&shared.leases);
        let lease = leases
            .get(&token)
            .filter(|l| l.kind == WorkKind::Orchestration && l.hub == hub)
            .ok_or_else(|| stale(&token))?;
        let mut partial = lock(&shared.partial);
        let bytes = partial
            .get(&token)
            .map_or(0, |p| p.bytes)
            .saturating_add(added);
        if r.is_partial && bytes <= bound {
            let turn = partial.entry(token.clone()).or_default();
            turn.bytes = bytes;
            turn.actions.append(&mut r.actions);
            return Ok(Response::new(CompleteTaskResponse {}));
        }
        let chunks = partial.remove(&token);
        (
            lease.instance_id.clone(),
            chunks.map(|c| (c.actions, bytes)),
        )
    };
    let mut too_large = None;
    if let Some((mut earlier, bytes)) = chunks {
        earlier.append(&mut r.actions);
        r.actions = earlier;
        if bytes > bound {
            too_large = Some(format!(
                "the chunks of this orchestrator turn add up to {bytes} bytes; the limit is {bound} bytes"
            ));
        }
    } else if r.is_partial {
        // A single chunk over the bound.
        too_large = Some(format!(
            "the chunks of this orchestrator turn add up to {added} bytes; the limit is {bound} bytes"
        ));
    }
    if let Some(message) = &too_large {
        fail_turn(
            &mut r,
            &checks::Rejection {
                error_type: checks::PAYLOAD_TOO_LARGE,
                message: message.clone(),
            },
        );
    } else if let Err(rejected) =
        checks::orchestrator_turn(&mut r, &instance_id, shared.options.max_payload_bytes)
    {
        tracing::warn!(instance = %instance_id, "{}", rejected.message);
        fail_turn(&mut r, &rejected);
    }
    let result = shared.store.complete_orchestration(hub, r).await;
    finish_lease(shared, &token);
    result?;
    match too_large {
        Some(message) => Err(Status::resource_exhausted(message)),
        None => Ok(Response::new(CompleteTaskResponse {})),
    }
}

/// Replaces a turn that cannot be applied by one that fails the orchestration with the reason: none of the
/// turn's actions happen.
#[allow(deprecated)]
fn fail_turn(r: &mut OrchestratorResponse, rejected: &checks::Rejection) {
    let id = r
        .actions
        .iter()
        .map(|a| a.id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    r.is_partial = false;
    r.custom_status = None;
    r.actions = vec![OrchestratorAction {
        id,
        orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
            CompleteOrchestrationAction {
                orchestration_status: OrchestrationStatus::Failed as i32,
                failure_details: Some(rejected.failure()),
                ..CompleteOrchestrationAction::default()
            },
        )),
    }];
}

pub(super) async fn complete_entity(
    shared: &Shared,
    request: Request<EntityBatchResult>,
) -> Result<Response<CompleteTaskResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let mut r = request.into_inner();
    let token = r.completion_token.clone();
    if let Err(rejected) = checks::entity_batch(&r, shared.options.max_payload_bytes) {
        // The batch cannot be kept: fail it as a whole and leave the old state in place.
        tracing::warn!(lease = %r.completion_token, "{}", rejected.message);
        r.results.clear();
        r.actions.clear();
        r.entity_state = None;
        r.failure_details = Some(rejected.failure());
    }
    let result = shared.store.complete_entity(hub, r).await;
    finish_lease(shared, &token);
    result?;
    Ok(Response::new(CompleteTaskResponse {}))
}

pub(super) async fn abandon<T>(
    shared: &Shared,
    request: &Request<T>,
    kind: WorkKind,
    token: String,
) -> Result<(), Status> {
    let (hub, _) = shared.hub(request).await?;
    lock(&shared.partial).remove(&token);
    let result = shared.store.abandon(hub, kind, token.clone()).await;
    finish_lease(shared, &token);
    result.map_err(Status::from)
}
