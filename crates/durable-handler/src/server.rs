//! The HTTP surface the Functions host talks to: readiness on `/`, invocations on `POST /{FunctionName}`,
//! forwarded HTTP requests on `/{routePrefix}/{route}`, and the app's own routes.

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use futures::StreamExt as _;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tracing::{Instrument as _, Level};

use crate::app::{FunctionKind, Handler};
use crate::context::InvocationContext;
use crate::dispatch::{dispatch, run_user};
use crate::envelope::parse_envelope;
use crate::error::{BuildError, InvocationError, ServeError};
use crate::http_types::from_forwarded;
use crate::logs::LogSink;
use crate::routes::split_below_prefix;

const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// The handler's router, with the app's own routes merged in. Serve it on `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT`
/// (see [`serve`]), or drive it directly with `tower::ServiceExt::oneshot` in tests.
pub fn app(handler: Handler) -> Router {
    // `build` already tried these exact routes, so assembling them here cannot hit a conflict.
    let router = handler_routes().with_state(handler.clone());
    match &handler.inner.routes {
        Some(user) => router.merge(user.clone()),
        None => router,
    }
}

fn handler_routes() -> Router<Handler> {
    Router::new()
        .route("/", any(ready))
        .route("/{function}", post(invoke).fallback(method_not_allowed))
        // Forwarded HTTP requests are matched by hand: the host matches routes case-insensitively and forwards
        // the path as the client sent it, which axum's case-sensitive router would miss.
        .fallback(forwarded)
}

/// The service on the host's connections. An invocation of one of the app's functions goes straight to it, as the
/// router would send it, without the router's matching, extractors and the futures around them (about 7 % of what
/// the handler spent on a durable work item); everything else goes through the router. With routes of the app's
/// own the router decides every request, so that none of them can be shadowed.
#[derive(Clone)]
struct Invocations {
    handler: Handler,
    router: Router,
    direct: bool,
}

impl Invocations {
    fn new(handler: Handler) -> Self {
        Self {
            direct: handler.inner.routes.is_none(),
            router: app(handler.clone()),
            handler,
        }
    }

    /// The function a request invokes when it is `POST /{FunctionName}` of a known function, spelled without
    /// escapes (a function name needs none).
    fn direct_target(&self, request: &Request) -> Option<String> {
        if !self.direct || request.method() != axum::http::Method::POST {
            return None;
        }
        let name = request.uri().path().strip_prefix('/')?;
        if name.is_empty() || name.contains(['/', '%']) {
            return None;
        }
        self.handler.find(name).map(|_| name.to_owned())
    }
}

impl tower::Service<Request> for Invocations {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.direct_target(&request) {
            Some(function) => {
                let handler = self.handler.clone();
                Box::pin(async move { Ok(invoke_function(&handler, &function, request).await) })
            }
            None => Box::pin(tower::Service::call(&mut self.router, request)),
        }
    }
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

async fn ready() -> &'static str {
    "durable-handler ready"
}

async fn method_not_allowed(State(handler): State<Handler>, request: Request) -> Response {
    // With an empty route prefix a forwarded request can look like an invocation path.
    match try_forward(&handler, request).await {
        Ok(response) => response,
        Err(_) => method_not_allowed_response(),
    }
}

fn method_not_allowed_response() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "invocations are POST /{FunctionName}".to_owned(),
        Vec::new(),
    )
}

fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "no such route".to_owned(),
        Vec::new(),
    )
}

async fn invoke(
    State(handler): State<Handler>,
    Path(function): Path<String>,
    request: Request,
) -> Response {
    let request = if handler.find(&function).is_none() {
        match try_forward(&handler, request).await {
            Ok(response) => return response,
            Err(request) => request,
        }
    } else {
        request
    };
    invoke_function(&handler, &function, request).await
}

