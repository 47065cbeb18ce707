//! The HTTP surface the Functions host talks to: readiness on `/`, invocations on `POST /{FunctionName}`,
//! forwarded HTTP requests on `/{routePrefix}/{route}`, and the app's own routes.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawPathParams, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, any, on, post};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tracing::{Instrument as _, Level};

use crate::app::{FunctionKind, Handler};
use crate::context::InvocationContext;
use crate::dispatch::{dispatch, run_user};
use crate::envelope::{InvocationResponse, parse_envelope};
use crate::error::{BuildError, InvocationError, ServeError};
use crate::http_types::from_forwarded;
use crate::logs::LogSink;

const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// The handler's router, with the app's own routes merged in. Serve it on `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT`
/// (see [`serve`]), or drive it directly with `tower::ServiceExt::oneshot` in tests.
pub fn app(handler: Handler) -> Router {
    // `build` already tried these exact routes, so assembling them here cannot hit a conflict.
    let router = handler_routes(&handler).with_state(handler.clone());
    match &handler.inner.routes {
        Some(user) => router.merge(user.clone()),
        None => router,
    }
}

fn handler_routes(handler: &Handler) -> Router<Handler> {
    let mut router = Router::new()
        .route("/", any(ready))
        .route("/{function}", post(invoke).fallback(method_not_allowed));
    for (index, def) in handler.inner.functions.iter().enumerate() {
        let FunctionKind::Http { trigger, .. } = &def.kind else {
            continue;
        };
        let route = trigger.route.clone().unwrap_or_else(|| def.name.clone());
        let Ok(paths) = axum_route(&route) else {
            continue;
        };
        let filter = trigger
            .methods
            .iter()
            .filter_map(|m| method_filter(m))
            .reduce(MethodFilter::or);
        for path in paths {
            let full = join_prefix(handler.inner.options.route_prefix(), &path);
            let endpoint =
                move |State(state): State<Handler>, params: RawPathParams, request: Request| {
                    forwarded(state, index, params, request)
                };
            router = match filter {
                Some(filter) => router.route(&full, on(filter, endpoint)),
                None => router.route(&full, any(endpoint)),
            };
        }
    }
    router.fallback(not_found)
}

/// Assembles the routes once with a throwaway state, so a conflict becomes a [`BuildError`] instead of a panic
/// when the app is served.
pub(crate) fn check_routes(handler: &Handler) -> Result<(), BuildError> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = app(handler.clone());
    }));
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "overlapping routes".to_owned());
        BuildError::RouteConflict(text)
    })
}

fn join_prefix(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        format!("/{path}")
    } else {
        format!("/{prefix}/{path}")
    }
}

fn method_filter(method: &str) -> Option<MethodFilter> {
    Some(match method.to_ascii_uppercase().as_str() {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        "PATCH" => MethodFilter::PATCH,
        "HEAD" => MethodFilter::HEAD,
        "OPTIONS" => MethodFilter::OPTIONS,
        "TRACE" => MethodFilter::TRACE,
        _ => return None,
    })
}

/// Turns a Functions route template into axum paths (two when it ends in an optional parameter).
pub(crate) fn axum_route(template: &str) -> Result<Vec<String>, String> {
    let template = template.trim_matches('/');
    let segments: Vec<&str> = if template.is_empty() {
        Vec::new()
    } else {
        template.split('/').collect()
    };
    let mut path = Vec::new();
    let mut optional_tail = false;
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return Err("empty path segment".into());
        }
        let Some(inner) = segment.strip_prefix('{') else {
            if segment.contains(['{', '}']) {
                return Err(format!(
                    "segment '{segment}': a parameter must fill a whole segment"
                ));
            }
            path.push((*segment).to_owned());
            continue;
        };
        let inner = inner
            .strip_suffix('}')
            .ok_or_else(|| format!("segment '{segment}': a parameter must fill a whole segment"))?;
        let (catch_all, inner) = match inner.strip_prefix('*') {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        // Constraints (`{id:int}`) and defaults (`{id=1}`) are the host's business; the host matched already.
        let name = inner.split([':', '=']).next().unwrap_or_default();
        let (name, optional) = match name.strip_suffix('?') {
            Some(n) => (n, true),
            None => (name, inner.ends_with('?')),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("segment '{segment}': invalid parameter name"));
        }
        let last = i + 1 == segments.len();
        if (optional || catch_all) && !last {
            return Err(format!(
                "segment '{segment}': optional and catch-all parameters must come last"
            ));
        }
        optional_tail = optional || catch_all;
        path.push(if catch_all {
            format!("{{*{name}}}")
        } else {
            format!("{{{name}}}")
        });
    }
    let full = path.join("/");
    if optional_tail {
        let shorter = path[..path.len() - 1].join("/");
        Ok(vec![full, shorter])
    } else {
        Ok(vec![full])
    }
}

async fn ready() -> &'static str {
    "durable-handler ready"
}

async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "invocations are POST /{FunctionName}".to_owned(),
        Vec::new(),
    )
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "no such route".to_owned(),
        Vec::new(),
    )
}

