//! HTTP trigger request and `http` output binding response, in the shapes the host uses.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::routes::percent_decode;

/// An HTTP trigger's request, whether the host wrapped it in `Data` or forwarded it as is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The full URL the client called (on the Functions app, not on the handler).
    pub url: String,
    /// The method, upper case.
    pub method: String,
    /// Query parameters (the first value of each).
    #[serde(deserialize_with = "string_map")]
    pub query: BTreeMap<String, String>,
    /// Request headers; names as sent, every value kept.
    #[serde(deserialize_with = "multi_map")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Route template parameters (`{name}` in the function's route).
    #[serde(deserialize_with = "string_map")]
    pub params: BTreeMap<String, String>,
    /// The body as the Functions host hands it over: the text of the request, except for
    /// `application/octet-stream` and `multipart/*` requests, whose bytes arrive base64-encoded; empty when there
    /// is none, and also for a chunked request (the host only passes on bodies with a `Content-Length`). Use
    /// [`HttpRequest::body_bytes`] for the bytes themselves. A forwarded request (`enableForwardingHttpRequest`)
    /// gets the same text here.
    #[serde(deserialize_with = "body_text")]
    pub body: String,
    /// The bytes of a forwarded request, exactly as received (shared, not copied).
    #[serde(skip)]
    raw_body: Option<Bytes>,
}

/// A binary request body that did not arrive as the base64 the Functions host writes.
#[derive(Debug, thiserror::Error)]
#[error(
    "the body of this {content_type} request is not base64, as the Functions host sends binary bodies: {reason}"
)]
pub struct BodyError {
    content_type: String,
    reason: String,
}

impl HttpRequest {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    /// A route parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The body's bytes. For `application/octet-stream` and `multipart/*` requests the host sends them as base64
    /// in [`HttpRequest::body`], and they are decoded here; for any other request they are the text's UTF-8 (the
    /// host has already decoded the bytes as UTF-8, replacing invalid sequences). A forwarded request's bytes are
    /// returned exactly as received.
    pub fn body_bytes(&self) -> Result<Cow<'_, [u8]>, BodyError> {
        if let Some(raw) = &self.raw_body {
            return Ok(Cow::Borrowed(raw));
        }
        let content_type = self.header("content-type");
        if !is_octet_or_multipart(content_type) {
            return Ok(Cow::Borrowed(self.body.as_bytes()));
        }
        BASE64
            .decode(self.body.trim())
            .map(Cow::Owned)
            .map_err(|e| BodyError {
                content_type: content_type.unwrap_or_default().to_owned(),
                reason: e.to_string(),
            })
    }

    /// The body parsed as JSON; an empty body is `null`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        if self.body.trim().is_empty() {
            serde_json::from_value(Value::Null)
        } else {
            serde_json::from_str(&self.body)
        }
    }
}

fn scalar_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Array(items) => items
                    .into_iter()
                    .next()
                    .map(scalar_text)
                    .unwrap_or_default(),
                other => scalar_text(other),
            };
            (k, v)
        })
        .collect())
}

fn multi_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let map = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Array(items) => items.into_iter().map(scalar_text).collect(),
                other => vec![scalar_text(other)],
            };
            (k, v)
        })
        .collect())
}

fn body_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    // Some host versions hand a JSON body over already parsed; give the function the text either way.
    Ok(scalar_text(Value::deserialize(d)?))
}

/// The Functions host's `IsMediaTypeOctetOrMultipart` (Azure/azure-functions-host
/// `src/WebJobs.Script/Extensions/HttpRequestExtensions.cs`): a parsable media type that is
/// `application/octet-stream` or contains `multipart/`. Those bodies travel as base64.
fn is_octet_or_multipart(content_type: Option<&str>) -> bool {
    let Some(media_type) = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
    else {
        return false;
    };
    let parsable = media_type.split_once('/').is_some_and(|(kind, sub)| {
        let token = |t: &str| !t.is_empty() && !t.contains(char::is_whitespace);
        token(kind) && token(sub)
    });
    let media_type = media_type.to_ascii_lowercase();
    parsable && (media_type == "application/octet-stream" || media_type.contains("multipart/"))
}

/// What an HTTP function answers; becomes the `http` output binding (or the response itself when forwarded).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

impl Default for HttpResponse {
    fn default() -> Self {
        Self::new(StatusCode::OK)
    }
}

impl HttpResponse {
    /// An empty response with the given status.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// 200 with a plain-text body.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(StatusCode::OK)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body)
    }

    /// 200 with a JSON body.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::new(StatusCode::OK)
            .header("Content-Type", "application/json")
            .body(serde_json::to_string(value)?))
    }

    /// Replaces the status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of a header, matched case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `http` output binding value: `{"statusCode", "headers", "body"}` (the host's `HttpOutputBindingResponse`).
    pub(crate) fn to_output_binding(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "statusCode": self.status.as_u16(),
            "headers": headers,
            "body": self.body,
        })
    }

    /// The response to send back directly, for a forwarded request. Headers that are not valid HTTP are dropped
    /// with a warning rather than failing the whole response.
    pub(crate) fn into_axum(self) -> axum::response::Response {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.append(n, v);
                }
                _ => {
                    tracing::warn!(header = %name, "dropping a response header that is not valid HTTP")
                }
            }
        }
        (self.status, headers, self.body).into_response()
    }
}

