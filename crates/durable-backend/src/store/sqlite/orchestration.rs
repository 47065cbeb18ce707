//! Orchestrator turns: leasing an instance with its inbox, and applying the worker's actions.

use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::{
    CompleteOrchestrationAction, EventRaisedEvent, EventSentEvent, ExecutionCompletedEvent,
    HistoryEvent, OrchestrationInstance, OrchestrationStatus, OrchestratorRequest,
    OrchestratorResponse, OrchestratorStartedEvent, SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent, SubOrchestrationInstanceFailedEvent, TaskFailureDetails,
    TaskScheduledEvent, TimerCreatedEvent, TimerFiredEvent, WorkItem, work_item,
};
use rusqlite::Connection;
use rusqlite::OptionalExtension;

use super::instances::{
    self, InstanceRow, NewInstance, PRIORITY_FIRST, PRIORITY_NORMAL, ParentRef,
};
use super::leases::MessageKey;
use super::{activity, entity, entity_lock};
use crate::codec::{decode_event, event, is_terminal, ms, new_id, status_from_i32};
use crate::error::StoreError;
use crate::past_events::EncodedPastEvents;
use crate::store::{LeaseRequest, LeasedWork, WorkKind};

/// Instances considered per lease call (not counting those already leased); filters that reject many candidates
/// still see this many.
const CANDIDATES: usize = 256;

/// From this many messages in one turn, they leave the ready index while the turn is out, as the messages that
/// arrive meanwhile do (see `instances::enqueue`): every lease call during the turn would pass over them. A turn
/// of a few messages is not worth the write.
const HOLD_DELIVERED: usize = 32;

/// The orchestrations' queue in arrival order (`?1` hub, `?2` now): the instance of every ready message visible by
/// now. It reads the ready index alone (every column it names is in the index, see schema version 13), so passing
/// over the messages of instances whose turn is out costs an index entry each, not a row.
pub(super) const QUEUE_WALK: &str = "SELECT instance_id FROM inbox INDEXED BY inbox_ready \
     WHERE hub = ?1 AND lease_token IS NULL AND visible_at <= ?2 ORDER BY id";

/// What a lease call reads of an instance the walk meets (`?1` hub, `?2` instance), once per call: whether it can
/// run and is wanted, and what its turn's work item carries (the execution id, and the trace context kept for this
/// execution only).
const CANDIDATE: &str = "SELECT name, version, status, scheduled_start_at, execution_id, \
     CASE WHEN trace_execution_id = execution_id THEN trace_context END \
     FROM instances WHERE hub = ?1 AND instance_id = ?2";

/// An instance picked for a turn, with what its work item needs of its row.
struct Candidate {
    id: String,
    execution_id: String,
    trace: Option<Vec<u8>>,
}

pub(super) fn lease(
    c: &Connection,
    hub: &str,
    request: &LeaseRequest,
    now: i64,
) -> Result<Vec<LeasedWork>, StoreError> {
    let filters = request
        .filters
        .as_ref()
        .map(|f| f.orchestrations.as_slice())
        .unwrap_or_default();
    // Messages held back for a turn whose lease ran out are runnable again.
    for id in super::leases::held_without_live_lease(hub, now) {
        instances::release_held(c, hub, &id)?;
    }
    let mut picked: Vec<Candidate> = Vec::new();
    // Instances this call has decided on (picked or not), so their other messages are passed over by a lookup.
    let mut seen = std::collections::HashSet::new();
    let mut considered = 0;
    let mut walk = c.prepare_cached(QUEUE_WALK)?;
    let mut candidate = c.prepare_cached(CANDIDATE)?;
    // Walk the queue in arrival order and stop early: the oldest runnable message picks the next instance. Rows
    // are read one at a time so a lease for a few slots does not load the whole queue. Messages of instances whose
    // turn is out (leases are in memory) are passed over; a lapsed lease no longer holds its instance back, and its
    // messages are still queued.
    let mut rows = walk.query((hub, now))?;
    while picked.len() < request.orchestrations && considered < CANDIDATES {
        let Some(row) = rows.next()? else {
            break;
        };
        let id = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        if seen.contains(id) || super::leases::orchestration_live(hub, id, now) {
            continue;
        }
        let id = id.to_owned();
        let instance = candidate
            .query_row((hub, &id), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i32>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<Vec<u8>>>(5)?,
                ))
            })
            .optional()?;
        seen.insert(id.clone());
        // Messages of an instance that is gone or cannot run, or that no filter names, are not candidates.
        let Some((name, version, status, scheduled_start_at, execution_id, trace)) = instance
        else {
            continue;
        };
        // An instance scheduled to start later is not runnable before then, even if events were raised to it
        // meanwhile: its first turn must begin with ExecutionStarted.
        let scheduled_later =
            status == OrchestrationStatus::Pending as i32 && scheduled_start_at.unwrap_or(0) > now;
        let runnable = !(is_terminal(status) || scheduled_later);
        if !runnable || !(filters.is_empty() || filters.iter().any(|f| f.name == name)) {
            continue;
        }
        considered += 1;
        let accepted = filters.is_empty()
            || filters.iter().any(|f| {
                f.name == name
                    && (f.versions.is_empty()
                        || f.versions.iter().any(|v| Some(v) == version.as_ref()))
            });
        if accepted {
            picked.push(Candidate {
                id,
                execution_id,
                trace,
            });
        }
    }
    drop(rows);
    drop(walk);
    drop(candidate);
    picked
        .into_iter()
        .map(|picked| lease_one(c, hub, picked, request, now))
        .collect()
}

