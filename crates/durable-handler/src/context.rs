//! What an ordinary function sees of its invocation: names, metadata, a logger and its output bindings.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Map, Value};
use tracing::Level;

use crate::envelope::metadata_string;
use crate::error::FunctionError;
use crate::logs::LogSink;

/// The invocation an ordinary function is running for. Cheap to clone; clones share outputs and logs.
#[derive(Debug, Clone)]
pub struct InvocationContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    function_name: String,
    invocation_id: Option<String>,
    metadata: Map<String, Value>,
    sink: LogSink,
    declared_outputs: Vec<String>,
    outputs: Mutex<Outputs>,
}

#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub(crate) bindings: Map<String, Value>,
    pub(crate) return_value: Option<Value>,
}

impl InvocationContext {
    pub(crate) fn new(
        function_name: String,
        invocation_id: Option<String>,
        metadata: Map<String, Value>,
        sink: LogSink,
        declared_outputs: Vec<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                function_name,
                invocation_id,
                metadata,
                sink,
                declared_outputs,
                outputs: Mutex::new(Outputs::default()),
            }),
        }
    }

    /// The function's name (its folder name).
    pub fn function_name(&self) -> &str {
        &self.inner.function_name
    }

    /// The host's invocation ID (`X-Azure-Functions-InvocationId`), when it sent one.
    pub fn invocation_id(&self) -> Option<&str> {
        self.inner.invocation_id.as_deref()
    }

    /// The trigger's binding data (`Metadata`) as the host sent it.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.inner.metadata
    }

    /// A metadata entry as text, with the host's extra JSON quoting removed (`"\"abc\""` gives `abc`).
    pub fn metadata_text(&self, key: &str) -> Option<String> {
        self.inner
            .metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| metadata_string(v))
    }

    /// Logs a line at Information into the host's log stream for this invocation.
    pub fn log(&self, message: impl std::fmt::Display) {
        self.inner.sink.log(Level::INFO, &message.to_string());
    }

    /// Logs a warning.
    pub fn warn(&self, message: impl std::fmt::Display) {
        self.inner.sink.log(Level::WARN, &message.to_string());
    }

    /// Logs an error.
    pub fn error(&self, message: impl std::fmt::Display) {
        self.inner.sink.log(Level::ERROR, &message.to_string());
    }

    /// Sets an output binding declared on the trigger (or `$return`); a later call replaces the value.
    ///
    /// For a queue output, an array is sent as one message per element. The host tries to base64-decode
    /// *string* output values unless the binding says `dataType: binary` (which [`crate::OutputBinding::queue`]
    /// does) and sends the bytes when that works, so on other bindings a string like `"test"` would arrive as
    /// three bytes.
    pub fn set_output(&self, name: &str, value: impl Serialize) -> Result<(), FunctionError> {
        let value = serde_json::to_value(value)?;
        let mut outputs = self.outputs();
        if name == "$return" {
            outputs.return_value = Some(value);
            return Ok(());
        }
        let declared = self.declared(name)?;
        outputs.bindings.insert(declared, value);
        Ok(())
    }

    /// Adds one value to an output binding: each call on a queue output is one more message. A value set before
    /// with [`InvocationContext::set_output`] becomes the first element (an array set before is extended).
    pub fn push_output(&self, name: &str, value: impl Serialize) -> Result<(), FunctionError> {
        let value = serde_json::to_value(value)?;
        let declared = self.declared(name)?;
        let mut outputs = self.outputs();
        match outputs.bindings.get_mut(&declared) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = std::mem::take(existing);
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                outputs.bindings.insert(declared, Value::Array(vec![value]));
            }
        }
        Ok(())
    }

    fn outputs(&self) -> std::sync::MutexGuard<'_, Outputs> {
        match self.inner.outputs.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The declared output binding's own spelling of `name` (the host matches names case-sensitively).
    fn declared(&self, name: &str) -> Result<String, FunctionError> {
        self.inner
            .declared_outputs
            .iter()
            .find(|d| d.eq_ignore_ascii_case(name))
            .cloned()
            .ok_or_else(|| {
                FunctionError::msg(format!(
                    "function '{}' has no output binding named '{name}'",
                    self.inner.function_name
                ))
            })
    }

    pub(crate) fn take_outputs(&self) -> Outputs {
        std::mem::take(&mut *self.outputs())
    }
}
