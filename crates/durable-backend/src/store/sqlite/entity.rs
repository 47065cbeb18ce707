//! Entities: message routing, FIFO batching, critical-section locks, results back to callers, and queries.

use durable_proto::history_event::EventType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::{
    EntityBatchRequest, EntityBatchResult, EntityOperationCompletedEvent,
    EntityOperationFailedEvent, EntityOperationSignaledEvent, HistoryEvent, OperationRequest,
    SendEntityMessageAction, SignalEntityRequest, TraceContext, WorkItem, operation_action,
    operation_result, work_item,
};
use rusqlite::{Connection, OptionalExtension};

use super::instances::{self, InstanceRow, NewInstance, PRIORITY_NORMAL};
use crate::codec::{decode_event, encode, event, ms, new_id};
use crate::error::StoreError;
use crate::store::{LeaseRequest, LeasedWork, WorkKind};

const CANDIDATES: i64 = 64;

/// One page of an entity's runnable queue (`?1` hub, `?2` entity, after message `?3`, visible by `?4`, `?5` rows).
/// Without the hint SQLite walks every visible message of the hub by time, then sorts.
pub(super) const QUEUE_PAGE: &str = "SELECT id, event FROM entity_inbox INDEXED BY entity_inbox_by_entity \
     WHERE hub = ?1 AND entity_id = ?2 AND id > ?3 AND visible_at <= ?4 ORDER BY id LIMIT ?5";

/// `@name@key` with the name lower-cased, or `None` when the id is not an entity id.
pub(crate) fn normalize_id(id: &str) -> Option<(String, String)> {
    let rest = id.strip_prefix('@')?;
    let (name, key) = rest.split_once('@')?;
    if name.is_empty() {
        return None;
    }
    let name = name.to_lowercase();
    Some((format!("@{name}@{key}"), name))
}

pub(super) fn ensure(c: &Connection, hub: &str, id: &str, now: i64) -> Result<String, StoreError> {
    let (id, name) = normalize_id(id).ok_or_else(|| {
        StoreError::InvalidArgument(format!("'{id}' is not an entity id (@name@key)"))
    })?;
    c.prepare_cached(
        "INSERT OR IGNORE INTO entities (hub, entity_id, name, created_at, last_modified_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(rusqlite::params![hub, id, name, now])?;
    Ok(id)
}

/// Queues a message for an entity. `trace` is the sender's W3C context, kept beside the message (the entity events
/// have no field for it) and handed to the entity's worker as the operation's `traceContext`.
pub(super) fn enqueue(
    c: &Connection,
    hub: &str,
    id: &str,
    visible_at: i64,
    message: &HistoryEvent,
    trace: Option<&TraceContext>,
) -> Result<(), StoreError> {
    super::changes::note_work(hub);
    c.prepare_cached(
        "INSERT INTO entity_inbox (hub, entity_id, visible_at, sender, event, trace_context) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        hub,
        id,
        visible_at,
        sender_of(message),
        encode(message),
        trace.map(prost::Message::encode_to_vec)
    ])?;
    Ok(())
}

pub(super) fn signal(
    c: &Connection,
    hub: &str,
    request: SignalEntityRequest,
    now: i64,
) -> Result<(), StoreError> {
    let id = ensure(c, hub, &request.instance_id, now)?;
    let visible_at = request
        .scheduled_time
        .as_ref()
        .map(ms)
        .unwrap_or(now)
        .max(now);
    let request_id = if request.request_id.is_empty() {
        new_id()
    } else {
        request.request_id
    };
    let signaled = event(
        -1,
        now,
        EventType::EntityOperationSignaled(EntityOperationSignaledEvent {
            request_id,
            operation: request.name,
            scheduled_time: request.scheduled_time,
            input: request.input,
            target_instance_id: Some(id.clone()),
        }),
    );
    enqueue(
        c,
        hub,
        &id,
        visible_at,
        &signaled,
        request.parent_trace_context.as_ref(),
    )
}

