//! `local.settings.json`: the app settings the handler gets in its environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{HostError, Result};

/// The port `func start` listens on when neither `--port` nor `Host.LocalHttpPort` says otherwise.
pub(crate) const DEFAULT_PORT: u16 = 7071;

/// `local.settings.json`, or `local.settings.sample.json` when the first is absent (the sample is what a fresh
/// clone has), parsed; `None` when there is neither.
fn read_file(app_dir: &Path) -> Result<Option<(PathBuf, Value)>> {
    for name in ["local.settings.json", "local.settings.sample.json"] {
        let path = app_dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(HostError::Read { path, source }),
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| HostError::Config {
            path: path.clone(),
            message: format!("not valid JSON: {e}"),
        })?;
        return Ok(Some((path, value)));
    }
    Ok(None)
}

/// The app settings: `Values` of the local settings file. As under `func start`, a variable already set
/// (non-empty) in the process environment wins over the file.
pub(crate) fn read_settings(app_dir: &Path) -> Result<BTreeMap<String, String>> {
    let Some((path, value)) = read_file(app_dir)? else {
        return Ok(BTreeMap::new());
    };
    settings_from(&path, &value).map_err(|message| HostError::Config { path, message })
}

fn settings_from(path: &Path, value: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut settings = BTreeMap::new();
    match value.get("Values") {
        None | Some(Value::Null) => {}
        Some(Value::Object(values)) => {
            for (key, value) in values {
                // The Functions tooling only accepts strings here, but a number or bool is harmless and
                // clearly meant as its text.
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    Value::Null => String::new(),
                    _ => return Err(format!("Values.{key} must be a string")),
                };
                let text = match std::env::var(key) {
                    Ok(from_env) if !from_env.is_empty() => {
                        tracing::warn!(
                            "skipping {key:?} from {}: it is already set in the environment",
                            path.display()
                        );
                        from_env
                    }
                    _ => text,
                };
                settings.insert(key.clone(), text);
            }
        }
        Some(_) => return Err("\"Values\" must be an object".into()),
    }
    Ok(settings)
}

/// `Host.LocalHttpPort` of the local settings file: the port `func start` uses when none is given. `None` when
/// absent or 0.
pub(crate) fn read_local_http_port(app_dir: &Path) -> Result<Option<u16>> {
    let Some((path, value)) = read_file(app_dir)? else {
        return Ok(None);
    };
    port_from(&value).map_err(|message| HostError::Config { path, message })
}

fn port_from(value: &Value) -> Result<Option<u16>, String> {
    let port = match value.get("Host").and_then(|h| h.get("LocalHttpPort")) {
        None | Some(Value::Null) => return Ok(None),
        // Read into an int by Newtonsoft, which also takes the number as text.
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match port.map(u16::try_from) {
        Some(Ok(0)) => Ok(None),
        Some(Ok(port)) => Ok(Some(port)),
        _ => Err("Host.LocalHttpPort must be a port number (1-65535)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefers_the_real_file_and_falls_back_to_the_sample() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_settings(dir.path()).unwrap().is_empty());
        std::fs::write(
            dir.path().join("local.settings.sample.json"),
            r#"{"Values":{"A":"sample","N":3}}"#,
        )
        .unwrap();
        let s = read_settings(dir.path()).unwrap();
        assert_eq!(s["A"], "sample");
        assert_eq!(s["N"], "3");
        std::fs::write(
            dir.path().join("local.settings.json"),
            r#"{"IsEncrypted":false,"Values":{"A":"real"}}"#,
        )
        .unwrap();
        assert_eq!(read_settings(dir.path()).unwrap()["A"], "real");
        std::fs::write(dir.path().join("local.settings.json"), r#"{"Values":[1]}"#).unwrap();
        assert!(read_settings(dir.path()).is_err());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // PATH is set in any environment this test runs in.
        let path = std::env::var("PATH").unwrap();
        std::fs::write(
            dir.path().join("local.settings.json"),
            r#"{"Values":{"PATH":"from-file","DURABLE_HOST_TEST_ONLY_IN_FILE_X":"kept"}}"#,
        )
        .unwrap();
        let s = read_settings(dir.path()).unwrap();
        assert_eq!(s["PATH"], path);
        assert_eq!(s["DURABLE_HOST_TEST_ONLY_IN_FILE_X"], "kept");
    }

    #[test]
    fn the_local_http_port_comes_from_the_host_section() {
        let dir = tempfile::tempdir().unwrap();
        let port = |text: &str| {
            std::fs::write(dir.path().join("local.settings.json"), text).unwrap();
            read_local_http_port(dir.path())
        };
        assert_eq!(read_local_http_port(dir.path()).unwrap(), None);
        assert_eq!(port(r#"{"Values":{}}"#).unwrap(), None);
        assert_eq!(
            port(r#"{"Host":{"LocalHttpPort":7072}}"#).unwrap(),
            Some(7072)
        );
        assert_eq!(
            port(r#"{"Host":{"LocalHttpPort":"7073"}}"#).unwrap(),
            Some(7073)
        );
        assert_eq!(port(r#"{"Host":{"LocalHttpPort":0}}"#).unwrap(), None);
        let e = port(r#"{"Host":{"LocalHttpPort":70000}}"#).unwrap_err();
        assert!(e.to_string().contains("LocalHttpPort"), "{e}");
        assert!(port(r#"{"Host":{"LocalHttpPort":true}}"#).is_err());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("Values".to_owned()),
            Just("Host".to_owned()),
            Just("LocalHttpPort".to_owned()),
            Just("IsEncrypted".to_owned()),
            Just("PATH".to_owned()),
            ".{0,8}",
        ];
        leaf.prop_recursive(3, 32, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_local_settings_are_read_or_refused(value in arb_json()) {
            let _ = settings_from(Path::new("local.settings.json"), &value);
            let _ = port_from(&value);
        }
    }
}
