//! Error types: what a broken app definition, a bad request and a failing user function look like.

use std::fmt;

use axum::http::StatusCode;

/// An app definition that cannot be served or written out as Functions app files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The name cannot be a Functions function name (it is also the folder name of its `function.json`).
    #[error(
        "'{0}' is not a valid function name: use 1-128 ASCII letters, digits, '-' or '_', starting with a letter"
    )]
    InvalidFunctionName(String),
    /// Two registrations would land in the same function folder (names are case-insensitive in Functions).
    #[error("function name '{0}' is registered more than once (names are case-insensitive)")]
    DuplicateFunction(String),
    /// A binding name is used twice, or collides with the trigger's own bindings.
    #[error("function '{function}': binding name '{binding}' is invalid or used more than once")]
    DuplicateBinding {
        /// The function that declares the bindings.
        function: String,
        /// The repeated binding name.
        binding: String,
    },
    /// An HTTP route template that cannot be served.
    #[error("function '{function}': route '{route}' cannot be served: {reason}")]
    InvalidRoute {
        /// The function that declares the route.
        function: String,
        /// The route template as given.
        route: String,
        /// Why it was refused.
        reason: String,
    },
    /// The user's own routes overlap with the handler's routes.
    #[error("the app's own routes conflict with the handler's routes: {0}")]
    RouteConflict(String),
    /// A `function.json` template shipped with the crate is not valid.
    #[error("function.json template '{template}' is invalid: {reason}")]
    Template {
        /// The template's file name.
        template: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the Functions app files failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder that could not be written.
        path: std::path::PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Starting or running the HTTP server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Neither `FUNCTIONS_CUSTOMHANDLER_PORT` nor `FUNCTIONS_HTTPWORKER_PORT` holds a port number.
    #[error(
        "FUNCTIONS_CUSTOMHANDLER_PORT is not set to a port number (got {0:?}); the Functions host sets it when it starts the handler"
    )]
    MissingPort(Option<String>),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that could not be bound.
        addr: std::net::SocketAddr,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The app definition is invalid.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The process cannot listen for its stop request (Ctrl-C, SIGTERM).
    #[error("cannot listen for Ctrl-C and SIGTERM: {0}")]
    Signal(#[source] std::io::Error),
}

/// The error a user function returns; the invocation fails with it.
///
/// Any `std::error::Error` converts into it with `?`; [`FunctionError::msg`] makes one from a message.
pub struct FunctionError {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl FunctionError {
    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            inner: message.to_string().into(),
        }
    }

    /// The underlying error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl<E> From<E> for FunctionError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self {
            inner: Box::new(error),
        }
    }
}

impl fmt::Debug for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// Why one invocation could not be answered with a 200.
///
/// The `Display` text is safe to put in a response body; `Internal` keeps its detail for the log only.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InvocationError {
    #[error("no function named '{0}' is registered in this app")]
    UnknownFunction(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed invocation request: {0}")]
    Envelope(String),
    #[error("binding '{binding}': {reason}")]
    Binding { binding: String, reason: String },
    #[error("function '{function}' failed")]
    Function { function: String, detail: String },
    #[error("internal error while running the function; see the handler's log")]
    Internal(String),
}

impl InvocationError {
    pub(crate) fn binding(binding: &str, reason: impl Into<String>) -> Self {
        Self::Binding {
            binding: binding.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::UnknownFunction(_) => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Envelope(_) | Self::Binding { .. } => StatusCode::BAD_REQUEST,
            Self::Function { .. } | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The full story, for the log.
    pub(crate) fn log_line(&self) -> String {
        match self {
            Self::Function { function, detail } => {
                format!("function '{function}' failed: {detail}")
            }
            Self::Internal(detail) => format!("internal error: {detail}"),
            other => other.to_string(),
        }
    }
}
