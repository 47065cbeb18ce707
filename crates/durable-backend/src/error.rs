//! Errors of the library surface and of the store.

use std::io;

/// Why the backend could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// An option has a value the backend cannot work with.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Server(String),
}

/// A failed store operation. Variants map to gRPC status codes in the service.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The instance, entity or work item does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The instance exists and its status does not allow the request.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the current state forbids it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The request itself is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// A completion or abandon named a lease that is no longer held (expired, released or already completed).
    #[error("the work item lease '{0}' is not held any more")]
    StaleLease(String),
    /// SQLite failed, or stored data could not be decoded.
    #[error("storage failure: {0}")]
    Internal(String),
    /// The store's writer thread has stopped.
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Internal(error.to_string())
    }
}

impl From<prost::DecodeError> for StoreError {
    fn from(error: prost::DecodeError) -> Self {
        StoreError::Internal(format!("corrupt stored message: {error}"))
    }
}

impl From<StoreError> for tonic::Status {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound(m) => tonic::Status::not_found(m.clone()),
            StoreError::AlreadyExists(m) => tonic::Status::already_exists(m.clone()),
            StoreError::FailedPrecondition(m) => tonic::Status::failed_precondition(m.clone()),
            StoreError::InvalidArgument(m) => tonic::Status::invalid_argument(m.clone()),
            StoreError::StaleLease(_) => tonic::Status::not_found(error.to_string()),
            StoreError::Internal(m) => {
                tracing::error!(error = %m, "store failure");
                tonic::Status::internal("internal storage error")
            }
            StoreError::Closed => tonic::Status::unavailable("the backend is shutting down"),
        }
    }
}
