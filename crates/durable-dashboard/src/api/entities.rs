//! The entity list and one entity.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use durable_grpc::EntityQuery;
use serde_json::{Value, json};

use super::{AppState, Params, page_size, param, required};
use crate::error::ApiError;
use crate::view::entity;

/// Characters of each state the list shows.
const LIST_STATE_CHARS: usize = 300;

/// `GET api/entities`: one page of entities, by `name` (exact, as entity names are lower-cased) and `key` prefix.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let client = state.client_for(&params)?;
    let size = page_size(&state, &params)?;
    let prefix = match (param(&params, "name"), param(&params, "key")) {
        (Some(name), key) => Some(format!("@{}@{}", name.to_lowercase(), key.unwrap_or(""))),
        (None, Some(_)) => {
            return Err(ApiError::BadRequest(
                "a key filter needs the entity name too".into(),
            ));
        }
        (None, None) => None,
    };
    let mut query = EntityQuery::new()
        .with_state(true)
        // Entities that only hold a lock or have work queued have no state but still matter here.
        .with_transient(true)
        .with_page_size(size)
        .with_continuation_token(param(&params, "token").map(str::to_owned));
    if let Some(prefix) = prefix {
        query = query.with_instance_id_prefix(prefix);
    }
    let page = client.query_entities(&query).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(|e| entity(e, Some(LIST_STATE_CHARS))).collect::<Vec<_>>(),
        "next": page.continuation_token,
    })))
}

/// `GET api/entity?id=@name@key`: the entity with its whole state.
pub(crate) async fn detail(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let client = state.client_for(&params)?;
    let id = required(&params, "id")?;
    if !id.starts_with('@') {
        return Err(ApiError::BadRequest(format!(
            "{id:?} is not an entity ID; expected \"@name@key\""
        )));
    }
    let found = client
        .get_entity(id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no entity with the ID {id:?}")))?;
    Ok(Json(entity(&found, None)))
}
