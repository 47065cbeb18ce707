//! Host keys, as the Functions host checks them: a key arrives in the `x-functions-key` header or the `code` query
//! parameter; `function`-level triggers take the function key or the master key, `admin`-level ones the master
//! key. When management checks are on (the host listens beyond loopback, or they were asked for), the Durable
//! webhooks take the `durabletask_extension` system key or the master key, and the admin API the master key, as
//! in Azure; with them off they are open, as under Core Tools without `--enableAuth`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use http::HeaderMap;

use super::form_urlencoded_pairs;
use crate::config::AuthLevel;
use crate::error::{HostError, Result};
use crate::options::HostOptions;

/// The settings (in `local.settings.json` `Values` or the environment) that give the keys and switch the checks.
pub(crate) const FUNCTION_KEY_SETTING: &str = "DURABLE_HOST_FUNCTION_KEY";
pub(crate) const MASTER_KEY_SETTING: &str = "DURABLE_HOST_MASTER_KEY";
pub(crate) const SYSTEM_KEY_SETTING: &str = "DURABLE_HOST_SYSTEM_KEY";
pub(crate) const ENABLE_AUTH_SETTING: &str = "DURABLE_HOST_ENABLE_AUTH";

/// The keys the HTTP front door accepts.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) function: String,
    pub(crate) master: String,
    /// The `durabletask_extension` system key; `Some` exactly when the management webhooks and the admin API
    /// check keys.
    pub(crate) system: Option<String>,
    /// The keys the host made up itself (by their names in the start-up line), the only ones it shows.
    pub(crate) generated: Vec<&'static str>,
}

/// A setting from the app settings, else from the process environment.
fn setting(settings: &BTreeMap<String, String>, name: &str) -> Option<String> {
    settings
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
}

fn random_key() -> String {
    let bytes: [u8; 30] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A key from the options, else its setting, else a new one (`true`: generated). An empty key would let an
/// empty `code` in, so one is refused.
fn key(
    option: Option<&String>,
    (label, name): (&str, &str),
    settings: &BTreeMap<String, String>,
) -> Result<(String, bool)> {
    let (given, source) = match option {
        Some(key) => (
            Some(key.clone()),
            format!("the {label} given in the options"),
        ),
        None => (setting(settings, name), format!("the {name} setting")),
    };
    match given {
        Some(key) if key.trim().is_empty() => Err(HostError::Options(format!(
            "{source} is empty; give a key, or leave it unset to have one generated"
        ))),
        Some(key) => Ok((key, false)),
        None => Ok((random_key(), true)),
    }
}

impl Keys {
    /// The keys for a host with these options and settings: each from its option, else its setting, else
    /// generated. The management checks are on when the host listens beyond loopback, or when asked for.
    pub(crate) fn configure(
        options: &HostOptions,
        settings: &BTreeMap<String, String>,
    ) -> Result<Keys> {
        let mut generated = Vec::new();
        let (function, made) = key(
            options.function_key.as_ref(),
            ("function key", FUNCTION_KEY_SETTING),
            settings,
        )?;
        if made {
            generated.push("function key");
        }
        let (master, made) = key(
            options.master_key.as_ref(),
            ("master key", MASTER_KEY_SETTING),
            settings,
        )?;
        if made {
            generated.push("master key");
        }
        let asked = match options.enable_auth {
            Some(enabled) => enabled,
            None => match setting(settings, ENABLE_AUTH_SETTING) {
                None => false,
                Some(text) => parse_switch(&text).ok_or_else(|| {
                    HostError::Options(format!(
                        "the {ENABLE_AUTH_SETTING} setting is {text:?}; use true or false"
                    ))
                })?,
            },
        };
        let system = if asked || !is_loopback(options.listen_ip) {
            let (system, made) = key(
                options.system_key.as_ref(),
                ("system key", SYSTEM_KEY_SETTING),
                settings,
            )?;
            if made {
                generated.push("durabletask_extension key");
            }
            Some(system)
        } else {
            None
        };
        Ok(Keys {
            function,
            master,
            system,
            generated,
        })
    }
}

/// The key a request presents: the `x-functions-key` header, else the `code` query parameter.
pub(crate) fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get("x-functions-key").and_then(|v| v.to_str().ok()) {
        return Some(value.to_owned());
    }
    form_urlencoded_pairs(query?)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("code"))
        .map(|(_, v)| v)
}

