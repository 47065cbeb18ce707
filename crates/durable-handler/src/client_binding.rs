//! The `durableClient` input binding: the payload the Durable extension hands a starter function, and the
//! check-status response built from it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::string_layers;
use crate::error::InvocationError;
use crate::http_types::HttpResponse;

/// What the Durable extension puts in a `durableClient` binding (its `OrchestrationClientInputData`).
///
/// Unknown fields are ignored, and missing or `null` ones default, since the extension adds fields over time and
/// writes the members it leaves unset as `null`. Extensions from before late 2024 send the management base URL as
/// `baseUrl` instead of `httpBaseUrl`; either fills [`ClientBinding::http_base_url`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientBinding {
    /// The task hub the client works on.
    pub task_hub_name: String,
    /// The connection (app setting) name, when the binding set one; the client sends it as
    /// `Durable-ConnectionName`.
    pub connection_name: Option<String>,
    /// The extension's local gRPC endpoint (`TaskHubSidecarService`, plaintext), e.g. `http://127.0.0.1:51234`.
    pub rpc_base_url: String,
    /// Query string every management URL must carry (the system key, `code=...`); may be empty.
    pub required_query_string_parameters: String,
    /// Base of the management webhooks, without a trailing `/`, e.g. `http://localhost:7071/runtime/webhooks/durabletask`
    /// (`httpBaseUrl`, or `baseUrl` from older extensions).
    pub http_base_url: String,
}

/// The payload as written, every member optional and possibly `null`.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct WirePayload {
    task_hub_name: Option<String>,
    connection_name: Option<String>,
    rpc_base_url: Option<String>,
    required_query_string_parameters: Option<String>,
    http_base_url: Option<String>,
    base_url: Option<String>,
}

impl<'de> Deserialize<'de> for ClientBinding {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WirePayload::deserialize(deserializer)?;
        let http_base_url = wire
            .http_base_url
            .filter(|url| !url.is_empty())
            .or(wire.base_url)
            .unwrap_or_default();
        Ok(Self {
            task_hub_name: wire.task_hub_name.unwrap_or_default(),
            connection_name: wire.connection_name.filter(|name| !name.is_empty()),
            rpc_base_url: wire.rpc_base_url.unwrap_or_default(),
            required_query_string_parameters: wire
                .required_query_string_parameters
                .unwrap_or_default(),
            http_base_url,
        })
    }
}

impl ClientBinding {
    /// A binding for the given gRPC endpoint and task hub (for tests and local tools).
    pub fn new(rpc_base_url: impl Into<String>, task_hub_name: impl Into<String>) -> Self {
        Self {
            rpc_base_url: rpc_base_url.into(),
            task_hub_name: task_hub_name.into(),
            ..Self::default()
        }
    }

    /// Sets the management webhook base URL.
    pub fn with_http_base_url(mut self, url: impl Into<String>) -> Self {
        self.http_base_url = url.into();
        self
    }

    /// Sets the query string required on management URLs.
    pub fn with_required_query_string_parameters(mut self, query: impl Into<String>) -> Self {
        self.required_query_string_parameters = query.into();
        self
    }

    /// Sets the connection name.
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// Decodes the binding as the host sends it: a JSON string holding a JSON string holding the object (an
    /// object at any of those layers is accepted too).
    pub(crate) fn from_binding_value(
        binding: &str,
        value: &Value,
    ) -> Result<Self, InvocationError> {
        let object = string_layers(value.clone())
            .into_iter()
            .find(Value::is_object)
            .ok_or_else(|| {
                InvocationError::binding(
                    binding,
                    "the durableClient value is not a JSON object (nor a JSON-encoded one)",
                )
            })?;
        let parsed: Self = serde_json::from_value(object).map_err(|e| {
            InvocationError::binding(
                binding,
                format!("the durableClient value does not fit ({e})"),
            )
        })?;
        if parsed.rpc_base_url.trim().is_empty() {
            return Err(InvocationError::binding(
                binding,
                "the durableClient value has no rpcBaseUrl (the extension's gRPC endpoint)",
            ));
        }
        Ok(parsed)
    }

