//! `host.json`: the handler description, forwarding, the task hub and the Durable client settings, the route prefix
//! and the function timeout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::command_line::{expand_variables, handler_arguments, resolve_executable};
use crate::error::{HostError, Result};

/// What the local host uses from `host.json`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostJson {
    /// `customHandler.description.defaultExecutablePath` (`httpWorker` when `customHandler` is absent), with
    /// `%NAME%` expanded and resolved as the host resolves it (see [`resolve_executable`]).
    pub(crate) executable: Option<PathBuf>,
    /// What the handler receives as arguments: `arguments`, `defaultWorkerPath` and `workerArguments` after the
    /// host's expansion and re-splitting (see [`handler_arguments`]).
    pub(crate) arguments: Vec<String>,
    /// `%NAME%` in the arguments that named no setting, so were dropped (the host warns about each).
    pub(crate) unset_variables: Vec<String>,
    /// `customHandler.description.workingDirectory`, resolved against the app dir.
    pub(crate) working_dir: PathBuf,
    /// `customHandler.enableForwardingHttpRequest`.
    pub(crate) forward_http: bool,
    /// `extensions.durableTask.hubName` after `%SETTING%` substitution; `default` when absent.
    pub(crate) hub_name: String,
    /// `extensions.http.routePrefix` (default `api`), without slashes.
    pub(crate) route_prefix: String,
    /// `functionTimeout`.
    pub(crate) function_timeout: Option<Duration>,
    /// `extensions.durableTask`, for the settings the Durable extension reads from it (`Null` when absent).
    pub(crate) durable_task: Value,
    /// What the Durable extension's client endpoint takes from `extensions.durableTask`.
    pub(crate) durable_client: DurableClientSettings,
    /// `extensions.queues`, for the queue trigger and output bindings (`Null` when absent).
    pub(crate) queues: Value,
}

/// `extensions.durableTask.overridableExistingInstanceStates`: which existing instances a start with the same ID
/// replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OverridableStates {
    /// Any existing instance, running or not (the extension's default).
    #[default]
    AnyState,
    /// Only finished instances; starting over a running, pending or suspended one fails.
    NonRunningStates,
}

impl OverridableStates {
    /// The statuses an existing instance may be in for a start with its ID to replace it
    /// (`OverridableStates.ToDedupeStatuses` in Azure/azure-functions-durable-extension, inverted).
    pub(crate) fn replaceable(self) -> Vec<durable_proto::OrchestrationStatus> {
        use durable_proto::OrchestrationStatus as S;
        match self {
            OverridableStates::AnyState => vec![
                S::Running,
                S::Completed,
                S::ContinuedAsNew,
                S::Failed,
                S::Canceled,
                S::Terminated,
                S::Pending,
                S::Suspended,
            ],
            OverridableStates::NonRunningStates => {
                vec![S::Completed, S::Failed, S::Canceled, S::Terminated]
            }
        }
    }
}

/// The `extensions.durableTask` settings the client endpoint and the binding payload use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurableClientSettings {
    /// `defaultVersion`: the version of instances started without one.
    pub(crate) default_version: Option<String>,
    /// `overridableExistingInstanceStates`.
    pub(crate) overridable_states: OverridableStates,
    /// `storageProvider.connectionStringName`: the app setting holding the app's own scheduler connection.
    pub(crate) connection_name: String,
    /// `maxGrpcMessageSizeInBytes` (4 MiB by default), handed to clients in the binding payload.
    pub(crate) max_grpc_message_size: i64,
    /// `throwStatusExceptionsOnRaiseEvent`, when set.
    pub(crate) throw_status_exceptions_on_raise_event: Option<bool>,
}

impl Default for DurableClientSettings {
    fn default() -> Self {
        Self {
            default_version: None,
            overridable_states: OverridableStates::AnyState,
            connection_name: crate::options::CONNECTION_STRING_SETTING.to_owned(),
            max_grpc_message_size: 4 * 1024 * 1024,
            throw_status_exceptions_on_raise_event: None,
        }
    }
}

