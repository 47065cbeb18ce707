//! Listing, purging and the "when is the next thing due" question.

use durable_proto::{
    InstanceQuery, ListInstanceIdsRequest, ListInstanceIdsResponse, PurgeInstancesRequest,
    PurgeInstancesResponse, QueryInstancesResponse, purge_instances_request,
};
use rusqlite::Connection;

use super::instances::{self, InstanceRow};
use crate::codec::{is_terminal, ms};
use crate::error::StoreError;

const DEFAULT_PAGE: i64 = 100;

/// ` AND column IN (?n, ?n+1, ...)` for a work-item name filter, or nothing when the list is empty (no filter).
/// Keeping the filter in SQL means work for other workers never crowds this worker's candidates out.
pub(super) fn name_filter(column: &str, names: usize, first_param: usize) -> String {
    if names == 0 {
        return String::new();
    }
    let params: Vec<String> = (first_param..first_param + names)
        .map(|i| format!("?{i}"))
        .collect();
    format!(" AND {column} IN ({})", params.join(", "))
}

fn status_list(statuses: &[i32]) -> String {
    statuses
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn query_instances(
    c: &Connection,
    hub: &str,
    q: InstanceQuery,
) -> Result<QueryInstancesResponse, StoreError> {
    let page = if q.max_instance_count > 0 {
        i64::from(q.max_instance_count)
    } else {
        DEFAULT_PAGE
    };
    // One extra row tells whether another page exists.
    let (sql, params) = instance_page(hub, &q, page + 1);
    let mut rows = instances::load_sql(c, &sql, &params)?;
    let more = rows.len() > usize::try_from(page).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(page).unwrap_or(usize::MAX));
    Ok(QueryInstancesResponse {
        continuation_token: if more {
            rows.last().map(|r| r.instance_id.clone())
        } else {
            None
        },
        orchestration_state: rows
            .iter()
            .map(|r| r.to_state(q.fetch_inputs_and_outputs))
            .collect(),
    })
}

/// The smallest string greater than every string that starts with `prefix` (`None` when there is none), so that a
/// prefix becomes a range of a key (`instances_by_key`, or the primary key of `entities`). Text compares as UTF-8
/// bytes, which order as code points do.
pub(super) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => 0xE000,
            n => n,
        };
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The `SELECT` for one page of `QueryInstances` (`limit` rows, ordered by instance ID), written so that each
/// filter is served by an index rather than by reading the hub (dashboards list from stores of 100,000 instances):
///
/// - an ID prefix is a range of the key's index (`instances_by_key`);
/// - otherwise a creation-time window reads `instances_by_created` over the window, then keeps the first IDs;
/// - otherwise statuses read `instances_by_status` (hub, status, instance ID) once per status, each already in
///   ID order, and merge;
/// - with no filter, the key's index from the continuation token on.
///
/// The remaining filters are checked on the rows so found. `query_plans::list_queries_use_their_indexes` holds the
/// plans.
pub(super) fn instance_page(
    hub: &str,
    q: &InstanceQuery,
    limit: i64,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let columns = instances::COLUMNS;
    let after = q.continuation_token.clone().unwrap_or_default();
    let prefix = q.instance_id_prefix.clone().unwrap_or_default();
    let mut params: Vec<Value> = vec![hub.to_owned().into(), limit.into()];
    let mut bind = |value: Value| {
        params.push(value);
        format!("?{}", params.len())
    };
    let mut conditions = vec!["hub = ?1".to_owned()];
    // One lower bound on the key, the tighter of the token and the prefix, so the search starts there.
    if !prefix.is_empty() && prefix.as_str() > after.as_str() {
        let p = bind(prefix.clone().into());
        conditions.push(format!(
            "instance_id >= {p} AND substr(instance_id, 1, length({p})) = {p}"
        ));
    } else {
        let a = bind(after.into());
        conditions.push(format!("instance_id > {a}"));
        if !prefix.is_empty() {
            let p = bind(prefix.clone().into());
            conditions.push(format!("substr(instance_id, 1, length({p})) = {p}"));
        }
    }
    if let Some(end) = (!prefix.is_empty()).then(|| prefix_end(&prefix)).flatten() {
        let e = bind(end.into());
        conditions.push(format!("instance_id < {e}"));
    }
    let from = q.created_time_from.as_ref().map(ms);
    let to = q.created_time_to.as_ref().map(ms);
    if let Some(from) = from {
        let f = bind(from.into());
        conditions.push(format!("created_at >= {f}"));
    }
    if let Some(to) = to {
        let t = bind(to.into());
        conditions.push(format!("created_at <= {t}"));
    }
    let mut statuses = q.runtime_status.clone();
    statuses.sort_unstable();
    statuses.dedup();
    let filter = conditions.join(" AND ");
    let sql = if !prefix.is_empty() || statuses.is_empty() || from.is_some() || to.is_some() {
        let index = if prefix.is_empty() && (from.is_some() || to.is_some()) {
            " INDEXED BY instances_by_created"
        } else {
            ""
        };
        let status = if statuses.is_empty() {
            String::new()
        } else {
            format!(" AND status IN ({})", status_list(&statuses))
        };
        format!(
            "SELECT {columns} FROM instances{index} WHERE {filter}{status} ORDER BY instance_id LIMIT ?2"
        )
    } else {
        // Without statistics SQLite would rather walk the key's index in order and test each status than read the
        // status index, which costs a walk of the hub for a rare status; the hint keeps it on the index.
        let branch = |s: &i32| {
            format!(
                "SELECT {columns} FROM instances INDEXED BY instances_by_status \
                 WHERE {filter} AND status = {s} ORDER BY instance_id LIMIT ?2"
            )
        };
        match statuses.as_slice() {
            [one] => branch(one),
            many => {
                let branches: Vec<String> = many
                    .iter()
                    .map(|s| format!("SELECT * FROM ({})", branch(s)))
                    .collect();
                format!(
                    "{} ORDER BY instance_id LIMIT ?2",
                    branches.join(" UNION ALL ")
                )
            }
        }
    };
    (sql, params)
}