fn lease_one(
    c: &Connection,
    hub: &str,
    picked: Candidate,
    request: &LeaseRequest,
    now: i64,
) -> Result<LeasedWork, StoreError> {
    let Candidate {
        id,
        execution_id,
        trace,
    } = picked;
    let id = id.as_str();
    let token = instances::lease_token(id);
    let (rows, delivered) = visible_messages(c, hub, id, now)?;
    if rows.len() >= HOLD_DELIVERED {
        instances::hold_delivered(c, hub, id, &rows)?;
    }
    let mut new_events = Vec::with_capacity(delivered.len() + 1);
    new_events.push(orchestrator_started(now));
    new_events.extend(delivered.iter().cloned());
    let (mut past_events, next_seq) = instances::encoded_history_and_next_row(c, hub, id)?;
    let orchestration_trace_context = trace
        .as_deref()
        .and_then(|bytes| prost::Message::decode(bytes).ok());
    super::leases::lease_orchestration(
        hub,
        id,
        super::leases::OrchestrationLease {
            token: token.clone(),
            expires_at: now.saturating_add(request.orchestration_lease_ms),
            started_at: now,
            rows,
            events: delivered,
            next_seq,
            trace,
        },
    );
    let stream_history = request
        .history_streaming_threshold
        .is_some_and(|limit| past_events.events_len() > limit);
    if stream_history {
        past_events = EncodedPastEvents::default();
    }
    let work = OrchestratorRequest {
        orchestration_trace_context,
        instance_id: id.to_owned(),
        execution_id: Some(execution_id),
        new_events,
        requires_history_streaming: stream_history,
        // .NET workers only enable entity calls, signals and locks in an orchestration when these are present.
        entity_parameters: Some(durable_proto::OrchestratorEntityParameters {
            entity_message_reorder_window: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
        }),
        ..OrchestratorRequest::default()
    };
    Ok(LeasedWork {
        kind: WorkKind::Orchestration,
        token: token.clone(),
        item: WorkItem {
            request: Some(work_item::Request::OrchestratorRequest(work)),
            completion_token: token,
        },
        past_events,
    })
}

fn orchestrator_started(at: i64) -> HistoryEvent {
    event(
        -1,
        at,
        EventType::OrchestratorStarted(OrchestratorStartedEvent {}),
    )
}

/// The inbox rows of instance `id` visible at `now` (bare wake-ups too) and their events, in delivery order: the
/// inbox is clustered by (hub, instance, priority, id), so they are one range of it.
fn visible_messages(
    c: &Connection,
    hub: &str,
    id: &str,
    now: i64,
) -> Result<(Vec<MessageKey>, Vec<HistoryEvent>), StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT priority, id, event, blob FROM inbox \
         WHERE hub = ?1 AND instance_id = ?2 AND visible_at <= ?3 ORDER BY priority, id",
    )?;
    let mut rows = stmt.query((hub, id, now))?;
    let mut keys = Vec::new();
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        keys.push((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?));
        if let Some(bytes) = super::blobs::event_of(c, row, 2, 3)? {
            events.push(decode_event(&bytes)?);
        }
    }
    Ok((keys, events))
}

