//! Durable HTTP: an orchestration makes an HTTP call as a durable task (`CallHttpAsync` in Durable Functions).
//!
//! [`OrchestrationContext::call_http`] schedules the built-in activity [`HTTP_ACTIVITY_NAME`]
//! (`BuiltIn::HttpActivity`) with a [`DurableHttpRequest`] as its input, exactly as the .NET isolated worker does
//! (Azure/azure-functions-durable-extension `src/Worker.Extensions.DurableTask/TaskOrchestrationContextExtensionMethods.cs`
//! and `src/Worker.Extensions.DurableTask/HTTP/`). Nobody registers that activity: under Azure Functions the Durable
//! extension runs it, and this project's local host and gRPC worker run it the same way (a real HTTP client, a
//! managed-identity token when the request has a token source); its result is a [`DurableHttpResponse`].
//!
//! The asynchronous pattern is followed by the orchestrator, as in the .NET worker: with
//! [`DurableHttpRequest::asynchronous_pattern`] on, a `202 Accepted` answer with a `Location` header is followed
//! by a durable timer (the `Retry-After` seconds, else the host's `HttpDefaultAsyncRequestSleepTimeMilliseconds`,
//! else 30 s) and a `GET` of that location (resolved against the request's URI), until the answer is something
//! else. The polls drop the `x-functions-key` header, and when the location is on another origin also
//! `Authorization`, `Cookie` and the token source, so that credentials never leave for a host the caller did not
//! name. (The .NET worker drops the token source on every poll; it is kept here for same-origin polls, which is
//! what a status URL of the service that issued the token needs.)
//!
//! Wire shapes: the request is `{"method":"GET","uri":"https://...","headers":{"Name":"value" | ["v1","v2"]},
//! "content":"...","asynchronousPatternEnabled":false,"retryOptions":null,"timeout":"00:01:00",
//! "tokenSource":{"kind":"AzureManagedIdentity","resource":"https://management.core.windows.net/.default"}}` and
//! the response `{"statusCode":200,"headers":{...},"content":"..."}`. HTTP error statuses are responses, not
//! failures; a request that cannot be sent (bad URI, connection refused, timeout, no token) fails the task.
//!
//! ```
//! use durable_core::http::{DurableHttpRequest, ManagedIdentityTokenSource};
//! use durable_core::{OrchestrationContext, OrchestrationError};
//!
//! /// Restarts a web app through Azure Resource Manager, waiting for the long-running operation to finish.
//! async fn restart(ctx: OrchestrationContext, app_id: String) -> Result<u16, OrchestrationError> {
//!     let request = DurableHttpRequest::new(
//!         "POST",
//!         format!("https://management.azure.com{app_id}/restart?api-version=2022-03-01"),
//!     )
//!     .token_source(ManagedIdentityTokenSource::new("https://management.core.windows.net/.default"))
//!     .asynchronous_pattern(true);
//!     let response = ctx.call_http(request).await?;
//!     Ok(response.status_code)
//! }
//! # let _ = restart;
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::errors::TaskError;
use crate::orchestration::{LocalBoxFuture, OrchestrationContext};

mod wire;
use wire::{headers_map, headers_option, timespan};

/// The name of the built-in activity that makes the HTTP call.
pub const HTTP_ACTIVITY_NAME: &str = "BuiltIn::HttpActivity";

/// The request property (sent by the Functions host with every turn) that sets the default polling interval.
pub const POLL_INTERVAL_PROPERTY: &str = "HttpDefaultAsyncRequestSleepTimeMilliseconds";

/// The polling interval when neither `Retry-After` nor the host says otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Header values by name; one value is written as a string, several as an array (as the .NET worker writes them).
pub type HttpHeaders = BTreeMap<String, Vec<String>>;

/// An HTTP request made as a durable task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DurableHttpRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The absolute URI.
    pub uri: String,
    /// Request headers; `Content-Type` sets the content's type (default `text/plain`).
    #[serde(default, with = "headers_option")]
    pub headers: Option<HttpHeaders>,
    /// The body.
    #[serde(default)]
    pub content: Option<String>,
    /// Follow `202 Accepted` + `Location` until the operation ends.
    #[serde(default)]
    pub asynchronous_pattern_enabled: bool,
    /// Always `null`: HTTP-level retry options are not supported; wrap the call in a retry instead.
    #[serde(default, rename = "retryOptions")]
    retry_options: Option<serde_json::Value>,
    /// Time allowed for each HTTP exchange, as a .NET `TimeSpan` (`[d.]hh:mm:ss[.fffffff]`).
    #[serde(default, with = "timespan")]
    pub timeout: Option<Duration>,
    /// Where the bearer token comes from, if the call needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_source: Option<ManagedIdentityTokenSource>,
}

