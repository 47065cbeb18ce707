//! The function folders: `<name>/function.json`, one per function, as the host indexes them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{HostError, Result};

/// One binding of a `function.json`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) direction_in: bool,
    pub(crate) raw: Map<String, Value>,
}

impl Binding {
    fn str(&self, key: &str) -> Option<&str> {
        self.raw
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// Who may call an HTTP trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthLevel {
    Anonymous,
    Function,
    Admin,
}

/// An `httpTrigger` and what the host needs to route and answer it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpTrigger {
    pub(crate) request_binding: String,
    pub(crate) route: String,
    /// Lower-case; `None` accepts every method.
    pub(crate) methods: Option<Vec<String>>,
    pub(crate) auth: AuthLevel,
    /// The `http` output binding the answer comes back in (`$return` included).
    pub(crate) response_binding: Option<String>,
    /// Exactly one input (this trigger) and one `http` output: what `enableForwardingHttpRequest` applies to.
    pub(crate) forwardable: bool,
}

/// What triggers a function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FunctionKind {
    Orchestrator {
        orchestration: String,
    },
    Activity {
        activity: String,
    },
    Entity {
        entity: String,
    },
    Http(HttpTrigger),
    Timer {
        schedule: String,
        run_on_startup: bool,
    },
    Queue {
        queue: String,
        connection: Option<String>,
    },
    Unsupported {
        trigger: String,
    },
}

/// A function folder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FunctionMeta {
    pub(crate) name: String,
    pub(crate) kind: FunctionKind,
    pub(crate) trigger_binding: String,
    pub(crate) bindings: Vec<Binding>,
}

/// A `durableClient` input binding as declared: its name and the `taskHub` / `connectionName` properties, which
/// may hold `%SETTING%` expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientBindingDecl<'a> {
    pub(crate) name: &'a str,
    pub(crate) task_hub: Option<&'a str>,
    pub(crate) connection_name: Option<&'a str>,
}

impl FunctionMeta {
    /// The `durableClient` input bindings.
    pub(crate) fn client_bindings(&self) -> impl Iterator<Item = ClientBindingDecl<'_>> {
        self.bindings
            .iter()
            .filter(|b| b.direction_in && b.kind.eq_ignore_ascii_case("durableClient"))
            .map(|b| ClientBindingDecl {
                name: b.name.as_str(),
                task_hub: b.str("taskHub"),
                connection_name: b.str("connectionName"),
            })
    }
}

/// Reads every `<dir>/<name>/function.json`, sorted by name; disabled functions are left out.
pub(crate) fn read_functions(dir: &Path) -> Result<Vec<FunctionMeta>> {
    let entries = std::fs::read_dir(dir).map_err(|source| HostError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| HostError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let file = entry.path().join("function.json");
        if file.is_file() {
            paths.push((entry.file_name().to_string_lossy().into_owned(), file));
        }
    }
    paths.sort();
    let mut functions = Vec::new();
    for (name, path) in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| HostError::Read {
            path: path.clone(),
            source,
        })?;
        let parsed =
            parse_function(&name, &text).map_err(|message| HostError::Config { path, message })?;
        functions.extend(parsed);
    }
    Ok(functions)
}