/// Applies one orchestrator turn in the caller's transaction: history, outgoing messages and work, status.
pub(super) fn complete(
    c: &Connection,
    hub: &str,
    response: OrchestratorResponse,
    now: i64,
) -> Result<(), StoreError> {
    // The lease ends: anything queued meanwhile becomes runnable.
    super::changes::note_work(hub);
    let token = response.completion_token.clone();
    let lease = instances::leased_instance(&token)
        .and_then(|id| super::leases::take_orchestration(hub, id, &token))
        .ok_or_else(|| StoreError::StaleLease(token.clone()))?;
    let id = instances::leased_instance(&token).unwrap_or_default();
    let mut row =
        instances::load(c, hub, id)?.ok_or_else(|| StoreError::StaleLease(token.clone()))?;
    let loaded_status = row.status;
    // Kept for this execution only: a continued-as-new or restarted instance starts a new span. The worker returns
    // it with every turn, encoded once here; it is written when it differs from the one stored.
    let trace = response
        .orchestration_trace_context
        .as_ref()
        .map(prost::Message::encode_to_vec)
        .filter(|bytes| lease.trace.as_ref() != Some(bytes));
    if let Some(trace) = trace.as_ref().filter(|_| has_completion(&response)) {
        c.prepare_cached(
            "UPDATE instances SET trace_context = ?3, trace_execution_id = ?4 WHERE hub = ?1 AND instance_id = ?2",
        )?
        .execute(rusqlite::params![hub, row.instance_id, trace, row.execution_id])?;
    }
    let next_seq = lease.next_seq;
    // Room for what the actions add too: at most one event each (a completion's `ExecutionCompleted` included).
    let mut new_events = Vec::with_capacity(lease.events.len() + 1 + response.actions.len());
    new_events.push(orchestrator_started(lease.started_at));
    new_events.extend(lease.events);
    let mut delete = c.prepare_cached(
        "DELETE FROM inbox WHERE hub = ?1 AND instance_id = ?2 AND priority = ?3 AND id = ?4",
    )?;
    for (priority, message) in &lease.rows {
        delete.execute((hub, id, priority, message))?;
    }
    drop(delete);
    // After the delete, so that only what arrived during the turn goes back into the ready index.
    instances::release_held(c, hub, id)?;
    row.updated_at = now;

    let rewind = response
        .actions
        .iter()
        .find_map(|a| match &a.orchestrator_action_type {
            Some(OrchestratorActionType::RewindOrchestration(r)) => Some(r.new_history.clone()),
            _ => None,
        });
    if let Some(new_history) = rewind {
        return apply_rewind(c, hub, row, new_history, now);
    }

    for e in &new_events {
        match &e.event_type {
            Some(EventType::ExecutionStarted(_))
                if row.status == OrchestrationStatus::Pending as i32 =>
            {
                row.status = OrchestrationStatus::Running as i32;
            }
            Some(EventType::ExecutionSuspended(_)) => {
                row.status = OrchestrationStatus::Suspended as i32
            }
            Some(EventType::ExecutionResumed(_))
                if row.status == OrchestrationStatus::Suspended as i32 =>
            {
                row.status = OrchestrationStatus::Running as i32;
            }
            _ => {}
        }
    }
    row.custom_status = response.custom_status.clone();

    let mut appended = new_events;
    let mut completion: Option<(i32, CompleteOrchestrationAction)> = None;
    for action in response.actions {
        let id = action.id;
        let Some(kind) = action.orchestrator_action_type else {
            continue;
        };
        match kind {
            OrchestratorActionType::ScheduleTask(a) => {
                appended.push(event(
                    id,
                    now,
                    EventType::TaskScheduled(TaskScheduledEvent {
                        name: a.name.clone(),
                        version: a.version.clone(),
                        input: a.input.clone(),
                        parent_trace_context: a.parent_trace_context.clone(),
                        tags: a.tags.clone(),
                    }),
                ));
                activity::schedule(c, hub, &row, id, a)?;
            }
            OrchestratorActionType::CreateSubOrchestration(a) => {
                let child_id = if a.instance_id.is_empty() {
                    format!("{}:{:04x}", row.instance_id, id)
                } else {
                    a.instance_id.clone()
                };
                appended.push(event(
                    id,
                    now,
                    EventType::SubOrchestrationInstanceCreated(
                        SubOrchestrationInstanceCreatedEvent {
                            instance_id: child_id.clone(),
                            name: a.name.clone(),
                            version: a.version.clone(),
                            input: a.input.clone(),
                            parent_trace_context: a.parent_trace_context.clone(),
                            tags: a.tags.clone(),
                        },
                    ),
                ));
                start_child(c, hub, &row, id, child_id, a, now)?;
            }
            OrchestratorActionType::CreateTimer(a) => {
                let fire_at = a.fire_at.unwrap_or_default();
                appended.push(event(
                    id,
                    now,
                    EventType::TimerCreated(TimerCreatedEvent {
                        fire_at: Some(fire_at),
                    }),
                ));
                let fired = event(
                    -1,
                    ms(&fire_at),
                    EventType::TimerFired(TimerFiredEvent {
                        fire_at: Some(fire_at),
                        timer_id: id,
                    }),
                );
                instances::enqueue(
                    c,
                    hub,
                    &row.instance_id,
                    PRIORITY_NORMAL,
                    ms(&fire_at),
                    Some(&fired),
                )?;
            }
            OrchestratorActionType::SendEvent(a) => {
                let target = a.instance.map(|i| i.instance_id).unwrap_or_default();
                appended.push(event(
                    id,
                    now,
                    EventType::EventSent(EventSentEvent {
                        instance_id: target.clone(),
                        name: a.name.clone(),
                        input: a.data.clone(),
                    }),
                ));
                // Events for instances that do not exist (or have finished) are dropped, as the scheduler does.
                if let Some(target_row) =
                    instances::load(c, hub, &target)?.filter(|t| !t.is_terminal())
                {
                    let raised = event(
                        -1,
                        now,
                        EventType::EventRaised(EventRaisedEvent {
                            name: a.name,
                            input: a.data,
                        }),
                    );
                    instances::enqueue(
                        c,
                        hub,
                        &target_row.instance_id,
                        PRIORITY_NORMAL,
                        now,
                        Some(&raised),
                    )?;
                }
            }
            OrchestratorActionType::TerminateOrchestration(a) => {
                if let Some(target) = instances::load(c, hub, &a.instance_id)? {
                    super::control::terminate_row(c, hub, target, a.reason, a.recurse, now)?;
                }
            }
            OrchestratorActionType::SendEntityMessage(a) => {
                if let Some(inner) = entity::route_from_orchestration(c, hub, &row, a, now)? {
                    appended.push(HistoryEvent {
                        event_id: id,
                        timestamp: Some(crate::codec::ts(now)),
                        event_type: Some(inner),
                    });
                }
            }
            OrchestratorActionType::CompleteOrchestration(a) => completion = Some((id, a)),
            OrchestratorActionType::RewindOrchestration(_) => {}
        }
    }
    // The scheduler records no OrchestratorCompleted: a turn is its OrchestratorStarted and what followed.

    match completion {
        Some((_, a)) if a.orchestration_status == OrchestrationStatus::ContinuedAsNew as i32 => {
            continue_as_new(c, hub, row, a, now)
        }
        Some((id, a)) if is_terminal(a.orchestration_status) => {
            appended.push(event(
                id,
                now,
                EventType::ExecutionCompleted(ExecutionCompletedEvent {
                    orchestration_status: a.orchestration_status,
                    result: a.result.clone(),
                    failure_details: a.failure_details.clone(),
                }),
            ));
            instances::append_history_at(c, hub, &row.instance_id, next_seq, &appended)?;
            row.status = a.orchestration_status;
            row.output = a.result;
            row.failure = a.failure_details;
            row.completed_at = Some(now);
            row.save(c, hub)?;
            entity_lock::release_locks_of(c, hub, &row.instance_id, now)?;
            notify_parent(c, hub, &row, now)
        }
        _ => {
            instances::append_history_at(c, hub, &row.instance_id, next_seq, &appended)?;
            instances::save_turn(c, hub, &row, row.status != loaded_status, trace.as_deref())
        }
    }
}

