//! Durable Task Scheduler connection strings.
//!
//! The syntax follows .NET's `DbConnectionStringBuilder`, which is what the scheduler's SDKs parse with:
//! `;`-separated `key=value` pairs, case-insensitive keys, values optionally wrapped in `'` or `"` (a doubled quote
//! inside stands for one), `==` inside a key for a literal `=`, and the last occurrence of a key wins.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// How the worker or client authenticates to the scheduler (`Authentication=` in a connection string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Authentication {
    /// No credential (emulator, embedded backend, the Functions host's local endpoint).
    None,
    /// A chain of environment, workload identity, managed identity and Azure CLI credentials.
    DefaultAzure,
    /// App Service / Functions or VM managed identity, user-assigned when `ClientID` is given.
    ManagedIdentity,
    /// Kubernetes workload identity (federated token file).
    WorkloadIdentity,
    /// A service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`.
    Environment,
    /// The signed-in Azure CLI user.
    AzureCli,
    /// Accepted by the .NET SDK, but the Rust Azure SDK has no such credential: building it fails clearly.
    AzurePowerShell,
    /// Accepted by the .NET SDK, but the Rust Azure SDK has no such credential: building it fails clearly.
    VisualStudio,
    /// Accepted by the .NET SDK, but the Rust Azure SDK has no such credential: building it fails clearly.
    VisualStudioCode,
    /// Accepted by the .NET SDK, but the Rust Azure SDK has no such credential: building it fails clearly.
    InteractiveBrowser,
}

impl Authentication {
    const ALL: [Self; 10] = [
        Self::None,
        Self::DefaultAzure,
        Self::ManagedIdentity,
        Self::WorkloadIdentity,
        Self::Environment,
        Self::AzureCli,
        Self::AzurePowerShell,
        Self::VisualStudio,
        Self::VisualStudioCode,
        Self::InteractiveBrowser,
    ];

    /// The spelling used in connection strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::DefaultAzure => "DefaultAzure",
            Self::ManagedIdentity => "ManagedIdentity",
            Self::WorkloadIdentity => "WorkloadIdentity",
            Self::Environment => "Environment",
            Self::AzureCli => "AzureCLI",
            Self::AzurePowerShell => "AzurePowerShell",
            Self::VisualStudio => "VisualStudio",
            Self::VisualStudioCode => "VisualStudioCode",
            Self::InteractiveBrowser => "InteractiveBrowser",
        }
    }
}

impl fmt::Display for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Authentication {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
                Error::connection_string(
                    "Authentication",
                    format!("unknown value {s:?}; expected one of {}", known.join(", ")),
                )
            })
    }
}

/// A parsed connection string: where the scheduler is, which task hub, and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionString {
    /// The endpoint URL, `https://` added when the string had no scheme.
    pub endpoint: String,
    /// The task hub (`TaskHub`); optional only for servers that ignore it (embedded backend, reference server).
    pub task_hub: Option<String>,
    /// `Authentication`; `None` when absent.
    pub authentication: Authentication,
    /// `ClientID`: the user-assigned managed identity or workload identity application.
    pub client_id: Option<String>,
    /// `TenantId` (workload identity).
    pub tenant_id: Option<String>,
    /// `TokenFilePath` (workload identity's federated token).
    pub token_file_path: Option<String>,
    /// `AdditionallyAllowedTenants`, comma-separated in the string.
    pub additionally_allowed_tenants: Vec<String>,
    /// `ResourceId`: the token audience; `https://durabletask.io` when absent.
    pub resource_id: Option<String>,
}

const KNOWN_KEYS: [&str; 9] = [
    "Endpoint",
    "TaskHub",
    "Authentication",
    "ClientID",
    "TenantId",
    "TokenFilePath",
    "AdditionallyAllowedTenants",
    "ResourceId",
    "AuthorityHost",
];