impl DurableHttpRequest {
    /// A request without headers, body, polling, timeout or token.
    pub fn new(method: impl Into<String>, uri: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            uri: uri.into(),
            headers: None,
            content: None,
            asynchronous_pattern_enabled: false,
            retry_options: None,
            timeout: None,
            token_source: None,
        }
    }

    /// A `GET` of `uri`.
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new("GET", uri)
    }

    /// Adds a header value.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .get_or_insert_with(HttpHeaders::new)
            .entry(name.into())
            .or_default()
            .push(value.into());
        self
    }

    /// Sets the body.
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.content = Some(content.into());
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self, serde_json::Error> {
        let text = serde_json::to_string(body)?;
        Ok(self
            .header("Content-Type", "application/json")
            .content(text))
    }

    /// Follows `202 Accepted` + `Location` until the operation ends.
    pub fn asynchronous_pattern(mut self, enabled: bool) -> Self {
        self.asynchronous_pattern_enabled = enabled;
        self
    }

    /// Sets the time allowed for each HTTP exchange.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the token source: a bearer token for its resource is added as `Authorization`.
    pub fn token_source(mut self, source: ManagedIdentityTokenSource) -> Self {
        self.token_source = Some(source);
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        first_value(self.headers.as_ref()?, name)
    }
}

/// A bearer token for an Entra ID resource, from the runtime's identity (managed identity in Azure, the developer's
/// tools locally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManagedIdentityTokenSource {
    /// Always `AzureManagedIdentity`.
    pub kind: String,
    /// The resource (audience) or its scope, e.g. `https://management.core.windows.net/.default`.
    pub resource: String,
    /// Authority host and tenant, when not the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ManagedIdentityOptions>,
}

impl ManagedIdentityTokenSource {
    /// Tokens for `resource`.
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            kind: "AzureManagedIdentity".into(),
            resource: resource.into(),
            options: None,
        }
    }

    /// The scope to ask a credential for: the resource with `/.default`, unless it already is a scope.
    pub fn scope(&self) -> String {
        let resource = self.resource.trim();
        if resource.ends_with("/.default") {
            resource.to_owned()
        } else {
            format!("{}/.default", resource.trim_end_matches('/'))
        }
    }
}

/// Options of a [`ManagedIdentityTokenSource`] (the extension's lower-case keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManagedIdentityOptions {
    /// The authority host.
    #[serde(
        default,
        rename = "authorityhost",
        skip_serializing_if = "Option::is_none"
    )]
    pub authority_host: Option<String>,
    /// The tenant.
    #[serde(default, rename = "tenantid", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// The answer to a [`DurableHttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DurableHttpResponse {
    /// The status code.
    pub status_code: u16,
    /// Response headers.
    #[serde(default, with = "headers_map")]
    pub headers: HttpHeaders,
    /// The body, as text.
    #[serde(default)]
    pub content: Option<String>,
}

impl DurableHttpResponse {
    /// A response with a status, headers and body.
    pub fn new(status_code: u16, headers: HttpHeaders, content: Option<String>) -> Self {
        Self {
            status_code,
            headers,
            content,
        }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        first_value(&self.headers, name)
    }

    /// The body decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.content.as_deref().unwrap_or("null"))
    }
}

fn first_value<'a>(headers: &'a HttpHeaders, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

impl OrchestrationContext {
    /// Makes an HTTP call as a durable task (see the [`http`](crate::http) module), following the asynchronous
    /// pattern when the request asks for it. HTTP error statuses are answers; a request that cannot be made fails
    /// the task.
    pub fn call_http(
        &self,
        request: DurableHttpRequest,
    ) -> LocalBoxFuture<'static, Result<DurableHttpResponse, TaskError>> {
        let ctx = self.clone();
        Box::pin(async move {
            let mut response: DurableHttpResponse =
                ctx.call_activity(HTTP_ACTIVITY_NAME, &request).await?;
            while response.status_code == 202 && request.asynchronous_pattern_enabled {
                let Some(location) = response.header("Location").map(str::to_owned) else {
                    ctx.log_warn("202 Accepted without a Location header: nothing to poll");
                    break;
                };
                let wait = response
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or_else(|| ctx.state.borrow().http_poll_interval);
                ctx.create_timer_after(wait).await?;
                let poll = poll_request(&request, &location);
                response = ctx.call_activity(HTTP_ACTIVITY_NAME, &poll).await?;
            }
            Ok(response)
        })
    }
}

/// The polling interval the host sends with the turn, or the default.
pub(crate) fn poll_interval(request: &crate::proto::OrchestratorRequest) -> Duration {
    use prost_types::value::Kind;
    match request
        .properties
        .get(POLL_INTERVAL_PROPERTY)
        .and_then(|v| v.kind.as_ref())
    {
        Some(Kind::NumberValue(ms)) if ms.is_finite() && *ms >= 0.0 => {
            Duration::from_millis(ms.min(1.0e12) as u64)
        }
        _ => DEFAULT_POLL_INTERVAL,
    }
}