/// Queues an orchestration's entity message; returns the event recorded in the sender's history.
pub(super) fn route_from_orchestration(
    c: &Connection,
    hub: &str,
    sender: &InstanceRow,
    action: SendEntityMessageAction,
    now: i64,
) -> Result<Option<EventType>, StoreError> {
    let Some(message) = action.entity_message_type else {
        return Ok(None);
    };
    let (target, visible_at, history) = match message {
        EntityMessageType::EntityOperationSignaled(mut m) => {
            let target = ensure(
                c,
                hub,
                m.target_instance_id.as_deref().unwrap_or_default(),
                now,
            )?;
            m.target_instance_id = Some(target.clone());
            let at = m.scheduled_time.as_ref().map(ms).unwrap_or(now).max(now);
            (target, at, EventType::EntityOperationSignaled(m))
        }
        EntityMessageType::EntityOperationCalled(mut m) => {
            let target = ensure(
                c,
                hub,
                m.target_instance_id.as_deref().unwrap_or_default(),
                now,
            )?;
            m.target_instance_id = Some(target.clone());
            m.parent_instance_id = Some(sender.instance_id.clone());
            m.parent_execution_id = Some(sender.execution_id.clone());
            let at = m.scheduled_time.as_ref().map(ms).unwrap_or(now).max(now);
            (target, at, EventType::EntityOperationCalled(m))
        }
        EntityMessageType::EntityLockRequested(mut m) => {
            m.parent_instance_id = Some(sender.instance_id.clone());
            let Some(first) = m
                .lock_set
                .get(usize::try_from(m.position).unwrap_or(usize::MAX))
                .cloned()
            else {
                return Err(StoreError::InvalidArgument(
                    "a lock request names no entity at its position".into(),
                ));
            };
            let target = ensure(c, hub, &first, now)?;
            (target, now, EventType::EntityLockRequested(m))
        }
        EntityMessageType::EntityUnlockSent(mut m) => {
            let target = ensure(
                c,
                hub,
                m.target_instance_id.as_deref().unwrap_or_default(),
                now,
            )?;
            m.target_instance_id = Some(target.clone());
            m.parent_instance_id = Some(sender.instance_id.clone());
            (target, now, EventType::EntityUnlockSent(m))
        }
    };
    let message = event(-1, now, history.clone());
    enqueue(c, hub, &target, visible_at, &message, None)?;
    Ok(Some(history))
}

/// The orchestration a message came from, for lock checks and replies.
fn sender_of(e: &HistoryEvent) -> Option<&str> {
    match &e.event_type {
        Some(EventType::EntityOperationCalled(m)) => m.parent_instance_id.as_deref(),
        Some(EventType::EntityLockRequested(m)) => m.parent_instance_id.as_deref(),
        Some(EventType::EntityUnlockSent(m)) => m.parent_instance_id.as_deref(),
        _ => None,
    }
}

struct EntityRow {
    locked_by: Option<String>,
    lock_section: Option<String>,
    /// As stored: a large state is `""` here and its text is in blob `state_blob` (see [`EntityRow::state`]).
    state: Option<String>,
    state_blob: Option<i64>,
}

impl EntityRow {
    /// The entity's state, read from `blobs` when it is large: only once a batch needs it, since a lease pass that
    /// moves only lock messages never does.
    fn state(self, c: &Connection) -> Result<Option<String>, StoreError> {
        super::blobs::read_text(c, self.state, self.state_blob)
    }
}

fn load_row(c: &Connection, hub: &str, id: &str) -> Result<Option<EntityRow>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT locked_by, lock_section, state, state_blob FROM entities WHERE hub = ?1 AND entity_id = ?2",
    )?
    .query_row((hub, id), |r| {
        Ok(EntityRow {
            locked_by: r.get(0)?,
            lock_section: r.get(1)?,
            state: r.get(2)?,
            state_blob: r.get(3)?,
        })
    })
    .optional()?)
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
        .map(|f| f.entities.clone())
        .unwrap_or_default();
    // The candidate search below costs 85-160 us even when every entity queue is empty (it materializes the queued
    // entities and sorts them): most lease calls of an app without entities, or with idle ones, are spared it by
    // one seek in the index of queued messages by time.
    let any_visible: bool = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM entity_inbox INDEXED BY entity_inbox_by_time \
             WHERE hub = ?1 AND visible_at <= ?2)",
        )?
        .query_row((hub, now), |row| row.get(0))?;
    if !any_visible {
        return Ok(Vec::new());
    }
    let names: Vec<String> = filters.iter().map(|f| f.name.to_lowercase()).collect();
    let sql = candidates_sql(names.len());
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&hub, &now, &CANDIDATES];
    params.extend(names.iter().map(|n| n as &dyn rusqlite::ToSql));
    let mut stmt = c.prepare_cached(&sql)?;
    let candidates = stmt
        .query_map(params.as_slice(), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for id in candidates {
        if out.len() >= request.entities {
            break;
        }
        if let Some(work) = lease_one(c, hub, &id, request, now)? {
            out.push(work);
        }
    }
    Ok(out)
}

