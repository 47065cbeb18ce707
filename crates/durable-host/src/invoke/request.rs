//! What an invocation request is made of: the binding values as the host renders them, the `{"Data","Metadata"}`
//! body, and the request's path and headers.

use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::HOST_VERSION;

/// `Azure-Functions-Host/<HOST_VERSION>`, the host's user agent.
const HOST_USER_AGENT: &str = "Azure-Functions-Host/4.1040.0.0";

const INVOCATION_ID: HeaderName = HeaderName::from_static("x-azure-functions-invocationid");
const HOST_VERSION_HEADER: HeaderName = HeaderName::from_static("x-azure-functions-hostversion");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Renders a value as `GetHttpScriptInvocationContextValue` does: objects stay objects, and everything else (a
/// .NET string, number, array or null) goes through `JsonConvert.SerializeObject`, so it arrives as JSON text
/// inside a JSON string.
pub(crate) fn host_value(value: Value) -> Value {
    match value {
        Value::Object(_) => value,
        other => Value::String(other.to_string()),
    }
}

/// A .NET string binding value: its JSON text, as a JSON string (`abc` becomes `"\"abc\""`).
pub(crate) fn host_string(text: &str) -> Value {
    host_value(Value::String(text.to_owned()))
}

/// [`host_string`] of the base64 text of `bytes` (a durable trigger's protobuf message), written in one go: base64's
/// alphabet needs no JSON escape, so the quoted text is the base64 between two quotes.
pub(crate) fn host_base64(bytes: &[u8]) -> Value {
    use base64::Engine as _;
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4 + 2);
    text.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut text);
    text.push('"');
    Value::String(text)
}

/// A random (version 4) GUID's text, from the thread's generator: `Uuid::new_v4` asks the kernel for every one, a
/// system call twice per invocation.
pub(super) fn random_guid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// `DateTime.UtcNow` as Newtonsoft writes it (ISO 8601, 7 fractional digits, `Z`).
pub(crate) fn utc_now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.nanosecond() / 100
    )
}

/// The path and headers of an invocation request, as the Functions host sends them (`Host` and `Content-Length`
/// are added on the way out). Only the ID and the trace context are built per invocation. `None` when the
/// function's name is not a valid path.
pub(super) fn invocation_request(
    function: &str,
    invocation_id: &str,
    trace: Option<durable_proto::TraceContext>,
) -> Option<(http::Uri, HeaderMap)> {
    let path = http::Uri::try_from(format!("/{function}")).ok()?;
    let mut headers = HeaderMap::with_capacity(8);
    if let Some(trace) = trace {
        if let Ok(value) = HeaderValue::try_from(trace.trace_parent) {
            headers.insert(TRACEPARENT, value);
        }
        if let Some(value) = trace
            .trace_state
            .filter(|s| !s.is_empty())
            .and_then(|s| HeaderValue::try_from(s).ok())
        {
            headers.insert(TRACESTATE, value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(invocation_id) {
        headers.insert(INVOCATION_ID, value);
    }
    headers.insert(HOST_VERSION_HEADER, HeaderValue::from_static(HOST_VERSION));
    headers.insert(USER_AGENT, HeaderValue::from_static(HOST_USER_AGENT));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    Some((path, headers))
}

/// `{"Data":{..},"Metadata":{..}}`, the bytes `Value::Object` of the two would serialize to.
pub(super) fn write_envelope(
    data: &Map<String, Value>,
    metadata: &Map<String, Value>,
) -> serde_json::Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "Data")]
        data: &'a Map<String, Value>,
        #[serde(rename = "Metadata")]
        metadata: &'a Map<String, Value>,
    }
    let hint = map_size_hint(data) + map_size_hint(metadata) + 32;
    let mut body = Vec::with_capacity(hint);
    serde_json::to_writer(&mut body, &Envelope { data, metadata })?;
    Ok(body)
}

fn map_size_hint(map: &Map<String, Value>) -> usize {
    map.iter()
        .map(|(k, v)| k.len() + 4 + json_size_hint(v))
        .sum::<usize>()
        + 2
}

/// About how long a value's JSON text is: its strings' lengths with room for escapes, plus a little per node.
/// Writing into a buffer of this size avoids growing (and copying) a large one on the way.
fn json_size_hint(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + s.len() / 8 + 2,
        Value::Array(items) => items.iter().map(json_size_hint).sum::<usize>() + 2 + items.len(),
        Value::Object(map) => map_size_hint(map),
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    #[test]
    fn values_are_encoded_like_the_host() {
        assert_eq!(host_string("abc"), Value::String("\"abc\"".into()));
        assert_eq!(host_value(Value::Null), Value::String("null".into()));
        assert_eq!(host_value(json!(5)), Value::String("5".into()));
        assert_eq!(host_value(json!([1, 2])), Value::String("[1,2]".into()));
        assert_eq!(host_value(json!({"a": 1})), json!({"a": 1}));
        for bytes in [
            &b""[..],
            b"\0",
            b"\xff\xfe",
            b"any protobuf bytes \x01\x02\x03",
        ] {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            assert_eq!(host_base64(bytes), host_string(&text));
        }
        let data = Map::from_iter([("context".to_owned(), host_base64(b"\x0a\x01i"))]);
        let metadata = Map::from_iter([
            ("instanceId".to_owned(), host_string("a\"b")),
            ("data".to_owned(), json!({"n": [1, null, "x"]})),
        ]);
        assert_eq!(
            write_envelope(&data, &metadata).unwrap(),
            serde_json::to_vec(&json!({"Data": data, "Metadata": metadata})).unwrap()
        );
        let guid = uuid::Uuid::parse_str(&random_guid()).unwrap();
        assert_eq!(guid.get_version(), Some(uuid::Version::Random));
        assert_ne!(random_guid(), random_guid());
        assert_eq!(
            HOST_USER_AGENT,
            format!("Azure-Functions-Host/{HOST_VERSION}")
        );
        let now = utc_now_text();
        assert_eq!(now.len(), "2026-11-25T17:41:21.1234567Z".len(), "{now}");
        assert!(now.ends_with('Z'));
    }
}