impl Keys {
    /// Whether an HTTP trigger of this level accepts the presented key.
    pub(crate) fn allows_trigger(&self, level: AuthLevel, presented: Option<&str>) -> bool {
        match (level, presented) {
            (AuthLevel::Anonymous, _) => true,
            (_, None) => false,
            (AuthLevel::Function, Some(key)) => {
                // Both comparisons always run, so the time taken does not say which key was close.
                same_key(key, &self.function) | same_key(key, &self.master)
            }
            (AuthLevel::Admin, Some(key)) => same_key(key, &self.master),
        }
    }

    /// Whether the Durable management webhooks accept the presented key.
    pub(crate) fn allows_management(&self, presented: Option<&str>) -> bool {
        match (&self.system, presented) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(system), Some(key)) => same_key(key, system) | same_key(key, &self.master),
        }
    }

    /// Whether the admin API (`/admin/...`) accepts the presented key.
    pub(crate) fn allows_admin(&self, presented: Option<&str>) -> bool {
        match (&self.system, presented) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(key)) => same_key(key, &self.master),
        }
    }

    /// What every management URL must carry: `code=<system key>` when the webhooks check keys, else nothing.
    pub(crate) fn required_query(&self) -> String {
        match &self.system {
            Some(key) => format!("code={}", super::percent_encode(key)),
            None => String::new(),
        }
    }
}

