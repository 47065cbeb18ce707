//! Critical sections: granting locks along the lock set and giving back the locks of finished orchestrations.

use durable_proto::history_event::EventType;
use durable_proto::{EntityLockGrantedEvent, EntityLockRequestedEvent};
use rusqlite::Connection;

use super::entity::{enqueue, ensure};
use super::instances::{self, PRIORITY_NORMAL};
use crate::codec::event;
use crate::error::StoreError;

/// Whether the orchestration asking for a lock still exists and has not finished.
pub(super) fn requester_waits(
    c: &Connection,
    hub: &str,
    lock: &EntityLockRequestedEvent,
) -> Result<bool, StoreError> {
    let Some(owner) = lock.parent_instance_id.as_deref() else {
        return Ok(false);
    };
    Ok(instances::load(c, hub, owner)?.is_some_and(|r| !r.is_terminal()))
}

/// Takes the lock on `id` and passes the request on along the lock set, or tells the orchestration it holds all.
pub(super) fn grant(
    c: &Connection,
    hub: &str,
    id: &str,
    lock: &EntityLockRequestedEvent,
    now: i64,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE entities SET locked_by = ?3, lock_section = ?4 WHERE hub = ?1 AND entity_id = ?2",
    )?
    .execute(rusqlite::params![
        hub,
        id,
        lock.parent_instance_id,
        lock.critical_section_id
    ])?;
    let next = usize::try_from(lock.position)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    if let Some(next_id) = lock.lock_set.get(next) {
        let target = ensure(c, hub, next_id, now)?;
        let mut forwarded = lock.clone();
        forwarded.position = i32::try_from(next).unwrap_or(i32::MAX);
        enqueue(
            c,
            hub,
            &target,
            now,
            &event(-1, now, EventType::EntityLockRequested(forwarded)),
            None,
        )
    } else if let Some(owner) = lock.parent_instance_id.as_deref() {
        let granted = event(
            -1,
            now,
            EventType::EntityLockGranted(EntityLockGrantedEvent {
                critical_section_id: lock.critical_section_id.clone(),
            }),
        );
        if instances::load(c, hub, owner)?.is_some_and(|r| !r.is_terminal()) {
            instances::enqueue(c, hub, owner, PRIORITY_NORMAL, now, Some(&granted))?;
        }
        Ok(())
    } else {
        Ok(())
    }
}

/// Frees every lock an orchestration still holds (it finished without sending its unlocks). Runs for every finished
/// orchestration, so it goes through the index of locked entities rather than over every entity of the hub.
pub(super) fn release_locks_of(
    c: &Connection,
    hub: &str,
    instance_id: &str,
    now: i64,
) -> Result<usize, StoreError> {
    // Most orchestrations never lock an entity: one read of the lock index spares them the two writes below,
    // which open every index of `entities` even when nothing matches.
    let holds_any: bool = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM entities INDEXED BY entities_by_lock \
             WHERE hub = ?1 AND locked_by = ?2)",
        )?
        .query_row((hub, instance_id), |row| row.get(0))?;
    if !holds_any {
        return Ok(0);
    }
    super::changes::note_work(hub);
    // Entities that only existed as this orchestration's locks go with them (see `drop_if_empty`).
    c.prepare_cached(
        "DELETE FROM entities INDEXED BY entities_by_lock \
         WHERE hub = ?1 AND locked_by = ?2 AND state IS NULL AND lease_token IS NULL \
           AND NOT EXISTS (SELECT 1 FROM entity_inbox m INDEXED BY entity_inbox_by_entity \
                           WHERE m.hub = entities.hub AND m.entity_id = entities.entity_id)",
    )?
    .execute((hub, instance_id))?;
    Ok(c.prepare_cached(
        "UPDATE entities INDEXED BY entities_by_lock \
         SET locked_by = NULL, lock_section = NULL, last_modified_at = ?3 \
         WHERE hub = ?1 AND locked_by = ?2",
    )?
    .execute(rusqlite::params![hub, instance_id, now])?)
}

/// Drops the lock requests `owner` has on their way to entities (not yet taken by a worker).
pub(super) fn drop_lock_requests_of(
    c: &Connection,
    hub: &str,
    owner: &str,
) -> Result<(), StoreError> {
    let rows: Vec<(i64, Vec<u8>)> = c
        .prepare_cached(
            "SELECT id, event FROM entity_inbox WHERE hub = ?1 AND sender = ?2 AND lease_token IS NULL",
        )?
        .query_map((hub, owner), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (row_id, blob) in rows {
        let message = crate::codec::decode_event(&blob)?;
        if matches!(message.event_type, Some(EventType::EntityLockRequested(_))) {
            c.prepare_cached("DELETE FROM entity_inbox WHERE id = ?1")?
                .execute([row_id])?;
        }
    }
    Ok(())
}