/// Reads `<app_dir>/host.json`, substituting `%NAME%` from the app settings (then the process environment), as
/// the host does for `hubName`.
pub(crate) fn read_host_json(
    app_dir: &Path,
    settings: &BTreeMap<String, String>,
) -> Result<HostJson> {
    let path = app_dir.join("host.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let message = if app_dir.is_dir() {
                "no host.json here; a Functions app folder holds host.json and one <Function>/function.json \
                 folder per function"
            } else {
                "no such folder"
            };
            return Err(HostError::App {
                dir: app_dir.to_path_buf(),
                message: message.into(),
            });
        }
        Err(source) => return Err(HostError::Read { path, source }),
    };
    let host_json = parse_host_json(&text, app_dir, settings)
        .map_err(|message| HostError::Config { path, message })?;
    for name in &host_json.unset_variables {
        tracing::warn!(
            "host.json customHandler arguments: %{name}% is not set; the host passes it as nothing"
        );
    }
    Ok(host_json)
}

/// A `%NAME%` in the handler's command line: the app settings (which the host has in its environment), then the
/// process environment.
fn variable(settings: &BTreeMap<String, String>, name: &str) -> Option<String> {
    settings
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
}

fn parse_host_json(
    text: &str,
    app_dir: &Path,
    settings: &BTreeMap<String, String>,
) -> Result<HostJson, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if !root.is_object() {
        return Err("must be a JSON object".into());
    }
    let handler = root
        .get("customHandler")
        .filter(|v| !v.is_null())
        .or_else(|| root.get("httpWorker"));
    let description = handler.and_then(|h| h.get("description"));
    let text_field = |name: &str| {
        description
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let list_field = |name: &str| -> Result<Vec<String>, String> {
        match description.and_then(|d| d.get(name)) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        format!("customHandler.description.{name} must hold strings")
                    })
                })
                .collect(),
            Some(_) => Err(format!("customHandler.description.{name} must be an array")),
        }
    };
    let lookup = |name: &str| variable(settings, name);
    // Both directories default to the app root, and a relative one is taken from it.
    let under_app =
        |dir: Option<&str>| dir.map_or_else(|| app_dir.to_path_buf(), |d| app_dir.join(d));
    let worker_dir = under_app(text_field("workerDirectory"));
    let working_dir = under_app(text_field("workingDirectory"));
    let executable = text_field("defaultExecutablePath")
        .map(|exe| resolve_executable(&expand_variables(exe, lookup), &worker_dir));
    let worker_path = text_field("defaultWorkerPath").map(|p| expand_variables(p, lookup));
    let (arguments, unset_variables) = handler_arguments(
        &list_field("arguments")?,
        worker_path.as_deref(),
        &list_field("workerArguments")?,
        lookup,
    );
    let forward_http = handler
        .and_then(|h| h.get("enableForwardingHttpRequest"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let durable = root.get("extensions").and_then(|e| e.get("durableTask"));
    let hub_name = match durable
        .and_then(|d| d.get("hubName"))
        .and_then(Value::as_str)
    {
        Some(raw) if !raw.is_empty() => substitute(raw, settings)?,
        _ => "default".to_owned(),
    };
    let route_prefix = root
        .get("extensions")
        .and_then(|e| e.get("http"))
        .and_then(|h| h.get("routePrefix"))
        .and_then(Value::as_str)
        .unwrap_or("api")
        .trim_matches('/')
        .to_owned();
    let function_timeout = match root.get("functionTimeout") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_timespan(s).ok_or_else(|| {
            format!("functionTimeout {s:?} is not a time span like \"00:05:00\"")
        })?),
        Some(_) => return Err("functionTimeout must be a string like \"00:05:00\"".into()),
    };
    let durable_client = durable_client_settings(durable)?;
    Ok(HostJson {
        durable_client,
        executable,
        arguments,
        unset_variables,
        working_dir,
        forward_http,
        hub_name,
        route_prefix,
        function_timeout,
        durable_task: durable.cloned().unwrap_or(Value::Null),
        queues: key(root.get("extensions"), "queues")
            .cloned()
            .unwrap_or(Value::Null),
    })
}

