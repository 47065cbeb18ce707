//! HTTP triggers: match the route, check the key, then forward the request or wrap it in `{"Data","Metadata"}`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use base64::Engine as _;

use super::{DurableClientBinding, HttpFunction, HttpState, Incoming, error_response};
use crate::invoke::{HOST_VERSION, InvokeError, host_string};

pub(super) async fn handle(
    state: &HttpState,
    parts: http::request::Parts,
    body: Body,
    presented: Option<&str>,
    path: &[String],
) -> Response {
    let mut best: Option<(&HttpFunction, BTreeMap<String, String>)> = None;
    let mut wrong_method = false;
    let method = parts.method.as_str().to_ascii_lowercase();
    for f in &state.functions {
        let Some(params) = f.template.matches(path) else {
            continue;
        };
        if let Some(methods) = &f.trigger.methods
            && !methods.contains(&method)
        {
            wrong_method = true;
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(b, _)| f.template.specificity() > b.template.specificity())
        {
            best = Some((f, params));
        }
    }
    let Some((function, params)) = best else {
        return if wrong_method {
            StatusCode::METHOD_NOT_ALLOWED.into_response()
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    };
    if !state.keys.allows_trigger(function.trigger.auth, presented) {
        return super::unauthorized();
    }
    let incoming = match Incoming::read(state, parts, body).await {
        Ok(incoming) => incoming,
        Err(refused) => return refused,
    };
    if state.forward_http && function.trigger.forwardable {
        return forward(state, function, incoming).await;
    }
    wrapped(state, function, incoming, params).await
}

/// `enableForwardingHttpRequest` for a function with one HTTP input and one HTTP output: the request goes to the
/// handler as is, on the same path, and its answer is the answer.
async fn forward(state: &HttpState, function: &HttpFunction, incoming: Incoming) -> Response {
    if let Err(e) = state.invoker.ready().await {
        tracing::warn!("[{}] {e}", function.meta.name);
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "The function host is not ready.",
        );
    }
    let path_and_query = incoming
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{}", state.invoker.handler().base_url(), path_and_query);
    let invocation_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(target: "host", "[{} {invocation_id}] Executing 'Functions.{}' (Reason='This function was programmatically called via the host APIs.')", function.meta.name, function.meta.name);
    // The bytes as received, moved rather than copied.
    let mut request = state
        .invoker
        .http()
        .request(incoming.method.clone(), url)
        .body(incoming.body);
    for (name, value) in &incoming.headers {
        if name == http::header::HOST || name == http::header::CONTENT_LENGTH {
            continue;
        }
        request = request.header(name, value);
    }
    request = request
        .header("X-Azure-Functions-InvocationId", &invocation_id)
        .header("X-Azure-Functions-HostVersion", HOST_VERSION);
    match request.send().await {
        Ok(reply) => {
            let status = reply.status();
            let headers = reply.headers().clone();
            let body = reply.bytes().await.unwrap_or_default();
            tracing::info!(target: "host", "[{} {invocation_id}] Executed 'Functions.{}' ({})", function.meta.name, function.meta.name, status);
            // Only the handler's headers: a default content type from here would duplicate its own.
            let mut response = Response::new(axum::body::Body::from(body));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name == http::header::TRANSFER_ENCODING || name == http::header::CONNECTION {
                    continue;
                }
                response.headers_mut().append(name.clone(), value.clone());
            }
            response
        }
        Err(e) => {
            tracing::warn!(target: "host", "[{} {invocation_id}] Executed 'Functions.{}' (Failed): {e}", function.meta.name, function.meta.name);
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The request as `GetRequestAsJObject` renders it. It takes the request so that its body's bytes are dropped
/// as soon as they are converted: a large body is then held as its text only.
pub(crate) fn request_object(
    mut incoming: Incoming,
    base: &str,
    params: &BTreeMap<String, String>,
) -> Value {
    let mut query = Map::new();
    for (k, v) in incoming.query() {
        // Repeated keys are joined with commas, as the host's query dictionary does.
        match query.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k, Value::String(v));
            }
        }
    }
    let mut headers = Map::new();
    for (name, value) in &incoming.headers {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let entry = headers
            .entry(canonical_header(name.as_str()))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(text));
        }
    }
    let mut object = Map::new();
    object.insert("Url".into(), Value::String(incoming.url(base)));
    object.insert("Method".into(), Value::String(incoming.method.to_string()));
    object.insert("Query".into(), Value::Object(query));
    object.insert("Headers".into(), Value::Object(headers));
    object.insert(
        "Params".into(),
        Value::Object(
            params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
    );
    object.insert("Identities".into(), Value::Array(Vec::new()));
    if let Some(body) = body_value(&mut incoming) {
        object.insert("Body".into(), Value::String(body));
    }
    Value::Object(object)
}