fn parse_function(name: &str, text: &str) -> Result<Option<FunctionMeta>, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if root.get("disabled").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let Some(Value::Array(items)) = root.get("bindings") else {
        return Err("\"bindings\" must be an array".into());
    };
    let mut bindings = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(raw) = item else {
            return Err(format!("bindings[{i}] must be an object"));
        };
        let field = |key: &str| raw.get(key).and_then(Value::as_str).unwrap_or_default();
        let kind = field("type").to_owned();
        if kind.is_empty() {
            return Err(format!("bindings[{i}] has no \"type\""));
        }
        let binding_name = field("name").to_owned();
        if binding_name.is_empty() {
            return Err(format!("bindings[{i}] ({kind}) has no \"name\""));
        }
        let direction = field("direction");
        bindings.push(Binding {
            name: binding_name,
            direction_in: !direction.eq_ignore_ascii_case("out"),
            kind,
            raw: raw.clone(),
        });
    }
    let triggers: Vec<&Binding> = bindings
        .iter()
        .filter(|b| b.direction_in && b.kind.to_ascii_lowercase().ends_with("trigger"))
        .collect();
    let [trigger] = triggers.as_slice() else {
        return Err(format!(
            "a function needs exactly one trigger binding, found {}",
            triggers.len()
        ));
    };
    let own = |key: &str| trigger.str(key).unwrap_or(name).to_owned();
    let kind = match trigger.kind.to_ascii_lowercase().as_str() {
        "orchestrationtrigger" => FunctionKind::Orchestrator {
            orchestration: own("orchestration"),
        },
        "activitytrigger" => FunctionKind::Activity {
            activity: own("activity"),
        },
        "entitytrigger" => FunctionKind::Entity {
            entity: own("entityName"),
        },
        "httptrigger" => FunctionKind::Http(http_trigger(name, trigger, &bindings)?),
        "timertrigger" => FunctionKind::Timer {
            schedule: trigger
                .str("schedule")
                .ok_or("a timerTrigger needs a \"schedule\"")?
                .to_owned(),
            run_on_startup: trigger
                .raw
                .get("runOnStartup")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "queuetrigger" => FunctionKind::Queue {
            queue: trigger
                .str("queueName")
                .ok_or("a queueTrigger needs a \"queueName\"")?
                .to_owned(),
            connection: trigger.str("connection").map(str::to_owned),
        },
        _ => FunctionKind::Unsupported {
            trigger: trigger.kind.clone(),
        },
    };
    Ok(Some(FunctionMeta {
        name: name.to_owned(),
        trigger_binding: trigger.name.clone(),
        kind,
        bindings,
    }))
}