/// The entities that can be leased now (`?1` hub, `?2` now, `?3` how many, `?4...` names to keep), in the order of
/// their first runnable message. A locked entity is a candidate only for its holder's messages, so waiting entities
/// never crowd out others.
///
/// The entities with queued messages are found by stepping through the per-entity index one entity at a time (a
/// seek per entity, not a read of every message), and each one's first runnable message by a seek too, so the cost
/// of a lease call grows with the number of entities that have messages, not with the length of their queues: an
/// entity with 10,000 queued signals costs what an entity with one does.
pub(super) fn candidates_sql(names: usize) -> String {
    format!(
        "WITH RECURSIVE queued(entity_id) AS ( \
           SELECT (SELECT MIN(entity_id) FROM entity_inbox INDEXED BY entity_inbox_by_entity WHERE hub = ?1) \
           UNION ALL \
           SELECT (SELECT MIN(entity_id) FROM entity_inbox INDEXED BY entity_inbox_by_entity \
                   WHERE hub = ?1 AND entity_id > queued.entity_id) \
           FROM queued WHERE queued.entity_id IS NOT NULL) \
         SELECT entity_id, first FROM ( \
           SELECT e.entity_id, \
             (SELECT m.id FROM entity_inbox m INDEXED BY entity_inbox_by_entity \
              WHERE m.hub = ?1 AND m.entity_id = e.entity_id AND m.visible_at <= ?2 \
                AND (e.locked_by IS NULL OR m.sender = e.locked_by) \
              ORDER BY m.id LIMIT 1) AS first \
           FROM queued JOIN entities e ON e.hub = ?1 AND e.entity_id = queued.entity_id \
           WHERE (e.lease_token IS NULL OR e.lease_expires_at <= ?2){}) \
         WHERE first IS NOT NULL ORDER BY first LIMIT ?3",
        super::query::name_filter("e.name", names, 4)
    )
}

/// Walks the entity's queue in order: lock and unlock messages are handled here (they never reach a worker),
/// operations are batched. While a critical section holds the entity, only its owner's messages move.
///
/// The queue is read a page at a time, so a batch of 50 operations reads about 50 messages however long the queue.
fn lease_one(
    c: &Connection,
    hub: &str,
    id: &str,
    request: &LeaseRequest,
    now: i64,
) -> Result<Option<LeasedWork>, StoreError> {
    let Some(mut entity) = load_row(c, hub, id)? else {
        return Ok(None);
    };
    let mut batch: Vec<(i64, HistoryEvent)> = Vec::new();
    // A page is one batch and a message to spare, so a batch is usually one read.
    let page = i64::try_from(request.max_entity_batch)
        .unwrap_or(i64::MAX)
        .saturating_add(1);
    // The walk starts again from the front whenever a lock is taken or given back (the batch is empty then),
    // because messages it skipped for another holder may now be runnable.
    'walk: loop {
        let mut after = 0_i64;
        loop {
            let mut stmt = c.prepare_cached(QUEUE_PAGE)?;
            let queued = stmt
                .query_map((hub, id, after, now, page), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let last_page = i64::try_from(queued.len()).unwrap_or(i64::MAX) < page;
            for (row_id, blob) in queued {
                after = row_id;
                let message = decode_event(&blob)?;
                let from = sender_of(&message);
                if let Some(holder) = entity.locked_by.as_deref()
                    && from != Some(holder)
                {
                    continue;
                }
                match &message.event_type {
                    Some(EventType::EntityLockRequested(lock)) => {
                        if !batch.is_empty() {
                            break 'walk;
                        }
                        c.prepare_cached("DELETE FROM entity_inbox WHERE id = ?1")?
                            .execute([row_id])?;
                        // A request still travelling along the lock set when its orchestration finished would lock
                        // the entity for nobody: the finished orchestration's locks were already given back.
                        if !super::entity_lock::requester_waits(c, hub, lock)? {
                            continue 'walk;
                        }
                        super::entity_lock::grant(c, hub, id, lock, now)?;
                        entity.locked_by = lock.parent_instance_id.clone();
                        entity.lock_section = Some(lock.critical_section_id.clone());
                        continue 'walk;
                    }
                    Some(EventType::EntityUnlockSent(unlock)) => {
                        if !batch.is_empty() {
                            break 'walk;
                        }
                        c.prepare_cached("DELETE FROM entity_inbox WHERE id = ?1")?
                            .execute([row_id])?;
                        if entity.lock_section.as_deref()
                            == Some(unlock.critical_section_id.as_str())
                        {
                            c.prepare_cached("UPDATE entities SET locked_by = NULL, lock_section = NULL WHERE hub = ?1 AND entity_id = ?2")?.execute(
                            (hub, id),
                        )?;
                            entity.locked_by = None;
                            entity.lock_section = None;
                        }
                        continue 'walk;
                    }
                    Some(EventType::EntityOperationCalled(_))
                    | Some(EventType::EntityOperationSignaled(_)) => {
                        batch.push((row_id, message));
                        if batch.len() >= request.max_entity_batch {
                            break 'walk;
                        }
                    }
                    _ => {
                        c.prepare_cached("DELETE FROM entity_inbox WHERE id = ?1")?
                            .execute([row_id])?;
                    }
                }
            }
            if last_page {
                break 'walk;
            }
        }
    }
    if batch.is_empty() {
        // Only lock traffic was queued; an unlock may have left the entity with nothing at all.
        drop_if_empty(c, hub, id)?;
        return Ok(None);
    }
    let token = new_id();
    c.prepare_cached("UPDATE entities SET lease_token = ?3, lease_expires_at = ?4 WHERE hub = ?1 AND entity_id = ?2")?.execute(
        rusqlite::params![hub, id, token, now.saturating_add(request.entity_lease_ms)],
    )?;
    let mut operations = Vec::with_capacity(batch.len());
    for (row_id, message) in &batch {
        let trace_context = c
            .prepare_cached(
                "UPDATE entity_inbox SET lease_token = ?2 WHERE id = ?1 RETURNING trace_context",
            )?
            .query_row(rusqlite::params![row_id, token], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })?
            .and_then(|bytes| prost::Message::decode(bytes.as_slice()).ok());
        operations.push(match &message.event_type {
            Some(EventType::EntityOperationCalled(m)) => OperationRequest {
                operation: m.operation.clone(),
                request_id: m.request_id.clone(),
                input: m.input.clone(),
                trace_context,
            },
            Some(EventType::EntityOperationSignaled(m)) => OperationRequest {
                operation: m.operation.clone(),
                request_id: m.request_id.clone(),
                input: m.input.clone(),
                trace_context,
            },
            _ => OperationRequest::default(),
        });
    }
    let state = entity.state(c)?;
    let work = if request.entity_v2 {
        work_item::Request::EntityRequestV2(durable_proto::EntityRequest {
            instance_id: id.to_owned(),
            execution_id: String::new(),
            entity_state: state,
            operation_requests: batch.into_iter().map(|(_, message)| message).collect(),
        })
    } else {
        work_item::Request::EntityRequest(EntityBatchRequest {
            instance_id: id.to_owned(),
            entity_state: state,
            operations,
            properties: Default::default(),
        })
    };
    Ok(Some(LeasedWork {
        kind: WorkKind::Entity,
        token: token.clone(),
        item: WorkItem {
            request: Some(work),
            completion_token: token,
        },
        past_events: Default::default(),
    }))
}