/// Whether every way [`complete`] can fail for this response's own reasons (a stale lease, an instance that is
/// gone) comes before its first write, so it can run without a savepoint: the turn's actions are only those whose
/// writes can fail for nothing but storage errors. Entity messages (a malformed lock request), terminations,
/// sub-orchestrations, continue-as-new and rewinds take the savepoint.
pub(super) fn fails_before_writing(response: &OrchestratorResponse) -> bool {
    response
        .actions
        .iter()
        .all(|a| match &a.orchestrator_action_type {
            None
            | Some(OrchestratorActionType::ScheduleTask(_))
            | Some(OrchestratorActionType::CreateTimer(_))
            | Some(OrchestratorActionType::SendEvent(_)) => true,
            Some(OrchestratorActionType::CompleteOrchestration(c)) => {
                c.orchestration_status != OrchestrationStatus::ContinuedAsNew as i32
            }
            Some(_) => false,
        })
}

/// Whether a turn ends its execution (or rewinds it), so the instance row is written whole rather than by
/// [`instances::save_turn`], which also records the turn's trace context.
fn has_completion(response: &OrchestratorResponse) -> bool {
    response.actions.iter().any(|a| {
        matches!(
            a.orchestrator_action_type,
            Some(OrchestratorActionType::CompleteOrchestration(_))
                | Some(OrchestratorActionType::RewindOrchestration(_))
        )
    })
}

