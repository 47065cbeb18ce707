//! Calling the handler the way the Functions host does: `POST /<Function>` with `{"Data","Metadata"}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use client::{HandlerClient, SendError};
pub(crate) use request::{host_base64, host_string, host_value, utc_now_text};
use request::{invocation_request, random_guid, write_envelope};

use crate::process::Handler;
use crate::queue::QueueOutputs;

/// The host version the local host reports; the protocol it speaks is that of Functions host 4.x.
pub(crate) const HOST_VERSION: &str = "4.1040.0.0";

mod client;
mod request;

tokio::task_local! {
    /// The trace context of the invocation being sent from this task, if it has one.
    static INVOCATION_TRACE: Option<durable_proto::TraceContext>;
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
    /// The handler was not running (it may be restarting), so nothing was sent.
    #[error("the handler is not running: {0}")]
    NotRunning(String),
    /// The handler's process went away during the call.
    #[error("the handler process exited during the invocation: {0}")]
    Exited(String),
    /// The invocation ran longer than `functionTimeout`; the host restarts the handler.
    #[error("Timeout value of {} was exceeded by function: Functions.{function}", timespan(*.after))]
    Timeout { after: Duration, function: String },
    /// The handler answered with a non-2xx status; like the host, the body is not read.
    #[error("{}", crate::extension::dotnet::status_code_message(*.0))]
    Status(u16),
    /// A 2xx whose body the host cannot read as an invocation result.
    #[error("Invalid HttpResponseMessage: {0}")]
    BadReply(String),
    /// The handler's process is alive but the request failed (a refused or dropped connection).
    #[error("An error occurred while sending the request. ({0})")]
    Connection(String),
    /// The function succeeded, but an output binding could not be written (a queue output failed to send).
    #[error("{0}")]
    Output(String),
}

/// A .NET `TimeSpan` as it prints: `[d.]hh:mm:ss[.fffffff]`.
fn timespan(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    let clock = if days > 0 {
        format!("{days}.{clock}")
    } else {
        clock
    };
    match d.subsec_nanos() / 100 {
        0 => clock,
        ticks => format!("{clock}.{ticks:07}"),
    }
}

impl InvokeError {
    /// Whether the Durable extension retries work whose invocation failed this way, rather than failing it. For
    /// orchestrators and activities (`OutOfProcMiddleware.IsPlatformLevelException`) that is a handler that is not
    /// running, a process that went away and a timeout; entity batches are retried only when the handler was not
    /// running (`CallEntityAsync` fails the batch for the rest).
    pub(crate) fn is_retried(&self, entity: bool) -> bool {
        match self {
            InvokeError::NotRunning(_) => true,
            InvokeError::Exited(_) | InvokeError::Timeout { .. } => !entity,
            _ => false,
        }
    }

    /// The exception the host would have thrown, as the extension sees it (inside the executor's wrapper, except
    /// for a timeout, which the executor does not wrap).
    pub(crate) fn to_exception(&self, function: &str) -> crate::extension::dotnet::Exception {
        use crate::extension::dotnet::Exception;
        let inner = match self {
            InvokeError::Timeout { .. } => {
                return Exception::new(
                    "Microsoft.Azure.WebJobs.Host.FunctionTimeoutException",
                    self.to_string(),
                );
            }
            InvokeError::BadReply(_) => {
                Exception::new("System.InvalidOperationException", self.to_string())
            }
            InvokeError::Status(_) => {
                Exception::new("System.Net.Http.HttpRequestException", self.to_string())
            }
            InvokeError::Output(_) => {
                Exception::new("System.InvalidOperationException", self.to_string())
            }
            InvokeError::NotRunning(detail)
            | InvokeError::Exited(detail)
            | InvokeError::Connection(detail) => Exception::new(
                "System.Net.Http.HttpRequestException",
                format!("An error occurred while sending the request. ({detail})"),
            ),
        };
        Exception::invocation_failed(function, inner)
    }
}

/// How long to wait for news of a dead process after a failed request.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Sends invocations to the current handler process.
#[derive(Debug, Clone)]
pub(crate) struct Invoker {
    /// For what is not an invocation (forwarded HTTP requests).
    http: reqwest::Client,
    /// For invocations.
    client: Arc<HandlerClient>,
    handler: Arc<Handler>,
    timeout: Duration,
    ready_timeout: Duration,
    /// Where queue output bindings go after a successful invocation.
    queue_outputs: Option<Arc<QueueOutputs>>,
}