/// Removes an entity that has no state, no lock, no lease and nothing queued (scheduled signals included). The
/// scheduler forgets such an entity at once rather than keeping it until `CleanEntityStorage`: it disappears from
/// `GetEntity` and from queries, even those that include transient entities. A later message creates it again.
pub(super) fn drop_if_empty(c: &Connection, hub: &str, id: &str) -> Result<bool, StoreError> {
    Ok(c.prepare_cached(
        "DELETE FROM entities WHERE hub = ?1 AND entity_id = ?2 AND state IS NULL AND locked_by IS NULL \
           AND lease_token IS NULL \
           AND NOT EXISTS (SELECT 1 FROM entity_inbox m INDEXED BY entity_inbox_by_entity \
                           WHERE m.hub = ?1 AND m.entity_id = ?2)",
    )?
    .execute((hub, id))?
        > 0)
}

pub(super) fn complete(
    c: &Connection,
    hub: &str,
    result: EntityBatchResult,
    now: i64,
) -> Result<(), StoreError> {
    // The lease ends: anything queued meanwhile becomes runnable.
    super::changes::note_work(hub);
    let token = result.completion_token.clone();
    let id: Option<String> = c
        .query_row(
            "SELECT entity_id FROM entities INDEXED BY entities_by_lease WHERE hub = ?1 AND lease_token = ?2",
            (hub, &token),
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else {
        return Err(StoreError::StaleLease(token));
    };
    let mut stmt = c.prepare_cached(
        "SELECT id, event FROM entity_inbox WHERE hub = ?1 AND lease_token = ?2 ORDER BY id",
    )?;
    let leased = stmt
        .query_map((hub, &token), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let whole_batch_failed = result.results.is_empty() && result.failure_details.is_some();
    for (index, (row_id, blob)) in leased.iter().enumerate() {
        let message = decode_event(blob)?;
        let outcome = if whole_batch_failed {
            Some(operation_result::ResultType::Failure(
                durable_proto::OperationResultFailure {
                    failure_details: result.failure_details.clone(),
                    ..Default::default()
                },
            ))
        } else {
            result
                .results
                .get(index)
                .and_then(|r| r.result_type.clone())
        };
        let Some(outcome) = outcome else {
            // The worker did not get to this operation: it goes back to the queue, in place.
            super::changes::note_work(hub);
            c.prepare_cached("UPDATE entity_inbox SET lease_token = NULL WHERE id = ?1")?
                .execute([row_id])?;
            continue;
        };
        c.prepare_cached("DELETE FROM entity_inbox WHERE id = ?1")?
            .execute([row_id])?;
        if let Some(EventType::EntityOperationCalled(call)) = &message.event_type {
            reply(c, hub, call, outcome, now)?;
        }
    }
    if !whole_batch_failed {
        // A large state goes to `blobs`; a trigger deletes the blob of the state it replaces. Every write of
        // `state` names `state_blob` too, or a stale blob would outlive the state it held.
        let (state, blob) = super::blobs::place_text(c, result.entity_state)?;
        c.prepare_cached(
            "UPDATE entities SET state = ?3, state_blob = ?5, last_modified_at = ?4 WHERE hub = ?1 AND entity_id = ?2",
        )?
        .execute(rusqlite::params![hub, id, state, now, blob])?;
        for action in result.actions {
            match action.operation_action_type {
                Some(operation_action::OperationActionType::SendSignal(s)) => {
                    signal(
                        c,
                        hub,
                        SignalEntityRequest {
                            instance_id: s.instance_id,
                            name: s.name,
                            input: s.input,
                            request_id: new_id(),
                            scheduled_time: s.scheduled_time,
                            parent_trace_context: s.parent_trace_context,
                            request_time: s.request_time,
                        },
                        now,
                    )?;
                }
                Some(operation_action::OperationActionType::StartNewOrchestration(s)) => {
                    let id = if s.instance_id.is_empty() {
                        new_id()
                    } else {
                        s.instance_id
                    };
                    if instances::load(c, hub, &id)?.is_none_or(|r| r.is_terminal()) {
                        instances::create(
                            c,
                            hub,
                            NewInstance {
                                instance_id: id,
                                name: s.name,
                                version: s.version,
                                input: s.input,
                                scheduled_start_at: s.scheduled_time.as_ref().map(ms),
                                trace: s.parent_trace_context,
                                ..NewInstance::default()
                            },
                            now,
                        )?;
                    }
                }
                None => {}
            }
        }
    }
    c.prepare_cached("UPDATE entities SET lease_token = NULL, lease_expires_at = NULL WHERE hub = ?1 AND entity_id = ?2")?.execute(
        (hub, &id),
    )?;
    drop_if_empty(c, hub, &id)?;
    Ok(())
}

fn reply(
    c: &Connection,
    hub: &str,
    call: &durable_proto::EntityOperationCalledEvent,
    outcome: operation_result::ResultType,
    now: i64,
) -> Result<(), StoreError> {
    let Some(parent) = call.parent_instance_id.as_deref() else {
        return Ok(());
    };
    let Some(row) = instances::load(c, hub, parent)? else {
        return Ok(());
    };
    if row.is_terminal() {
        return Ok(());
    }
    let kind = match outcome {
        operation_result::ResultType::Success(s) => {
            EventType::EntityOperationCompleted(EntityOperationCompletedEvent {
                request_id: call.request_id.clone(),
                output: s.result,
            })
        }
        operation_result::ResultType::Failure(f) => {
            EventType::EntityOperationFailed(EntityOperationFailedEvent {
                request_id: call.request_id.clone(),
                failure_details: f.failure_details,
            })
        }
    };
    instances::enqueue(
        c,
        hub,
        parent,
        PRIORITY_NORMAL,
        now,
        Some(&event(-1, now, kind)),
    )
}

#[cfg(test)]
mod tests {
    use super::normalize_id;

    #[test]
    fn entity_ids_lower_case_the_name_only() {
        assert_eq!(
            normalize_id("@Counter@Key"),
            Some(("@counter@Key".into(), "counter".into()))
        );
        assert_eq!(normalize_id("@c@"), Some(("@c@".into(), "c".into())));
        assert_eq!(normalize_id("counter@k"), None);
        assert_eq!(normalize_id("@@k"), None);
        assert_eq!(normalize_id("@nokey"), None);
    }
}