fn start_child(
    c: &Connection,
    hub: &str,
    parent: &InstanceRow,
    task_id: i32,
    child_id: String,
    a: durable_proto::CreateSubOrchestrationAction,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(existing) = instances::load(c, hub, &child_id)?.filter(|r| !r.is_terminal()) {
        let failed = event(
            -1,
            now,
            EventType::SubOrchestrationInstanceFailed(SubOrchestrationInstanceFailedEvent {
                task_scheduled_id: task_id,
                failure_details: Some(failure(
                    "InstanceAlreadyExists",
                    format!(
                        "an orchestration instance with ID '{}' is already running",
                        existing.instance_id
                    ),
                )),
            }),
        );
        return instances::enqueue(
            c,
            hub,
            &parent.instance_id,
            PRIORITY_NORMAL,
            now,
            Some(&failed),
        );
    }
    instances::create(
        c,
        hub,
        NewInstance {
            instance_id: child_id,
            name: a.name,
            version: a.version,
            input: a.input,
            tags: a.tags,
            scheduled_start_at: None,
            parent: Some(ParentRef {
                instance_id: parent.instance_id.clone(),
                execution_id: Some(parent.execution_id.clone()),
                task_id,
                name: Some(parent.name.clone()),
                version: parent.version.clone(),
            }),
            trace: a.parent_trace_context,
        },
        now,
    )?;
    Ok(())
}

fn continue_as_new(
    c: &Connection,
    hub: &str,
    mut row: InstanceRow,
    a: CompleteOrchestrationAction,
    now: i64,
) -> Result<(), StoreError> {
    drop_pending_timers(c, hub, &row.instance_id)?;
    c.prepare_cached("DELETE FROM history WHERE hub = ?1 AND instance_id = ?2")?
        .execute((hub, &row.instance_id))?;
    row.execution_id = new_id();
    if a.new_version.is_some() {
        row.version = a.new_version;
    }
    row.input = a.result;
    row.output = None;
    row.failure = None;
    row.custom_status = None;
    row.status = OrchestrationStatus::Running as i32;
    let new = NewInstance {
        instance_id: row.instance_id.clone(),
        name: row.name.clone(),
        version: row.version.clone(),
        input: row.input.clone(),
        tags: row.tags.clone(),
        scheduled_start_at: None,
        parent: row.parent.clone(),
        trace: None,
    };
    let started = instances::execution_started(&new, &row.execution_id, now);
    instances::enqueue(
        c,
        hub,
        &row.instance_id,
        PRIORITY_FIRST,
        now,
        Some(&started),
    )?;
    for carried in &a.carryover_events {
        instances::enqueue(c, hub, &row.instance_id, PRIORITY_FIRST, now, Some(carried))?;
    }
    row.save(c, hub)
}

/// Timers belong to the generation that created them; a new generation must not see the old one's firings.
fn drop_pending_timers(c: &Connection, hub: &str, id: &str) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached(
        // A timer's firing is a few bytes, never a blob.
        "SELECT priority, id, event FROM inbox \
         WHERE hub = ?1 AND instance_id = ?2 AND event IS NOT NULL AND blob IS NULL",
    )?;
    let rows = stmt
        .query_map((hub, id), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (priority, row_id, event) in rows {
        if matches!(
            decode_event(&event)?.event_type,
            Some(EventType::TimerFired(_))
        ) {
            c.prepare_cached(
                "DELETE FROM inbox WHERE hub = ?1 AND instance_id = ?2 AND priority = ?3 AND id = ?4",
            )?
            .execute((hub, id, priority, row_id))?;
        }
    }
    Ok(())
}