/// The `GET` of a `Location`, carrying over what may go there.
pub(crate) fn poll_request(original: &DurableHttpRequest, location: &str) -> DurableHttpRequest {
    let target = resolve(&original.uri, location);
    let same_origin = origin(&original.uri).is_some_and(|o| Some(o) == origin(&target));
    let headers = original.headers.as_ref().map(|headers| {
        headers
            .iter()
            .filter(|(name, _)| {
                let dropped = name.eq_ignore_ascii_case("x-functions-key")
                    || !same_origin
                        && (name.eq_ignore_ascii_case("Authorization")
                            || name.eq_ignore_ascii_case("Cookie"));
                !dropped
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    let mut poll = DurableHttpRequest::get(target).asynchronous_pattern(true);
    poll.headers = headers;
    poll.timeout = original.timeout;
    poll.token_source = original.token_source.clone().filter(|_| same_origin);
    poll
}

/// `scheme://authority`, lower-cased, with the scheme's default port made explicit.
fn origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => "",
    };
    Some(if has_port || default_port.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}:{default_port}")
    })
}

/// A `Location` resolved against the request's URI (absolute, scheme-relative, absolute-path or relative).
fn resolve(base: &str, location: &str) -> String {
    let location = location.trim();
    if location.contains("://") {
        return location.to_owned();
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return location.to_owned();
    };
    if let Some(authority_and_path) = location.strip_prefix("//") {
        return format!("{scheme}://{authority_and_path}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = rest[authority_end..]
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let directory = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{scheme}://{authority}{directory}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_dotnet_shape() {
        let request = DurableHttpRequest::new("POST", "https://example.com/jobs")
            .header("Accept", "application/json")
            .header("X-Multi", "a")
            .header("X-Multi", "b")
            .content("hi")
            .timeout(Duration::from_secs(90))
            .token_source(ManagedIdentityTokenSource::new(
                "https://management.core.windows.net",
            ));
        let value = serde_json::to_value(&request).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "method": "POST",
                "uri": "https://example.com/jobs",
                "headers": {"Accept": "application/json", "X-Multi": ["a", "b"]},
                "content": "hi",
                "asynchronousPatternEnabled": false,
                "retryOptions": null,
                "timeout": "00:01:30",
                "tokenSource": {"kind": "AzureManagedIdentity", "resource": "https://management.core.windows.net"},
            })
        );
        let back: DurableHttpRequest = serde_json::from_value(value).unwrap();
        assert_eq!(back, request);
        assert_eq!(
            request.token_source.unwrap().scope(),
            "https://management.core.windows.net/.default"
        );
        let bare = serde_json::to_value(DurableHttpRequest::get("http://x/")).unwrap();
        assert_eq!(bare["headers"], serde_json::Value::Null);
        assert_eq!(bare["timeout"], serde_json::Value::Null);
    }

    #[test]
    fn timespans_read_as_dotnet_writes_them() {
        assert_eq!(timespan::parse("00:00:30"), Some(Duration::from_secs(30)));
        assert_eq!(
            timespan::parse("1.02:03:04.5"),
            Some(Duration::new(93_784, 500_000_000))
        );
        assert_eq!(timespan::parse("25:00:00"), None);
        assert_eq!(timespan::parse("soon"), None);
    }

    #[test]
    fn polls_resolve_the_location_and_keep_credentials_on_the_same_origin() {
        let original = DurableHttpRequest::new("POST", "https://api.example.com/v1/jobs?x=1")
            .header("Authorization", "Bearer t")
            .header("x-functions-key", "k")
            .header("Accept", "text/plain")
            .token_source(ManagedIdentityTokenSource::new("https://api.example.com"));
        let same = poll_request(&original, "status/7");
        assert_eq!(same.uri, "https://api.example.com/v1/status/7");
        assert_eq!(same.method, "GET");
        assert!(same.asynchronous_pattern_enabled);
        assert_eq!(same.header_value("authorization"), Some("Bearer t"));
        assert_eq!(same.header_value("x-functions-key"), None);
        assert!(same.token_source.is_some());
        assert_eq!(
            poll_request(&original, "/ops/1").uri,
            "https://api.example.com/ops/1"
        );
        assert_eq!(
            poll_request(&original, "https://api.example.com:443/ops/2")
                .header_value("Authorization"),
            Some("Bearer t")
        );
        let other = poll_request(&original, "https://evil.example.net/steal");
        assert_eq!(other.header_value("Authorization"), None);
        assert_eq!(other.header_value("Accept"), Some("text/plain"));
        assert!(other.token_source.is_none());
        assert_eq!(
            poll_request(&original, "//cdn.example.com/x").uri,
            "https://cdn.example.com/x"
        );
    }

    #[test]
    fn responses_read_single_and_multiple_header_values() {
        let response: DurableHttpResponse = serde_json::from_str(
            r#"{"statusCode":202,"headers":{"Location":"http://h/s","Set-Cookie":["a","b"]},"content":null}"#,
        )
        .unwrap();
        assert_eq!(response.status_code, 202);
        assert_eq!(response.header("location"), Some("http://h/s"));
        assert_eq!(response.headers["Set-Cookie"], ["a", "b"]);
    }
}
