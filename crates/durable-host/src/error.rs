//! What can go wrong while bringing the local host up.

use std::path::PathBuf;

/// Why the local host could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration file is not what the Functions host accepts.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The app folder is not a custom-handler Functions app: it does not exist, or has no `host.json`, no
    /// handler to start or no function folders.
    #[error("app folder {dir}: {message}")]
    App {
        /// The app folder.
        dir: PathBuf,
        /// What is missing.
        message: String,
    },
    /// The options contradict each other or name something that does not exist.
    #[error("invalid options: {0}")]
    Options(String),
    /// The handler executable could not be started or never became ready.
    #[error("custom handler: {0}")]
    Handler(String),
    /// The backend (embedded or remote) could not be started or reached.
    #[error("backend: {0}")]
    Backend(String),
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The process cannot listen for its stop request (Ctrl-C, SIGTERM).
    #[error("cannot listen for Ctrl-C and SIGTERM: {0}")]
    Signal(std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = HostError> = std::result::Result<T, E>;
