//! What can go wrong when a command runs.

use std::path::PathBuf;

/// Why a command of [`crate::run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The app's definition is invalid (names, bindings, routes).
    #[error("the app is not valid: {0}")]
    Build(#[from] durable_handler::BuildError),
    /// The custom handler could not serve.
    #[error("the custom handler stopped: {0}")]
    Handler(#[from] durable_handler::ServeError),
    /// The worker could not connect or stopped with an error.
    #[error("the worker stopped: {0}")]
    Worker(#[from] durable_grpc::Error),
    /// The local host could not start or stopped with an error.
    #[cfg(feature = "local-host")]
    #[error("the local host stopped: {0}")]
    Host(#[from] durable_host::HostError),
    /// `start` in an app built without the `local-host` feature.
    #[error(
        "this executable was built without the local host: enable the `local-host` feature of \
         azure-durable-functions (it is a default feature) to use `start`"
    )]
    NoLocalHost,
    /// A new app could not be created.
    #[error(transparent)]
    New(#[from] crate::new_app::NewAppError),
    /// The app could not be packaged.
    #[error(transparent)]
    Package(#[from] crate::package::PackageError),
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The backend could not be reached, or refused a call (`replay-check`, `export-histories`).
    #[error("the backend: {0}")]
    Backend(#[source] durable_grpc::Error),
    /// An export file of histories cannot be read.
    #[error("{}: {source}", path.display())]
    HistoryFile {
        /// The file.
        path: PathBuf,
        /// Which line, and what is wrong with it.
        #[source]
        source: durable_core::replay_check::HistoryFormatError,
    },
    /// `replay-check` found instances whose history the code no longer replays.
    #[error("{mismatched} of {checked} instances no longer replay with this code")]
    ReplayMismatches {
        /// Instances that depart from their history.
        mismatched: usize,
        /// Instances checked.
        checked: usize,
    },
    /// A command was given contradicting or missing options.
    #[error("{0}")]
    Options(String),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The process cannot listen for its stop request (Ctrl-C, SIGTERM).
    #[error("cannot listen for Ctrl-C and SIGTERM: {0}")]
    Signal(#[source] std::io::Error),
}