    /// The management URLs for an instance, built the way the .NET isolated worker builds them from a client
    /// binding: `{httpBaseUrl}/instances/{escaped id}` plus a suffix, then the required query string.
    pub fn management_payload(&self, instance_id: &str) -> HttpManagementPayload {
        let base = self.http_base_url.trim_end_matches('/');
        let instance_url = format!("{base}/instances/{}", escape_data_string(instance_id));
        let common = self
            .required_query_string_parameters
            .trim_start_matches('?');
        let build = |url: String, extra: Option<&str>| {
            let mut url = url;
            let mut appended = false;
            for query in [extra, Some(common)].into_iter().flatten() {
                if !query.is_empty() {
                    url.push(if appended { '&' } else { '?' });
                    url.push_str(query);
                    appended = true;
                }
            }
            url
        };
        // The .NET worker writes the reason placeholder as a plain (non-interpolated) string, so it keeps its
        // doubled braces; we reproduce its output as is, since clients written against it expect that text.
        let reason = Some("reason={{text}}");
        HttpManagementPayload {
            id: instance_id.to_owned(),
            purge_history_delete_uri: build(instance_url.clone(), None),
            send_event_post_uri: build(format!("{instance_url}/raiseEvent/{{eventName}}"), None),
            status_query_get_uri: build(instance_url.clone(), None),
            terminate_post_uri: build(format!("{instance_url}/terminate"), reason),
            suspend_post_uri: build(format!("{instance_url}/suspend"), reason),
            resume_post_uri: build(format!("{instance_url}/resume"), reason),
        }
    }

    /// `202 Accepted` with `Location` = the status URL and the management payload as the JSON body: what
    /// `CreateCheckStatusResponse` answers.
    pub fn create_check_status_response(&self, instance_id: &str) -> HttpResponse {
        let payload = self.management_payload(instance_id);
        let body = serde_json::to_string(&payload).unwrap_or_else(|_| "{}".to_owned());
        HttpResponse::new(axum::http::StatusCode::ACCEPTED)
            .header("Location", payload.status_query_get_uri.clone())
            .header("Content-Type", "application/json")
            .body(body)
    }
}