/// Runs one invocation of `function`, which the handler knows or answers for with an error.
async fn invoke_function(handler: &Handler, function: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let invocation_id = parts
        .headers
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The Functions host sends the context of its own span for the invocation as a W3C `traceparent` header.
    let trace = crate::dispatch::trace_header(&parts.headers);
    let span = tracing::info_span!(
        target: "durabletask",
        "invocation",
        function = %function,
        invocation_id = invocation_id.as_deref().unwrap_or("")
    );
    // Without a subscriber that takes it the span is disabled and has no parent to set.
    if !span.is_disabled() {
        durable_telemetry::set_parent_from_proto(&span, trace.as_ref());
    }
    let sink = LogSink::default();
    let result = run_invocation(
        handler,
        function,
        invocation_id,
        &parts.headers,
        body,
        &sink,
        trace,
    )
    .instrument(span)
    .await;
    match result {
        Ok(reply) => {
            let body = crate::reply::write(&reply.outputs, &sink.take(), &reply.return_value);
            json_response(StatusCode::OK, body)
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
    headers: &HeaderMap,
    body: Body,
    sink: &LogSink,
    trace: Option<durable_proto::TraceContext>,
) -> Result<crate::dispatch::Reply, InvocationError> {
    let def = handler
        .find(function)
        .ok_or_else(|| InvocationError::UnknownFunction(function.to_owned()))?;
    let limit = handler.inner.options.max_body_bytes();
    // The bytes are dropped once parsed, so a large invocation is not held twice while it runs.
    let request = {
        let bytes = read_body(headers, body, limit).await?;
        parse_envelope(&bytes)?
    };
    dispatch(handler, def, request, invocation_id, sink, trace).await
}

/// Reads the whole body, refusing it as soon as it is known to be over `limit`: at once for a declared
/// `Content-Length` over it, else when the bytes received pass it. A body that arrives in one chunk is that chunk;
/// one in several lands in one buffer sized from the declared length, rather than in chunks joined by a copy at the
/// end.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, InvocationError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|d| d > limit as u64) {
        return Err(InvocationError::TooLarge { limit });
    }
    let read_error =
        |e: axum::Error| InvocationError::Envelope(format!("could not read the body ({e})"));
    let mut stream = body.into_data_stream();
    // An invocation mostly arrives in one chunk, which is then the body as it is, without a copy.
    let Some(first) = stream.next().await.transpose().map_err(read_error)? else {
        return Ok(axum::body::Bytes::new());
    };
    if first.len() > limit {
        return Err(InvocationError::TooLarge { limit });
    }
    let Some(second) = stream.next().await.transpose().map_err(read_error)? else {
        return Ok(first);
    };
    let mut buffer = Vec::with_capacity(declared.map_or(0, |d| d as usize));
    for chunk in [first, second] {
        if buffer.len() + chunk.len() > limit {
            return Err(InvocationError::TooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
    }
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_error)?;
        if buffer.len() + chunk.len() > limit {
            return Err(InvocationError::TooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.into())
}

async fn forwarded(State(handler): State<Handler>, request: Request) -> Response {
    match try_forward(&handler, request).await {
        Ok(response) => response,
        Err(_) => not_found(),
    }
}

/// Runs the HTTP function whose route matches a forwarded request; hands the request back when none does.
async fn try_forward(handler: &Handler, request: Request) -> Result<Response, Request> {
    let path = request.uri().path().to_owned();
    let Some(segments) = split_below_prefix(&path, handler.inner.options.route_prefix()) else {
        return Err(request);
    };
    let best = handler
        .inner
        .http_routes
        .iter()
        .filter_map(|(index, template)| {
            let (score, params) = template.matches(&segments)?;
            Some((score, *index, params))
        })
        .max_by_key(|(score, index, _)| (*score, std::cmp::Reverse(*index)));
    let Some((_, index, params)) = best else {
        return Err(request);
    };
    let Some(def) = handler.inner.functions.get(index) else {
        return Err(request);
    };
    let FunctionKind::Http {
        trigger,
        handler: f,
    } = &def.kind
    else {
        return Err(request);
    };
    let method = request.method().as_str().to_ascii_lowercase();
    if !trigger.methods.is_empty() && !trigger.methods.contains(&method) {
        return Ok(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("function '{}' does not accept {method}", def.name),
            Vec::new(),
        ));
    }
    let (parts, body) = request.into_parts();
    let sink = LogSink::default();
    let body = match read_body(&parts.headers, body, handler.inner.options.max_body_bytes()).await {
        Ok(body) => body,
        Err(error) => {
            sink.log(Level::WARN, &format!("{}: {}", def.name, error.log_line()));
            return Ok((error.status(), error.to_string()).into_response());
        }
    };
    let req = from_forwarded(&parts, params, body);
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
    Ok(match run_user(def, &sink, f(req, ctx)).await {
        Ok(response) => response.into_axum(),
        Err(error) => {
            tracing::error!(function = %def.name, "{}", error.log_line());
            (error.status(), error.to_string()).into_response()
        }
    })
}

/// A JSON reply, with the header `axum::Json` gives one.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
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
    use axum::serve::ListenerExt as _;
    // Replies go out at once rather than wait for the host's acknowledgement of the last segment (Nagle), which a
    // small reply after a request on a kept-alive connection can otherwise meet.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY on a connection from the host: {e}");
        }
    });
    use axum::ServiceExt as _;
    axum::serve(listener, Invocations::new(handler).into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Io)
}

/// Binds `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` (the host only ever calls that address) and serves the app
/// until Ctrl-C / SIGTERM.
pub async fn serve(handler: Handler) -> Result<(), ServeError> {
    let port = port_from_env()?;
    // Listening starts before the socket is bound, so a stop sent while the handler starts is not lost.
    let mut stop = durable_telemetry::StopSignal::listen().map_err(ServeError::Signal)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(%addr, functions = ?handler.function_names(), "custom handler listening");
    serve_listener(handler, listener, async move { stop.recv().await }).await
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
}
