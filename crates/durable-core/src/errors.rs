//! Error types: what user code returns, what awaiting a durable task yields, and how both become
//! `TaskFailureDetails` on the wire.

use std::any::Any;
use std::fmt;

use crate::proto;

/// A failure as recorded in history (`TaskFailureDetails`), in a form that is pleasant to inspect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FailureDetails {
    /// The kind of error, e.g. `"TimeoutError"` or the Rust type name of the error.
    pub error_type: String,
    /// The human-readable message.
    pub error_message: String,
    /// A stack trace or backtrace, when the failing side recorded one.
    pub stack_trace: Option<String>,
    /// The failure that caused this one, if any.
    pub inner: Option<Box<FailureDetails>>,
    /// Set when retrying cannot help; retry policies stop at such a failure.
    pub non_retriable: bool,
}

impl FailureDetails {
    /// A failure with the given type and message.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            error_message: error_message.into(),
            ..Self::default()
        }
    }

    /// Sets the inner failure.
    pub fn with_inner(mut self, inner: FailureDetails) -> Self {
        self.inner = Some(Box::new(inner));
        self
    }

    /// Marks the failure as (non-)retriable.
    pub fn with_non_retriable(mut self, non_retriable: bool) -> Self {
        self.non_retriable = non_retriable;
        self
    }

    /// The protobuf form.
    pub fn to_proto(&self) -> proto::TaskFailureDetails {
        proto::TaskFailureDetails {
            error_type: self.error_type.clone(),
            error_message: self.error_message.clone(),
            stack_trace: self.stack_trace.clone(),
            inner_failure: self.inner.as_ref().map(|inner| Box::new(inner.to_proto())),
            is_non_retriable: self.non_retriable,
            properties: Default::default(),
        }
    }
}

impl From<&proto::TaskFailureDetails> for FailureDetails {
    fn from(details: &proto::TaskFailureDetails) -> Self {
        Self {
            error_type: details.error_type.clone(),
            error_message: details.error_message.clone(),
            stack_trace: details.stack_trace.clone(),
            inner: details
                .inner_failure
                .as_deref()
                .map(|inner| Box::new(FailureDetails::from(inner))),
            non_retriable: details.is_non_retriable,
        }
    }
}

impl From<FailureDetails> for proto::TaskFailureDetails {
    fn from(details: FailureDetails) -> Self {
        details.to_proto()
    }
}

impl fmt::Display for FailureDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

/// What kind of durable task failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskKind {
    /// An activity call.
    Activity,
    /// A sub-orchestration call.
    SubOrchestration,
    /// An entity operation call.
    Entity,
    /// A durable timer.
    Timer,
    /// An external event wait.
    ExternalEvent,
    /// An entity lock request.
    EntityLock,
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskKind::Activity => "activity",
            TaskKind::SubOrchestration => "sub-orchestration",
            TaskKind::Entity => "entity operation",
            TaskKind::Timer => "timer",
            TaskKind::ExternalEvent => "external event",
            TaskKind::EntityLock => "entity lock",
        })
    }
}

/// The error side of awaiting a durable task inside an orchestration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The activity, sub-orchestration or entity operation failed; `details` is what it reported.
    #[error("{kind} '{name}' failed: {}", details.error_message)]
    Failed {
        /// What failed.
        kind: TaskKind,
        /// The activity or orchestrator name, or `operation@entity` for entities.
        name: String,
        /// The failure as recorded in history.
        details: FailureDetails,
    },
    /// `wait_for_external_event_with_timeout` gave up before the event arrived.
    #[error("timed out waiting for external event '{name}'")]
    Timeout {
        /// The event name.
        name: String,
    },
    /// The task's result could not be decoded into the requested type.
    #[error("could not decode the result of {kind} '{name}': {message}")]
    Decode {
        /// What produced the result.
        kind: TaskKind,
        /// The task name.
        name: String,
        /// The serde error.
        message: String,
    },
    /// The input could not be encoded as JSON, so nothing was scheduled.
    #[error("could not encode the input for '{name}': {message}")]
    Encode {
        /// The task name.
        name: String,
        /// The serde error.
        message: String,
    },
    /// The call is not allowed here (for example calling an unlocked entity inside a critical section).
    #[error("invalid operation: {0}")]
    InvalidOperation(String),
}

