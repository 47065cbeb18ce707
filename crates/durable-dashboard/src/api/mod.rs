//! The JSON API the pages call: `api/info`, `api/instances`, `api/instance`, `api/instance/event`,
//! `api/instance/{action}` (POST), `api/entities` and `api/entity`. Every answer is JSON; a failure is
//! `{"error": "..."}` with a status code.

mod actions;
mod entities;
mod instances;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use durable_grpc::DurableClient;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::options::DashboardOptions;
use crate::view::STATUSES;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    client: DurableClient,
    options: DashboardOptions,
}

/// Query parameters, by name.
pub(crate) type Params = HashMap<String, String>;

impl AppState {
    pub(crate) fn new(client: DurableClient, options: DashboardOptions) -> AppState {
        AppState { client, options }
    }

    /// The client for the hub a request names: the client's own hub when it names none (or the first one listed),
    /// another listed hub over the same channel, and nothing else.
    fn client_for(&self, params: &Params) -> Result<DurableClient, ApiError> {
        let requested = params
            .get("hub")
            .map(|h| h.trim())
            .filter(|h| !h.is_empty());
        let hubs = &self.options.task_hubs;
        match requested {
            None => Ok(self.client.clone()),
            Some(hub) if hubs.first().is_some_and(|first| first == hub) => Ok(self.client.clone()),
            Some(hub) if hubs.iter().any(|h| h == hub) => {
                self.client.with_task_hub(hub).map_err(|e| {
                    tracing::warn!(target: "dashboard", "task hub {hub:?}: {e}");
                    ApiError::Backend
                })
            }
            Some(hub) => Err(ApiError::BadRequest(format!(
                "{hub:?} is not one of this dashboard's task hubs"
            ))),
        }
    }
}

/// A parameter, trimmed, when present and not blank.
pub(crate) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The `id` parameter, which every single-instance call needs.
pub(crate) fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    param(params, name)
        .ok_or_else(|| ApiError::BadRequest(format!("the {name} parameter is missing")))
}

/// A page size: the default when absent, else 1 to the maximum.
pub(crate) fn page_size(state: &AppState, params: &Params) -> Result<u32, ApiError> {
    let max = state.options.max_page_size;
    match param(params, "pageSize") {
        None => Ok(state.options.default_page_size),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("pageSize must be a number from 1 to {max}"))
            }),
    }
}

pub(crate) fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/info", get(info))
        .route("/api/instances", get(instances::list))
        .route("/api/instance", get(instances::detail))
        .route("/api/instance/event", get(instances::event))
        .route("/api/instance/{action}", post(actions::run))
        .route("/api/entities", get(entities::list))
        .route("/api/entity", get(entities::detail))
        .route("/api/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state)
}

/// The embedding application's check (keys, say), before anything else happens.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(guard) = &state.options.guard
        && !guard(request.headers(), request.uri())
    {
        return ApiError::Unauthorized.into_response();
    }
    let mut response = next.run(request).await;
    // Answers hold instance data: never cache them.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such API call".into())
}

async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let options = &state.options;
    Json(json!({
        "title": options.title,
        "taskHubs": options.task_hubs,
        "refreshSeconds": options.refresh_interval.as_secs(),
        "defaultPageSize": options.default_page_size,
        "maxPageSize": options.max_page_size,
        "nameScanLimit": options.name_scan_limit,
        "statuses": STATUSES.map(|s| s.to_string()),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
