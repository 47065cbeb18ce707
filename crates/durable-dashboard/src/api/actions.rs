//! `POST api/instance/{action}`: raise-event, terminate, suspend, resume, rewind, restart and purge.
//!
//! The pages ask for confirmation before they call these. A call must send `Content-Type: application/json` and
//! the `X-Dashboard-Request` header: a form or a link on another site can send neither without the browser asking
//! this server first (which it never allows), so another site cannot make a visitor's browser act here.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::error::ApiError;

/// The header every action carries.
pub(crate) const REQUEST_HEADER: &str = "x-dashboard-request";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ActionBody {
    instance_id: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    event_name: Option<String>,
    /// The event's data as JSON text; empty means none.
    #[serde(default)]
    event_data: Option<String>,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    new_instance_id: bool,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn reason(body: &ActionBody) -> Option<&str> {
    body.reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
}

pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    Path(action): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !is_json(&headers) || !headers.contains_key(REQUEST_HEADER) {
        return Err(ApiError::BadRequest(format!(
            "actions take a JSON body with Content-Type: application/json and the {REQUEST_HEADER} header"
        )));
    }
    let body: ActionBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the request body is not what {action} takes: {e}"))
    })?;
    let id = body.instance_id.trim();
    if id.is_empty() {
        return Err(ApiError::BadRequest("instanceId is missing".into()));
    }
    let client = state.client_for(&params)?;
    let result = match action.as_str() {
        "raise-event" => {
            let name = body
                .event_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::BadRequest("the event needs a name".into()))?;
            let data: Value = match body.event_data.as_deref().map(str::trim) {
                None | Some("") => Value::Null,
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    ApiError::BadRequest(format!("the event data is not JSON: {e}"))
                })?,
            };
            client.raise_event(id, name, &data).await?;
            json!({ "instanceId": id })
        }
        "terminate" => {
            client.terminate(id, &reason(&body), body.recursive).await?;
            json!({ "instanceId": id })
        }
        "suspend" => {
            client.suspend(id, reason(&body)).await?;
            json!({ "instanceId": id })
        }
        "resume" => {
            client.resume(id, reason(&body)).await?;
            json!({ "instanceId": id })
        }
        "rewind" => {
            client.rewind(id, reason(&body)).await?;
            json!({ "instanceId": id })
        }
        "restart" => {
            let new_id = client.restart(id, body.new_instance_id).await?;
            json!({ "instanceId": new_id })
        }
        "purge" => {
            let result = client.purge_instance(id, body.recursive).await?;
            if result.deleted_instance_count == 0 {
                return Err(ApiError::NotFound(format!(
                    "there is no instance with the ID {id:?} to purge"
                )));
            }
            json!({ "instanceId": id, "deleted": result.deleted_instance_count })
        }
        other => {
            return Err(ApiError::NotFound(format!("there is no action {other:?}")));
        }
    };
    tracing::info!(target: "dashboard", "{action} {id:?} from the dashboard");
    Ok(Json(result))
}
