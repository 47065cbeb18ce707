//! Trigger and output binding declarations for ordinary functions; they become `function.json` bindings.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Who may call an HTTP function through the Functions front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthLevel {
    /// No key needed.
    Anonymous,
    /// A function or host key is needed (the Functions default).
    #[default]
    Function,
    /// The master key is needed.
    Admin,
}

impl AuthLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Function => "function",
            Self::Admin => "admin",
        }
    }
}

/// An HTTP trigger: route, methods and key level.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HttpTrigger {
    pub(crate) route: Option<String>,
    pub(crate) methods: Vec<String>,
    pub(crate) auth_level: AuthLevel,
    pub(crate) outputs: Vec<OutputBinding>,
}

impl HttpTrigger {
    /// Any method, the function's name as route, `function` auth level.
    pub fn new() -> Self {
        Self::default()
    }

    /// The route template after the host's route prefix (`api/`), e.g. `orders/{id}`.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// Accepted methods (any when none are given).
    pub fn methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.methods = methods
            .into_iter()
            .map(|m| m.as_ref().to_ascii_lowercase())
            .collect();
        self
    }

    /// The key level.
    pub fn auth_level(mut self, level: AuthLevel) -> Self {
        self.auth_level = level;
        self
    }

    /// An extra output binding, set through [`crate::InvocationContext::set_output`].
    pub fn output(mut self, binding: OutputBinding) -> Self {
        self.outputs.push(binding);
        self
    }
}

/// A Storage queue trigger.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueTrigger {
    pub(crate) queue_name: String,
    pub(crate) connection: String,
    pub(crate) outputs: Vec<OutputBinding>,
}

impl QueueTrigger {
    /// Messages of the named queue, on the `AzureWebJobsStorage` connection.
    pub fn new(queue_name: impl Into<String>) -> Self {
        Self {
            queue_name: queue_name.into(),
            connection: "AzureWebJobsStorage".to_owned(),
            outputs: Vec::new(),
        }
    }

    /// The app setting that holds the storage connection.
    pub fn connection(mut self, setting: impl Into<String>) -> Self {
        self.connection = setting.into();
        self
    }

    /// An extra output binding, set through [`crate::InvocationContext::set_output`].
    pub fn output(mut self, binding: OutputBinding) -> Self {
        self.outputs.push(binding);
        self
    }
}

/// A timer trigger.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TimerTrigger {
    pub(crate) schedule: String,
    pub(crate) run_on_startup: bool,
    pub(crate) outputs: Vec<OutputBinding>,
}

impl TimerTrigger {
    /// A six-field NCRONTAB schedule (`{second} {minute} {hour} {day} {month} {day-of-week}`), or an app
    /// setting reference like `%TICK_SCHEDULE%`.
    pub fn new(schedule: impl Into<String>) -> Self {
        Self {
            schedule: schedule.into(),
            run_on_startup: false,
            outputs: Vec::new(),
        }
    }

    /// Also run when the host starts.
    pub fn run_on_startup(mut self, yes: bool) -> Self {
        self.run_on_startup = yes;
        self
    }

    /// An extra output binding, set through [`crate::InvocationContext::set_output`].
    pub fn output(mut self, binding: OutputBinding) -> Self {
        self.outputs.push(binding);
        self
    }
}

/// An output binding of an ordinary function; its value goes back to the host in `Outputs.<name>`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutputBinding {
    pub(crate) name: String,
    pub(crate) properties: Map<String, Value>,
}

impl OutputBinding {
    /// A Storage queue output on the `AzureWebJobsStorage` connection (see [`OutputBinding::connection`]).
    ///
    /// Its value is sent after the function succeeds: one message, or one per element when it is an array
    /// (use [`crate::InvocationContext::push_output`] to add messages one at a time). A string is sent as its
    /// text and any other value as its JSON text (indented, as the host writes it). The binding declares
    /// `dataType: binary`, so the host sends strings as they are rather than first trying to base64-decode them.
    pub fn queue(name: impl Into<String>, queue_name: impl Into<String>) -> Self {
        Self::custom(name, "queue")
            .property("queueName", queue_name.into())
            .property("connection", "AzureWebJobsStorage")
            .property("dataType", "binary")
    }

    /// The app setting (or setting prefix, for an identity-based connection like
    /// `MyStorage__queueServiceUri`) that holds the binding's connection.
    pub fn connection(self, setting: impl Into<String>) -> Self {
        self.property("connection", setting.into())
    }

    /// Any binding type the extension bundle offers (`blob`, `table`, `serviceBus`, ...).
    pub fn custom(name: impl Into<String>, binding_type: impl Into<String>) -> Self {
        let mut properties = Map::new();
        properties.insert("type".into(), Value::String(binding_type.into()));
        properties.insert("direction".into(), Value::String("out".into()));
        Self {
            name: name.into(),
            properties,
        }
    }

    /// Sets a `function.json` property of the binding (`connection`, `path`, ...).
    pub fn property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if key != "name" {
            self.properties.insert(key, value.into());
        }
        self
    }

    /// The binding's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("name".into(), Value::String(self.name.clone()));
        object.extend(self.properties.clone());
        Value::Object(object)
    }
}

/// What a timer trigger receives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct TimerInfo {
    /// The invocation is later than scheduled (the host was down or busy).
    pub is_past_due: bool,
    /// The host's schedule bookkeeping, when the schedule is monitored.
    pub schedule_status: Option<ScheduleStatus>,
}

/// The last and next occurrences of a monitored timer schedule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct ScheduleStatus {
    /// The last occurrence, as the host wrote it.
    pub last: Option<String>,
    /// The next occurrence.
    pub next: Option<String>,
    /// When the status was last updated.
    pub last_updated: Option<String>,
}