/// A key of `extensions.durableTask`, matched case-insensitively as the extension's options binder does.
fn key<'a>(object: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    object?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn durable_client_settings(durable: Option<&Value>) -> Result<DurableClientSettings, String> {
    let mut settings = DurableClientSettings::default();
    let prefix = "extensions.durableTask";
    if let Some(value) = key(durable, "defaultVersion") {
        let text = value
            .as_str()
            .ok_or_else(|| format!("{prefix}.defaultVersion must be a string"))?;
        settings.default_version = Some(text.to_owned());
    }
    if let Some(value) = key(durable, "overridableExistingInstanceStates") {
        // The extension binds the enum by name (any case) or by number.
        settings.overridable_states = match value {
            Value::String(s) if s.eq_ignore_ascii_case("AnyState") => OverridableStates::AnyState,
            Value::String(s) if s.eq_ignore_ascii_case("NonRunningStates") => {
                OverridableStates::NonRunningStates
            }
            Value::Number(n) if n.as_u64() == Some(0) => OverridableStates::AnyState,
            Value::Number(n) if n.as_u64() == Some(1) => OverridableStates::NonRunningStates,
            other => {
                return Err(format!(
                    "{prefix}.overridableExistingInstanceStates is {other}; use \"AnyState\" or \"NonRunningStates\""
                ));
            }
        };
    }
    if let Some(value) = key(key(durable, "storageProvider"), "connectionStringName") {
        let name = value
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                format!("{prefix}.storageProvider.connectionStringName must be a setting name")
            })?;
        settings.connection_name = name.to_owned();
    }
    if let Some(value) = key(durable, "maxGrpcMessageSizeInBytes") {
        settings.max_grpc_message_size = value
            .as_i64()
            .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
            .ok_or_else(|| {
                format!("{prefix}.maxGrpcMessageSizeInBytes must be a positive 32-bit integer")
            })?;
    }
    // Read for real by the extension's executor; checked here so that a bad value stops the start.
    crate::extension::versioning_settings(durable.unwrap_or(&Value::Null))?;
    if let Some(value) = key(durable, "throwStatusExceptionsOnRaiseEvent") {
        settings.throw_status_exceptions_on_raise_event =
            Some(value.as_bool().ok_or_else(|| {
                format!("{prefix}.throwStatusExceptionsOnRaiseEvent must be true or false")
            })?);
    }
    Ok(settings)
}