/// `Body` as `GetRequestAsJObject` writes it (Azure/azure-functions-host
/// `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`): only for a request that declares a positive
/// `Content-Length` (a chunked request has none, so its body is left out); the bytes as base64 (Newtonsoft's
/// rendering of a `byte[]`) for `application/octet-stream` and `multipart/*`; otherwise the text, read as UTF-8
/// with a byte order mark dropped and invalid bytes replaced, as .NET's `StreamReader` does.
fn body_value(incoming: &mut Incoming) -> Option<String> {
    let declared = incoming
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let bytes = std::mem::take(&mut incoming.body);
    if declared == 0 || bytes.is_empty() {
        return None;
    }
    if is_octet_or_multipart(incoming.header("content-type")) {
        return Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    Some(String::from_utf8_lossy(text).into_owned())
}

/// The host's `IsMediaTypeOctetOrMultipart`: the parsed media type is `application/octet-stream` or contains
/// `multipart/`; a content type that does not parse counts as neither.
fn is_octet_or_multipart(content_type: Option<&str>) -> bool {
    let Some(media_type) = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
    else {
        return false;
    };
    let valid = media_type.split_once('/').is_some_and(|(kind, sub)| {
        let token = |t: &str| !t.is_empty() && !t.contains(char::is_whitespace);
        token(kind) && token(sub)
    });
    if !valid {
        return false;
    }
    let media_type = media_type.to_ascii_lowercase();
    media_type == "application/octet-stream" || media_type.contains("multipart/")
}

/// `content-type` to `Content-Type`, as ASP.NET Core reports header names.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The `durableClient` binding value as the Durable extension's `BindingHelper` writes it for out-of-process
/// workers (Azure/azure-functions-durable-extension `src/WebJobs.Extensions.DurableTask/Bindings/BindingHelper.cs`):
/// its `OrchestrationClientInputData` serialized with every member, so the ones it leaves unset are `null`, in
/// declaration order, as the .NET string the host hands over.
pub(crate) fn client_binding(state: &HttpState, binding: &DurableClientBinding) -> Value {
    let hub = binding
        .task_hub
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or(&state.durable.hub);
    let text = |s: &str| Value::String(s.to_owned());
    let members = [
        ("taskHubName", text(hub)),
        (
            "connectionName",
            binding.connection_name.as_deref().map_or(Value::Null, text),
        ),
        ("creationUrls", Value::Null),
        ("managementUrls", Value::Null),
        ("baseUrl", Value::Null),
        // The system key's query string (`code=...`) when the webhooks check keys; empty otherwise, as under
        // Core Tools.
        (
            "requiredQueryStringParameters",
            text(&state.keys.required_query()),
        ),
        ("rpcBaseUrl", text(&state.durable.rpc_base_url)),
        (
            "httpBaseUrl",
            Value::String(format!("{}/runtime/webhooks/durabletask", state.base_url)),
        ),
        (
            "maxGrpcMessageSizeInBytes",
            Value::from(state.durable.max_grpc_message_size),
        ),
    ];
    let body: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::String((*name).to_owned())))
        .collect();
    host_string(&format!("{{{}}}", body.join(",")))
}

async fn wrapped(
    state: &HttpState,
    function: &HttpFunction,
    incoming: Incoming,
    params: BTreeMap<String, String>,
) -> Response {
    let request = request_object(incoming, &state.base_url, &params);
    // The caller's W3C context travels on to the handler as the host's does: in the invocation's headers.
    let trace = incoming_trace(&request["Headers"]);
    let mut metadata = Map::new();
    // The trigger's binding data: the query and headers objects and each route parameter.
    metadata.insert("Query".into(), request["Query"].clone());
    metadata.insert("Headers".into(), request["Headers"].clone());
    for (k, v) in &params {
        metadata.insert(k.clone(), host_string(v));
    }
    let mut data = Map::new();
    data.insert(function.trigger.request_binding.clone(), request);
    for binding in &function.clients {
        data.insert(binding.name.clone(), client_binding(state, binding));
    }
    let reply = match state
        .invoker
        .invoke_traced(
            trace,
            &function.meta.name,
            "This function was programmatically called via the host APIs.",
            data,
            metadata,
            None,
        )
        .await
    {
        Ok(reply) => reply,
        Err(InvokeError::NotRunning(_)) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "The function host is not ready.",
            );
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let output = match function.trigger.response_binding.as_deref() {
        Some("$return") => Some(reply.return_value),
        Some(name) => reply
            .outputs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()),
        None => None,
    };
    match output {
        None | Some(Value::Null) => StatusCode::OK.into_response(),
        Some(value) => http_output(&function.meta.name, value),
    }
}