async fn invoke(
    State(handler): State<Handler>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let invocation_id = headers
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let span = tracing::info_span!(
        "invocation",
        function = %function,
        invocation_id = invocation_id.as_deref().unwrap_or("")
    );
    let sink = LogSink::default();
    let result = run_invocation(&handler, &function, invocation_id, body, &sink)
        .instrument(span)
        .await;
    match result {
        Ok(reply) => {
            let response = InvocationResponse {
                outputs: reply.outputs,
                logs: sink.take(),
                return_value: reply.return_value,
            };
            (StatusCode::OK, axum::Json(response)).into_response()
        }
        Err(error) => {
            if error.status().is_server_error() {
                // The detail stays in the process log; the reply only says what failed.
                tracing::error!(function = %function, "{}", error.log_line());
                sink.push(format!("[error] {function}: {error}"));
            } else {
                sink.log(Level::WARN, &format!("{function}: {}", error.log_line()));
            }
            error_response(error.status(), error.to_string(), sink.take())
        }
    }
}

async fn run_invocation(
    handler: &Handler,
    function: &str,
    invocation_id: Option<String>,
    body: Body,
    sink: &LogSink,
) -> Result<crate::dispatch::Reply, InvocationError> {
    let def = handler
        .find(function)
        .ok_or_else(|| InvocationError::UnknownFunction(function.to_owned()))?;
    let limit = handler.inner.options.max_body_bytes();
    let bytes = read_body(body, limit).await?;
    let request = parse_envelope(&bytes)?;
    dispatch(handler, def, request, invocation_id, sink).await
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, InvocationError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source = std::error::Error::source(&e);
        while let Some(error) = source {
            if error.is::<http_body_util::LengthLimitError>() {
                return InvocationError::TooLarge { limit };
            }
            source = error.source();
        }
        InvocationError::Envelope(format!("could not read the body ({e})"))
    })
}

async fn forwarded(
    handler: Handler,
    index: usize,
    params: RawPathParams,
    request: Request,
) -> Response {
    let Some(def) = handler.inner.functions.get(index) else {
        return not_found().await;
    };
    let FunctionKind::Http { handler: f, .. } = &def.kind else {
        return not_found().await;
    };
    let (parts, body) = request.into_parts();
    let sink = LogSink::default();
    let body = match read_body(body, handler.inner.options.max_body_bytes()).await {
        Ok(body) => body,
        Err(error) => {
            sink.log(Level::WARN, &format!("{}: {}", def.name, error.log_line()));
            return (error.status(), error.to_string()).into_response();
        }
    };
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let req = match from_forwarded(&parts, params, &body) {
        Ok(req) => req,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let invocation_id = parts
        .headers
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ctx = InvocationContext::new(
        def.name.clone(),
        invocation_id,
        Map::new(),
        sink.clone(),
        Vec::new(),
    );
    // A forwarded response has no `Logs`; the lines still reach the process log through `tracing`.
    match run_user(def, &sink, f(req, ctx)).await {
        Ok(response) => response.into_axum(),
        Err(error) => {
            sink.log(Level::ERROR, &format!("{}: {}", def.name, error.log_line()));
            (error.status(), error.to_string()).into_response()
        }
    }
}

fn error_response(status: StatusCode, message: String, logs: Vec<String>) -> Response {
    let body = json!({
        "Outputs": {},
        "Logs": logs,
        "ReturnValue": Value::Null,
        "Error": { "status": status.as_u16(), "message": message },
    });
    (status, axum::Json(body)).into_response()
}

/// Serves the app on an already bound listener until `shutdown` resolves.
pub async fn serve_listener(
    handler: Handler,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, app(handler))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Io)
}

/// Binds `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` (the host only ever calls that address) and serves the app
/// until Ctrl-C / SIGTERM.
pub async fn serve(handler: Handler) -> Result<(), ServeError> {
    let port = port_from_env()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(%addr, functions = ?handler.function_names(), "custom handler listening");
    serve_listener(handler, listener, shutdown_signal()).await
}

/// The port the host chose: `FUNCTIONS_CUSTOMHANDLER_PORT`, or the legacy `FUNCTIONS_HTTPWORKER_PORT`.
pub fn port_from_env() -> Result<u16, ServeError> {
    parse_port(
        std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
            .or_else(|_| std::env::var("FUNCTIONS_HTTPWORKER_PORT"))
            .ok(),
    )
}

fn parse_port(raw: Option<String>) -> Result<u16, ServeError> {
    raw.as_deref()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p != 0)
        .ok_or(ServeError::MissingPort(raw))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port(Some(" 52811 ".into())).unwrap(), 52811);
        for bad in [
            None,
            Some(String::new()),
            Some("0".into()),
            Some("70000".into()),
            Some("x".into()),
        ] {
            let err = parse_port(bad).unwrap_err();
            assert!(
                err.to_string().contains("FUNCTIONS_CUSTOMHANDLER_PORT"),
                "{err}"
            );
        }
    }

    #[test]
    fn route_templates() {
        assert_eq!(axum_route("hello").unwrap(), vec!["hello"]);
        assert_eq!(
            axum_route("/orders/{id:int}/").unwrap(),
            vec!["orders/{id}"]
        );
        assert_eq!(
            axum_route("start/{name?}").unwrap(),
            vec!["start/{name}", "start"]
        );
        assert_eq!(
            axum_route("files/{*path}").unwrap(),
            vec!["files/{*path}", "files"]
        );
        assert!(axum_route("a/{x?}/b").is_err());
        assert!(axum_route("file.{ext}").is_err());
        assert!(axum_route("a//b").is_err());
        assert!(axum_route("{bad name}").is_err());
    }
}
