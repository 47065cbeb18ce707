//! `function.json` generation from the app's registrations and the templates in `function-templates/`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::app::{FunctionDef, FunctionKind, Handler};
use crate::error::BuildError;
use crate::triggers::HttpTrigger;

/// Marks the files we generate, so stale ones can be removed without touching hand-written functions.
/// The host ignores unknown top-level properties (the .NET SDK writes this one too).
const GENERATED_BY: &str = "durable-handler";

struct Template {
    file: &'static str,
    text: &'static str,
}

const ORCHESTRATOR: Template = Template {
    file: "orchestrator.json",
    text: include_str!("../function-templates/orchestrator.json"),
};
const ACTIVITY: Template = Template {
    file: "activity.json",
    text: include_str!("../function-templates/activity.json"),
};
const ENTITY: Template = Template {
    file: "entity.json",
    text: include_str!("../function-templates/entity.json"),
};
const HTTP: Template = Template {
    file: "http.json",
    text: include_str!("../function-templates/http.json"),
};
const HTTP_STARTER: Template = Template {
    file: "http-starter.json",
    text: include_str!("../function-templates/http-starter.json"),
};
const QUEUE: Template = Template {
    file: "queue.json",
    text: include_str!("../function-templates/queue.json"),
};
const TIMER: Template = Template {
    file: "timer.json",
    text: include_str!("../function-templates/timer.json"),
};

impl Handler {
    /// The `function.json` of every function, keyed by function name, in registration order.
    pub fn function_json(&self) -> Result<Vec<(String, Value)>, BuildError> {
        self.inner
            .functions
            .iter()
            .map(|def| Ok((def.name.clone(), render(def)?)))
            .collect()
    }

    /// Writes `<dir>/<FunctionName>/function.json` for every function, and removes the folders of functions this
    /// crate generated earlier that no longer exist. Returns the files written.
    pub fn write_function_files(&self, dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
        let rendered = self.function_json()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuildError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        remove_stale(dir, &rendered)?;
        let mut written = Vec::new();
        for (name, json) in rendered {
            let folder = dir.join(&name);
            std::fs::create_dir_all(&folder).map_err(io(&folder))?;
            let file = folder.join("function.json");
            let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
            text.push('\n');
            std::fs::write(&file, text).map_err(io(&file))?;
            written.push(file);
        }
        Ok(written)
    }
}

fn remove_stale(dir: &Path, keep: &[(String, Value)]) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BuildError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let folder = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.iter().any(|(k, _)| k.eq_ignore_ascii_case(&name)) {
            continue;
        }
        let file = folder.join("function.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let generated = serde_json::from_str::<Value>(&text)
            .ok()
            .is_some_and(|v| v.get("generatedBy").and_then(Value::as_str) == Some(GENERATED_BY));
        if generated {
            std::fs::remove_file(&file).map_err(|source| BuildError::Io {
                path: file.clone(),
                source,
            })?;
            // Only an emptied folder goes; anything else in it belongs to someone.
            let _ = std::fs::remove_dir(&folder);
        }
    }
    Ok(())
}

fn render(def: &FunctionDef) -> Result<Value, BuildError> {
    let (template, vars) = match &def.kind {
        FunctionKind::Orchestrator => (ORCHESTRATOR, Map::new()),
        FunctionKind::Activity => (ACTIVITY, Map::new()),
        FunctionKind::Entity => (ENTITY, Map::new()),
        FunctionKind::Http { trigger, .. } => (HTTP, http_vars(trigger)),
        FunctionKind::Starter { trigger, .. } => (HTTP_STARTER, http_vars(trigger)),
        FunctionKind::Queue { trigger, .. } => {
            let mut vars = Map::new();
            vars.insert("queueName".into(), trigger.queue_name.clone().into());
            vars.insert("connection".into(), trigger.connection.clone().into());
            (QUEUE, vars)
        }
        FunctionKind::Timer { trigger, .. } => {
            let mut vars = Map::new();
            vars.insert("schedule".into(), trigger.schedule.clone().into());
            if trigger.run_on_startup {
                vars.insert("runOnStartup".into(), true.into());
            }
            (TIMER, vars)
        }
    };
    let mut json: Value =
        serde_json::from_str(template.text).map_err(|e| BuildError::Template {
            template: template.file,
            reason: e.to_string(),
        })?;
    fill(&mut json, &vars);
    let object = json.as_object_mut().ok_or(BuildError::Template {
        template: template.file,
        reason: "not a JSON object".into(),
    })?;
    let bindings = object
        .get_mut("bindings")
        .and_then(Value::as_array_mut)
        .ok_or(BuildError::Template {
            template: template.file,
            reason: "no \"bindings\" array".into(),
        })?;
    bindings.extend(def.kind.outputs().iter().map(|o| o.to_json()));
    object.insert("generatedBy".into(), GENERATED_BY.into());
    Ok(json)
}

fn http_vars(trigger: &HttpTrigger) -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert("authLevel".into(), trigger.auth_level.as_str().into());
    if !trigger.methods.is_empty() {
        vars.insert("methods".into(), trigger.methods.clone().into());
    }
    if let Some(route) = &trigger.route {
        vars.insert("route".into(), route.trim_matches('/').into());
    }
    vars
}

/// Replaces every `"{{name}}"` string with its variable, dropping object properties whose variable is unset.
fn fill(value: &mut Value, vars: &Map<String, Value>) {
    match value {
        Value::Object(object) => {
            object.retain(|_, v| placeholder(v).is_none_or(|name| vars.contains_key(name)));
            for v in object.values_mut() {
                fill(v, vars);
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                fill(v, vars);
            }
        }
        Value::String(_) => {
            if let Some(replacement) = placeholder(value).and_then(|name| vars.get(name)) {
                *value = replacement.clone();
            }
        }
        _ => {}
    }
}

fn placeholder(value: &Value) -> Option<&str> {
    value
        .as_str()?
        .strip_prefix("{{")?
        .strip_suffix("}}")
        .filter(|name| !name.is_empty() && !name.contains(['{', '}']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_with_a_bindings_array() {
        for t in [
            ORCHESTRATOR,
            ACTIVITY,
            ENTITY,
            HTTP,
            HTTP_STARTER,
            QUEUE,
            TIMER,
        ] {
            let v: Value = serde_json::from_str(t.text).unwrap();
            assert!(v["bindings"].is_array(), "{}", t.file);
        }
    }

    #[test]
    fn fill_replaces_and_drops() {
        let mut v = serde_json::json!({"a": "{{x}}", "b": "{{missing}}", "c": ["{{x}}"], "d": "keep {{x}}"});
        let vars: Map<String, Value> = [("x".to_owned(), serde_json::json!([1, 2]))]
            .into_iter()
            .collect();
        fill(&mut v, &vars);
        assert_eq!(
            v,
            serde_json::json!({"a": [1, 2], "c": [[1, 2]], "d": "keep {{x}}"})
        );
    }
}