impl Invoker {
    pub(crate) fn new(
        handler: Arc<Handler>,
        timeout: Duration,
        ready_timeout: Duration,
    ) -> Result<Self, String> {
        // Forwarded requests go to the handler on loopback, never through a proxy named in the environment.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Invoker {
            http,
            client: HandlerClient::new(handler.port()),
            handler,
            // `functionTimeout: -1` (no limit) must not overflow a deadline.
            timeout: timeout.min(Duration::from_secs(100 * 365 * 24 * 3600)),
            ready_timeout,
            queue_outputs: None,
        })
    }

    /// Sends the functions' queue output bindings after each successful invocation.
    pub(crate) fn with_queue_outputs(mut self, outputs: Arc<QueueOutputs>) -> Self {
        self.queue_outputs = Some(outputs);
        self
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
            Err(InvokeError::NotRunning(format!(
                "it did not answer within {:?}",
                self.ready_timeout
            )))
        }
    }

    /// [`Invoker::invoke_trigger`] with a W3C trace context, sent as the `traceparent` (and `tracestate`) headers
    /// as the Functions host sends the context of its invocation span.
    pub(crate) async fn invoke_traced(
        &self,
        trace: Option<durable_proto::TraceContext>,
        function: &str,
        reason: &str,
        data: Map<String, Value>,
        metadata: Map<String, Value>,
        trigger_text: Option<&str>,
    ) -> Result<InvokeReply, InvokeError> {
        INVOCATION_TRACE
            .scope(
                trace,
                self.invoke_trigger(function, reason, data, metadata, trigger_text),
            )
            .await
    }

    /// One invocation of `function`. `metadata` gets `sys` added; `reason` is what the log line says triggered it.
    pub(crate) async fn invoke(
        &self,
        function: &str,
        reason: &str,
        data: Map<String, Value>,
        metadata: Map<String, Value>,
    ) -> Result<InvokeReply, InvokeError> {
        self.invoke_trigger(function, reason, data, metadata, None)
            .await
    }

    /// [`Invoker::invoke`] for a trigger whose value is text: when that text is a JSON object, the host adds its
    /// top-level properties to the binding data (`Utility.ApplyBindingData`), over the trigger's own keys.
    pub(crate) async fn invoke_trigger(
        &self,
        function: &str,
        reason: &str,
        data: Map<String, Value>,
        mut metadata: Map<String, Value>,
        trigger_text: Option<&str>,
    ) -> Result<InvokeReply, InvokeError> {
        let invocation_id = random_guid();
        metadata.insert(
            "sys".into(),
            json!({
                "MethodName": function,
                "UtcNow": utc_now_text(),
                "RandGuid": random_guid(),
            }),
        );
        if let Some(text) = trigger_text {
            apply_binding_data(text, &mut metadata);
        }
        // Binding data whose name ends in "trigger" never reaches a custom handler
        // (`ScriptInvocationContextExtensions.ToHttpScriptInvocationContext`).
        metadata.retain(|k, _| !k.to_ascii_lowercase().ends_with("trigger"));
        // Serialized straight from the two maps (no envelope object is built around them) into a buffer of about
        // the right size, and the maps dropped before sending: a large request body is held as little as possible.
        let body = write_envelope(&data, &metadata);
        drop((data, metadata));
        let log = InvocationLog::begin(function, &invocation_id, reason);
        let body = body
            .map_err(|e| InvokeError::BadReply(format!("the request could not be written ({e})")))
            .inspect_err(|e| log.end_err(e))?;
        self.ready().await.inspect_err(|e| log.end_err(e))?;
        let exits = self.handler.exits();
        let started = Instant::now();
        let trace = INVOCATION_TRACE.try_with(Clone::clone).ok().flatten();
        let sent = match invocation_request(function, &invocation_id, trace) {
            Some((path, headers)) => {
                let post = self.client.post(path, headers, body.into());
                tokio::time::timeout(self.timeout, post).await
            }
            None => Ok(Err(SendError::Send {
                url: format!("{}/{function}", self.handler.base_url()),
            })),
        };
        let result = match sent {
            Err(_elapsed) => Err(self.timeout_error(function)),
            Ok(Err(e)) => Err(self.failed_request(e, exits).await),
            Ok(Ok(answer)) if !answer.status.is_success() => {
                Err(InvokeError::Status(answer.status.as_u16()))
            }
            Ok(Ok(answer)) => match parse_reply(&answer.body, answer.json_content, &log) {
                Ok(Some(reply)) => self.send_outputs(function, reply).await,
                Ok(None) => Err(self.never_completes(function, started).await),
                Err(e) => Err(e),
            },
        };
        match &result {
            Ok(_) => log.end_ok(),
            Err(e) => log.end_err(e),
        }
        if let Err(InvokeError::Timeout { .. }) = &result {
            // What the host's exception handler does with a function timeout.
            self.handler.restart(
                exits,
                format!(
                    "A function timeout has occurred. Restarting worker process executing invocationId '{invocation_id}'."
                ),
            );
        }
        result
    }

    /// The output bindings the host writes itself, after the function returned.
    async fn send_outputs(
        &self,
        function: &str,
        reply: InvokeReply,
    ) -> Result<InvokeReply, InvokeError> {
        match &self.queue_outputs {
            Some(outputs) => outputs
                .deliver(function, &reply)
                .await
                .map(|()| reply)
                .map_err(InvokeError::Output),
            None => Ok(reply),
        }
    }

    /// A request that failed without an answer: a timeout, a process that went away, or a connection the
    /// still-running handler refused or dropped.
    async fn failed_request(&self, error: SendError, exits: u64) -> InvokeError {
        if self.handler.exited_since(exits, EXIT_GRACE).await {
            return InvokeError::Exited(error.to_string());
        }
        InvokeError::Connection(error.to_string())
    }

    fn timeout_error(&self, function: &str) -> InvokeError {
        InvokeError::Timeout {
            after: self.timeout,
            function: function.to_owned(),
        }
    }

    /// A 2xx whose result reads as `null` (an empty body, or the JSON `null`): the host never completes such an
    /// invocation (`DefaultHttpWorkerService.ProcessDefaultInvocationRequest` only sets a result that is not
    /// null), so it ends when `functionTimeout` does.
    async fn never_completes(&self, function: &str, started: Instant) -> InvokeError {
        tracing::warn!(
            target: "host",
            "[{function}] the handler answered with an empty (or null) body; the Functions host never completes \
             such an invocation, so it times out after functionTimeout ({:?})",
            self.timeout
        );
        tokio::time::sleep(self.timeout.saturating_sub(started.elapsed())).await;
        self.timeout_error(function)
    }
}