/// `{statusCode, body, headers}` (any case; possibly as a JSON string of one) to a response.
fn http_output(function: &str, value: Value) -> Response {
    let value = match value {
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => return (StatusCode::OK, text).into_response(),
        },
        other => other,
    };
    let Value::Object(object) = value else {
        tracing::warn!("[{function}] the http output is not an object");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let field = |key: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    };
    let status = match field("statusCode").or_else(|| field("status")) {
        None | Some(Value::Null) => Some(200),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        Some(_) => None,
    }
    .and_then(|s| StatusCode::from_u16(s).ok());
    let Some(status) = status else {
        tracing::warn!("[{function}] the http output has an invalid statusCode");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = match field("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let mut response = (status, body).into_response();
    if let Some(Value::Object(headers)) = field("headers") {
        for (name, value) in headers {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(text.as_str()),
            ) {
                (Ok(n), Ok(v)) => {
                    response.headers_mut().insert(n, v);
                }
                _ => tracing::warn!("[{function}] skipping invalid response header {name:?}"),
            }
        }
    }
    response
}

/// The `traceparent` (and `tracestate`) of a request's headers object, when valid. Header names are matched without
/// regard to case; a header the request repeats counts by its first value.
fn incoming_trace(headers: &Value) -> Option<durable_proto::TraceContext> {
    let header = |name: &str| -> Option<String> {
        let (_, value) = headers
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Array(values) => values.first()?.as_str().map(str::to_owned),
            _ => None,
        }
    };
    let parent = durable_core::trace::TraceParent::parse(&header("traceparent")?)?;
    Some(parent.to_proto(header("tracestate").as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(headers: &[(&str, &str)], body: &[u8]) -> Incoming {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::try_from(*name).unwrap(),
                HeaderValue::try_from(*value).unwrap(),
            );
        }
        Incoming {
            method: http::Method::POST,
            uri: "/api/x".parse().unwrap(),
            headers: map,
            body: axum::body::Bytes::copy_from_slice(body),
        }
    }

    fn body_of(headers: &[(&str, &str)], body: &[u8]) -> Option<Value> {
        request_object(
            incoming(headers, body),
            "http://localhost:7071",
            &BTreeMap::new(),
        )
        .get("Body")
        .cloned()
    }

    #[test]
    fn bodies_are_converted_as_the_host_converts_them() {
        let bytes = [0u8, 0xff, b'a', 0x80];
        let length = bytes.len().to_string();
        for content_type in [
            "application/octet-stream",
            "Application/Octet-Stream; foo=bar",
            "multipart/form-data; boundary=x",
            "multipart/mixed",
        ] {
            assert_eq!(
                body_of(
                    &[("content-type", content_type), ("content-length", &length)],
                    &bytes
                ),
                Some(Value::String("AP9hgA==".into())),
                "{content_type}"
            );
        }
        // Text, even invalid UTF-8 (replaced) and JSON (still a string); a byte order mark is dropped.
        assert_eq!(
            body_of(
                &[("content-type", "text/plain"), ("content-length", &length)],
                &bytes
            ),
            Some(Value::String("\0\u{fffd}a\u{fffd}".into()))
        );
        assert_eq!(
            body_of(
                &[
                    ("content-type", "application/json"),
                    ("content-length", "7")
                ],
                br#"{"a":1}"#
            ),
            Some(Value::String(r#"{"a":1}"#.into()))
        );
        assert_eq!(
            body_of(&[("content-length", "5")], b"\xEF\xBB\xBFhi"),
            Some(Value::String("hi".into()))
        );
        // A content type that does not parse is not binary.
        assert_eq!(
            body_of(
                &[("content-type", "octet-stream"), ("content-length", "2")],
                b"ok"
            ),
            Some(Value::String("ok".into()))
        );
        // No Content-Length (chunked), or an empty body: no Body at all.
        assert_eq!(
            body_of(&[("content-type", "application/octet-stream")], &bytes),
            None
        );
        assert_eq!(body_of(&[("transfer-encoding", "chunked")], b"text"), None);
        assert_eq!(body_of(&[("content-length", "0")], b""), None);
    }

    #[test]
    fn the_callers_traceparent_is_read_from_the_headers_object() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let found = incoming_trace(
            &serde_json::json!({"TraceParent": [parent, "ignored"], "tracestate": "a=1"}),
        )
        .expect("a valid traceparent");
        assert_eq!(found.trace_parent, parent);
        assert_eq!(found.trace_state.as_deref(), Some("a=1"));
        // Invalid or absent: no parent, as W3C Trace Context asks.
        assert_eq!(
            incoming_trace(&serde_json::json!({"traceparent": "00-xyz-01"})),
            None
        );
        assert_eq!(incoming_trace(&serde_json::json!({})), None);
    }
}