impl TaskError {
    /// The recorded failure, for [`TaskError::Failed`].
    pub fn failure_details(&self) -> Option<&FailureDetails> {
        match self {
            TaskError::Failed { details, .. } => Some(details),
            _ => None,
        }
    }

    /// Whether this is an external-event timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, TaskError::Timeout { .. })
    }

    /// Whether a retry policy may try again after this error.
    pub fn is_retriable(&self) -> bool {
        match self {
            TaskError::Failed { details, .. } => !details.non_retriable,
            _ => false,
        }
    }

    /// The failure details this error contributes when it fails the orchestration.
    pub fn to_failure_details(&self) -> FailureDetails {
        let error_type = match self {
            TaskError::Failed { .. } => "TaskFailedError",
            TaskError::Timeout { .. } => "TimeoutError",
            TaskError::Decode { .. } | TaskError::Encode { .. } => "SerializationError",
            TaskError::InvalidOperation(_) => "InvalidOperationError",
        };
        let mut details = FailureDetails::new(error_type, self.to_string());
        if let TaskError::Failed { details: inner, .. } = self {
            details.inner = Some(Box::new(inner.clone()));
        }
        details
    }
}

/// The short name of an error type, used as `errorType`.
fn short_type_name<E: ?Sized>() -> String {
    let full = std::any::type_name::<E>();
    // Keep generic arguments intact but drop module paths from the outer type.
    let head = full.split('<').next().unwrap_or(full);
    let short = head.rsplit("::").next().unwrap_or(head);
    format!("{short}{}", &full[head.len()..])
}

fn details_from_error<E>(error: &E) -> FailureDetails
where
    E: std::error::Error + 'static,
{
    if let Some(task) = (error as &dyn Any).downcast_ref::<TaskError>() {
        return task.to_failure_details();
    }
    let mut details = FailureDetails::new(short_type_name::<E>(), error.to_string());
    // Keep the cause chain: it is usually what an operator needs to read.
    let mut source = error.source();
    let mut chain = Vec::new();
    while let Some(cause) = source {
        chain.push(FailureDetails::new("Error", cause.to_string()));
        source = cause.source();
    }
    let inner = chain
        .into_iter()
        .rev()
        .fold(None::<FailureDetails>, |acc, mut cur| {
            cur.inner = acc.map(Box::new);
            Some(cur)
        });
    details.inner = inner.map(Box::new);
    details
}

macro_rules! user_error {
    ($(#[$meta:meta])* $name:ident, $default_type:literal) => {
        $(#[$meta])*
        ///
        /// Any `std::error::Error` converts into it with `?`; its type name becomes `errorType`.
        /// It deliberately does not implement `std::error::Error` itself, which is what makes that blanket
        /// conversion possible.
        pub struct $name {
            details: FailureDetails,
        }

        impl $name {
            /// An error with an explicit `errorType` and message.
            pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
                Self { details: FailureDetails::new(error_type, message) }
            }

            /// An error with only a message.
            pub fn msg(message: impl fmt::Display) -> Self {
                Self::new($default_type, message.to_string())
            }

            /// Wraps failure details as they are.
            pub fn from_details(details: FailureDetails) -> Self {
                Self { details }
            }

            /// Sets the inner (causing) failure.
            pub fn with_inner(mut self, inner: FailureDetails) -> Self {
                self.details.inner = Some(Box::new(inner));
                self
            }

            /// The failure details that will be recorded.
            pub fn details(&self) -> &FailureDetails {
                &self.details
            }

            /// Consumes the error, returning its failure details.
            pub fn into_details(self) -> FailureDetails {
                self.details
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("details", &self.details).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.details, f)
            }
        }

        impl<E> From<E> for $name
        where
            E: std::error::Error + Send + Sync + 'static,
        {
            fn from(error: E) -> Self {
                Self { details: details_from_error(&error) }
            }
        }
    };
}