/// Finished instances in completion order (like the scheduler), paged by a `completed_ms:instance_id` key.
pub(super) fn list_instance_ids(
    c: &Connection,
    hub: &str,
    request: ListInstanceIdsRequest,
) -> Result<ListInstanceIdsResponse, StoreError> {
    let page = if request.page_size > 0 {
        i64::from(request.page_size)
    } else {
        DEFAULT_PAGE
    };
    let statuses: Vec<i32> = if request.runtime_status.is_empty() {
        vec![1, 3, 4, 5]
    } else {
        request
            .runtime_status
            .iter()
            .copied()
            .filter(|s| is_terminal(*s))
            .collect()
    };
    if statuses.is_empty() {
        return Ok(ListInstanceIdsResponse::default());
    }
    let (after_time, after_id) = match request
        .last_instance_key
        .as_deref()
        .filter(|k| !k.is_empty())
    {
        Some(key) => {
            let parsed = key
                .split_once(':')
                .and_then(|(t, id)| t.parse::<i64>().ok().map(|t| (t, id.to_owned())));
            parsed.ok_or_else(|| {
                StoreError::InvalidArgument(format!(
                    "'{key}' is not a key returned by ListInstanceIds"
                ))
            })?
        }
        None => (i64::MIN, String::new()),
    };
    let from = request
        .completed_time_from
        .as_ref()
        .map(ms)
        .unwrap_or(i64::MIN);
    let to = request
        .completed_time_to
        .as_ref()
        .map(ms)
        .unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT instance_id, completed_at FROM instances \
         WHERE hub = ?1 AND status IN ({}) AND completed_at IS NOT NULL \
           AND completed_at >= ?2 AND completed_at < ?3 AND (completed_at, instance_id) > (?4, ?5) \
         ORDER BY completed_at, instance_id LIMIT ?6",
        status_list(&statuses)
    );
    let mut stmt = c.prepare(&sql)?;
    // One extra row tells whether another page exists.
    let mut rows = stmt
        .query_map(
            rusqlite::params![hub, from, to, after_time, after_id, page + 1],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > usize::try_from(page).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(page).unwrap_or(usize::MAX));
    Ok(ListInstanceIdsResponse {
        last_instance_key: if more {
            rows.last().map(|(id, at)| format!("{at}:{id}"))
        } else {
            None
        },
        instance_ids: rows.into_iter().map(|(id, _)| id).collect(),
    })
}