/// The management URLs of one orchestration instance (the check-status payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpManagementPayload {
    /// The instance ID.
    pub id: String,
    /// `DELETE` here purges the instance's history.
    pub purge_history_delete_uri: String,
    /// `POST` here raises an event; replace `{eventName}`.
    pub send_event_post_uri: String,
    /// `GET` here returns the status.
    pub status_query_get_uri: String,
    /// `POST` here terminates the instance.
    pub terminate_post_uri: String,
    /// `POST` here suspends the instance.
    pub suspend_post_uri: String,
    /// `POST` here resumes the instance.
    pub resume_post_uri: String,
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as .NET's `Uri.EscapeDataString` does.
fn escape_data_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_decodes_double_encoded_and_ignores_unknown_fields() {
        let inner = json!({
            "taskHubName": "hub", "connectionName": null, "rpcBaseUrl": "http://localhost:4001",
            "requiredQueryStringParameters": "code=abc", "httpBaseUrl": "http://h/runtime/webhooks/durabletask",
            "maxGrpcMessageSizeInBytes": 1234, "grpcHttpClientTimeout": "00:01:40"
        })
        .to_string();
        let value = Value::String(serde_json::to_string(&inner).unwrap());
        let binding = ClientBinding::from_binding_value("starter", &value).unwrap();
        assert_eq!(binding.task_hub_name, "hub");
        assert_eq!(binding.required_query_string_parameters, "code=abc");
        assert_eq!(binding.connection_name, None);
    }

    #[test]
    fn binding_accepts_nulls_and_the_older_base_url() {
        // As the current extension writes it: unset members are null.
        let current = json!({
            "taskHubName": "hub", "connectionName": null, "creationUrls": null, "managementUrls": null,
            "baseUrl": null, "requiredQueryStringParameters": null, "rpcBaseUrl": "http://127.0.0.1:4100",
            "httpBaseUrl": "http://h/runtime/webhooks/durabletask", "maxGrpcMessageSizeInBytes": 4194304
        });
        let binding = ClientBinding::from_binding_value("starter", &current).unwrap();
        assert_eq!(
            binding.http_base_url,
            "http://h/runtime/webhooks/durabletask"
        );
        assert_eq!(binding.required_query_string_parameters, "");
        assert_eq!(binding.connection_name, None);
        // Extensions before late 2024: `baseUrl`, no `httpBaseUrl`.
        let older = json!({
            "taskHubName": "hub", "connectionName": "MyConnection", "rpcBaseUrl": "http://localhost:4001",
            "requiredQueryStringParameters": "code=k", "baseUrl": "http://old/runtime/webhooks/durabletask"
        })
        .to_string();
        let value = Value::String(serde_json::to_string(&older).unwrap());
        let binding = ClientBinding::from_binding_value("starter", &value).unwrap();
        assert_eq!(
            binding.http_base_url,
            "http://old/runtime/webhooks/durabletask"
        );
        assert_eq!(binding.connection_name.as_deref(), Some("MyConnection"));
        assert_eq!(
            binding.management_payload("i").status_query_get_uri,
            "http://old/runtime/webhooks/durabletask/instances/i?code=k"
        );
        // Both present: httpBaseUrl wins; a null taskHubName is an empty one.
        let both = json!({"taskHubName": null, "rpcBaseUrl": "http://x", "httpBaseUrl": "http://new", "baseUrl": "http://old"});
        let binding = ClientBinding::from_binding_value("starter", &both).unwrap();
        assert_eq!(
            (
                binding.http_base_url.as_str(),
                binding.task_hub_name.as_str()
            ),
            ("http://new", "")
        );
        // A null rpcBaseUrl is as missing as an absent one.
        let err =
            ClientBinding::from_binding_value("starter", &json!({"rpcBaseUrl": null})).unwrap_err();
        assert!(err.to_string().contains("rpcBaseUrl"), "{err}");
    }

    #[test]
    fn binding_without_rpc_url_is_refused() {
        let err =
            ClientBinding::from_binding_value("starter", &json!({"taskHubName": "x"})).unwrap_err();
        assert!(err.to_string().contains("rpcBaseUrl"));
    }

    #[test]
    fn payload_matches_the_dotnet_isolated_worker() {
        let binding = ClientBinding::new("http://localhost:4001", "default")
            .with_http_base_url("http://localhost:7071/runtime/webhooks/durabletask")
            .with_required_query_string_parameters("code=XYZ");
        let p = binding.management_payload("a b/c");
        let base = "http://localhost:7071/runtime/webhooks/durabletask/instances/a%20b%2Fc";
        assert_eq!(p.status_query_get_uri, format!("{base}?code=XYZ"));
        assert_eq!(p.purge_history_delete_uri, format!("{base}?code=XYZ"));
        assert_eq!(
            p.send_event_post_uri,
            format!("{base}/raiseEvent/{{eventName}}?code=XYZ")
        );
        assert_eq!(
            p.terminate_post_uri,
            format!("{base}/terminate?reason={{{{text}}}}&code=XYZ")
        );
        assert_eq!(
            p.suspend_post_uri,
            format!("{base}/suspend?reason={{{{text}}}}&code=XYZ")
        );
        assert_eq!(
            p.resume_post_uri,
            format!("{base}/resume?reason={{{{text}}}}&code=XYZ")
        );
    }

    #[test]
    fn payload_without_query_string() {
        let binding = ClientBinding::new("http://localhost:4001", "default")
            .with_http_base_url("http://localhost:7071/runtime/webhooks/durabletask/");
        let p = binding.management_payload("id1");
        assert_eq!(
            p.status_query_get_uri,
            "http://localhost:7071/runtime/webhooks/durabletask/instances/id1"
        );
        assert_eq!(
            p.terminate_post_uri,
            "http://localhost:7071/runtime/webhooks/durabletask/instances/id1/terminate?reason={{text}}"
        );
        let response = binding.create_check_status_response("id1");
        assert_eq!(response.status.as_u16(), 202);
        assert_eq!(
            response.header_value("location"),
            Some(p.status_query_get_uri.as_str())
        );
        let body: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(body["id"], "id1");
        assert_eq!(body["statusQueryGetUri"], p.status_query_get_uri);
    }

    proptest::proptest! {
        #[test]
        fn binding_decoder_never_panics(text in ".*", key in "[a-zA-Z]{0,12}") {
            let _ = ClientBinding::from_binding_value("starter", &Value::String(text.clone()));
            let wrapped = serde_json::to_string(&text).unwrap();
            let _ = ClientBinding::from_binding_value("starter", &Value::String(wrapped));
            let _ = ClientBinding::from_binding_value("starter", &json!({ key: text }));
        }

        #[test]
        fn payload_urls_stay_under_the_base(id in ".{1,40}") {
            let binding = ClientBinding::new("http://localhost:4001", "hub").with_http_base_url("http://h/b");
            let p = binding.management_payload(&id);
            let escaped = escape_data_string(&id);
            proptest::prop_assert!(p.status_query_get_uri.starts_with("http://h/b/instances/"));
            proptest::prop_assert!(!escaped.contains(['/', '?', '#', '&', ' ']));
            proptest::prop_assert_eq!(p.id, id);
        }
    }

    #[test]
    fn escaping_matches_escape_data_string() {
        assert_eq!(escape_data_string("aZ09-._~"), "aZ09-._~");
        assert_eq!(escape_data_string("@counter@k 1"), "%40counter%40k%201");
        assert_eq!(escape_data_string("é"), "%C3%A9");
    }
}
