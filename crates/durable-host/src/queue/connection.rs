//! Where a queue connection points and how it authenticates, read from the app settings the way the Functions
//! storage extensions read them (`Azure/azure-sdk-for-net`
//! `sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/StorageClientProvider.cs` and
//! `sdk/extensions/Microsoft.Extensions.Azure/src/Internal/ClientFactory.cs`):
//!
//! - the setting `AzureWebJobs<name>` is looked up first, then `<name>`; names are case-insensitive;
//! - a value is a connection string: `UseDevelopmentStorage=true`, or `AccountName` + `AccountKey` (or
//!   `SharedAccessSignature`) with `QueueEndpoint` or `DefaultEndpointsProtocol` + `EndpointSuffix`;
//! - otherwise `<name>__accountName` (the service is `https://<account>.queue.core.windows.net`),
//!   `<name>__queueServiceUri` or `<name>__serviceUri` make an identity-based connection, whose token comes from
//!   `<name>__credential` (`managedidentity` with `__clientId` or `__managedIdentityResourceId`,
//!   `workloadidentity`), from `__tenantId` + `__clientId` + `__clientSecret`, or else from the developer chain.

use std::collections::BTreeMap;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Url};
use azure_identity::{
    ClientSecretCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use azure_storage_queue::{QueueServiceClient, QueueServiceClientOptions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::sas::SasPolicy;

/// Azurite's documented development account.
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The default connection of the storage bindings.
pub(crate) const DEFAULT_CONNECTION: &str = "AzureWebJobsStorage";

/// The app settings as configuration: the settings file's values, then the process environment, names compared
/// case-insensitively as .NET configuration compares them.
#[derive(Debug, Clone)]
pub(crate) struct AppSettings {
    values: Vec<(String, String)>,
}

impl AppSettings {
    pub(crate) fn new(settings: &BTreeMap<String, String>) -> AppSettings {
        let mut values: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        values.extend(std::env::vars());
        AppSettings { values }
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> AppSettings {
        AppSettings {
            values: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A setting's value; an empty one counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is set, as a value or as the parent of `name__<property>` settings.
    fn section_exists(&self, name: &str) -> bool {
        let prefix = format!("{}__", name.to_ascii_lowercase());
        self.get(name).is_some()
            || self
                .values
                .iter()
                .any(|(k, v)| k.to_ascii_lowercase().starts_with(&prefix) && !v.trim().is_empty())
    }
}

/// A resolved connection: the queue service client, and what to call it in messages.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) service: Arc<QueueServiceClient>,
    /// `<setting> (<service URL>)`, for logs; never a secret.
    pub(crate) description: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// How requests are authorised.
enum Auth {
    /// An account key, turned into an account SAS on every request.
    Key { account: String, key: Vec<u8> },
    /// A SAS from the connection string, added as it is.
    Sas(String),
    /// Entra ID tokens.
    Token(Arc<dyn TokenCredential>),
}

/// Resolves a `connection` property (`None` for the default, `AzureWebJobsStorage`) into a client.
pub(crate) fn resolve(name: Option<&str>, settings: &AppSettings) -> Result<Connection, String> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_CONNECTION);
    let prefixed = format!("AzureWebJobs{name}");
    let setting = [prefixed.as_str(), name]
        .into_iter()
        .find(|candidate| settings.section_exists(candidate))
        .ok_or_else(|| {
            format!(
                "the storage connection {name:?} is not set: set {prefixed:?} or {name:?} to a connection string, \
                 or {name}__queueServiceUri (or __accountName) for an identity-based connection"
            )
        })?;
    let (endpoint, auth) = match settings.get(setting) {
        Some(value) => from_connection_string(value).map_err(|e| format!("{setting}: {e}"))?,
        None => identity_based(setting, settings)?,
    };
    let service = client(&endpoint, auth).map_err(|e| format!("{setting}: {e}"))?;
    Ok(Connection {
        service: Arc::new(service),
        description: format!("{setting} ({})", endpoint.as_str().trim_end_matches('/')),
    })
}

fn pairs(connection_string: &str) -> BTreeMap<String, String> {
    connection_string
        .split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

/// The queue service URL and credentials of a storage connection string.
fn from_connection_string(text: &str) -> Result<(Url, Auth), String> {
    let p = pairs(text);
    if p.get("usedevelopmentstorage")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        let host = p
            .get("developmentstorageproxyuri")
            .map_or("http://127.0.0.1", |u| u.trim_end_matches('/'));
        let endpoint = parse_url(&format!("{host}:10001/{DEV_ACCOUNT}"))?;
        let key = BASE64.decode(DEV_KEY).map_err(|e| e.to_string())?;
        let auth = Auth::Key {
            account: DEV_ACCOUNT.to_owned(),
            key,
        };
        return Ok((endpoint, auth));
    }
    let account = p.get("accountname").cloned();
    let endpoint = match (p.get("queueendpoint"), &account) {
        (Some(e), _) => e.clone(),
        (None, Some(name)) => format!(
            "{}://{name}.queue.{}",
            p.get("defaultendpointsprotocol")
                .map_or("https", String::as_str),
            p.get("endpointsuffix")
                .map_or("core.windows.net", String::as_str)
        ),
        (None, None) => {
            return Err("the connection string has neither AccountName nor QueueEndpoint".into());
        }
    };
    let endpoint = parse_url(&endpoint)?;
    let auth = match (p.get("accountkey"), p.get("sharedaccesssignature")) {
        (Some(key), _) => Auth::Key {
            account: account.ok_or("an AccountKey needs an AccountName")?,
            key: BASE64
                .decode(key)
                .map_err(|_| "AccountKey is not base64".to_owned())?,
        },
        (None, Some(sas)) => Auth::Sas(sas.trim_start_matches('?').to_owned()),
        (None, None) => {
            return Err(
                "the connection string has neither AccountKey nor SharedAccessSignature".into(),
            );
        }
    };
    Ok((endpoint, auth))
}

fn parse_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    // Queue clients append the queue name as a path segment: a trailing slash (other than the root's) would
    // leave an empty segment before it.
    let trimmed = url.path().trim_end_matches('/').to_owned();
    if !trimmed.is_empty() {
        url.set_path(&trimmed);
    }
    Ok(url)
}

/// An identity-based connection: the service URL from `__accountName`, `__queueServiceUri` or `__serviceUri`
/// (in the extension's order), and a token credential.
fn identity_based(setting: &str, settings: &AppSettings) -> Result<(Url, Auth), String> {
    let property = |name: &str| settings.get(&format!("{setting}__{name}"));
    let endpoint = if let Some(account) = property("accountName") {
        format!("https://{account}.queue.core.windows.net")
    } else if let Some(uri) = property("queueServiceUri").or_else(|| property("serviceUri")) {
        uri.to_owned()
    } else {
        return Err(format!(
            "{setting} has no queue service: set {setting}__queueServiceUri (or __serviceUri, or __accountName)"
        ));
    };
    let endpoint = parse_url(&endpoint).map_err(|e| format!("{setting}: {e}"))?;
    if endpoint.scheme() != "https" {
        return Err(format!(
            "{setting}: an identity-based connection needs an https service URI, not {endpoint}"
        ));
    }
    let credential = credential(setting, &property)?;
    Ok((endpoint, Auth::Token(credential)))
}

/// The token credential of an identity-based connection (`ClientFactory.CreateCredential`, less what the Rust
/// Azure SDK does not offer).
fn credential<'a>(
    setting: &str,
    property: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Arc<dyn TokenCredential>, String> {
    let failed = |what: &str, e: azure_core::Error| format!("{setting}: {what} credential: {e}");
    let client_id = property("clientId").map(str::to_owned);
    let tenant_id = property("tenantId").map(str::to_owned);
    match property("credential")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("managedidentity") => {
            let user_assigned = match (client_id, property("managedIdentityResourceId")) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{setting}: set __clientId or __managedIdentityResourceId, not both"
                    ));
                }
                (Some(id), None) => Some(UserAssignedId::ClientId(id)),
                (None, Some(id)) => Some(UserAssignedId::ResourceId(id.to_owned())),
                (None, None) => None,
            };
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: user_assigned,
                ..Default::default()
            };
            let credential: Arc<dyn TokenCredential> =
                ManagedIdentityCredential::new(Some(options))
                    .map_err(|e| failed("managed identity", e))?;
            Ok(credential)
        }
        Some("workloadidentity") => {
            let options = WorkloadIdentityCredentialOptions {
                client_id,
                tenant_id,
                token_file_path: property("tokenFilePath").map(Into::into),
                ..Default::default()
            };
            let credential: Arc<dyn TokenCredential> =
                WorkloadIdentityCredential::new(Some(options))
                    .map_err(|e| failed("workload identity", e))?;
            Ok(credential)
        }
        Some(other) => Err(format!(
            "{setting}__credential is {other:?}; the local host supports managedidentity and workloadidentity \
             (or no credential, for a client secret or the developer credentials)"
        )),
        None => match (tenant_id, client_id, property("clientSecret")) {
            (Some(tenant), Some(client), Some(secret)) => {
                let credential: Arc<dyn TokenCredential> = ClientSecretCredential::new(
                    &tenant,
                    client,
                    Secret::new(secret.to_owned()),
                    None,
                )
                .map_err(|e| failed("client secret", e))?;
                Ok(credential)
            }
            _ if property("clientCertificate").is_some() => Err(format!(
                "{setting}__clientCertificate names a certificate store entry, which the local host cannot \
                 read; use __clientSecret, a managed identity or the developer credentials"
            )),
            (_, client, _) => developer_chain(setting, client),
        },
    }
}