impl ConnectionString {
    /// Parses a connection string, or a bare endpoint URL (`http://127.0.0.1:4001`).
    pub fn parse(s: &str) -> Result<Self> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(Error::connection_string(
                "Endpoint",
                "the connection string is empty",
            ));
        }
        if !trimmed.contains('=') || looks_like_url(trimmed) {
            return Ok(Self::from_endpoint(trimmed));
        }
        let pairs = parse_pairs(trimmed)?;
        let mut fields: [Option<String>; KNOWN_KEYS.len()] = Default::default();
        for (key, value) in pairs {
            let Some(index) = KNOWN_KEYS.iter().position(|k| k.eq_ignore_ascii_case(&key)) else {
                return Err(Error::connection_string(
                    key,
                    format!("unknown key; expected one of {}", KNOWN_KEYS.join(", ")),
                ));
            };
            fields[index] = Some(value);
        }
        let [
            endpoint,
            task_hub,
            authentication,
            client_id,
            tenant_id,
            token_file_path,
            tenants,
            resource_id,
            authority,
        ] = fields.map(|v| v.filter(|v| !v.trim().is_empty()));
        let endpoint =
            endpoint.ok_or_else(|| Error::connection_string("Endpoint", "missing or empty"))?;
        let authentication = match authentication {
            Some(a) => a.parse()?,
            None => Authentication::None,
        };
        if authentication != Authentication::None && task_hub.is_none() {
            return Err(Error::connection_string(
                "TaskHub",
                "missing or empty (the scheduler needs it whenever Authentication is not None)",
            ));
        }
        if authority.is_some() {
            return Err(Error::connection_string(
                "AuthorityHost",
                "sovereign-cloud authority hosts are not supported by this SDK yet; remove the key to use the public cloud",
            ));
        }
        Ok(Self {
            endpoint: normalize_endpoint(&endpoint),
            task_hub,
            authentication,
            client_id,
            tenant_id,
            token_file_path,
            additionally_allowed_tenants: tenants
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            resource_id,
        })
    }

    /// A connection to an endpoint with no task hub and no authentication.
    pub fn from_endpoint(endpoint: &str) -> Self {
        Self {
            endpoint: normalize_endpoint(endpoint.trim()),
            task_hub: None,
            authentication: Authentication::None,
            client_id: None,
            tenant_id: None,
            token_file_path: None,
            additionally_allowed_tenants: Vec::new(),
            resource_id: None,
        }
    }

    /// Sets the task hub.
    pub fn with_task_hub(mut self, task_hub: impl Into<String>) -> Self {
        self.task_hub = Some(task_hub.into());
        self
    }

    /// The Entra scope to request tokens for.
    pub fn token_scope(&self) -> String {
        let resource = self
            .resource_id
            .as_deref()
            .unwrap_or(crate::auth::DEFAULT_RESOURCE);
        format!("{}/.default", resource.trim_end_matches('/'))
    }
}

/// Writes the connection string back in the syntax [`ConnectionString::parse`] reads, every value quoted, so that
/// parsing the text gives the same value again.
impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint={}", Quoted(&self.endpoint))?;
        if let Some(hub) = &self.task_hub {
            write!(f, ";TaskHub={}", Quoted(hub))?;
        }
        write!(f, ";Authentication={}", self.authentication)?;
        let optional = [
            ("ClientID", &self.client_id),
            ("TenantId", &self.tenant_id),
            ("TokenFilePath", &self.token_file_path),
            ("ResourceId", &self.resource_id),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                write!(f, ";{key}={}", Quoted(value))?;
            }
        }
        if !self.additionally_allowed_tenants.is_empty() {
            let tenants = self.additionally_allowed_tenants.join(",");
            write!(f, ";AdditionallyAllowedTenants={}", Quoted(&tenants))?;
        }
        Ok(())
    }
}

/// A value in double quotes, its own double quotes doubled.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.replace('"', "\"\""))
    }
}

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn looks_like_url(s: &str) -> bool {
    // `Endpoint=https://x` contains "://" too, so only a string that *starts* with a scheme counts.
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

fn normalize_endpoint(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("https://{endpoint}")
    }
}

