//! Entra ID bearer tokens for the scheduler: credentials from a connection string, and a refreshing cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, DeveloperToolsCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use tokio::sync::Mutex;

use crate::connection_string::{Authentication, ConnectionString};
use crate::error::{Error, Result};

/// The scheduler's token audience; the scope is this plus `/.default`.
pub const DEFAULT_RESOURCE: &str = "https://durabletask.io";

/// Tokens are renewed this long before they expire, so a call never leaves with one that dies in flight.
const REFRESH_MARGIN: Duration = Duration::minutes(5);

/// Builds the credential a connection string asks for; `None` for `Authentication=None`.
///
/// `AdditionallyAllowedTenants` is accepted for compatibility but has no effect: tokens are only ever requested
/// for the credential's own tenant.
pub fn credential_from_connection_string(
    cs: &ConnectionString,
) -> Result<Option<Arc<dyn TokenCredential>>> {
    let unsupported = |what: Authentication| {
        Err(Error::connection_string(
            "Authentication",
            format!(
                "{what} is not available in the Rust Azure SDK (azure_identity 1.x); use ManagedIdentity, \
                 WorkloadIdentity, Environment, AzureCLI, DefaultAzure or None"
            ),
        ))
    };
    let credential: Arc<dyn TokenCredential> = match cs.authentication {
        Authentication::None => return Ok(None),
        Authentication::ManagedIdentity => managed_identity(cs.client_id.clone())?,
        Authentication::WorkloadIdentity => workload_identity(cs)?,
        Authentication::Environment => environment()?,
        Authentication::AzureCli => {
            AzureCliCredential::new(None).map_err(credential_error("AzureCLI"))?
        }
        Authentication::DefaultAzure => Arc::new(DefaultAzureChain::new(cs)?),
        other @ (Authentication::AzurePowerShell
        | Authentication::VisualStudio
        | Authentication::VisualStudioCode
        | Authentication::InteractiveBrowser) => return unsupported(other),
    };
    Ok(Some(credential))
}

/// The runtime's own identity, found as `Authentication=DefaultAzure` finds it (durable HTTP's token sources).
pub(crate) fn default_azure_credential() -> Result<Arc<dyn TokenCredential>> {
    let cs = ConnectionString::from_endpoint("http://localhost");
    Ok(Arc::new(DefaultAzureChain::new(&cs)?))
}

fn credential_error(what: &'static str) -> impl Fn(azure_core::Error) -> Error {
    move |e| Error::Credential(format!("{what}: {e}"))
}

fn managed_identity(client_id: Option<String>) -> Result<Arc<dyn TokenCredential>> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(UserAssignedId::ClientId),
        ..Default::default()
    };
    Ok(ManagedIdentityCredential::new(Some(options))
        .map_err(credential_error("ManagedIdentity"))?)
}

fn workload_identity(cs: &ConnectionString) -> Result<Arc<dyn TokenCredential>> {
    let options = WorkloadIdentityCredentialOptions {
        client_id: cs.client_id.clone(),
        tenant_id: cs.tenant_id.clone(),
        token_file_path: cs.token_file_path.clone().map(Into::into),
        ..Default::default()
    };
    Ok(WorkloadIdentityCredential::new(Some(options))
        .map_err(credential_error("WorkloadIdentity"))?)
}

fn environment() -> Result<Arc<dyn TokenCredential>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(tenant), Some(client), Some(secret)) = (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    ) else {
        let hint = if var("AZURE_CLIENT_CERTIFICATE_PATH").is_some() {
            " (certificate credentials are not supported; use a client secret)"
        } else {
            ""
        };
        return Err(Error::Credential(format!(
            "Environment: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET{hint}"
        )));
    };
    Ok(
        ClientSecretCredential::new(&tenant, client, Secret::new(secret), None)
            .map_err(credential_error("Environment"))?,
    )
}

/// What `DefaultAzure` means here: the Rust SDK has no `DefaultAzureCredential`, so this chains the sources the
/// .NET one tries that exist in Rust, in the same order, skipping those whose environment is absent.
struct DefaultAzureChain {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    // Once a source has worked, later calls go straight to it (as the .NET chain does).
    chosen: AtomicUsize,
}