/// `Utility.ApplyBindingData` of the Functions host: the top-level properties of a JSON object trigger value
/// become binding data, overwriting what is there under the same name (case-insensitively). Arrays and nulls are
/// skipped, objects stay objects, and other values become the text Newtonsoft's string conversion gives them.
pub(crate) fn apply_binding_data(text: &str, metadata: &mut Map<String, Value>) {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    for (key, value) in object {
        let converted = match value {
            Value::Null | Value::Array(_) => continue,
            Value::Object(_) => value,
            Value::Bool(b) => host_string(if b { "True" } else { "False" }),
            Value::Number(n) => host_string(&n.to_string()),
            Value::String(s) => host_string(&newtonsoft_date_text(&s).unwrap_or(s)),
        };
        let existing = metadata
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&key))
            .cloned();
        metadata.insert(existing.unwrap_or(key), converted);
    }
}

/// Newtonsoft reads ISO 8601 date strings as dates, and a date converted to text is the invariant culture's
/// `MM/dd/yyyy HH:mm:ss`, in UTC.
fn newtonsoft_date_text(text: &str) -> Option<String> {
    let well_formed = text.len() >= 19
        && text.as_bytes()[4] == b'-'
        && text.as_bytes()[7] == b'-'
        && text.as_bytes()[10] == b'T';
    if !well_formed {
        return None;
    }
    let rfc3339 = time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(text, &rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{text}Z"), &rfc3339))
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    Some(format!(
        "{:02}/{:02}/{:04} {:02}:{:02}:{:02}",
        u8::from(at.month()),
        at.day(),
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    ))
}

/// The reply as `ReadAsAsync<HttpScriptInvocationResult>` reads it: `None` for a result that reads as `null`.
fn parse_reply(
    bytes: &[u8],
    json_content: bool,
    log: &InvocationLog<'_>,
) -> Result<Option<InvokeReply>, InvokeError> {
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    if empty {
        return Ok(None);
    }
    if !json_content {
        return Err(InvokeError::BadReply(
            "the reply's content type is not application/json".into(),
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| InvokeError::BadReply(format!("not JSON ({e})")))?;
    let mut object = match value {
        Value::Null => return Ok(None),
        Value::Object(object) => object,
        _ => return Err(InvokeError::BadReply("not a JSON object".into())),
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
    Ok(Some(InvokeReply {
        outputs,
        return_value: take("ReturnValue").unwrap_or(Value::Null),
    }))
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
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("Outputs".to_owned()),
            Just("outputs".to_owned()),
            Just("Logs".to_owned()),
            Just("ReturnValue".to_owned()),
            Just("res".to_owned()),
            "[a-zA-Z]{1,6}",
        ];
        leaf.prop_recursive(4, 40, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_reply_is_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256), json_content in any::<bool>()) {
            let log = InvocationLog::begin("F", "id", "test");
            let _ = parse_reply(&bytes, json_content, &log);
        }

        #[test]
        fn any_json_reply_is_read_or_refused(value in arb_json()) {
            let log = InvocationLog::begin("F", "id", "test");
            let _ = parse_reply(value.to_string().as_bytes(), true, &log);
            let mut metadata = Map::new();
            apply_binding_data(&value.to_string(), &mut metadata);
        }

        #[test]
        fn any_trigger_text_becomes_binding_data_or_nothing(text in ".{0,40}") {
            let mut metadata = Map::new();
            apply_binding_data(&text, &mut metadata);
            let _ = newtonsoft_date_text(&text);
        }
    }
}
