//! The rules `host.json` must follow for the package to run in Azure on the Durable Task Scheduler.

use std::path::PathBuf;

use serde_json::Value;

use super::{MIN_BUNDLE_WITH_SCHEDULER, PackageError};

/// The extension bundle that carries the Durable extension.
const BUNDLE_ID: &str = "Microsoft.Azure.Functions.ExtensionBundle";
/// The setting the `azureManaged` provider reads when `connectionStringName` is absent.
const DEFAULT_CONNECTION_SETTING: &str = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING";

/// Where the task hub's name comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskHub {
    /// `%NAME%`: the app setting `NAME`.
    Setting(String),
    /// A literal name.
    Name(String),
    /// No `hubName`: the connection string's `TaskHub` decides.
    Unset,
}

/// What a valid `host.json` says about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostJsonFacts {
    /// The extension bundle's version range, as written.
    pub bundle_range: String,
    /// The task hub.
    pub task_hub: TaskHub,
    /// The app setting that holds the scheduler's connection string.
    pub connection_setting: String,
}

/// Checks `host.json` (its bytes) for Azure, for an executable named `bin`:
///
/// - `customHandler.description.defaultExecutablePath` is `bin`, the executable at the package root;
/// - `extensionBundle.id` is `Microsoft.Azure.Functions.ExtensionBundle` and its `version` range admits a bundle
///   with the Durable Task Scheduler provider (4.30.0 or later);
/// - `extensions.durableTask.storageProvider.type` is `azureManaged`.
///
/// ```
/// use azure_durable_functions::package::check_host_json;
///
/// let ok = br#"{"version":"2.0",
///   "customHandler":{"description":{"defaultExecutablePath":"my-app"}},
///   "extensionBundle":{"id":"Microsoft.Azure.Functions.ExtensionBundle","version":"[4.30.0, 5.0.0)"},
///   "extensions":{"durableTask":{"hubName":"%TASKHUB_NAME%","storageProvider":{"type":"azureManaged"}}}}"#;
/// assert!(check_host_json(ok, "my-app").is_ok());
/// let err = check_host_json(ok, "other-app").unwrap_err();
/// assert!(err.to_string().contains("defaultExecutablePath"));
/// ```
pub fn check_host_json(bytes: &[u8], bin: &str) -> Result<HostJsonFacts, PackageError> {
    let invalid = |reason: String| PackageError::HostJson {
        path: PathBuf::from("host.json"),
        reason,
    };
    let rule = |text: String| Err(PackageError::HostJsonRule(text));
    let host: Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    if !host.is_object() {
        return Err(invalid("not a JSON object".to_owned()));
    }
    if host.get("version").and_then(Value::as_str) != Some("2.0") {
        return rule("\"version\" must be \"2.0\" (the Functions host 4.x format)".to_owned());
    }

    let exe = host
        .pointer("/customHandler/description/defaultExecutablePath")
        .and_then(Value::as_str);
    match exe {
        Some(exe) if exe.strip_prefix("./").unwrap_or(exe) == bin => {}
        Some(exe) => {
            return rule(format!(
                "customHandler.description.defaultExecutablePath is \"{exe}\", but the package's executable is \
                 \"{bin}\" at its root: set it to \"{bin}\""
            ));
        }
        None => {
            return rule(format!(
                "customHandler.description.defaultExecutablePath is missing: set it to \"{bin}\", the \
                 executable at the package root"
            ));
        }
    }

    let bundle_id = host.pointer("/extensionBundle/id").and_then(Value::as_str);
    if bundle_id != Some(BUNDLE_ID) {
        return rule(format!(
            "extensionBundle.id is {}, but the Durable extension comes in \"{BUNDLE_ID}\"",
            shown(bundle_id)
        ));
    }
    let Some(range) = host
        .pointer("/extensionBundle/version")
        .and_then(Value::as_str)
    else {
        return rule(format!(
            "extensionBundle.version is missing: use \"[{MIN_BUNDLE_WITH_SCHEDULER}, 5.0.0)\""
        ));
    };
    match VersionRange::parse(range) {
        Ok(parsed)
            if parsed.admits_at_least(
                &Version::parse(MIN_BUNDLE_WITH_SCHEDULER).unwrap_or_default(),
            ) => {}
        Ok(_) => {
            return rule(format!(
                "extensionBundle.version \"{range}\" admits no bundle with the Durable Task Scheduler provider \
                 (those are {MIN_BUNDLE_WITH_SCHEDULER} and later): use \"[{MIN_BUNDLE_WITH_SCHEDULER}, 5.0.0)\""
            ));
        }
        Err(reason) => {
            return rule(format!(
                "extensionBundle.version \"{range}\" is not a version range ({reason}): use \
                 \"[{MIN_BUNDLE_WITH_SCHEDULER}, 5.0.0)\""
            ));
        }
    }

    let durable = host.pointer("/extensions/durableTask");
    let provider = durable
        .and_then(|d| d.pointer("/storageProvider/type"))
        .and_then(Value::as_str);
    if !provider.is_some_and(|p| p.eq_ignore_ascii_case("azureManaged")) {
        return rule(format!(
            "extensions.durableTask.storageProvider.type is {}, but the Durable Task Scheduler's provider is \
             \"azureManaged\"",
            shown(provider)
        ));
    }
    let connection_setting = durable
        .and_then(|d| d.pointer("/storageProvider/connectionStringName"))
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_CONNECTION_SETTING)
        .to_owned();
    let task_hub = match durable
        .and_then(|d| d.get("hubName"))
        .and_then(Value::as_str)
    {
        Some(hub) if hub.len() > 2 && hub.starts_with('%') && hub.ends_with('%') => {
            TaskHub::Setting(hub[1..hub.len() - 1].to_owned())
        }
        Some(hub) if !hub.is_empty() => TaskHub::Name(hub.to_owned()),
        _ => TaskHub::Unset,
    };
    Ok(HostJsonFacts {
        bundle_range: range.to_owned(),
        task_hub,
        connection_setting,
    })
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "missing".to_owned(), |v| format!("\"{v}\""))
}