user_error!(
    /// The error an orchestrator function returns; the orchestration completes FAILED with these details.
    ///
    /// A [`TaskError`] converted with `?` keeps the task's own failure as the inner failure.
    OrchestrationError,
    "OrchestrationError"
);

user_error!(
    /// The error an entity operation returns; the operation fails and its state changes are rolled back.
    EntityError,
    "EntityOperationError"
);

user_error!(
    /// The error an activity returns. Errors are retriable unless made with
    /// [`ActivityError::non_retriable`] (or [`ActivityError::set_non_retriable`]).
    ActivityError,
    "ActivityError"
);

impl ActivityError {
    /// A failure that retry policies will not retry.
    pub fn non_retriable(message: impl fmt::Display) -> Self {
        let mut error = Self::msg(message);
        error.details.non_retriable = true;
        error
    }

    /// Marks this failure as (non-)retriable.
    pub fn set_non_retriable(mut self, non_retriable: bool) -> Self {
        self.details.non_retriable = non_retriable;
        self
    }
}

/// Why the engine itself failed an orchestration (as opposed to user code failing it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// History does not match what the orchestrator code does.
    #[error(
        "non-deterministic orchestration: at sequence number {sequence_number} the history has {expected} but the \
         orchestrator code produced {found}"
    )]
    NonDeterminism {
        /// The sequence number (action id / eventId) where replay diverged.
        sequence_number: i32,
        /// What the history recorded.
        expected: String,
        /// What the code did instead.
        found: String,
    },
    /// No orchestrator with this name is registered.
    #[error("no orchestrator named '{0}' is registered")]
    OrchestratorNotFound(String),
    /// The request cannot be replayed (for example it has no ExecutionStarted event).
    #[error("invalid orchestration history: {0}")]
    InvalidHistory(String),
    /// The orchestration input could not be decoded into the orchestrator's input type.
    #[error("could not decode the orchestration input: {0}")]
    Input(String),
    /// The orchestration output could not be encoded as JSON.
    #[error("could not encode the orchestration output: {0}")]
    Output(String),
    /// The orchestrator code panicked.
    #[error("the orchestrator panicked: {0}")]
    Panic(String),
}

impl ReplayError {
    /// The `errorType` recorded for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            ReplayError::NonDeterminism { .. } => "NonDeterminismError",
            ReplayError::OrchestratorNotFound(_) => "OrchestratorNotFound",
            ReplayError::InvalidHistory(_) => "InvalidHistoryError",
            ReplayError::Input(_) | ReplayError::Output(_) => "SerializationError",
            ReplayError::Panic(_) => "Panic",
        }
    }

    /// The failure details recorded when this error fails an orchestration.
    pub fn to_failure_details(&self) -> FailureDetails {
        FailureDetails::new(self.error_type(), self.to_string()).with_non_retriable(true)
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn blanket_conversion_keeps_type_and_causes() {
        let err: OrchestrationError = Outer(std::io::Error::other("disk")).into();
        assert_eq!(err.details().error_type, "Outer");
        assert_eq!(err.details().error_message, "outer");
        assert_eq!(err.details().inner.as_ref().unwrap().error_message, "disk");
    }

    #[test]
    fn task_error_becomes_inner_failure() {
        let task = TaskError::Failed {
            kind: TaskKind::Activity,
            name: "A".into(),
            details: FailureDetails::new("Boom", "bad"),
        };
        let err: OrchestrationError = task.into();
        assert_eq!(err.details().error_type, "TaskFailedError");
        assert_eq!(err.details().inner.as_ref().unwrap().error_type, "Boom");
    }

    #[test]
    fn activity_errors_are_retriable_by_default() {
        let err: ActivityError = std::io::Error::other("x").into();
        assert!(!err.details().non_retriable);
        assert!(ActivityError::non_retriable("y").details().non_retriable);
    }

    #[test]
    fn failure_details_roundtrip_proto() {
        let d = FailureDetails::new("T", "m")
            .with_inner(FailureDetails::new("I", "n").with_non_retriable(true));
        assert_eq!(FailureDetails::from(&d.to_proto()), d);
    }
}