impl DefaultAzureChain {
    fn new(cs: &ConnectionString) -> Result<Self> {
        let mut sources: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
        if let Ok(c) = environment() {
            sources.push(("Environment", c));
        }
        let federated = std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_some()
            || cs.token_file_path.is_some();
        if let Some(c) = federated.then(|| workload_identity(cs).ok()).flatten() {
            sources.push(("WorkloadIdentity", c));
        }
        if let Ok(c) = managed_identity(cs.client_id.clone()) {
            sources.push(("ManagedIdentity", c));
        }
        if let Ok(c) = DeveloperToolsCredential::new(None) {
            sources.push(("DeveloperTools", c));
        }
        if sources.is_empty() {
            return Err(Error::Credential(
                "DefaultAzure: no credential source is available".into(),
            ));
        }
        Ok(Self {
            sources,
            chosen: AtomicUsize::new(usize::MAX),
        })
    }
}

impl fmt::Debug for DefaultAzureChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.sources.iter().map(|(n, _)| *n).collect();
        f.debug_struct("DefaultAzureChain")
            .field("sources", &names)
            .finish()
    }
}

#[async_trait::async_trait]
impl TokenCredential for DefaultAzureChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Relaxed);
        if let Some((_, source)) = self.sources.get(chosen) {
            return source.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (index, (name, source)) in self.sources.iter().enumerate() {
            match source.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    self.chosen.store(index, Ordering::Relaxed);
                    return Ok(token);
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!("DefaultAzure: every source failed: {}", failures.join("; ")),
        ))
    }
}

/// A credential plus the last token it issued, renewed shortly before expiry.
pub(crate) struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    current: Mutex<Option<AccessToken>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token itself must never reach a log.
        f.debug_struct("TokenCache")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(credential: Arc<dyn TokenCredential>, scope: String) -> Self {
        Self {
            credential,
            scope,
            current: Mutex::new(None),
        }
    }

    /// The `authorization` header value.
    pub(crate) async fn bearer(&self) -> Result<String> {
        // Holding the lock across the fetch makes concurrent callers share one refresh.
        let mut current = self.current.lock().await;
        let fresh = current
            .as_ref()
            .is_some_and(|t| t.expires_on - REFRESH_MARGIN > OffsetDateTime::now_utc());
        if !fresh {
            let token = self
                .credential
                .get_token(&[self.scope.as_str()], None)
                .await
                .map_err(|e| {
                    Error::Credential(format!("could not get a token for {}: {e}", self.scope))
                })?;
            *current = Some(token);
        }
        let token = current
            .as_ref()
            .map(|t| t.token.secret())
            .unwrap_or_default();
        Ok(format!("Bearer {token}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[derive(Debug)]
    struct Counting {
        calls: AtomicU32,
        lifetime: Duration,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Counting {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            assert_eq!(scopes, ["https://durabletask.io/.default"]);
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new(
                format!("t{n}"),
                OffsetDateTime::now_utc() + self.lifetime,
            ))
        }
    }

    #[tokio::test]
    async fn a_long_lived_token_is_reused() {
        let credential = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime: Duration::hours(1),
        });
        let cache = TokenCache::new(credential.clone(), "https://durabletask.io/.default".into());
        assert_eq!(cache.bearer().await.unwrap(), "Bearer t0");
        assert_eq!(cache.bearer().await.unwrap(), "Bearer t0");
        assert_eq!(credential.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_inside_the_margin_is_renewed() {
        let credential = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime: Duration::minutes(4),
        });
        let cache = TokenCache::new(credential.clone(), "https://durabletask.io/.default".into());
        assert_eq!(cache.bearer().await.unwrap(), "Bearer t0");
        assert_eq!(cache.bearer().await.unwrap(), "Bearer t1");
    }

    #[test]
    fn unsupported_credentials_name_the_value() {
        let cs =
            ConnectionString::parse("Endpoint=https://x;TaskHub=h;Authentication=VisualStudioCode")
                .unwrap();
        let err = credential_from_connection_string(&cs)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("VisualStudioCode") && err.contains("Authentication"),
            "{err}"
        );
        let cs =
            ConnectionString::parse("Endpoint=http://x;TaskHub=h;Authentication=None").unwrap();
        assert!(credential_from_connection_string(&cs).unwrap().is_none());
    }
}
