//! `local.settings.json`: the app settings the handler gets in its environment.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{HostError, Result};

/// Reads `Values` from `local.settings.json`, or from `local.settings.sample.json` when the first is absent (the
/// sample is what a fresh clone has). No file at all means no settings.
pub(crate) fn read_settings(app_dir: &Path) -> Result<BTreeMap<String, String>> {
    for name in ["local.settings.json", "local.settings.sample.json"] {
        let path = app_dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(HostError::Read { path, source }),
        };
        let config = |message: String| HostError::Config {
            path: path.clone(),
            message,
        };
        let value: Value =
            serde_json::from_str(&text).map_err(|e| config(format!("not valid JSON: {e}")))?;
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
                        _ => return Err(config(format!("Values.{key} must be a string"))),
                    };
                    settings.insert(key.clone(), text);
                }
            }
            Some(_) => return Err(config("\"Values\" must be an object".into())),
        }
        return Ok(settings);
    }
    Ok(BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
