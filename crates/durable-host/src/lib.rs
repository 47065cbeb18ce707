//! A local Azure Functions host: what `func start` and the Durable extension do for a custom-handler app, with
//! nothing but cargo. The durable-rust sample app runs it as a library; the `durable-host` command runs it for any
//! app folder, whatever language its handler is written in.
//!
//! It reads `host.json`, `local.settings.json` and the `<name>/function.json` folders, starts the custom handler
//! as the Functions host does, serves HTTP triggers and the Durable management API (on `Host.LocalHttpPort`, else
//! port 7071), fires timer and queue triggers, and plays the Durable extension: work items from the backend
//! (embedded SQLite by default, or a scheduler named by `DURABLE_TASK_SCHEDULER_CONNECTION_STRING`) are posted to
//! the handler in the host's exact invocation format, the replies become completions, and `durableClient` bindings
//! point at a local gRPC endpoint that serves what the extension's endpoint serves in Azure, forwarded to the
//! backend with the host's credentials.
//!
//! ```no_run
//! # async fn demo() -> Result<(), durable_host::HostError> {
//! use durable_host::{BackendChoice, HostOptions};
//!
//! let host = durable_host::start(
//!     HostOptions::new("path/to/app")
//!         .with_port(0)
//!         .with_handler("target/debug/durable-app")
//!         .with_backend(BackendChoice::EmbeddedInMemory),
//! )
//! .await?;
//! println!("try {}/api/Hello", host.base_url());
//! host.stop().await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod client_endpoint;
mod config;
mod error;
mod extension;
mod host;
mod http;
mod invoke;
mod options;
mod process;
mod queue;
mod timer;

pub use error::{HostError, Result};
pub use host::{HostHandle, start};
pub use options::{BackendChoice, CONNECTION_STRING_SETTING, HostOptions};

/// What `cargo run` does: starts the host, prints where it listens and the generated keys, and runs until Ctrl-C.
/// Installs a terminal logger (`RUST_LOG` filters it) and, when the `OTEL_*` variables ask for it, OTLP export of
/// spans, unless the program already set a subscriber up.
pub async fn run(options: HostOptions) -> Result<()> {
    let _telemetry = durable_telemetry::init_or_warn(
        durable_telemetry::TelemetryOptions::new("durable-host").show_target(false),
    );
    let mut stop = durable_telemetry::StopSignal::listen().map_err(HostError::Signal)?;
    let host = tokio::select! {
        host = start(options) => host?,
        () = stop.recv() => return Ok(()),
    };
    tracing::info!("{}", host.key_summary());
    tracing::info!("press Ctrl-C to stop");
    stop.recv().await;
    tracing::info!("stopping");
    host.stop().await
}