fn apply_rewind(
    c: &Connection,
    hub: &str,
    mut row: InstanceRow,
    new_history: Vec<HistoryEvent>,
    now: i64,
) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM history WHERE hub = ?1 AND instance_id = ?2")?
        .execute((hub, &row.instance_id))?;
    instances::append_history(c, hub, &row.instance_id, &new_history)?;
    let mut reason = None;
    let mut created = Vec::new();
    let mut finished = std::collections::HashSet::new();
    for e in &new_history {
        match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => {
                if let Some(exec) = s
                    .orchestration_instance
                    .as_ref()
                    .and_then(|i| i.execution_id.clone())
                {
                    row.execution_id = exec;
                }
            }
            Some(EventType::ExecutionRewound(r)) => reason = r.reason.clone(),
            Some(EventType::SubOrchestrationInstanceCreated(s)) => {
                created.push((e.event_id, s.clone()))
            }
            Some(EventType::SubOrchestrationInstanceCompleted(s)) => {
                finished.insert(s.task_scheduled_id);
            }
            _ => {}
        }
    }
    row.status = OrchestrationStatus::Running as i32;
    row.output = None;
    row.failure = None;
    row.completed_at = None;
    row.save(c, hub)?;
    for (task_id, sub) in created.into_iter().filter(|(id, _)| !finished.contains(id)) {
        match instances::load(c, hub, &sub.instance_id)? {
            Some(child) if child.status == OrchestrationStatus::Failed as i32 => {
                super::control::prepare_rewind(
                    c,
                    hub,
                    child,
                    reason.clone(),
                    Some(row.execution_id.clone()),
                    now,
                )?;
            }
            Some(_) => {}
            None => {
                let a = durable_proto::CreateSubOrchestrationAction {
                    instance_id: sub.instance_id.clone(),
                    name: sub.name,
                    version: sub.version,
                    input: sub.input,
                    parent_trace_context: sub.parent_trace_context,
                    tags: sub.tags,
                };
                start_child(c, hub, &row, task_id, sub.instance_id, a, now)?;
            }
        }
    }
    // The rewritten history already holds the ExecutionRewound; a bare wake-up makes the worker replay it.
    instances::enqueue(c, hub, &row.instance_id, PRIORITY_NORMAL, now, None)
}

/// Tells a finished sub-orchestration's parent how it ended (if the parent's generation is still waiting).
pub(super) fn notify_parent(
    c: &Connection,
    hub: &str,
    row: &InstanceRow,
    now: i64,
) -> Result<(), StoreError> {
    let Some(parent) = &row.parent else {
        return Ok(());
    };
    let Some(parent_row) = instances::load(c, hub, &parent.instance_id)? else {
        return Ok(());
    };
    let same_generation = parent
        .execution_id
        .as_ref()
        .is_none_or(|e| *e == parent_row.execution_id);
    if parent_row.is_terminal() || !same_generation {
        return Ok(());
    }
    let kind = if row.status == OrchestrationStatus::Completed as i32 {
        EventType::SubOrchestrationInstanceCompleted(SubOrchestrationInstanceCompletedEvent {
            task_scheduled_id: parent.task_id,
            result: row.output.clone(),
        })
    } else {
        let details = row.failure.clone().unwrap_or_else(|| {
            failure(
                status_from_i32(row.status).as_str_name(),
                format!(
                    "sub-orchestration '{}' ended with status {}",
                    row.instance_id,
                    status_from_i32(row.status).as_str_name()
                ),
            )
        });
        EventType::SubOrchestrationInstanceFailed(SubOrchestrationInstanceFailedEvent {
            task_scheduled_id: parent.task_id,
            failure_details: Some(details),
        })
    };
    instances::enqueue(
        c,
        hub,
        &parent_row.instance_id,
        PRIORITY_NORMAL,
        now,
        Some(&event(-1, now, kind)),
    )
}

pub(super) fn failure(error_type: &str, message: String) -> TaskFailureDetails {
    TaskFailureDetails {
        error_type: error_type.to_owned(),
        error_message: message,
        ..TaskFailureDetails::default()
    }
}