/// `%NAME%` placeholders, as the host resolves binding expressions in `host.json`.
pub(crate) fn substitute(raw: &str, settings: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('%')
            .ok_or_else(|| format!("unterminated %SETTING% in {raw:?}"))?;
        let name = &after[..end];
        let value = settings
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .ok_or_else(|| format!("{raw:?} names the app setting {name:?}, which is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// .NET `TimeSpan` text: `hh:mm:ss`, optionally `d.hh:mm:ss`; `-1` means unlimited. `None` for text that is not a
/// time span, or one too long to count in seconds.
pub(crate) fn parse_timespan(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "-1" {
        return Some(Duration::MAX);
    }
    let (days, clock) = match s.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (d.parse::<u64>().ok()?, rest),
        _ => (0, s),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    let secs: f64 = sec.parse().ok()?;
    if !(0.0..60.0).contains(&secs) {
        return None;
    }
    let total = days
        .checked_mul(86_400)?
        .checked_add(h.parse::<u64>().ok()?.checked_mul(3600)?)?
        .checked_add(m.parse::<u64>().ok()?.checked_mul(60)?)?;
    Duration::from_secs(total).checked_add(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_fields_the_host_uses() {
        let settings = BTreeMap::from([("TASKHUB_NAME".to_owned(), "hub1".to_owned())]);
        let h = parse_host_json(
            r#"{"version":"2.0","functionTimeout":"00:10:00",
                "customHandler":{"description":{"defaultExecutablePath":"app","arguments":["--x"],"workingDirectory":"bin"},
                                 "enableForwardingHttpRequest":true},
                "extensions":{"durableTask":{"hubName":"%TASKHUB_NAME%x"},"http":{"routePrefix":"/v1/"}}}"#,
            Path::new("/a"),
            &settings,
        )
        .unwrap();
        // "app" is not a file in the app root, so it is left to PATH.
        assert_eq!(h.executable.as_deref(), Some(Path::new("app")));
        assert_eq!(h.arguments, ["--x"]);
        assert_eq!(h.working_dir, Path::new("/a/bin"));
        assert!(h.forward_http);
        assert_eq!(h.hub_name, "hub1x");
        assert_eq!(h.route_prefix, "v1");
        assert_eq!(h.function_timeout, Some(Duration::from_secs(600)));
        assert_eq!(h.durable_client, DurableClientSettings::default());
    }

    #[test]
    fn durable_client_settings_are_read() {
        let h = parse_host_json(
            r#"{"extensions":{"durableTask":{"defaultVersion":"2.0","overridableExistingInstanceStates":"nonRunningStates",
                "maxGrpcMessageSizeInBytes":1024,"throwStatusExceptionsOnRaiseEvent":false,
                "storageProvider":{"type":"azureManaged","connectionStringName":"MY_DTS"}}}}"#,
            Path::new("/a"),
            &BTreeMap::new(),
        )
        .unwrap();
        let d = h.durable_client;
        assert_eq!(d.default_version.as_deref(), Some("2.0"));
        assert_eq!(d.overridable_states, OverridableStates::NonRunningStates);
        assert_eq!(d.connection_name, "MY_DTS");
        assert_eq!(d.max_grpc_message_size, 1024);
        assert_eq!(d.throw_status_exceptions_on_raise_event, Some(false));
        let defaults = DurableClientSettings::default();
        assert_eq!(
            defaults.connection_name,
            "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
        );
        assert_eq!(defaults.max_grpc_message_size, 4_194_304);
        for bad in [
            r#"{"overridableExistingInstanceStates":"Sometimes"}"#,
            r#"{"defaultVersion":2}"#,
            r#"{"maxGrpcMessageSizeInBytes":-1}"#,
            r#"{"storageProvider":{"connectionStringName":""}}"#,
        ] {
            let text = format!(r#"{{"extensions":{{"durableTask":{bad}}}}}"#);
            let e = parse_host_json(&text, Path::new("/a"), &BTreeMap::new()).unwrap_err();
            assert!(e.contains("extensions.durableTask."), "{bad}: {e}");
        }
    }

    #[test]
    fn the_handler_command_is_built_as_the_host_builds_it() {
        let app = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(app.path().join("bin")).unwrap();
        std::fs::write(app.path().join("handler"), b"").unwrap();
        std::fs::write(app.path().join("bin/worker"), b"").unwrap();
        let settings = BTreeMap::from([("SCRIPT".to_owned(), "main.py".to_owned())]);
        let parse = |description: &str| {
            parse_host_json(
                &format!(r#"{{"customHandler":{{"description":{description}}}}}"#),
                app.path(),
                &settings,
            )
            .unwrap()
        };
        // The executable comes from the app root even when the working directory is elsewhere.
        let h = parse(
            r#"{"defaultExecutablePath":"handler","workingDirectory":"bin",
                "arguments":["%SCRIPT%","two words","%NOT_SET_ANYWHERE_X%"]}"#,
        );
        assert_eq!(
            h.executable.as_deref(),
            Some(app.path().join("handler").as_path())
        );
        assert_eq!(h.working_dir, app.path().join("bin"));
        assert_eq!(h.arguments, ["main.py", "two", "words"]);
        assert_eq!(h.unset_variables, ["NOT_SET_ANYWHERE_X"]);
        // workerDirectory moves the executable's base; defaultWorkerPath and workerArguments follow arguments.
        let h = parse(
            r#"{"defaultExecutablePath":"worker","workerDirectory":"bin","arguments":["-u"],
                "defaultWorkerPath":"w.py","workerArguments":["--a"]}"#,
        );
        assert_eq!(
            h.executable.as_deref(),
            Some(app.path().join("bin/worker").as_path())
        );
        assert_eq!(h.working_dir, app.path());
        assert_eq!(h.arguments, ["-u", "w.py", "--a"]);
        let e = parse_host_json(
            r#"{"customHandler":{"description":{"defaultExecutablePath":"x","arguments":"a b"}}}"#,
            app.path(),
            &settings,
        )
        .unwrap_err();
        assert!(e.contains("arguments must be an array"), "{e}");
    }

    #[test]
    fn defaults_and_errors() {
        let h = parse_host_json(r#"{"version":"2.0"}"#, Path::new("/a"), &BTreeMap::new()).unwrap();
        assert_eq!(h.hub_name, "default");
        assert_eq!(h.route_prefix, "api");
        assert!(h.executable.is_none());
        let e = parse_host_json(
            r#"{"extensions":{"durableTask":{"hubName":"%NOPE_NOT_SET_ANYWHERE%"}}}"#,
            Path::new("/a"),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.contains("NOPE_NOT_SET_ANYWHERE"), "{e}");
        assert!(parse_host_json("[1]", Path::new("/a"), &BTreeMap::new()).is_err());
        assert_eq!(
            parse_timespan("1.00:00:01"),
            Some(Duration::from_secs(86_401))
        );
        assert_eq!(parse_timespan("abc"), None);
    }

    #[test]
    fn time_spans_that_do_not_fit_are_refused() {
        for text in [
            "99999999999999999.00:00:00",
            "213503982334602.00:00:00",
            "18446744073709551615:00:00",
            "0:18446744073709551615:00",
            "1.2:3:4.5e400",
            "00:00:NaN",
        ] {
            assert_eq!(parse_timespan(text), None, "{text}");
        }
        let e = parse_host_json(
            r#"{"functionTimeout":"99999999999999999.00:00:00"}"#,
            Path::new("/a"),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.contains("functionTimeout"), "{e}");
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::String),
            "%[A-Z_]{0,6}%?".prop_map(Value::String),
            "[0-9]{1,20}(\\.[0-9]{1,20})?:[0-9]{1,20}:[0-9.]{1,20}".prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("customHandler".to_owned()),
            Just("description".to_owned()),
            Just("defaultExecutablePath".to_owned()),
            Just("arguments".to_owned()),
            Just("workingDirectory".to_owned()),
            Just("enableForwardingHttpRequest".to_owned()),
            Just("extensions".to_owned()),
            Just("durableTask".to_owned()),
            Just("hubName".to_owned()),
            Just("http".to_owned()),
            Just("routePrefix".to_owned()),
            Just("functionTimeout".to_owned()),
            Just("storageProvider".to_owned()),
            Just("connectionStringName".to_owned()),
            Just("maxGrpcMessageSizeInBytes".to_owned()),
            Just("overridableExistingInstanceStates".to_owned()),
            Just("defaultVersion".to_owned()),
            Just("throwStatusExceptionsOnRaiseEvent".to_owned()),
            "[a-zA-Z]{1,8}",
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
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
        fn any_host_json_text_is_read_or_refused(text in ".{0,200}") {
            let _ = parse_host_json(&text, Path::new("/nonexistent-app"), &BTreeMap::new());
        }

        #[test]
        fn any_host_json_shape_is_read_or_refused(value in arb_json()) {
            let settings = BTreeMap::from([("A".to_owned(), "x".to_owned())]);
            let _ = parse_host_json(&value.to_string(), Path::new("/nonexistent-app"), &settings);
        }

        #[test]
        fn any_time_span_is_read_or_refused(text in "[0-9.:eE+-]{0,40}") {
            let _ = parse_timespan(&text);
        }
    }
}
