//! Queue output bindings: after a successful invocation of any function, each `queue` output binding's value
//! (`Outputs.<name>`, or `ReturnValue` for `$return`) is sent as the Functions host sends it, following
//! `HttpScriptInvocationResultExtensions.GetBindingValue` and `FunctionBinding.BindAsyncCollectorAsync<byte[]>`
//! (`Azure/azure-functions-host` `src/WebJobs.Script/Workers/Http/`, `src/WebJobs.Script/Binding/`):
//!
//! - a string is first tried as base64 (unless the binding says `dataType: binary`) and, when it decodes, the
//!   bytes are the one message;
//! - an array gives one message per element, and so does a string holding a JSON array; a string holding a JSON
//!   object gives that object;
//! - each message is the element's text: a string as itself, an object or array as indented JSON (Newtonsoft's
//!   `JToken.ToString()`), `true` as `True`, a number as its digits, `null` as nothing;
//! - the queue is created when it does not exist.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use super::connection::Connection;
use super::options::Encoding;
use super::storage::Queue;
use super::{Watchers, queue_name};
use crate::config::FunctionMeta;
use crate::error::{HostError, Result};
use crate::invoke::InvokeReply;

/// One `queue` output binding.
#[derive(Debug)]
struct Output {
    binding: String,
    /// `dataType: binary`: strings are sent as they are, not base64-decoded first.
    binary: bool,
    queue: Queue,
}

/// The queue output bindings of every function.
#[derive(Debug)]
pub(crate) struct QueueOutputs {
    /// By lower-case function name.
    functions: HashMap<String, Vec<Output>>,
    encoding: Encoding,
    watchers: Arc<Watchers>,
}

impl QueueOutputs {
    pub(super) fn resolve(
        app_dir: &Path,
        functions: &[FunctionMeta],
        settings: &BTreeMap<String, String>,
        connection: &mut dyn FnMut(Option<&str>) -> std::result::Result<Connection, String>,
        encoding: Encoding,
        watchers: Arc<Watchers>,
    ) -> Result<QueueOutputs> {
        let mut by_function = HashMap::new();
        for f in functions {
            let config = |message: String| HostError::Config {
                path: app_dir.join(&f.name).join("function.json"),
                message,
            };
            let mut outputs = Vec::new();
            for b in f
                .bindings
                .iter()
                .filter(|b| !b.direction_in && b.kind.eq_ignore_ascii_case("queue"))
            {
                let text = |key: &str| {
                    b.raw
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .and_then(|(_, v)| v.as_str())
                        .filter(|s| !s.is_empty())
                };
                let raw_name = text("queueName").ok_or_else(|| {
                    config(format!("queue output {:?} needs a \"queueName\"", b.name))
                })?;
                let name = queue_name(raw_name, settings)
                    .map_err(|e| config(format!("queue output {:?}: {e}", b.name)))?;
                let resolved = connection(text("connection"))
                    .map_err(|e| config(format!("queue output {:?}: {e}", b.name)))?;
                outputs.push(Output {
                    binding: b.name.clone(),
                    binary: text("dataType").is_some_and(|t| t.eq_ignore_ascii_case("binary")),
                    queue: Queue::new(&resolved, &name).map_err(config)?,
                });
            }
            if !outputs.is_empty() {
                by_function.insert(f.name.to_ascii_lowercase(), outputs);
            }
        }
        Ok(QueueOutputs {
            functions: by_function,
            encoding,
            watchers,
        })
    }

    /// Sends a reply's queue outputs; the first failure is the invocation's error, as a failed output binding
    /// fails the invocation in the host.
    pub(crate) async fn deliver(
        &self,
        function: &str,
        reply: &InvokeReply,
    ) -> std::result::Result<(), String> {
        let Some(outputs) = self.functions.get(&function.to_ascii_lowercase()) else {
            return Ok(());
        };
        for output in outputs {
            // The host reads `Outputs` into a case-sensitive dictionary.
            let value = if output.binding == "$return" {
                Some(&reply.return_value)
            } else {
                reply.outputs.get(&output.binding)
            };
            let Some(value) = value else {
                continue;
            };
            let failed = |e: String| {
                format!(
                    "Error while handling parameter {} after function returned: {e}",
                    output.binding
                )
            };
            for body in messages(value, output.binary).map_err(failed)? {
                output
                    .queue
                    .send_creating(&self.encoding.encode(&body))
                    .await
                    .map_err(|e| failed(format!("queue {:?}: {e}", output.queue.name())))?;
                self.watchers.notify(output.queue.name());
            }
        }
        Ok(())
    }
}

/// `Convert.FromBase64String`: white space is skipped, and the rest must be whole, padded base64.
fn dotnet_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64.decode(compact).ok()
}

/// `Utility.IsJson`: text that starts and ends like an object or an array.
fn looks_like_json(text: &str) -> bool {
    let t = text.trim();
    (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'))
}

/// A JSON value's text as `JToken.ToString()` (or `object.ToString()` on what Newtonsoft deserialized) gives it.
fn dotnet_text(value: &Value) -> Vec<u8> {
    match value {
        Value::Null => Vec::new(),
        Value::Bool(true) => b"True".to_vec(),
        Value::Bool(false) => b"False".to_vec(),
        Value::Number(n) => n.to_string().into_bytes(),
        Value::String(s) => s.clone().into_bytes(),
        Value::Array(_) | Value::Object(_) => serde_json::to_vec_pretty(value).unwrap_or_default(),
    }
}

/// The message bodies an output value makes; an empty list when the value is `null` (the binding is not set).
fn messages(value: &Value, binary: bool) -> std::result::Result<Vec<Vec<u8>>, String> {
    Ok(match value {
        Value::Null => Vec::new(),
        Value::String(s) => match (binary, dotnet_base64(s)) {
            (false, Some(bytes)) => vec![bytes],
            _ if looks_like_json(s) => {
                let parsed: Value = serde_json::from_str(s)
                    .map_err(|e| format!("the value looks like JSON but is not ({e})"))?;
                match parsed {
                    Value::Array(items) => items.iter().map(dotnet_text).collect(),
                    other => vec![dotnet_text(&other)],
                }
            }
            _ => vec![s.clone().into_bytes()],
        },
        Value::Array(items) => items.iter().map(dotnet_text).collect(),
        other => vec![dotnet_text(other)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(value: Value, binary: bool) -> Vec<String> {
        messages(&value, binary)
            .unwrap()
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }

    #[test]
    fn values_become_messages_like_the_host_sends_them() {
        assert_eq!(texts(json!("hello world"), false), ["hello world"]);
        // A string that is base64 is sent as its bytes, unless the binding is binary.
        assert_eq!(
            messages(&json!("dGVzdA=="), false).unwrap(),
            [b"test".to_vec()]
        );
        assert_eq!(texts(json!("dGVzdA=="), true), ["dGVzdA=="]);
        assert_eq!(
            texts(json!([1, "two", true, null]), false),
            ["1", "two", "True", ""]
        );
        assert_eq!(texts(json!({"a": 1}), false), ["{\n  \"a\": 1\n}"]);
        assert_eq!(
            texts(json!("[\"x\", {\"b\": []}]"), true),
            ["x", "{\n  \"b\": []\n}"]
        );
        assert_eq!(texts(json!(" {\"c\":2} "), false), ["{\n  \"c\": 2\n}"]);
        assert!(texts(json!(null), false).is_empty());
        assert!(messages(&json!("{not json}"), true).is_err());
        assert_eq!(texts(json!(12), false), ["12"]);
    }
}
