//! The built-in durable HTTP activity (`BuiltIn::HttpActivity`): what the Durable extension runs for
//! `CallHttpAsync`, run here for the gRPC worker and the local host alike.
//!
//! The input is a `DurableHttpRequest` (`durable_core::http`), as the .NET isolated worker sends it, or a
//! one-element array holding one (the form DurableTask.Core passes activity inputs in). The request is sent with a
//! real HTTP client; a `Content-Type` header types the body (`text/plain` by default; multipart bodies are
//! refused), a token source adds `Authorization: Bearer <token>` from the runtime's identity, and `timeout`
//! bounds the exchange. Any status is an answer (a `DurableHttpResponse`); only a request that cannot be made
//! fails the activity.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use durable_core::FailureDetails;
use durable_core::http::{DurableHttpRequest, DurableHttpResponse, HttpHeaders};
use durable_proto as proto;
use tokio::sync::OnceCell;

pub use durable_core::http::HTTP_ACTIVITY_NAME;

/// Makes the HTTP calls of `BuiltIn::HttpActivity`. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct HttpActivity {
    client: reqwest::Client,
    credential: Arc<OnceCell<Result<Arc<dyn TokenCredential>, String>>>,
    fixed_credential: Option<Arc<dyn TokenCredential>>,
}

impl std::fmt::Debug for HttpActivity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpActivity")
            .field("fixed_credential", &self.fixed_credential.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for HttpActivity {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpActivity {
    /// Tokens come from the runtime's identity, found as `Authentication=DefaultAzure` finds it (environment,
    /// workload identity, managed identity, developer tools), when a request first needs one.
    pub fn new() -> Self {
        Self {
            // Redirects are answers too: the orchestration sees them, as it sees 202s.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            credential: Arc::new(OnceCell::new()),
            fixed_credential: None,
        }
    }

    /// Uses this credential for token sources.
    pub fn with_credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.fixed_credential = Some(credential);
        self
    }

    /// Runs one activity work item (its `name` must be [`HTTP_ACTIVITY_NAME`]).
    pub async fn execute(&self, request: proto::ActivityRequest) -> proto::ActivityResponse {
        let outcome = self.call(request.input.as_deref()).await;
        let (result, failure_details) = match outcome {
            Ok(response) => (serde_json::to_string(&response).ok(), None),
            Err(details) => (None, Some(details.to_proto())),
        };
        proto::ActivityResponse {
            instance_id: request
                .orchestration_instance
                .map(|i| i.instance_id)
                .unwrap_or_default(),
            task_id: request.task_id,
            result,
            failure_details,
            ..Default::default()
        }
    }

    /// Makes the call an activity input describes.
    pub async fn call(&self, input: Option<&str>) -> Result<DurableHttpResponse, FailureDetails> {
        let request = parse_input(input)?;
        let method = reqwest::Method::from_bytes(request.method.trim().as_bytes())
            .map_err(|_| invalid(format!("'{}' is not an HTTP method", request.method)))?;
        let url = reqwest::Url::parse(&request.uri)
            .map_err(|e| invalid(format!("'{}' is not an absolute URI: {e}", request.uri)))?;
        let mut builder = self.client.request(method, url);
        let mut content_type = None;
        for (name, values) in request.headers.iter().flatten() {
            for value in values {
                if name.eq_ignore_ascii_case("Content-Type") {
                    if value.to_ascii_lowercase().contains("multipart") {
                        return Err(invalid(
                            "multipart content is not supported by durable HTTP".to_owned(),
                        ));
                    }
                    content_type = Some(value.clone());
                } else {
                    builder = builder.header(name.as_str(), value.as_str());
                }
            }
        }
        if let Some(content) = request.content {
            let content_type = content_type.unwrap_or_else(|| "text/plain".to_owned());
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(content);
        }
        if let Some(source) = &request.token_source {
            let token = self.token(&source.scope()).await?;
            builder = builder.bearer_auth(token);
        }
        if let Some(timeout) = request.timeout.filter(|t| !t.is_zero()) {
            builder = builder.timeout(timeout);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| transport_failure(&e, request.timeout))?;
        let status_code = response.status().as_u16();
        let mut headers = HttpHeaders::new();
        for (name, value) in response.headers() {
            headers
                .entry(canonical_name(name.as_str()))
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_failure(&e, request.timeout))?;
        let content = String::from_utf8_lossy(&body).into_owned();
        Ok(DurableHttpResponse::new(
            status_code,
            headers,
            Some(content),
        ))
    }

    async fn token(&self, scope: &str) -> Result<String, FailureDetails> {
        let credential = match &self.fixed_credential {
            Some(c) => c.clone(),
            None => self
                .credential
                .get_or_init(|| async {
                    crate::auth::default_azure_credential().map_err(|e| e.to_string())
                })
                .await
                .clone()
                .map_err(|message| FailureDetails::new("TokenSourceError", message))?,
        };
        let token = credential.get_token(&[scope], None).await.map_err(|e| {
            FailureDetails::new("TokenSourceError", format!("no token for '{scope}': {e}"))
        })?;
        Ok(token.token.secret().to_owned())
    }
}

fn invalid(message: String) -> FailureDetails {
    FailureDetails::new("InvalidDurableHttpRequest", message).with_non_retriable(true)
}

fn parse_input(input: Option<&str>) -> Result<DurableHttpRequest, FailureDetails> {
    let text = input.unwrap_or("null");
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("the input is not JSON: {e}")))?;
    let value = match value {
        serde_json::Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    };
    // DurableTask.Core may hand the request over as a JSON string inside the array.
    let value = match value {
        serde_json::Value::String(inner) => serde_json::from_str(&inner)
            .map_err(|e| invalid(format!("the input is not a DurableHttpRequest: {e}")))?,
        other => other,
    };
    serde_json::from_value(value)
        .map_err(|e| invalid(format!("the input is not a DurableHttpRequest: {e}")))
}

fn transport_failure(error: &reqwest::Error, timeout: Option<Duration>) -> FailureDetails {
    if error.is_timeout() {
        let after = timeout.map_or_else(String::new, |t| format!(" after {t:?}"));
        return FailureDetails::new("TimeoutError", format!("the HTTP request timed out{after}"));
    }
    // The error's chain names the cause (refused, reset, TLS) without the request's headers.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    FailureDetails::new("HttpRequestError", message)
}

/// `content-type` -> `Content-Type`: the spelling .NET's header collections give, which code written for the
/// extension's answers looks up.
fn canonical_name(name: &str) -> String {
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

/// The instance every worker of this process shares (one HTTP client, one credential).
pub fn shared() -> HttpActivity {
    static SHARED: std::sync::OnceLock<HttpActivity> = std::sync::OnceLock::new();
    SHARED.get_or_init(HttpActivity::new).clone()
}

/// Whether `name` is the built-in activity, left to the runtime (an app may still register its own under it).
pub fn is_builtin(registry: &durable_core::Registry, name: &str) -> bool {
    name == HTTP_ACTIVITY_NAME && !registry.has_activity(name)
}