pub(super) fn purge(
    c: &Connection,
    hub: &str,
    request: PurgeInstancesRequest,
) -> Result<PurgeInstancesResponse, StoreError> {
    let recursive = request.recursive;
    let mut deleted: i32 = 0;
    match request.request {
        Some(purge_instances_request::Request::InstanceId(id)) => {
            if id.starts_with('@') && !request.is_orchestration {
                deleted =
                    deleted.saturating_add(i32::from(super::entity_query::purge(c, hub, &id)?));
            } else if let Some(row) = instances::load(c, hub, &id)? {
                if !row.is_terminal() {
                    return Err(StoreError::FailedPrecondition(format!(
                        "orchestration instance '{id}' is not in a terminal state; only completed, failed or \
                         terminated instances can be purged"
                    )));
                }
                deleted = deleted.saturating_add(purge_row(c, hub, &row, recursive)?);
            }
        }
        Some(purge_instances_request::Request::InstanceBatch(batch)) => {
            for id in batch.instance_ids {
                if let Some(row) = instances::load(c, hub, &id)?.filter(InstanceRow::is_terminal) {
                    deleted = deleted.saturating_add(purge_row(c, hub, &row, recursive)?);
                }
            }
        }
        Some(purge_instances_request::Request::PurgeInstanceFilter(filter)) => {
            let statuses: Vec<i32> = if filter.runtime_status.is_empty() {
                vec![1, 3, 4, 5]
            } else {
                filter
                    .runtime_status
                    .iter()
                    .copied()
                    .filter(|s| is_terminal(*s))
                    .collect()
            };
            if !statuses.is_empty() {
                let from = filter
                    .created_time_from
                    .as_ref()
                    .map(ms)
                    .unwrap_or(i64::MIN);
                let to = filter.created_time_to.as_ref().map(ms).unwrap_or(i64::MAX);
                let sql = format!(
                    "hub = ?1 AND created_at >= ?2 AND created_at <= ?3 AND status IN ({})",
                    status_list(&statuses)
                );
                for row in instances::load_many(c, &sql, &[&hub, &from, &to])? {
                    // A recursive purge of an earlier row may have removed this one already.
                    if instances::load(c, hub, &row.instance_id)?.is_some() {
                        deleted = deleted.saturating_add(purge_row(c, hub, &row, recursive)?);
                    }
                }
            }
        }
        None => {
            return Err(StoreError::InvalidArgument(
                "a purge request names no instance and no filter".into(),
            ));
        }
    }
    Ok(PurgeInstancesResponse {
        deleted_instance_count: deleted,
        is_complete: Some(true),
    })
}

/// Deletes a finished instance and, when recursive, its finished descendants; returns how many went.
fn purge_row(
    c: &Connection,
    hub: &str,
    row: &InstanceRow,
    recursive: bool,
) -> Result<i32, StoreError> {
    let mut doomed = vec![row.instance_id.clone()];
    if recursive {
        let finished = super::relations::Children::Finished;
        doomed.extend(
            super::relations::descendants(c, hub, &row.instance_id, finished)?
                .into_iter()
                .map(|child| child.instance_id),
        );
    }
    for id in &doomed {
        instances::delete_data(c, hub, id)?;
    }
    Ok(i32::try_from(doomed.len()).unwrap_or(i32::MAX))
}

/// The earliest future time something stored becomes runnable: a timer or delayed message, or an expiring entity
/// lease (orchestrator and activity leases are in memory: see `leases`).
pub(super) fn next_due(c: &Connection, hub: &str, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT MIN(t) FROM ( \
           SELECT MIN(visible_at) AS t FROM inbox INDEXED BY inbox_delayed \
             WHERE hub = ?1 AND delayed = 1 AND visible_at > ?2 \
           UNION ALL SELECT MIN(visible_at) FROM entity_inbox WHERE hub = ?1 AND visible_at > ?2 \
           UNION ALL SELECT MIN(lease_expires_at) FROM entities INDEXED BY entities_by_lease_expiry \
             WHERE hub = ?1 AND lease_expires_at > ?2)",
    )?
    .query_row((hub, now), |r| r.get::<_, Option<i64>>(0))?)
}