fn http_trigger(
    name: &str,
    trigger: &Binding,
    bindings: &[Binding],
) -> Result<HttpTrigger, String> {
    let auth = match trigger
        .str("authLevel")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("function") => AuthLevel::Function,
        Some("anonymous") => AuthLevel::Anonymous,
        Some("admin") | Some("system") => AuthLevel::Admin,
        Some(other) => return Err(format!("unknown authLevel {other:?}")),
    };
    let methods = match trigger.raw.get("methods") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.is_empty() => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|m| m.as_str().map(str::to_ascii_lowercase))
                .collect::<Option<Vec<_>>>()
                .ok_or("\"methods\" must hold strings")?,
        ),
        Some(_) => return Err("\"methods\" must be an array".into()),
    };
    let outputs: Vec<&Binding> = bindings.iter().filter(|b| !b.direction_in).collect();
    let response_binding = outputs
        .iter()
        .find(|b| b.kind.eq_ignore_ascii_case("http"))
        .map(|b| b.name.clone());
    let inputs = bindings.iter().filter(|b| b.direction_in).count();
    let forwardable = inputs == 1 && outputs.len() == 1 && response_binding.is_some();
    Ok(HttpTrigger {
        request_binding: trigger.name.clone(),
        route: trigger
            .str("route")
            .unwrap_or(name)
            .trim_matches('/')
            .to_owned(),
        methods,
        auth,
        response_binding,
        forwardable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_durable_http_and_timer_functions() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("function.json"), body).unwrap();
        };
        write(
            "HelloCities",
            r#"{"bindings":[{"name":"context","type":"orchestrationTrigger","direction":"in"}]}"#,
        );
        write(
            "SayHello",
            r#"{"bindings":[{"name":"input","type":"activityTrigger","direction":"in","activity":"Greet"}]}"#,
        );
        write(
            "HttpStart",
            r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous","methods":["POST"],"route":"orchestrators/{functionName}"},
                 {"name":"starter","type":"durableClient","direction":"in"},{"name":"other","type":"durableClient","direction":"in","TaskHub":"%HUB%","connectionName":"OTHER"},
                 {"name":"res","type":"http","direction":"out"}]}"#,
        );
        write(
            "Hello",
            r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in"},{"name":"$return","type":"http","direction":"out"}]}"#,
        );
        write(
            "Tick",
            r#"{"bindings":[{"name":"timer","type":"timerTrigger","direction":"in","schedule":"0 */5 * * * *","runOnStartup":true}]}"#,
        );
        write("Off", r#"{"disabled":true,"bindings":[]}"#);
        std::fs::create_dir_all(dir.path().join("not-a-function")).unwrap();
        let functions = read_functions(dir.path()).unwrap();
        let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["Hello", "HelloCities", "HttpStart", "SayHello", "Tick"]
        );
        let FunctionKind::Http(start) = &functions[2].kind else {
            panic!("HttpStart is an HTTP function")
        };
        assert_eq!(start.route, "orchestrators/{functionName}");
        assert_eq!(start.methods.as_deref(), Some(&["post".to_owned()][..]));
        assert_eq!(start.auth, AuthLevel::Anonymous);
        assert!(!start.forwardable);
        assert_eq!(
            functions[2].client_bindings().collect::<Vec<_>>(),
            [
                ClientBindingDecl {
                    name: "starter",
                    task_hub: None,
                    connection_name: None
                },
                ClientBindingDecl {
                    name: "other",
                    task_hub: Some("%HUB%"),
                    connection_name: Some("OTHER")
                }
            ]
        );
        let FunctionKind::Http(hello) = &functions[0].kind else {
            panic!("Hello is an HTTP function")
        };
        assert!(hello.forwardable);
        assert_eq!(hello.route, "Hello");
        assert_eq!(hello.auth, AuthLevel::Function);
        assert_eq!(
            functions[3].kind,
            FunctionKind::Activity {
                activity: "Greet".into()
            }
        );
        assert_eq!(
            functions[4].kind,
            FunctionKind::Timer {
                schedule: "0 */5 * * * *".into(),
                run_on_startup: true
            }
        );
    }

    #[test]
    fn rejects_functions_the_host_rejects() {
        assert!(parse_function("X", r#"{"bindings":[]}"#).is_err());
        assert!(parse_function("X", r#"{"bindings":[{"type":"httpTrigger"}]}"#).is_err());
        assert!(
            parse_function(
                "X",
                r#"{"bindings":[{"name":"a","type":"httpTrigger","authLevel":"weird"}]}"#
            )
            .is_err()
        );
    }

    fn arb_binding() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            ".{0,10}",
            Just("httpTrigger".to_owned()),
            Just("orchestrationTrigger".to_owned()),
            Just("activityTrigger".to_owned()),
            Just("entityTrigger".to_owned()),
            Just("timerTrigger".to_owned()),
            Just("queueTrigger".to_owned()),
            Just("durableClient".to_owned()),
            Just("http".to_owned()),
            Just("in".to_owned()),
            Just("out".to_owned()),
            "[a-z{}/?*:]{0,16}",
        ];
        let value = prop_oneof![
            text.clone().prop_map(Value::String),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            proptest::collection::vec(text.clone().prop_map(Value::String), 0..3)
                .prop_map(Value::Array),
        ];
        let key = prop_oneof![
            Just("name"),
            Just("type"),
            Just("direction"),
            Just("authLevel"),
            Just("methods"),
            Just("route"),
            Just("schedule"),
            Just("runOnStartup"),
            Just("queueName"),
            Just("connection"),
            Just("taskHub"),
            Just("connectionName"),
        ];
        proptest::collection::btree_map(key, value, 0..8)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_function_json_text_is_read_or_refused(text in ".{0,200}") {
            let _ = parse_function("F", &text);
        }

        #[test]
        fn any_function_json_shape_is_read_or_refused(
            bindings in proptest::collection::vec(arb_binding(), 0..4),
            disabled in proptest::option::of(any::<bool>()),
        ) {
            let mut root = serde_json::json!({ "bindings": bindings });
            if let Some(disabled) = disabled {
                root["disabled"] = Value::Bool(disabled);
            }
            if let Ok(Some(meta)) = parse_function("F", &root.to_string()) {
                if let FunctionKind::Http(trigger) = &meta.kind {
                    let _ = crate::http::RouteTemplate::parse(&trigger.route);
                }
                if let FunctionKind::Timer { schedule, .. } = &meta.kind {
                    let _ = crate::timer::Schedule::parse(schedule);
                }
                let _ = meta.client_bindings().count();
            }
        }
    }
}