/// `127.0.0.1` and `::1` (the whole loopback range, and an IPv4 loopback written as IPv6): only this machine.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `true`/`false` as settings write them (also `1`/`0`, `yes`/`no`, any case).
fn parse_switch(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Compares two keys in time that does not depend on where they first differ (nor on their lengths): both are
/// hashed with SHA-256 and the digests compared without an early exit, so a client timing many guesses learns
/// nothing about the key.
pub(crate) fn same_key(presented: &str, expected: &str) -> bool {
    let a = ring::digest::digest(&ring::digest::SHA256, presented.as_bytes());
    let b = ring::digest::digest(&ring::digest::SHA256, expected.as_bytes());
    let difference = a
        .as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(system: Option<&str>) -> Keys {
        Keys {
            function: "f-key".into(),
            master: "m-key".into(),
            system: system.map(str::to_owned),
            generated: Vec::new(),
        }
    }

    #[test]
    fn keys_compare_exactly() {
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abc", "abd"));
        assert!(!same_key("abc", "abcd"));
        assert!(!same_key("", "abc"));
        assert!(!same_key("ABC", "abc"));
    }

    #[test]
    fn levels_take_the_keys_the_host_takes() {
        let k = keys(None);
        assert!(k.allows_trigger(AuthLevel::Anonymous, None));
        assert!(!k.allows_trigger(AuthLevel::Function, None));
        assert!(k.allows_trigger(AuthLevel::Function, Some("f-key")));
        assert!(k.allows_trigger(AuthLevel::Function, Some("m-key")));
        assert!(!k.allows_trigger(AuthLevel::Function, Some("x")));
        assert!(!k.allows_trigger(AuthLevel::Admin, Some("f-key")));
        assert!(k.allows_trigger(AuthLevel::Admin, Some("m-key")));
        // Checks off: management and admin are open, and URLs need no key.
        assert!(k.allows_management(None));
        assert!(k.allows_admin(None));
        assert_eq!(k.required_query(), "");

        let k = keys(Some("s/key+"));
        assert!(!k.allows_management(None));
        assert!(!k.allows_management(Some("f-key")));
        assert!(k.allows_management(Some("s/key+")));
        assert!(k.allows_management(Some("m-key")));
        assert!(!k.allows_admin(Some("s/key+")));
        assert!(k.allows_admin(Some("m-key")));
        assert_eq!(k.required_query(), "code=s%2Fkey%2B");
    }

    #[test]
    fn the_header_wins_over_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented_key(&headers, Some("a=1&CODE=x%2By")),
            Some("x+y".into())
        );
        assert_eq!(presented_key(&headers, Some("a=1")), None);
        assert_eq!(presented_key(&headers, None), None);
        headers.insert("x-functions-key", "h".parse().unwrap());
        assert_eq!(presented_key(&headers, Some("code=q")), Some("h".into()));
    }

    #[test]
    fn checks_are_on_beyond_loopback_or_when_asked_for() {
        let settings = BTreeMap::new();
        let on = |options: HostOptions| {
            Keys::configure(&options, &settings)
                .unwrap()
                .system
                .is_some()
        };
        assert!(!on(HostOptions::new(".")));
        assert!(!on(
            HostOptions::new(".").with_listen_ip("::1".parse().unwrap())
        ));
        assert!(!on(
            HostOptions::new(".").with_listen_ip("::ffff:127.0.0.1".parse().unwrap())
        ));
        assert!(on(
            HostOptions::new(".").with_listen_ip("0.0.0.0".parse().unwrap())
        ));
        assert!(on(
            HostOptions::new(".").with_listen_ip("::".parse().unwrap())
        ));
        assert!(on(
            HostOptions::new(".").with_listen_ip("192.168.1.5".parse().unwrap())
        ));
        assert!(on(HostOptions::new(".").with_enable_auth(true)));
        // Beyond loopback there is no switching them off.
        assert!(on(HostOptions::new(".")
            .with_listen_ip("0.0.0.0".parse().unwrap())
            .with_enable_auth(false)));

        let asked = BTreeMap::from([(ENABLE_AUTH_SETTING.to_owned(), "True".to_owned())]);
        let keys = Keys::configure(&HostOptions::new("."), &asked).unwrap();
        assert_eq!(
            keys.generated,
            ["function key", "master key", "durabletask_extension key"]
        );
        assert!(
            Keys::configure(&HostOptions::new(".").with_enable_auth(false), &asked)
                .unwrap()
                .system
                .is_none()
        );
        let bad = BTreeMap::from([(ENABLE_AUTH_SETTING.to_owned(), "maybe".to_owned())]);
        let e = Keys::configure(&HostOptions::new("."), &bad).unwrap_err();
        assert!(e.to_string().contains(ENABLE_AUTH_SETTING), "{e}");
    }

    #[test]
    fn given_keys_are_used_and_empty_ones_refused() {
        let settings = BTreeMap::from([
            (MASTER_KEY_SETTING.to_owned(), "from-setting".to_owned()),
            (SYSTEM_KEY_SETTING.to_owned(), "sys".to_owned()),
        ]);
        let options = HostOptions::new(".")
            .with_function_key("given")
            .with_enable_auth(true);
        let keys = Keys::configure(&options, &settings).unwrap();
        assert_eq!(keys.function, "given");
        assert_eq!(keys.master, "from-setting");
        assert_eq!(keys.system.as_deref(), Some("sys"));
        assert!(keys.generated.is_empty());

        let e =
            Keys::configure(&HostOptions::new(".").with_master_key(" "), &settings).unwrap_err();
        assert!(
            e.to_string()
                .contains("the master key given in the options is empty"),
            "{e}"
        );
        let empty = BTreeMap::from([(SYSTEM_KEY_SETTING.to_owned(), String::new())]);
        let e = Keys::configure(&HostOptions::new(".").with_enable_auth(true), &empty).unwrap_err();
        assert!(
            e.to_string()
                .contains("the DURABLE_HOST_SYSTEM_KEY setting is empty"),
            "{e}"
        );
        // An empty system key setting does not matter while the checks are off.
        assert!(Keys::configure(&HostOptions::new("."), &empty).is_ok());
    }
}