/// Splits `key=value;...` the way `DbConnectionStringBuilder` does.
fn parse_pairs(s: &str) -> Result<Vec<(String, String)>> {
    let chars: Vec<char> = s.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        // Key: up to a single '='; "==" is a literal '=' inside the key.
        let mut key = String::new();
        loop {
            match chars.get(i) {
                None => {
                    if key.trim().is_empty() {
                        return Ok(pairs);
                    }
                    return Err(Error::connection_string(
                        key.trim(),
                        "expected `=` after the key",
                    ));
                }
                Some(';') if key.trim().is_empty() => {
                    key.clear();
                    i += 1;
                }
                Some(';') => {
                    return Err(Error::connection_string(
                        key.trim(),
                        "expected `=` after the key",
                    ));
                }
                Some('=') if chars.get(i + 1) == Some(&'=') => {
                    key.push('=');
                    i += 2;
                }
                Some('=') => {
                    i += 1;
                    break;
                }
                Some(&c) => {
                    key.push(c);
                    i += 1;
                }
            }
        }
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(Error::connection_string(
                "<syntax>",
                "a pair has an empty key",
            ));
        }
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        let value = match chars.get(i) {
            Some(&quote @ ('\'' | '"')) => {
                i += 1;
                let mut value = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(Error::connection_string(
                                &key,
                                "unterminated quoted value",
                            ));
                        }
                        Some(&c) if c == quote && chars.get(i + 1) == Some(&quote) => {
                            value.push(quote);
                            i += 2;
                        }
                        Some(&c) if c == quote => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
                while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    i += 1;
                }
                match chars.get(i) {
                    None => {}
                    Some(';') => i += 1,
                    Some(_) => {
                        return Err(Error::connection_string(
                            &key,
                            "unexpected text after the quoted value",
                        ));
                    }
                }
                value
            }
            _ => {
                let start = i;
                while chars.get(i).is_some_and(|&c| c != ';') {
                    i += 1;
                }
                let value: String = chars[start..i].iter().collect();
                i += 1;
                value.trim().to_owned()
            }
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scheduler_connection_string() {
        let cs = ConnectionString::parse(
            "Endpoint=https://myscheduler.westus2.durabletask.io;Authentication=ManagedIdentity;ClientID=abc;TaskHub=hub1",
        )
        .unwrap();
        assert_eq!(cs.endpoint, "https://myscheduler.westus2.durabletask.io");
        assert_eq!(cs.task_hub.as_deref(), Some("hub1"));
        assert_eq!(cs.authentication, Authentication::ManagedIdentity);
        assert_eq!(cs.client_id.as_deref(), Some("abc"));
        assert_eq!(cs.token_scope(), "https://durabletask.io/.default");
    }

    #[test]
    fn keys_and_authentication_values_are_case_insensitive() {
        let cs = ConnectionString::parse(
            "endpoint=http://localhost:8080 ; TASKHUB = default ; authentication = azurecli",
        )
        .unwrap();
        assert_eq!(cs.endpoint, "http://localhost:8080");
        assert_eq!(cs.task_hub.as_deref(), Some("default"));
        assert_eq!(cs.authentication, Authentication::AzureCli);
    }

    #[test]
    fn quoted_values_and_escaped_quotes() {
        let cs = ConnectionString::parse(
            r#"Endpoint="http://h:1";TaskHub='it''s;hub';Authentication=WorkloadIdentity;TokenFilePath="/a ""b""";AdditionallyAllowedTenants=t1, t2,"#,
        )
        .unwrap();
        assert_eq!(cs.endpoint, "http://h:1");
        assert_eq!(cs.task_hub.as_deref(), Some("it's;hub"));
        assert_eq!(cs.token_file_path.as_deref(), Some(r#"/a "b""#));
        assert_eq!(cs.additionally_allowed_tenants, vec!["t1", "t2"]);
    }

    #[test]
    fn last_duplicate_wins_and_empty_pairs_are_ignored() {
        let cs = ConnectionString::parse(";;Endpoint=http://a;;Endpoint=http://b;").unwrap();
        assert_eq!(cs.endpoint, "http://b");
        assert_eq!(cs.authentication, Authentication::None);
        assert_eq!(cs.task_hub, None);
    }

    #[test]
    fn endpoint_without_scheme_gets_https() {
        let cs = ConnectionString::parse(
            "Endpoint=myscheduler.durabletask.io;TaskHub=h;Authentication=None",
        )
        .unwrap();
        assert_eq!(cs.endpoint, "https://myscheduler.durabletask.io");
    }

    #[test]
    fn a_bare_url_is_an_endpoint() {
        let cs = ConnectionString::parse("http://127.0.0.1:4001").unwrap();
        assert_eq!(cs.endpoint, "http://127.0.0.1:4001");
        assert_eq!(cs.authentication, Authentication::None);
        let cs = ConnectionString::parse("Endpoint=http://127.0.0.1:4001").unwrap();
        assert_eq!(cs.endpoint, "http://127.0.0.1:4001");
    }

    #[test]
    fn errors_name_the_key() {
        let err = |s: &str| match ConnectionString::parse(s).unwrap_err() {
            Error::ConnectionString { key, message } => (key, message),
            other => panic!("unexpected {other}"),
        };
        assert_eq!(err("TaskHub=x;Authentication=None").0, "Endpoint");
        assert_eq!(
            err("Endpoint=https://x;Authentication=DefaultAzure").0,
            "TaskHub"
        );
        let (key, message) = err("Endpoint=https://x;TaskHub=h;Authentication=Certificate");
        assert_eq!(key, "Authentication");
        assert!(message.contains("Certificate"), "{message}");
        assert_eq!(err("Endpoint=https://x;TaskHubName=h").0, "TaskHubName");
        assert_eq!(err("Endpoint=https://x;TaskHub='h").0, "TaskHub");
        assert_eq!(err("Endpoint=https://x;TaskHub").0, "TaskHub");
        assert_eq!(err("").0, "Endpoint");
    }

    #[test]
    fn resource_id_changes_the_scope() {
        let cs = ConnectionString::parse(
            "Endpoint=https://x;TaskHub=h;Authentication=None;ResourceId=https://example.test/",
        )
        .unwrap();
        assert_eq!(cs.token_scope(), "https://example.test/.default");
    }
}
