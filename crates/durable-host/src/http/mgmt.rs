//! The Durable management API under `/runtime/webhooks/durabletask/`, with the status codes of the extension's
//! `HttpApiHandler`: 202 + `Location` + `Retry-After` while an instance runs, 200 when done, 404 for unknown
//! instances, 410 when the instance is past the operation, 400 for bad input.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use durable_grpc::{
    EntityQuery, InstanceQuery, OrchestrationMetadata, OrchestrationStatus, PurgeFilter,
    StartOptions,
};
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use super::history::history_json;
use super::payload::{json_text, management_payload, parse_status, parse_time, status_payload};
use super::wait::wait_for;
use super::{HttpState, Incoming, error_response, json_response};

const CONTINUATION: &str = "x-ms-continuation-token";

/// Unwraps a parsed request part, or answers 400 with the message.
macro_rules! bad_request {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(message) => return Ok(error_response(StatusCode::BAD_REQUEST, &message)),
        }
    };
}

/// Unwraps an instance lookup, or answers with the status that says why the operation does not apply.
macro_rules! or_status {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(status) => return Ok(StatusCode::into_response(status)),
        }
    };
}

/// What a management request asks for, known from its method and path alone.
enum Route<'a> {
    Start(&'a str, Option<&'a str>),
    List,
    PurgeMany,
    Status(&'a str),
    PurgeOne(&'a str),
    RaiseEvent(&'a str, &'a str),
    Operation(&'a str, String),
    ListEntities(&'a str),
    GetEntity(&'a str, &'a str),
    SignalEntity(&'a str, &'a str),
}

impl<'a> Route<'a> {
    fn of(method: &Method, route: &[&'a str]) -> Option<Route<'a>> {
        let lower: Vec<String> = route.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        Some(match (method, lower.as_slice()) {
            (&Method::POST, ["orchestrators", _]) => Route::Start(route[1], None),
            (&Method::POST, ["orchestrators", _, _]) => Route::Start(route[1], Some(route[2])),
            (&Method::GET, ["instances"]) => Route::List,
            (&Method::DELETE, ["instances"]) => Route::PurgeMany,
            (&Method::GET, ["instances", _]) => Route::Status(route[1]),
            (&Method::DELETE, ["instances", _]) => Route::PurgeOne(route[1]),
            (&Method::POST, ["instances", _, "raiseevent", _]) => {
                Route::RaiseEvent(route[1], route[3])
            }
            (&Method::POST, ["instances", _, op]) => Route::Operation(route[1], (*op).to_owned()),
            (&Method::GET, ["entities", _]) => Route::ListEntities(route[1]),
            (&Method::GET, ["entities", _, _]) => Route::GetEntity(route[1], route[2]),
            (&Method::POST, ["entities", _, _]) => Route::SignalEntity(route[1], route[2]),
            _ => return None,
        })
    }

    /// Whether the operation reads a body (an input, event data or an operation's input).
    fn takes_body(&self) -> bool {
        matches!(
            self,
            Route::Start(..) | Route::RaiseEvent(..) | Route::SignalEntity(..)
        )
    }
}

pub(super) async fn handle(
    state: &HttpState,
    parts: http::request::Parts,
    body: Body,
    path: &[String],
) -> Response {
    let route: Vec<&str> = path.iter().map(String::as_str).collect();
    let Some(route) = Route::of(&parts.method, &route) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let req = if route.takes_body() {
        match Incoming::read(state, parts, body).await {
            Ok(req) => req,
            Err(refused) => return refused,
        }
    } else {
        Incoming::without_body(parts, Bytes::new())
    };
    let req = &req;
    let result = match route {
        Route::Start(function, id) => start(state, req, function, id).await,
        Route::List => list(state, req).await,
        Route::PurgeMany => purge_many(state, req).await,
        Route::Status(id) => status(state, req, id).await,
        Route::PurgeOne(id) => purge_one(state, id).await,
        Route::RaiseEvent(id, event) => raise_event(state, req, id, event).await,
        Route::Operation(id, op) => operation(state, req, id, &op).await,
        Route::ListEntities(name) => list_entities(state, req, name).await,
        Route::GetEntity(name, key) => get_entity(state, name, key).await,
        Route::SignalEntity(name, key) => signal_entity(state, req, name, key).await,
    };
    result.unwrap_or_else(|e| e.into_response())
}

/// A backend error, shown to the client as a status and a short message.
struct ApiError(durable_grpc::Error);

impl From<durable_grpc::Error> for ApiError {
    fn from(e: durable_grpc::Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use durable_grpc::Error as E;
        match &self.0 {
            E::NotFound(_) => StatusCode::NOT_FOUND.into_response(),
            E::InvalidArgument(m) => error_response(StatusCode::BAD_REQUEST, m),
            E::AlreadyExists(_) => error_response(
                StatusCode::CONFLICT,
                "An instance with this ID already exists.",
            ),
            other => {
                tracing::error!(target: "host", "management API: {other}");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The request could not be completed; see the host log.",
                )
            }
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn flag(req: &Incoming, name: &str, default: bool) -> bool {
    req.query_value(name)
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(default)
}

/// The body as JSON input: empty means no input.
fn body_json(req: &Incoming) -> Result<Value, String> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&req.body).map_err(|_| "The request body is not valid JSON.".to_owned())
}

/// The query of every management link: the hub, the connection and, when the webhooks check keys, the system
/// key (the extension appends the webhook URL's own query, which carries `code=<system key>` in Azure).
fn links_query(state: &HttpState) -> String {
    let mut query = format!(
        "taskHub={}&connection=Storage",
        super::percent_encode(&state.durable.hub)
    );
    let key = state.keys.required_query();
    if !key.is_empty() {
        query.push('&');
        query.push_str(&key);
    }
    query
}

fn check_status(state: &HttpState, req: &Incoming, instance_id: &str) -> Response {
    let payload = management_payload(&req.base(&state.base_url), instance_id, &links_query(state));
    let mut response = json_response(StatusCode::ACCEPTED, &payload);
    if let Some(location) = payload["statusQueryGetUri"]
        .as_str()
        .and_then(|l| HeaderValue::try_from(l).ok())
    {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("10"));
    response
}

async fn start(
    state: &HttpState,
    req: &Incoming,
    function: &str,
    instance_id: Option<&str>,
) -> ApiResult {
    let Some(name) = state
        .durable
        .orchestrators
        .iter()
        .find(|n| n.eq_ignore_ascii_case(function))
    else {
        return Ok(error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                "The function '{function}' doesn't exist, is disabled, or is not an orchestrator function."
            ),
        ));
    };
    let input = bad_request!(body_json(req));
    // Checked before the start, so a bad value starts nothing.
    let wait = bad_request!(wait_for(req));
    // `StartNewAsync`: the host's default version and its rule for replacing an existing instance.
    let replaceable = state.durable.overridable_states.replaceable();
    let mut options =
        StartOptions::new().with_reuse_policy(replaceable.into_iter().map(client_status));
    if let Some(version) = &state.durable.default_version {
        options = options.with_version(version.clone());
    }
    if let Some(id) = instance_id {
        options = options.with_instance_id(id);
    }
    // A caller's W3C context makes the orchestration part of its trace, as on an HTTP starter.
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(traceparent) = header("traceparent") {
        options = options.with_trace_parent(traceparent, header("tracestate"));
    }
    let id = state
        .client
        .schedule_new_orchestration(name, &input, options)
        .await?;
    Ok(wait_or_check_status(state, req, &id, wait).await)
}

/// Create-and-wait: the output when the instance completes within `wait`, its status when it ends otherwise,
/// else (or without a wait) the usual 202.
async fn wait_or_check_status(
    state: &HttpState,
    req: &Incoming,
    id: &str,
    wait: Option<Duration>,
) -> Response {
    if let Some(timeout) = wait
        && let Ok(done) = state.client.wait_for_completion(id, true, timeout).await
    {
        if done.status == OrchestrationStatus::Completed {
            return json_response(
                StatusCode::OK,
                &json_text(done.serialized_output.as_deref()),
            );
        }
        return json_response(StatusCode::OK, &status_payload(&done, true, None));
    }
    check_status(state, req, id)
}

fn client_status(status: durable_proto::OrchestrationStatus) -> OrchestrationStatus {
    use durable_proto::OrchestrationStatus as P;
    match status {
        P::Running => OrchestrationStatus::Running,
        P::Completed => OrchestrationStatus::Completed,
        P::ContinuedAsNew => OrchestrationStatus::ContinuedAsNew,
        P::Failed => OrchestrationStatus::Failed,
        P::Canceled => OrchestrationStatus::Canceled,
        P::Terminated => OrchestrationStatus::Terminated,
        P::Pending => OrchestrationStatus::Pending,
        P::Suspended => OrchestrationStatus::Suspended,
    }
}

fn is_running(status: OrchestrationStatus) -> bool {
    matches!(
        status,
        OrchestrationStatus::Running
            | OrchestrationStatus::Pending
            | OrchestrationStatus::ContinuedAsNew
            | OrchestrationStatus::Suspended
    )
}

async fn status(state: &HttpState, req: &Incoming, instance_id: &str) -> ApiResult {
    let Some(meta) = state.client.get_instance(instance_id, true).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let show_input = flag(req, "showInput", true);
    let history = if flag(req, "showHistory", false) {
        let events = state.client.get_history(instance_id).await?;
        Some(history_json(
            &events,
            show_input,
            flag(req, "showHistoryOutput", false),
        ))
    } else {
        None
    };
    let payload = status_payload(&meta, show_input, history);
    let code = match meta.status {
        s if is_running(s) => StatusCode::ACCEPTED,
        OrchestrationStatus::Failed if flag(req, "returnInternalServerErrorOnFailure", false) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::OK,
    };
    let mut response = json_response(code, &payload);
    if code == StatusCode::ACCEPTED {
        if let Ok(location) = HeaderValue::try_from(req.url(&state.base_url)) {
            response
                .headers_mut()
                .insert(http::header::LOCATION, location);
        }
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    Ok(response)
}

fn statuses(req: &Incoming) -> Result<Vec<OrchestrationStatus>, String> {
    let mut out = Vec::new();
    for (k, v) in req.query() {
        if !k.eq_ignore_ascii_case("runtimeStatus") {
            continue;
        }
        for name in v.split(',').filter(|s| !s.trim().is_empty()) {
            out.push(parse_status(name).ok_or_else(|| format!("Unknown runtimeStatus '{name}'."))?);
        }
    }
    Ok(out)
}

fn time_filter(req: &Incoming, name: &str) -> Result<Option<std::time::SystemTime>, String> {
    match req.query_value(name) {
        None => Ok(None),
        Some(text) => parse_time(&text)
            .map(Some)
            .ok_or_else(|| format!("'{name}' is not a valid time.")),
    }
}

async fn list(state: &HttpState, req: &Incoming) -> ApiResult {
    let statuses = bad_request!(statuses(req));
    let from = bad_request!(time_filter(req, "createdTimeFrom"));
    let to = bad_request!(time_filter(req, "createdTimeTo"));
    let show_input = flag(req, "showInput", false);
    let mut query = InstanceQuery::new()
        .with_statuses(statuses)
        .with_created_between(from, to)
        .with_payloads(true)
        .with_continuation_token(req.header(CONTINUATION).map(str::to_owned));
    if let Some(prefix) = req.query_value("instanceIdPrefix") {
        query = query.with_instance_id_prefix(prefix);
    }
    match req.query_value("top").map(|t| t.parse::<u32>()) {
        None => {}
        Some(Ok(top)) if top > 0 => query = query.with_page_size(top),
        Some(_) => {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                "'top' must be a positive number.",
            ));
        }
    }
    let page = state.client.query_instances(&query).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|m| status_payload(m, show_input, None))
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    if let Some(token) = page
        .continuation_token
        .as_deref()
        .and_then(|t| HeaderValue::try_from(t).ok())
    {
        response.headers_mut().insert(CONTINUATION, token);
    }
    Ok(response)
}

fn purged(count: u32) -> Response {
    if count == 0 {
        StatusCode::NOT_FOUND.into_response()
    } else {
        json_response(StatusCode::OK, &json!({ "instancesDeleted": count }))
    }
}

async fn purge_one(state: &HttpState, instance_id: &str) -> ApiResult {
    let result = state.client.purge_instance(instance_id, true).await?;
    Ok(purged(result.deleted_instance_count))
}

async fn purge_many(state: &HttpState, req: &Incoming) -> ApiResult {
    let statuses = bad_request!(statuses(req));
    let from = bad_request!(time_filter(req, "createdTimeFrom"));
    let to = bad_request!(time_filter(req, "createdTimeTo"));
    let mut filter = PurgeFilter::new().with_created_between(from, to);
    if !statuses.is_empty() {
        filter = filter.with_statuses(statuses);
    }
    let result = state.client.purge_instances(filter, true).await?;
    Ok(purged(result.deleted_instance_count))
}

/// The instance, or the response that says why the operation does not apply to it.
async fn existing(
    state: &HttpState,
    instance_id: &str,
    applies: impl Fn(OrchestrationStatus) -> bool,
) -> Result<Result<OrchestrationMetadata, StatusCode>, ApiError> {
    Ok(match state.client.get_instance(instance_id, false).await? {
        None => Err(StatusCode::NOT_FOUND),
        Some(meta) if !applies(meta.status) => Err(StatusCode::GONE),
        Some(meta) => Ok(meta),
    })
}

async fn raise_event(
    state: &HttpState,
    req: &Incoming,
    instance_id: &str,
    event: &str,
) -> ApiResult {
    let data = bad_request!(body_json(req));
    or_status!(existing(state, instance_id, is_running).await?);
    state.client.raise_event(instance_id, event, &data).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn operation(state: &HttpState, req: &Incoming, instance_id: &str, op: &str) -> ApiResult {
    let reason = req.query_value("reason");
    match op {
        "terminate" => {
            or_status!(existing(state, instance_id, is_running).await?);
            let reason = reason.unwrap_or_default();
            state.client.terminate(instance_id, &reason, true).await?;
        }
        "suspend" => {
            or_status!(existing(state, instance_id, is_running).await?);
            state.client.suspend(instance_id, reason.as_deref()).await?;
        }
        "resume" => {
            or_status!(existing(state, instance_id, is_running).await?);
            state.client.resume(instance_id, reason.as_deref()).await?;
        }
        "rewind" => {
            or_status!(existing(state, instance_id, |s| s == OrchestrationStatus::Failed).await?);
            state.client.rewind(instance_id, reason.as_deref()).await?;
        }
        "restart" => {
            let wait = bad_request!(wait_for(req));
            or_status!(existing(state, instance_id, |_| true).await?);
            let new_id = flag(req, "restartWithNewInstanceId", true);
            let id = state.client.restart(instance_id, new_id).await?;
            return Ok(wait_or_check_status(state, req, &id, wait).await);
        }
        _ => return Ok(StatusCode::NOT_FOUND.into_response()),
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

fn entity_id(name: &str, key: &str) -> String {
    format!("@{}@{key}", name.to_lowercase())
}

async fn get_entity(state: &HttpState, name: &str, key: &str) -> ApiResult {
    let id = entity_id(name, key);
    let found = state.client.get_entity(&id, true).await?;
    match found {
        Some(entity) if entity.serialized_state.is_some() => Ok(json_response(
            StatusCode::OK,
            &json_text(entity.serialized_state.as_deref()),
        )),
        _ => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

async fn list_entities(state: &HttpState, req: &Incoming, name: &str) -> ApiResult {
    let from = bad_request!(time_filter(req, "lastOperationTimeFrom"));
    let to = bad_request!(time_filter(req, "lastOperationTimeTo"));
    let mut query = EntityQuery::new()
        .with_instance_id_prefix(format!("@{}@", name.to_lowercase()))
        .with_modified_between(from, to)
        .with_state(flag(req, "fetchState", false))
        .with_continuation_token(req.header(CONTINUATION).map(str::to_owned));
    if let Some(Ok(top)) = req.query_value("top").map(|t| t.parse::<u32>()) {
        query = query.with_page_size(top.max(1));
    }
    let page = state.client.query_entities(&query).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|e| {
            let rest = e.instance_id.strip_prefix('@').unwrap_or(&e.instance_id);
            let (entity_name, key) = rest.split_once('@').unwrap_or((rest, ""));
            json!({
                "entityId": { "name": entity_name, "key": key },
                "lastOperationTime": e.last_modified.map(super::payload::format_time),
                "state": json_text(e.serialized_state.as_deref()),
            })
        })
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    if let Some(token) = page
        .continuation_token
        .as_deref()
        .and_then(|t| HeaderValue::try_from(t).ok())
    {
        response.headers_mut().insert(CONTINUATION, token);
    }
    Ok(response)
}

async fn signal_entity(state: &HttpState, req: &Incoming, name: &str, key: &str) -> ApiResult {
    let input = bad_request!(body_json(req));
    let op = req.query_value("op").unwrap_or_default();
    let id = entity_id(name, key);
    state.client.signal_entity(&id, &op, &input, None).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
