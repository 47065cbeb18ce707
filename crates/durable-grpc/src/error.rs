//! The crate's error type.

use tonic::Code;

/// Everything that can go wrong when configuring a connection or calling the scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string is malformed, or a key is missing, unknown or has an unsupported value.
    #[error("connection string: `{key}`: {message}")]
    ConnectionString {
        /// The key at fault (or `<syntax>` for a malformed string).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A credential could not be created or could not issue a token.
    #[error("authentication: {0}")]
    Credential(String),
    /// The endpoint could not be turned into a gRPC channel.
    #[error("transport: {0}")]
    Transport(String),
    /// The instance, entity or work item does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// An instance with that ID already exists and the reuse policy forbids replacing it.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The server refused the request's arguments (or the instance's state forbids the operation).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server refused the credentials (missing, wrong or expired token).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The credentials are valid but not allowed to do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The server could not be reached or is shutting down.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A deadline passed before the operation finished.
    #[error("timeout: {0}")]
    Timeout(String),
    /// Any other gRPC failure, with the server's status code and message.
    #[error("gRPC {code:?}: {message}")]
    Rpc {
        /// The gRPC status code.
        code: Code,
        /// The server's message.
        message: String,
    },
    /// A payload could not be serialized or deserialized as JSON.
    #[error("payload {what}: {source}")]
    Payload {
        /// Which payload (for example `input of orchestration "x"`).
        what: String,
        /// The serde failure.
        #[source]
        source: serde_json::Error,
    },
    /// A request is larger than the connection's message size limit
    /// ([`ConnectionOptions::with_max_message_bytes`](crate::ConnectionOptions::with_max_message_bytes)); nothing
    /// was sent. (A response over the limit fails with [`Error::Rpc`] and `OUT_OF_RANGE`.)
    #[error("the request is {bytes} bytes; the message size limit is {limit} bytes")]
    MessageTooLarge {
        /// The encoded size of the request.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The server sent something the protocol does not allow.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl Error {
    pub(crate) fn connection_string(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::ConnectionString {
            key: key.into(),
            message: message.into(),
        }
    }

    pub(crate) fn payload(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Payload {
            what: what.into(),
            source,
        }
    }

    /// The gRPC status code this error corresponds to, when it came from (or maps onto) one.
    pub fn code(&self) -> Option<Code> {
        Some(match self {
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Timeout(_) => Code::DeadlineExceeded,
            Self::Rpc { code, .. } => *code,
            Self::MessageTooLarge { .. } => Code::OutOfRange,
            _ => return None,
        })
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::NotFound => Self::NotFound(message),
            Code::AlreadyExists => Self::AlreadyExists(message),
            // Servers disagree on which code "wrong state" gets; both mean the caller asked for something invalid.
            Code::InvalidArgument | Code::FailedPrecondition => Self::InvalidArgument(message),
            Code::Unauthenticated => Self::Unauthenticated(message),
            Code::PermissionDenied => Self::PermissionDenied(message),
            Code::Unavailable => Self::Unavailable(message),
            Code::DeadlineExceeded => Self::Timeout(message),
            // tonic reports its own client-side deadline this way.
            Code::Cancelled if message == "Timeout expired" => Self::Timeout(message),
            code => Self::Rpc { code, message },
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
