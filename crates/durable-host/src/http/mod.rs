//! The host's HTTP front door: `/api/...` triggers, the Durable management API and the admin status route.

mod body;
mod history;
mod keys;
mod mgmt;
mod payload;
mod route;
mod trigger;
mod wait;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::json;

use crate::config::{FunctionMeta, HttpTrigger};
use crate::invoke::Invoker;

pub(crate) use body::{BODY_LIMIT_SETTING, DEFAULT_MAX_BODY};
pub(crate) use keys::Keys;
pub(crate) use route::RouteTemplate;

/// An HTTP-triggered function with its parsed route.
#[derive(Debug, Clone)]
pub(crate) struct HttpFunction {
    pub(crate) meta: FunctionMeta,
    pub(crate) trigger: HttpTrigger,
    pub(crate) template: RouteTemplate,
    /// Its `durableClient` input bindings.
    pub(crate) clients: Vec<DurableClientBinding>,
}

/// A `durableClient` input binding with its `%SETTING%` expressions resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurableClientBinding {
    pub(crate) name: String,
    /// The binding's `taskHub` property, else the app's hub is used.
    pub(crate) task_hub: Option<String>,
    /// The binding's `connectionName` property.
    pub(crate) connection_name: Option<String>,
}

/// What the `durableClient` binding and the webhooks need to know.
#[derive(Debug, Clone)]
pub(crate) struct DurableInfo {
    pub(crate) hub: String,
    /// The client endpoint's URL.
    pub(crate) rpc_base_url: String,
    /// `extensions.durableTask.maxGrpcMessageSizeInBytes`.
    pub(crate) max_grpc_message_size: i64,
    pub(crate) orchestrators: Vec<String>,
    /// `extensions.durableTask.defaultVersion` and `overridableExistingInstanceStates`, which the webhook's start
    /// applies as the extension's `StartNewAsync` does.
    pub(crate) default_version: Option<String>,
    pub(crate) overridable_states: crate::config::OverridableStates,
}

/// Everything the HTTP side shares.
#[derive(Debug)]
pub(crate) struct HttpState {
    pub(crate) functions: Vec<HttpFunction>,
    pub(crate) invoker: Invoker,
    pub(crate) forward_http: bool,
    pub(crate) route_prefix: String,
    pub(crate) keys: Keys,
    /// The largest request body accepted.
    pub(crate) max_body: usize,
    pub(crate) durable: DurableInfo,
    pub(crate) client: durable_grpc::DurableClient,
    /// `http://localhost:<port>`, what the host calls itself in URLs it hands out.
    pub(crate) base_url: String,
}

/// A request, read whole (once routed and allowed).
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Incoming {
    /// The request with its body, read up to the host's limit (413 past it).
    pub(crate) async fn read(
        state: &HttpState,
        parts: http::request::Parts,
        body: Body,
    ) -> Result<Incoming, Response> {
        let body = body::read_capped(&parts.headers, body, state.max_body).await?;
        Ok(Incoming::without_body(parts, body))
    }

    /// The request, leaving its body unread (an operation that takes none).
    pub(crate) fn without_body(parts: http::request::Parts, body: Bytes) -> Incoming {
        Incoming {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        }
    }

    /// Query parameters, percent-decoded, in order.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        self.uri
            .query()
            .map(form_urlencoded_pairs)
            .unwrap_or_default()
    }

    pub(crate) fn query_value(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL as the client used it (scheme and host from the `Host` header).
    pub(crate) fn url(&self, fallback_base: &str) -> String {
        let path_and_query = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        match self.header("host") {
            Some(host) => format!("http://{host}{path_and_query}"),
            None => format!("{fallback_base}{path_and_query}"),
        }
    }

    /// `http://<host>`: the base the client reached us on.
    pub(crate) fn base(&self, fallback_base: &str) -> String {
        match self.header("host") {
            Some(host) => format!("http://{host}"),
            None => fallback_base.to_owned(),
        }
    }
}

/// `a=1&b=x%20y` to pairs; `+` is a space, as in forms.
pub(crate) fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a path segment or query value.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(
            http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        body.to_string(),
    )
        .into_response()
}

/// An error with a short message for the client (details go to the log, never to the response).
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "Message": message }))
}

/// Where the dashboard is served.
pub(crate) const DASHBOARD_PATH: &str = "/dashboard";

pub(crate) fn router(state: Arc<HttpState>) -> Router {
    // The dashboard's API follows the management webhooks' key rules; its pages hold no data and stay open.
    let keys = state.keys.clone();
    let dashboard = durable_dashboard::router(
        state.client.clone(),
        durable_dashboard::DashboardOptions::new()
            .with_title("Durable Dashboard")
            .with_task_hubs([state.durable.hub.clone()])
            .with_api_guard(move |headers, uri| {
                keys.allows_management(keys::presented_key(headers, uri.query()).as_deref())
            }),
    );
    Router::new()
        .nest_service(DASHBOARD_PATH, dashboard)
        .fallback(dispatch)
        .with_state(state)
}

/// Routes first and checks keys second, both from the request line and headers alone: an unknown route, a
/// wrong method or a missing key is answered without reading a byte of the body.
async fn dispatch(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let presented = keys::presented_key(&parts.headers, parts.uri.query());
    if segments.len() >= 3
        && segments[0].eq_ignore_ascii_case("runtime")
        && segments[1].eq_ignore_ascii_case("webhooks")
        && segments[2].eq_ignore_ascii_case("durabletask")
    {
        if !state.keys.allows_management(presented.as_deref()) {
            return unauthorized();
        }
        return mgmt::handle(&state, parts, body, &segments[3..]).await;
    }
    if segments.len() == 3
        && segments[0].eq_ignore_ascii_case("admin")
        && segments[1].eq_ignore_ascii_case("host")
        && segments[2].eq_ignore_ascii_case("status")
    {
        if !state.keys.allows_admin(presented.as_deref()) {
            return unauthorized();
        }
        return json_response(
            StatusCode::OK,
            &json!({ "state": "Running", "version": crate::invoke::HOST_VERSION }),
        );
    }
    if segments.is_empty() {
        return (StatusCode::OK, "Your Functions host is up and running.").into_response();
    }
    let prefix: Vec<&str> = state
        .route_prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let under_prefix = segments.len() >= prefix.len()
        && segments
            .iter()
            .zip(&prefix)
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !under_prefix {
        return StatusCode::NOT_FOUND.into_response();
    }
    trigger::handle(
        &state,
        parts,
        body,
        presented.as_deref(),
        &segments[prefix.len()..],
    )
    .await
}

/// 401, as the host answers a request without the key it needs (no body).
pub(crate) fn unauthorized() -> Response {
    StatusCode::UNAUTHORIZED.into_response()
}