/// Builds an [`HttpRequest`] from a request the host forwarded verbatim.
pub(crate) fn from_forwarded(
    parts: &axum::http::request::Parts,
    params: BTreeMap<String, String>,
    body: Bytes,
) -> HttpRequest {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value);
    }
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let url = format!(
        "http://{host}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let query = parts.uri.query().map(parse_query).unwrap_or_default();
    // The same text a wrapped request would carry, so that a function reads its body the same way either way.
    let content_type = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let text = if is_octet_or_multipart(content_type) {
        BASE64.encode(&body)
    } else {
        String::from_utf8_lossy(body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body)).into_owned()
    };
    HttpRequest {
        url,
        method: parts.method.as_str().to_owned(),
        query,
        headers,
        params,
        body: text,
        raw_body: Some(body),
    }
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(percent_decode(k, true))
            .or_insert_with(|| percent_decode(v, true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_request_accepts_host_shapes() {
        let req: HttpRequest = serde_json::from_value(serde_json::json!({
            "Url": "http://localhost:7071/api/hello?name=a",
            "Method": "POST",
            "Query": {"name": "a"},
            "Headers": {"Content-Type": ["application/json"], "X-One": "1"},
            "Params": {"id": "7"},
            "Identities": [],
            "Body": {"city": "Tokyo"}
        }))
        .unwrap();
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("x-one"), Some("1"));
        assert_eq!(req.param("id"), Some("7"));
        assert_eq!(req.json::<Value>().unwrap()["city"], "Tokyo");
    }

    #[test]
    fn binary_bodies_are_decoded_and_text_stays_text() {
        let wrapped = |content_type: &str, body: &str| -> HttpRequest {
            serde_json::from_value(serde_json::json!({
                "Method": "POST", "Headers": {"Content-Type": [content_type]}, "Body": body
            }))
            .unwrap()
        };
        let bytes = [0u8, 0xff, 0x10, b'z'];
        let encoded = BASE64.encode(bytes);
        for content_type in [
            "application/octet-stream",
            "multipart/form-data; boundary=x",
        ] {
            let req = wrapped(content_type, &encoded);
            assert_eq!(req.body, encoded);
            assert_eq!(req.body_bytes().unwrap().as_ref(), bytes, "{content_type}");
        }
        let text = wrapped("text/plain", "caf\u{e9}");
        assert_eq!(text.body_bytes().unwrap().as_ref(), "caf\u{e9}".as_bytes());
        let broken = wrapped("application/octet-stream", "not base64!");
        let err = broken.body_bytes().unwrap_err();
        assert!(
            err.to_string().contains("application/octet-stream"),
            "{err}"
        );
        // No body (a chunked request): empty either way.
        let none: HttpRequest = serde_json::from_value(serde_json::json!({
            "Headers": {"Content-Type": ["application/octet-stream"]}
        }))
        .unwrap();
        assert!(none.body_bytes().unwrap().is_empty());
    }

    #[test]
    fn forwarded_bodies_keep_their_bytes() {
        let request = |content_type: &str| {
            axum::http::Request::builder()
                .method("POST")
                .uri("/api/upload?x=1")
                .header("content-type", content_type)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let bytes = [0xffu8, 0xfe, b'a'];
        let binary = from_forwarded(
            &request("application/octet-stream"),
            BTreeMap::new(),
            Bytes::copy_from_slice(&bytes),
        );
        assert_eq!(binary.body, BASE64.encode(bytes));
        assert_eq!(binary.body_bytes().unwrap().as_ref(), bytes);
        let text = from_forwarded(
            &request("text/plain"),
            BTreeMap::new(),
            Bytes::copy_from_slice(&bytes),
        );
        assert_eq!(text.body, "\u{fffd}\u{fffd}a");
        assert_eq!(text.body_bytes().unwrap().as_ref(), bytes);
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("a=1&b=hello%20world&c=x+y&d&e=%zz&f=%4");
        assert_eq!(q["a"], "1");
        assert_eq!(q["b"], "hello world");
        assert_eq!(q["c"], "x y");
        assert_eq!(q["d"], "");
        assert_eq!(q["e"], "%zz");
        assert_eq!(q["f"], "%4");
    }

    proptest::proptest! {
        #[test]
        fn any_query_string_is_read(query in ".{0,60}") {
            let _ = parse_query(&query);
        }

        #[test]
        fn any_forwarded_body_keeps_its_bytes(body in proptest::prelude::any::<Vec<u8>>(), binary in proptest::prelude::any::<bool>()) {
            let content_type = if binary { "application/octet-stream" } else { "text/plain" };
            let parts = axum::http::Request::builder()
                .method("POST")
                .uri("/api/x")
                .header("content-type", content_type)
                .body(())
                .unwrap()
                .into_parts()
                .0;
            let request = from_forwarded(&parts, BTreeMap::new(), Bytes::from(body.clone()));
            let received = request.body_bytes().unwrap().into_owned();
            proptest::prop_assert_eq!(received, body);
        }
    }
}
