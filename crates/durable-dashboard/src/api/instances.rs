//! The instance list and one instance with its history.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Query, State};
use durable_grpc::{InstanceQuery, OrchestrationMetadata};
use serde_json::{Value, json};

use super::{AppState, Params, page_size, param, required};
use crate::cursor::Cursor;
use crate::error::ApiError;
use crate::timeline::{self, Limits};
use crate::view::{instance_detail, instance_row, millis, parse_statuses, parse_time};

/// The backend page size while looking for names: large, because most rows are read only to be dropped.
const NAME_SCAN_PAGE: u32 = 500;

/// What the instance page gets of the history.
const HISTORY_LIMITS: Limits = Limits {
    rows: 5_000,
    payload_chars: 2_000,
};

/// The name filter: a case-insensitive substring.
fn name_matches(filter: Option<&str>, metadata: &OrchestrationMetadata) -> bool {
    filter.is_none_or(|f| metadata.name.to_lowercase().contains(f))
}

/// `GET api/instances`: one page of instances. `status` (comma separated), `createdFrom` / `createdTo` and
/// `prefix` go to the backend; `name` is matched here, reading at most the scan limit of instances per call.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let client = state.client_for(&params)?;
    let statuses = parse_statuses(param(&params, "status").unwrap_or(""))?;
    let from = param(&params, "createdFrom")
        .map(|t| parse_time("createdFrom", t))
        .transpose()?;
    let to = param(&params, "createdTo")
        .map(|t| parse_time("createdTo", t))
        .transpose()?;
    let name = param(&params, "name").map(str::to_lowercase);
    let wanted = page_size(&state, &params)?;
    let mut cursor = match param(&params, "token") {
        Some(token) => Cursor::decode(token)?,
        None => Cursor {
            backend_token: None,
            skip: 0,
            page_size: if name.is_some() {
                NAME_SCAN_PAGE.max(wanted)
            } else {
                wanted
            },
        },
    };
    if cursor.page_size > state.options.max_page_size.max(NAME_SCAN_PAGE) {
        return Err(ApiError::BadRequest(
            "the page token is not one this dashboard gave out".into(),
        ));
    }
    let mut query = InstanceQuery::new()
        .with_statuses(statuses)
        .with_created_between(from, to)
        .with_page_size(cursor.page_size);
    if let Some(prefix) = param(&params, "prefix") {
        query = query.with_instance_id_prefix(prefix);
    }

    let limit = state.options.name_scan_limit;
    let mut items: Vec<Value> = Vec::new();
    let mut scanned: u32 = 0;
    let mut calls: u32 = 0;
    let next = loop {
        calls += 1;
        let page = client
            .query_instances(
                &query
                    .clone()
                    .with_continuation_token(cursor.backend_token.clone()),
            )
            .await?;
        let len = page.items.len();
        let mut resume_at = None;
        for (index, metadata) in page.items.iter().enumerate().skip(cursor.skip as usize) {
            scanned = scanned.saturating_add(1);
            if name_matches(name.as_deref(), metadata) {
                items.push(instance_row(metadata));
                if items.len() >= wanted as usize {
                    resume_at = Some(index + 1);
                    break;
                }
            }
        }
        if let Some(index) = resume_at.filter(|i| *i < len) {
            // The page is full in the middle of the backend's page: go on from the next item of that page.
            break Some(Cursor {
                skip: u32::try_from(index).unwrap_or(u32::MAX),
                ..cursor
            });
        }
        let Some(token) = page.continuation_token else {
            break None;
        };
        cursor = Cursor {
            backend_token: Some(token),
            skip: 0,
            page_size: cursor.page_size,
        };
        // Without a name filter a page of the dashboard is a page of the backend. With one: stop when full or
        // out of budget; an empty page that still has a token counts as a whole page, so a backend that hands
        // out such pages cannot keep one request going.
        let budget_spent = scanned >= limit || calls >= limit.div_ceil(cursor.page_size);
        if name.is_none() || items.len() >= wanted as usize || budget_spent {
            break Some(cursor);
        }
    };
    let short = items.len() < wanted as usize && next.is_some();
    Ok(Json(json!({
        "items": items,
        "next": next.map(|c| c.encode()),
        "scanned": scanned,
        "scanLimitReached": short,
    })))
}

/// `GET api/instance?id=`: the instance with its payloads, its history and timeline, its parent and children.
pub(crate) async fn detail(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let client = state.client_for(&params)?;
    let id = required(&params, "id")?;
    let metadata = client
        .get_instance(id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no instance with the ID {id:?}")))?;
    let events = match client.get_history(id).await {
        Ok(events) => events,
        // Purged between the two calls, or a server that keeps no history for it.
        Err(durable_grpc::Error::NotFound(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut history = timeline::build(&events, HISTORY_LIMITS);
    let mut instance = instance_detail(&metadata);
    // Servers that leave the parent out of the instance's state still have it in the history.
    if instance["parentInstanceId"].is_null() {
        instance["parentInstanceId"] = history["parentInstanceId"].take();
    }
    Ok(Json(json!({
        "instance": instance,
        "history": history,
        "now": millis(SystemTime::now()),
    })))
}

/// `GET api/instance/event?id=&seq=`: one history event with its whole payload (the table shows the start).
pub(crate) async fn event(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let client = state.client_for(&params)?;
    let id = required(&params, "id")?;
    let seq: usize = required(&params, "seq")?
        .parse()
        .map_err(|_| ApiError::BadRequest("seq must be a number".into()))?;
    let events = client.get_history(id).await?;
    let event = events
        .get(seq)
        .ok_or_else(|| ApiError::NotFound(format!("the history has no event {seq}")))?;
    let view = timeline::build(
        std::slice::from_ref(event),
        Limits {
            rows: 1,
            payload_chars: usize::MAX,
        },
    );
    let mut row = view["events"][0].clone();
    row["seq"] = json!(seq);
    Ok(Json(row))
}
