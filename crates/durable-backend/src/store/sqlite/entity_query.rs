//! Entity reads and housekeeping: metadata, queries, cleaning and purging.

use durable_proto::{
    CleanEntityStorageRequest, CleanEntityStorageResponse, EntityMetadata, EntityQuery,
    QueryEntitiesResponse,
};
use rusqlite::{Connection, OptionalExtension};

use super::entity::normalize_id;
use super::instances;
use crate::codec::{ms, ts};
use crate::error::StoreError;

fn metadata(
    c: &Connection,
    hub: &str,
    id: &str,
    (state, state_blob): (Option<String>, Option<i64>),
    locked_by: Option<String>,
    last_modified: i64,
    include_state: bool,
) -> Result<EntityMetadata, StoreError> {
    let state = if include_state {
        super::blobs::read_text(c, state, state_blob)?
    } else {
        None
    };
    let backlog: i64 = c.query_row(
        "SELECT COUNT(*) FROM entity_inbox WHERE hub = ?1 AND entity_id = ?2",
        (hub, id),
        |r| r.get(0),
    )?;
    Ok(EntityMetadata {
        instance_id: id.to_owned(),
        last_modified_time: Some(ts(last_modified)),
        backlog_queue_size: i32::try_from(backlog).unwrap_or(i32::MAX),
        locked_by,
        serialized_state: state,
    })
}

pub(super) fn get(
    c: &Connection,
    hub: &str,
    id: &str,
    include_state: bool,
) -> Result<Option<EntityMetadata>, StoreError> {
    let Some((id, _)) = normalize_id(id) else {
        return Err(StoreError::InvalidArgument(format!(
            "'{id}' is not an entity id (@name@key)"
        )));
    };
    let row = c
        .query_row(
            "SELECT state, locked_by, last_modified_at, state_blob FROM entities WHERE hub = ?1 AND entity_id = ?2",
            (hub, &id),
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            },
        )
        .optional()?;
    match row {
        Some((state, locked_by, modified, blob)) if state.is_some() || locked_by.is_some() => {
            Ok(Some(metadata(
                c,
                hub,
                &id,
                (state, blob),
                locked_by,
                modified,
                include_state,
            )?))
        }
        _ => Ok(None),
    }
}

pub(super) fn query(
    c: &Connection,
    hub: &str,
    q: EntityQuery,
) -> Result<QueryEntitiesResponse, StoreError> {
    let page = q.page_size.filter(|p| *p > 0).unwrap_or(100);
    let prefix = q
        .instance_id_starts_with
        .map(|p| match normalize_id(&p) {
            Some((normalized, _)) => normalized,
            None if p.starts_with('@') => p.to_lowercase(),
            None => p,
        })
        .unwrap_or_default();
    let after = q.continuation_token.unwrap_or_default();
    let from = q.last_modified_from.as_ref().map(ms).unwrap_or(i64::MIN);
    let to = q.last_modified_to.as_ref().map(ms).unwrap_or(i64::MAX);
    // A prefix is a range of the primary key: the search starts at the tighter of the token and the prefix and
    // stops where the prefix ends, instead of reading every entity of the hub after the token.
    let (lower, op) = if prefix.as_str() > after.as_str() {
        (prefix.clone(), ">=")
    } else {
        (after, ">")
    };
    let end = super::query::prefix_end(&prefix).filter(|_| !prefix.is_empty());
    let mut stmt = c.prepare_cached(&page_sql(op, end.is_some()))?;
    let rows = stmt
        .query_map(
            rusqlite::params![hub, lower, prefix, from, to, q.include_transient, page, end],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let full = rows.len() >= usize::try_from(page).unwrap_or(usize::MAX);
    let continuation = if full {
        rows.last().map(|r| r.0.clone())
    } else {
        None
    };
    let mut entities = Vec::with_capacity(rows.len());
    for (id, state, locked_by, modified, blob) in rows {
        entities.push(metadata(
            c,
            hub,
            &id,
            (state, blob),
            locked_by,
            modified,
            q.include_state,
        )?);
    }
    Ok(QueryEntitiesResponse {
        entities,
        continuation_token: continuation,
    })
}

/// One page of `QueryEntities`: `?2` is the lower bound (`op` is `>` or `>=`), `?8` the end of the prefix's range
/// when `bounded` (else `NULL`, so the parameters stay the same).
pub(super) fn page_sql(op: &str, bounded: bool) -> String {
    format!(
        "SELECT entity_id, state, locked_by, last_modified_at, state_blob FROM entities \
         WHERE hub = ?1 AND entity_id {op} ?2 AND substr(entity_id, 1, length(?3)) = ?3 \
           AND last_modified_at >= ?4 AND last_modified_at <= ?5 AND (?6 OR state IS NOT NULL) {} \
         ORDER BY entity_id LIMIT ?7",
        if bounded {
            "AND entity_id < ?8"
        } else {
            "AND ?8 IS NULL"
        }
    )
}

/// Like the scheduler, this store keeps nothing for `CleanEntityStorage` to do: an entity is dropped as soon as it
/// is empty (see `entity::drop_if_empty`), a finished or replaced orchestration gives its locks back at once, and a
/// lock request from a finished orchestration is discarded. So the answer is 0 removed and 0 released, which is what
/// the scheduler always answers. The sweep below stays as a safety net and reports honestly whatever it finds.
pub(super) fn clean(
    c: &Connection,
    hub: &str,
    request: CleanEntityStorageRequest,
) -> Result<CleanEntityStorageResponse, StoreError> {
    let mut released = 0;
    super::changes::note_work(hub);
    if request.release_orphaned_locks {
        let mut stmt = c.prepare(
            "SELECT entity_id, locked_by FROM entities WHERE hub = ?1 AND locked_by IS NOT NULL",
        )?;
        let locked = stmt
            .query_map([hub], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (id, owner) in locked {
            if instances::load(c, hub, &owner)?.is_none_or(|r| r.is_terminal()) {
                c.prepare_cached("UPDATE entities SET locked_by = NULL, lock_section = NULL WHERE hub = ?1 AND entity_id = ?2")?.execute(
                    (hub, &id),
                )?;
                super::entity::drop_if_empty(c, hub, &id)?;
                released += 1;
            }
        }
    }
    let removed = if request.remove_empty_entities {
        c.prepare_cached("DELETE FROM entities WHERE hub = ?1 AND state IS NULL AND locked_by IS NULL AND lease_token IS NULL \
             AND NOT EXISTS (SELECT 1 FROM entity_inbox m WHERE m.hub = entities.hub AND m.entity_id = entities.entity_id)")?.execute(
            [hub],
        )?
    } else {
        0
    };
    Ok(CleanEntityStorageResponse {
        continuation_token: None,
        empty_entities_removed: i32::try_from(removed).unwrap_or(i32::MAX),
        orphaned_locks_released: released,
    })
}

/// Deletes an entity with its queue; returns whether it existed.
pub(super) fn purge(c: &Connection, hub: &str, id: &str) -> Result<bool, StoreError> {
    let Some((id, _)) = normalize_id(id) else {
        return Ok(false);
    };
    c.prepare_cached("DELETE FROM entity_inbox WHERE hub = ?1 AND entity_id = ?2")?
        .execute((hub, &id))?;
    Ok(
        c.prepare_cached("DELETE FROM entities WHERE hub = ?1 AND entity_id = ?2")?
            .execute((hub, &id))?
            > 0,
    )
}
