//! Shared access signatures for the queue clients: the Rust Azure SDK authenticates with Entra tokens (or a SAS
//! already in the URL) and has no Shared Key signing, so a connection string with an account key gets an account
//! SAS signed with that key, added to every request by an `azure_core` pipeline policy. This string to sign and
//! its HMAC are the only storage protocol the local host writes itself; the requests are the SDK's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;

/// The SAS version: the first whose string to sign has the encryption scope line (`Constructing an account
/// SAS` in the Storage REST reference), which every service and Azurite release since 2021 accepts.
const SAS_VERSION: &str = "2021-12-02";
/// How long a generated SAS is valid; it is renewed when less than `RENEW_BEFORE` is left.
const LIFETIME: Duration = Duration::from_secs(60 * 60);
const RENEW_BEFORE: Duration = Duration::from_secs(10 * 60);

/// Adds a SAS to the query of every request.
#[derive(Clone)]
pub(crate) struct SasPolicy {
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// `SharedAccessSignature` of a connection string.
    Fixed(String),
    /// An account SAS made from the account key, cached until shortly before it expires.
    AccountKey {
        account: String,
        key: hmac::Key,
        current: Arc<Mutex<Option<(String, SystemTime)>>>,
    },
}

impl std::fmt::Debug for SasPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the key nor a signature may reach a log.
        let kind = match &self.source {
            Source::Fixed(_) => "connection string SAS",
            Source::AccountKey { .. } => "account key",
        };
        f.debug_struct("SasPolicy").field("source", &kind).finish()
    }
}

impl SasPolicy {
    pub(crate) fn fixed(sas: String) -> SasPolicy {
        SasPolicy {
            source: Source::Fixed(sas),
        }
    }

    pub(crate) fn account_key(account: String, key: &[u8]) -> SasPolicy {
        SasPolicy {
            source: Source::AccountKey {
                account,
                key: hmac::Key::new(hmac::HMAC_SHA256, key),
                current: Arc::new(Mutex::new(None)),
            },
        }
    }

    /// The query text to add (without `?`).
    fn token(&self) -> String {
        match &self.source {
            Source::Fixed(sas) => sas.clone(),
            Source::AccountKey {
                account,
                key,
                current,
            } => {
                let now = SystemTime::now();
                let mut current = match current.lock() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if let Some((token, expires)) = current.as_ref()
                    && expires
                        .duration_since(now)
                        .is_ok_and(|left| left > RENEW_BEFORE)
                {
                    return token.clone();
                }
                let expires = now + LIFETIME;
                let token = account_sas(account, key, expires);
                *current = Some((token.clone(), expires));
                token
            }
        }
    }
}

/// An account SAS for the queue service, every resource type and the permissions a trigger and an output binding
/// use (read, add, update, process, create, write, delete, list), over HTTP or HTTPS (Azurite speaks HTTP).
fn account_sas(account: &str, key: &hmac::Key, expires: SystemTime) -> String {
    let expiry = iso_seconds(expires);
    let (permissions, services, resource_types, protocol) = ("rwdlacup", "q", "sco", "https,http");
    // Start time, IP range and encryption scope are empty lines, and the string ends with a newline.
    let to_sign = format!(
        "{account}\n{permissions}\n{services}\n{resource_types}\n\n{expiry}\n\n{protocol}\n{SAS_VERSION}\n\n"
    );
    let signature = BASE64.encode(hmac::sign(key, to_sign.as_bytes()).as_ref());
    [
        ("sv", SAS_VERSION),
        ("ss", services),
        ("srt", resource_types),
        ("sp", permissions),
        ("se", &expiry),
        ("spr", protocol),
        ("sig", &signature),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", encode(v)))
    .collect::<Vec<_>>()
    .join("&")
}

/// Percent-encodes a query value (the signature's `+`, `/` and `=`, the expiry's `:`).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~,".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `yyyy-MM-ddTHH:mm:ssZ`, the form the service compares.
fn iso_seconds(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[async_trait::async_trait]
impl Policy for SasPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let token = self.token();
        let url = request.url_mut();
        let query = match url.query() {
            Some(existing) if !existing.is_empty() => format!("{existing}&{token}"),
            _ => token,
        };
        url.set_query(Some(&query));
        match next.split_first() {
            Some((first, rest)) => first.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "the SAS policy must not be the last in the pipeline",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::Url;

    #[test]
    fn the_account_sas_is_signed_over_the_documented_fields() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let sas = account_sas("acct", &key, expires);
        let expected_sig = BASE64.encode(
            hmac::sign(
                &key,
                b"acct\nrwdlacup\nq\nsco\n\n2027-01-15T08:00:00Z\n\nhttps,http\n2021-12-02\n\n",
            )
            .as_ref(),
        );
        let url = Url::parse(&format!("http://x/?{sas}")).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert!(pairs.contains(&("se".into(), "2027-01-15T08:00:00Z".into())));
        assert!(pairs.contains(&("sig".into(), expected_sig)));
        assert!(pairs.contains(&("sv".into(), SAS_VERSION.into())));
    }

    #[test]
    fn a_generated_sas_is_reused_until_it_nears_expiry() {
        let policy = SasPolicy::account_key("acct".into(), b"key");
        assert_eq!(policy.token(), policy.token());
        let Source::AccountKey { current, .. } = &policy.source else {
            panic!("an account key policy")
        };
        // Pretend the cached one is about to expire: the next request gets a new one.
        let soon = SystemTime::now() + Duration::from_secs(60);
        *current.lock().unwrap() = Some(("old".into(), soon));
        assert_ne!(policy.token(), "old");
        let renewed = current.lock().unwrap().as_ref().unwrap().1;
        assert!(renewed > soon + RENEW_BEFORE);
        assert!(format!("{policy:?}").contains("account key"));
        assert!(!format!("{policy:?}").contains("sig"));
    }
}
