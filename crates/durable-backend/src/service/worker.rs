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

use super::{Shared, lock, validate};
use crate::codec::now_ms;
use crate::store::{LeaseRequest, WorkKind};

/// The stream of `GetWorkItems`.
pub(crate) type WorkItemStream = Pin<Box<dyn Stream<Item = Result<WorkItem, Status>> + Send>>;

/// In-flight work of one stream, to honour its `maxConcurrent*` and to give its leases back when it ends.
#[derive(Debug)]
pub(crate) struct StreamSlots {
    limits: [usize; 3],
    in_flight: Mutex<HashMap<String, WorkKind>>,
    freed: Notify,
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
        for kind in lock(&self.in_flight).values() {
            used[slot(*kind)] += 1;
        }
        [0, 1, 2].map(|i| self.limits[i].saturating_sub(used[i]))
    }

    fn finish(&self, token: &str) {
        if lock(&self.in_flight).remove(token).is_some() {
            self.freed.notify_one();
        }
    }
}

/// Frees the slot a lease occupied in its stream (the work item is done, abandoned or stale).
fn finish_lease(shared: &Shared, token: &str) {
    if let Some(slots) = lock(&shared.leases).remove(token) {
        slots.finish(token);
    }
}

pub(super) async fn get_work_items(
    shared: &Arc<Shared>,
    request: Request<GetWorkItemsRequest>,
) -> Result<Response<WorkItemStream>, Status> {
    let (hub, signal) = shared.hub(&request).await?;
    let r = request.into_inner();
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
    tx: mpsc::Sender<Result<WorkItem, Status>>,
}

impl StreamTask {
    async fn run(mut self) {
        tracing::debug!(hub = %self.hub, "work-item stream opened");
        let ping_every = self.shared.options.ping_interval;
        let mut next_ping = tokio::time::Instant::now() + ping_every;
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                break;
            }
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
                    let delay = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
                    tokio::time::Instant::now() + Duration::from_millis(delay)
                })
                .map_or(next_ping, |t| t.min(next_ping));
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
                next_ping = tokio::time::Instant::now() + ping_every;
                let ping = WorkItem {
                    request: Some(work_item::Request::HealthPing(HealthPing {})),
                    completion_token: String::new(),
                };
                if self.tx.send(Ok(ping)).await.is_err() {
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
        for work in leased {
            lock(&self.slots.in_flight).insert(work.token.clone(), work.kind);
            lock(&self.shared.leases).insert(work.token.clone(), self.slots.clone());
            if self.tx.send(Ok(work.item)).await.is_err() {
                return Err(());
            }
        }
        Ok(sent)
    }

    /// The worker is gone: everything it held is handed out again at once.
    async fn give_back(&self) {
        let held: Vec<(WorkKind, String)> = lock(&self.slots.in_flight)
            .drain()
            .map(|(token, kind)| (kind, token))
            .collect();
        if held.is_empty() {
            return;
        }
        {
            let mut leases = lock(&self.shared.leases);
            let mut partial = lock(&self.shared.partial);
            for (_, token) in &held {
                leases.remove(token);
                partial.remove(token);
            }
        }
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
    let limit = shared.options.max_payload_bytes;
    if let Err(too_big) = validate::payload("activity result", r.result.as_ref(), limit) {
        // Failing the task keeps the orchestration alive and tells its author why.
        r.result = None;
        r.failure_details = Some(TaskFailureDetails {
            error_type: "PayloadTooLarge".to_owned(),
            error_message: too_big.message().to_owned(),
            is_non_retriable: true,
            ..TaskFailureDetails::default()
        });
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
    if r.is_partial {
        // Chunked completions (older .NET workers): keep the work item open until the last chunk.
        lock(&shared.partial)
            .entry(token)
            .or_default()
            .append(&mut r.actions);
        return Ok(Response::new(CompleteTaskResponse {}));
    }
    if let Some(mut earlier) = lock(&shared.partial).remove(&token) {
        earlier.append(&mut r.actions);
        r.actions = earlier;
    }
    if let Err(too_big) = check_actions(&r, shared.options.max_payload_bytes) {
        tracing::warn!(instance = %r.instance_id, "{}", too_big.message());
        let id = r
            .actions
            .iter()
            .map(|a| a.id)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        r.custom_status = None;
        r.actions = vec![OrchestratorAction {
            id,
            orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
                CompleteOrchestrationAction {
                    orchestration_status: OrchestrationStatus::Failed as i32,
                    failure_details: Some(TaskFailureDetails {
                        error_type: "PayloadTooLarge".to_owned(),
                        error_message: too_big.message().to_owned(),
                        is_non_retriable: true,
                        ..TaskFailureDetails::default()
                    }),
                    ..CompleteOrchestrationAction::default()
                },
            )),
        }];
    }
    let result = shared.store.complete_orchestration(hub, r).await;
    finish_lease(shared, &token);
    result?;
    Ok(Response::new(CompleteTaskResponse {}))
}

/// Every payload an orchestrator turn wants to store, against the limit.
fn check_actions(r: &OrchestratorResponse, limit: usize) -> Result<(), Status> {
    validate::payload("custom status", r.custom_status.as_ref(), limit)?;
    for action in &r.actions {
        match &action.orchestrator_action_type {
            Some(OrchestratorActionType::ScheduleTask(a)) => {
                validate::payload("activity input", a.input.as_ref(), limit)?
            }
            Some(OrchestratorActionType::CreateSubOrchestration(a)) => {
                validate::payload("sub-orchestration input", a.input.as_ref(), limit)?
            }
            Some(OrchestratorActionType::SendEvent(a)) => {
                validate::payload("event data", a.data.as_ref(), limit)?
            }
            Some(OrchestratorActionType::CompleteOrchestration(a)) => {
                validate::payload("orchestration output", a.result.as_ref(), limit)?
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) async fn complete_entity(
    shared: &Shared,
    request: Request<EntityBatchResult>,
) -> Result<Response<CompleteTaskResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let mut r = request.into_inner();
    let token = r.completion_token.clone();
    let limit = shared.options.max_payload_bytes;
    if let Err(too_big) = validate::payload("entity state", r.entity_state.as_ref(), limit) {
        // The new state cannot be kept: fail the whole batch and leave the old state in place.
        r.results.clear();
        r.actions.clear();
        r.failure_details = Some(TaskFailureDetails {
            error_type: "PayloadTooLarge".to_owned(),
            error_message: too_big.message().to_owned(),
            is_non_retriable: true,
            ..TaskFailureDetails::default()
        });
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
