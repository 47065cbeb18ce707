//! Calling the handler the way the Functions host does: `POST /<Function>` with `{"Data","Metadata"}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::process::Handler;

/// The host version the local host reports; the protocol it speaks is that of Functions host 4.x.
pub(crate) const HOST_VERSION: &str = "4.1040.0.0";

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

/// The reply's three fields (names are matched case-insensitively, as Newtonsoft does).
#[derive(Debug, Clone, Default)]
pub(crate) struct InvokeReply {
    pub(crate) outputs: Map<String, Value>,
    pub(crate) return_value: Value,
}

/// Why an invocation produced no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum InvokeError {
    /// The handler could not be reached or did not answer in time: the work can be retried as is.
    #[error("the handler is unavailable: {0}")]
    Unavailable(String),
    /// The handler answered with a non-2xx status; like the host, the body is not read.
    #[error("Response status code does not indicate success: {0}")]
    Status(u16),
    /// A 2xx whose body is not an invocation result.
    #[error("the handler's reply is not an invocation result: {0}")]
    BadReply(String),
}

/// Sends invocations to the current handler process.
#[derive(Debug, Clone)]
pub(crate) struct Invoker {
    http: reqwest::Client,
    handler: Arc<Handler>,
    timeout: Duration,
    ready_timeout: Duration,
}

impl Invoker {
    pub(crate) fn new(
        handler: Arc<Handler>,
        timeout: Duration,
        ready_timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Invoker {
            http,
            handler,
            timeout,
            ready_timeout,
        })
    }

    pub(crate) fn handler(&self) -> &Handler {
        &self.handler
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Waits for the handler to be up (it may be restarting), bounded by the readiness timeout.
    pub(crate) async fn ready(&self) -> Result<(), InvokeError> {
        if self.handler.wait_ready(self.ready_timeout).await {
            Ok(())
        } else {
            Err(InvokeError::Unavailable(
                "the custom handler is not running".into(),
            ))
        }
    }

    /// One invocation of `function`. `metadata` gets `sys` added; `reason` is what the log line says triggered it.
    pub(crate) async fn invoke(
        &self,
        function: &str,
        reason: &str,
        data: Map<String, Value>,
        mut metadata: Map<String, Value>,
    ) -> Result<InvokeReply, InvokeError> {
        let invocation_id = uuid::Uuid::new_v4().to_string();
        metadata.insert(
            "sys".into(),
            json!({
                "MethodName": function,
                "UtcNow": utc_now_text(),
                "RandGuid": uuid::Uuid::new_v4().to_string(),
            }),
        );
        let body = json!({ "Data": data, "Metadata": metadata });
        let log = InvocationLog::begin(function, &invocation_id, reason);
        self.ready().await.inspect_err(|e| log.end_err(e))?;
        let url = format!("{}/{}", self.handler.base_url(), function);
        let sent = self
            .http
            .post(url)
            .header("X-Azure-Functions-InvocationId", &invocation_id)
            .header("X-Azure-Functions-HostVersion", HOST_VERSION)
            .header("User-Agent", format!("Azure-Functions-Host/{HOST_VERSION}"))
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string())
            .timeout(self.timeout)
            .send()
            .await;
        let result = match sent {
            Err(e) => Err(InvokeError::Unavailable(e.to_string())),
            Ok(response) if !response.status().is_success() => {
                Err(InvokeError::Status(response.status().as_u16()))
            }
            Ok(response) => match response.bytes().await {
                Err(e) => Err(InvokeError::Unavailable(e.to_string())),
                Ok(bytes) => parse_reply(&bytes, &log),
            },
        };
        match &result {
            Ok(_) => log.end_ok(),
            Err(e) => log.end_err(e),
        }
        result
    }
}

fn parse_reply(bytes: &[u8], log: &InvocationLog<'_>) -> Result<InvokeReply, InvokeError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(InvokeReply::default());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| InvokeError::BadReply(format!("not JSON ({e})")))?;
    let Value::Object(mut object) = value else {
        return Err(InvokeError::BadReply("not a JSON object".into()));
    };
    let mut take = |key: &str| {
        let found = object.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
        found.and_then(|k| object.remove(&k))
    };
    if let Some(Value::Array(lines)) = take("Logs") {
        for line in lines {
            match line {
                Value::String(s) => log.user(&s),
                other => log.user(&other.to_string()),
            }
        }
    }
    let outputs = match take("Outputs") {
        Some(Value::Object(outputs)) => outputs,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(InvokeError::BadReply("\"Outputs\" is not an object".into())),
    };
    Ok(InvokeReply {
        outputs,
        return_value: take("ReturnValue").unwrap_or(Value::Null),
    })
}

/// The host's "Executing / Executed" lines, and the handler's `Logs` in between, all tagged with the function name
/// and invocation id so interleaved invocations stay readable.
struct InvocationLog<'a> {
    function: &'a str,
    id: &'a str,
    started: Instant,
}

impl<'a> InvocationLog<'a> {
    fn begin(function: &'a str, id: &'a str, reason: &str) -> Self {
        tracing::info!(target: "host", "[{function} {id}] Executing 'Functions.{function}' (Reason='{reason}')");
        InvocationLog {
            function,
            id,
            started: Instant::now(),
        }
    }

    fn user(&self, line: &str) {
        tracing::info!(target: "function", "[{} {}] {line}", self.function, self.id);
    }

    fn end_ok(&self) {
        let ms = self.started.elapsed().as_millis();
        tracing::info!(target: "host", "[{} {}] Executed 'Functions.{}' (Succeeded, Duration={ms}ms)", self.function, self.id, self.function);
    }

    fn end_err(&self, error: &InvokeError) {
        let ms = self.started.elapsed().as_millis();
        tracing::warn!(target: "host", "[{} {}] Executed 'Functions.{}' (Failed, Duration={ms}ms): {error}", self.function, self.id, self.function);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_like_the_host() {
        assert_eq!(host_string("abc"), Value::String("\"abc\"".into()));
        assert_eq!(host_value(Value::Null), Value::String("null".into()));
        assert_eq!(host_value(json!(5)), Value::String("5".into()));
        assert_eq!(host_value(json!([1, 2])), Value::String("[1,2]".into()));
        assert_eq!(host_value(json!({"a": 1})), json!({"a": 1}));
        let now = utc_now_text();
        assert_eq!(now.len(), "2026-11-25T17:41:21.1234567Z".len(), "{now}");
        assert!(now.ends_with('Z'));
    }
}