/// The instance an orchestration-originated message came from, for history and routing.
pub(super) fn instance_ref(row: &InstanceRow) -> OrchestrationInstance {
    OrchestrationInstance {
        instance_id: row.instance_id.clone(),
        execution_id: Some(row.execution_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Synchronous;
    use durable_proto::{OrchestrationFilter, WorkItemFilters};

    /// The instances of the lease's walk leased by `request` at `now`, in the order handed out.
    fn leased(c: &Connection, request: &LeaseRequest, now: i64) -> Vec<String> {
        lease(c, "h", request, now)
            .unwrap()
            .iter()
            .map(|w| instances::leased_instance(&w.token).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_walk_leases_only_instances_that_can_run_and_that_the_filters_name() {
        let c = Connection::open_in_memory().unwrap();
        super::super::schema::prepare(&c, Synchronous::Off).unwrap();
        super::super::leases::install(super::super::leases::Leases::default());
        // In queue order: a message whose instance is gone, one for each finished status, one for an instance
        // scheduled to start at 5000, then instances that can run under other names and versions. Statuses:
        // 0 running, 1 completed, 3 failed, 4 canceled, 5 terminated, 6 pending, 7 suspended.
        c.execute_batch(
            "INSERT INTO instances (hub, instance_id, execution_id, name, version, status, created_at, updated_at,
                                    scheduled_start_at)
                 VALUES ('h', 'completed', 'e', 'Order', NULL, 1, 0, 0, NULL),
                        ('h', 'failed', 'e', 'Order', NULL, 3, 0, 0, NULL),
                        ('h', 'canceled', 'e', 'Order', NULL, 4, 0, 0, NULL),
                        ('h', 'terminated', 'e', 'Order', NULL, 5, 0, 0, NULL),
                        ('h', 'later', 'e', 'Order', '2', 6, 0, 0, 5000),
                        ('h', 'other', 'e', 'Other', NULL, 0, 0, 0, NULL),
                        ('h', 'old', 'e', 'Order', '1', 0, 0, 0, NULL),
                        ('h', 'new', 'e-new', 'Order', '2', 0, 0, 0, NULL),
                        ('h', 'pending', 'e', 'Order', '2', 6, 0, 0, NULL),
                        ('h', 'suspended', 'e', 'Order', '2', 7, 0, 0, NULL);
             INSERT INTO inbox (hub, instance_id, priority, id, visible_at, event, delayed)
                 VALUES ('h', 'gone', 1, 1, 0, NULL, 0), ('h', 'completed', 1, 2, 0, NULL, 0),
                        ('h', 'failed', 1, 3, 0, NULL, 0), ('h', 'canceled', 1, 4, 0, NULL, 0),
                        ('h', 'terminated', 1, 5, 0, NULL, 0), ('h', 'later', 1, 6, 0, NULL, 0),
                        ('h', 'other', 1, 7, 0, NULL, 0), ('h', 'old', 1, 8, 0, NULL, 0),
                        ('h', 'new', 1, 9, 0, NULL, 0), ('h', 'new', 1, 10, 0, NULL, 0),
                        ('h', 'pending', 1, 11, 0, NULL, 0), ('h', 'suspended', 1, 12, 0, NULL, 0);",
        )
        .unwrap();
        let filtered = LeaseRequest {
            orchestrations: 10,
            orchestration_lease_ms: 60_000,
            filters: Some(WorkItemFilters {
                orchestrations: vec![OrchestrationFilter {
                    name: "Order".into(),
                    versions: vec!["2".into()],
                }],
                ..WorkItemFilters::default()
            }),
            ..LeaseRequest::default()
        };
        assert_eq!(leased(&c, &filtered, 100), ["new", "pending", "suspended"]);
        // The turn carries the execution id the walk read.
        let Some(work_item::Request::OrchestratorRequest(turn)) = lease(&c, "h", &filtered, 100)
            .unwrap()
            .into_iter()
            .chain(lease(&c, "h", &filtered, 6000).unwrap())
            .next()
            .and_then(|w| w.item.request)
        else {
            panic!("the instance scheduled for 5000 is runnable at 6000");
        };
        assert_eq!(
            (turn.instance_id.as_str(), turn.execution_id.as_deref()),
            ("later", Some("e"))
        );
        let any = LeaseRequest {
            filters: None,
            ..filtered
        };
        assert_eq!(leased(&c, &any, 6000), ["other", "old"]);
        assert!(leased(&c, &any, 6000).is_empty());
    }
}