/// No `credential` setting: what `DefaultAzureCredential` would find, in its order (the environment, workload
/// identity, managed identity with `__clientId`, then the Azure CLI and Azure Developer CLI logins).
fn developer_chain(
    setting: &str,
    client_id: Option<String>,
) -> Result<Arc<dyn TokenCredential>, String> {
    let mut cs = durable_grpc::ConnectionString::from_endpoint("https://storage.azure.com");
    cs.authentication = durable_grpc::Authentication::DefaultAzure;
    cs.client_id = client_id;
    match durable_grpc::credential_from_connection_string(&cs) {
        Ok(Some(credential)) => Ok(credential),
        Ok(None) => Err(format!("{setting}: no credential source is available")),
        Err(e) => Err(format!("{setting}: {e}")),
    }
}

fn client(endpoint: &Url, auth: Auth) -> azure_core::Result<QueueServiceClient> {
    let mut client_options = ClientOptions::default();
    let credential = match auth {
        Auth::Key { account, key } => {
            client_options
                .per_try_policies
                .push(Arc::new(SasPolicy::account_key(account, &key)));
            None
        }
        Auth::Sas(sas) => {
            client_options
                .per_try_policies
                .push(Arc::new(SasPolicy::fixed(sas)));
            None
        }
        Auth::Token(credential) => Some(credential),
    };
    let options = QueueServiceClientOptions {
        client_options,
        ..Default::default()
    };
    QueueServiceClient::new(endpoint.clone(), credential, Some(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(settings: &[(&str, &str)], name: Option<&str>) -> Result<String, String> {
        resolve(name, &AppSettings::from_pairs(settings)).map(|c| c.description)
    }

    #[test]
    fn connection_strings_name_their_queue_service() {
        assert_eq!(
            endpoint(
                &[("AzureWebJobsStorage", "UseDevelopmentStorage=true")],
                None
            )
            .unwrap(),
            "AzureWebJobsStorage (http://127.0.0.1:10001/devstoreaccount1)"
        );
        assert_eq!(
            endpoint(
                &[(
                    "MyStorage",
                    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
                )],
                Some("MyStorage")
            )
            .unwrap(),
            "MyStorage (https://acct.queue.core.windows.net)"
        );
        // `AzureWebJobs<name>` is looked up first.
        assert!(
            endpoint(
                &[
                    (
                        "AzureWebJobsOther",
                        "QueueEndpoint=http://127.0.0.1:1/x;SharedAccessSignature=sv=1&sig=2"
                    ),
                    ("Other", "garbage")
                ],
                Some("Other")
            )
            .unwrap()
            .starts_with("AzureWebJobsOther (http://127.0.0.1:1/x")
        );
        assert!(endpoint(&[("AzureWebJobsStorage", "AccountName=x")], None).is_err());
        assert!(
            endpoint(
                &[("AzureWebJobsStorage", "AccountName=x;AccountKey=!!")],
                None
            )
            .is_err()
        );
        let missing = endpoint(&[], Some("Nope")).unwrap_err();
        assert!(missing.contains("Nope__queueServiceUri"), "{missing}");
    }

    #[test]
    fn identity_based_connections_follow_the_extension() {
        let managed = [
            ("AzureWebJobsStorage__accountName", "acct"),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://ignored.example/",
            ),
            ("AzureWebJobsStorage__credential", "managedidentity"),
        ];
        assert_eq!(
            endpoint(&managed, None).unwrap(),
            "AzureWebJobsStorage (https://acct.queue.core.windows.net)"
        );
        let by_uri = [
            ("Q__serviceUri", "https://other.example/"),
            ("q__QUEUESERVICEURI", "https://q.example/"),
            ("Q__credential", "managedidentity"),
            ("Q__clientId", "00000000-0000-0000-0000-000000000001"),
        ];
        assert_eq!(
            endpoint(&by_uri, Some("Q")).unwrap(),
            "Q (https://q.example)"
        );
        let both = [
            ("Q__queueServiceUri", "https://q.example/"),
            ("Q__credential", "managedidentity"),
            ("Q__clientId", "a"),
            ("Q__managedIdentityResourceId", "b"),
        ];
        assert!(endpoint(&both, Some("Q")).unwrap_err().contains("not both"));
        let plain_http = [
            ("Q__queueServiceUri", "http://q.example/"),
            ("Q__credential", "managedidentity"),
        ];
        assert!(
            endpoint(&plain_http, Some("Q"))
                .unwrap_err()
                .contains("https")
        );
        let unknown = [
            ("Q__queueServiceUri", "https://q.example/"),
            ("Q__credential", "magic"),
        ];
        assert!(endpoint(&unknown, Some("Q")).unwrap_err().contains("magic"));
        let no_uri = [("Q__credential", "managedidentity")];
        assert!(
            endpoint(&no_uri, Some("Q"))
                .unwrap_err()
                .contains("queueServiceUri")
        );
    }
}