/// A NuGet-style version: up to four numbers; a `*` floats (taken as 0), a `-suffix` is ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Version([u64; 4]);

impl Version {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let core = text.split(['-', '+']).next().unwrap_or_default();
        if core.is_empty() {
            return Err("an empty version".to_owned());
        }
        let mut parts = [0u64; 4];
        for (i, part) in core.split('.').enumerate() {
            if i >= 4 {
                return Err(format!("'{text}' has more than four numbers"));
            }
            if part == "*" {
                break;
            }
            parts[i] = part
                .parse()
                .map_err(|_| format!("'{part}' in '{text}' is not a number"))?;
        }
        Ok(Version(parts))
    }
}

/// The interval notation bundles use: `[4.30.0, 5.0.0)`, `(, 5.0.0]`, `[4.30.0]`, or a bare minimum `4.30.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VersionRange {
    /// The upper bound and whether it is included; `None` for no upper bound.
    upper: Option<(Version, bool)>,
}

impl VersionRange {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (Some(open), Some(close)) = (text.chars().next(), text.chars().last()) else {
            return Err("it is empty".to_owned());
        };
        if !matches!(open, '[' | '(') {
            // A bare version is a minimum.
            Version::parse(text)?;
            return Ok(VersionRange { upper: None });
        }
        if !matches!(close, ']' | ')') {
            return Err("it opens with a bracket but does not close with one".to_owned());
        }
        let inner = &text[1..text.len() - 1];
        let (lower, upper) = match inner.split_once(',') {
            Some((lower, upper)) => (lower.trim(), upper.trim()),
            None => {
                // `[x]`: exactly one version.
                let exact = Version::parse(inner)?;
                return Ok(VersionRange {
                    upper: Some((exact, true)),
                });
            }
        };
        let lower = if lower.is_empty() {
            None
        } else {
            Some((Version::parse(lower)?, open == '['))
        };
        let upper = if upper.is_empty() {
            None
        } else {
            Some((Version::parse(upper)?, close == ']'))
        };
        if let (Some((low, low_in)), Some((high, high_in))) = (lower, upper)
            && (low > high || (low == high && !(low_in && high_in)))
        {
            return Err("its lower bound is above its upper bound".to_owned());
        }
        Ok(VersionRange { upper })
    }

    /// Whether some version at or above `min` is in the range.
    fn admits_at_least(&self, min: &Version) -> bool {
        match self.upper {
            None => true,
            Some((high, inclusive)) => high > *min || (inclusive && high == *min),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(range: &str) -> bool {
        VersionRange::parse(range)
            .expect(range)
            .admits_at_least(&Version::parse(MIN_BUNDLE_WITH_SCHEDULER).unwrap())
    }

    #[test]
    fn ranges_with_and_without_the_scheduler_provider() {
        for yes in [
            "[4.30.0, 5.0.0)",
            "[4.*, 5.0.0)",
            "[4.30.0]",
            "4.0.0",
            "[4.0.0, )",
            "(, 4.30.0]",
            "[4.29.0, 4.30.1)",
        ] {
            assert!(admits(yes), "{yes}");
        }
        for no in ["[3.*, 4.0.0)", "[4.0.0, 4.30.0)", "[4.29.0]", "(, 4.20.0]"] {
            assert!(!admits(no), "{no}");
        }
    }

    #[test]
    fn broken_ranges_are_errors() {
        for bad in [
            "",
            "[4.30.0, 5.0.0",
            "[five, 6)",
            "[5.0.0, 4.0.0)",
            "[1.2.3.4.5]",
        ] {
            assert!(VersionRange::parse(bad).is_err(), "{bad}");
        }
    }
}
