//! What must never be deployed: local settings files, and anything that looks like a credential.
//!
//! The content rules look for a key name followed by a value of a credential's shape, so documentation that names
//! `AccountKey=<key>` passes and a real key does not. They run on every file of the package, the executable
//! included (a connection string compiled into the code is caught too).

use std::path::Path;

use memchr::memmem;

/// The storage emulator's key: published in Microsoft's documentation, a name rather than a secret.
const EMULATOR_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A secret-looking string in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretFinding {
    /// What it looks like, for a person.
    pub what: &'static str,
    /// Its byte offset.
    pub offset: usize,
}

/// Why a file of this name must not be shipped, if it must not.
///
/// ```
/// use azure_durable_functions::package::refused_file_name;
/// use std::path::Path;
///
/// assert!(refused_file_name(Path::new("local.settings.json")).is_some());
/// assert!(refused_file_name(Path::new("config/.env.production")).is_some());
/// assert!(refused_file_name(Path::new("static/index.html")).is_none());
/// ```
pub fn refused_file_name(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name == "local.settings.json" {
        return Some(
            "local.settings.json holds local secrets and is never deployed; set app settings on the function app \
             instead",
        );
    }
    if name == ".env" || name.starts_with(".env.") {
        return Some(".env files hold secrets; set app settings on the function app instead");
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if matches!(extension.as_deref(), Some("pfx" | "p12")) {
        return Some(
            "certificate files carry private keys; load certificates from Key Vault or the app's certificate store",
        );
    }
    None
}

/// A key name, the characters its value is made of, and how long a value must be to look real.
struct ValueRule {
    /// Lower-case, with its `=`.
    key: &'static str,
    what: &'static str,
    min_len: usize,
    accepts: fn(u8) -> bool,
}

fn base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

fn url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'%' | b'+' | b'/' | b'=' | b'-' | b'_' | b'.' | b'&' | b':'
        )
}

fn secret_text(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b';' | b'"' | b'\'' | b'<' | b'>' | b'{' | b'}' | b'%' | b'$' | b'\\'
        )
}

const RULES: &[ValueRule] = &[
    ValueRule {
        key: "accountkey=",
        what: "a storage account key (AccountKey=...)",
        min_len: 20,
        accepts: base64,
    },
    ValueRule {
        key: "sharedaccesskey=",
        what: "a shared access key (SharedAccessKey=...)",
        min_len: 20,
        accepts: base64,
    },
    ValueRule {
        key: "sharedaccesssignature=",
        what: "a shared access signature (SharedAccessSignature=...)",
        min_len: 16,
        accepts: url_safe,
    },
    ValueRule {
        key: "&sig=",
        what: "a shared access signature (sig=... in a URL)",
        min_len: 20,
        accepts: url_safe,
    },
    ValueRule {
        key: "clientsecret=",
        what: "a client secret (Authentication=...;ClientSecret=...)",
        min_len: 8,
        accepts: secret_text,
    },
];

/// The first secret-looking string in `data`, if any.
///
/// ```
/// use azure_durable_functions::package::find_secret;
///
/// let leaked = b"DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0;";
/// assert!(find_secret(leaked).is_some());
/// assert!(find_secret(b"set AccountKey=<your key> in the app settings").is_none());
/// ```
pub fn find_secret(data: &[u8]) -> Option<SecretFinding> {
    // One pass over the `=` signs, looking back for a key name: executables are large, and this also runs in
    // debug builds of the app (`cargo run -- package`).
    let mut first = None;
    for equals in memchr::memchr_iter(b'=', data) {
        let key_end = equals + 1;
        let found = RULES.iter().find(|rule| {
            key_end >= rule.key.len()
                && data[key_end - rule.key.len()..key_end].eq_ignore_ascii_case(rule.key.as_bytes())
                && {
                    let value = &data[key_end..];
                    let len = value.iter().take_while(|b| (rule.accepts)(**b)).count();
                    len >= rule.min_len && &value[..len] != EMULATOR_ACCOUNT_KEY.as_bytes()
                }
        });
        if let Some(rule) = found {
            first = Some(SecretFinding {
                what: rule.what,
                offset: key_end - rule.key.len(),
            });
            break;
        }
    }
    if let Some(offset) = private_key(data)
        && first.is_none_or(|f: SecretFinding| offset < f.offset)
    {
        first = Some(SecretFinding {
            what: "a private key (-----BEGIN ... PRIVATE KEY-----)",
            offset,
        });
    }
    first
}

/// A PEM private key with a body: the armour alone (as parsers and docs carry it) is not one.
fn private_key(data: &[u8]) -> Option<usize> {
    for at in memmem::find_iter(data, b"-----BEGIN ") {
        let rest = &data[at..data.len().min(at + 64)];
        let Some(end) = memmem::find(rest, b"PRIVATE KEY-----") else {
            continue;
        };
        let body_start = at + end + "PRIVATE KEY-----".len();
        let body = data[body_start..]
            .iter()
            .take_while(|b| base64(**b) || b.is_ascii_whitespace())
            .filter(|b| base64(**b))
            .count();
        if body >= 64 {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_finds_its_secret() {
        let cases: &[(&str, &str)] = &[
            (
                "AccountName=a;AccountKey=bm90IGEgcmVhbCBrZXkgYnV0IGxvbmcgZW5vdWdo;EndpointSuffix=core.windows.net",
                "storage account key",
            ),
            (
                "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=",
                "shared access key",
            ),
            (
                "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=abcdEFGH1234%2Bxyz",
                "shared access signature",
            ),
            (
                "https://a.blob.core.windows.net/c/app.zip?sv=2022-11-02&se=2030-01-01&sig=abcdEFGH1234abcdEFGH1234%3D",
                "sig=",
            ),
            (
                "Endpoint=https://s.westus2.durabletask.io;Authentication=ClientSecret;ClientID=1;TenantId=2;ClientSecret=Q~abc.def_1234567",
                "client secret",
            ),
        ];
        for (text, expected) in cases {
            let found = find_secret(text.as_bytes()).unwrap_or_else(|| panic!("missed {text}"));
            assert!(found.what.contains(expected), "{text}: {}", found.what);
        }
        let pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            "MIIEpAIBAAKCAQEA7b".repeat(8)
        );
        assert!(
            find_secret(pem.as_bytes())
                .unwrap()
                .what
                .contains("private key")
        );
    }

    #[test]
    fn names_and_placeholders_are_not_secrets() {
        for text in [
            "AccountKey=<key>",
            "ClientSecret=%CLIENT_SECRET%",
            "ClientSecret=${SECRET}",
            "Endpoint=http://localhost:8080;Authentication=None",
            "UseDevelopmentStorage=true",
            "-----BEGIN PRIVATE KEY-----",
            "AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        ] {
            assert_eq!(find_secret(text.as_bytes()), None, "{text}");
        }
    }
}
