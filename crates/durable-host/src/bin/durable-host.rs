//! `durable-host`: what `func start` and the Durable extension do, for any custom-handler Functions app.
//!
//! Point it at a folder with `host.json` and `<Function>/function.json` folders; it starts the executable that
//! `customHandler.description` names (in whatever language it is written), serves the HTTP triggers and the
//! Durable management API, fires timer and queue triggers, and runs orchestrations, activities and entities on
//! the embedded backend (or a scheduler).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use durable_host::{BackendChoice, CONNECTION_STRING_SETTING, HostError, HostOptions};

// The host allocates and frees an envelope, its JSON and base64 text and the reply's for every invocation;
// mimalloc costs less CPU per work item there than glibc's allocator (BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs a custom-handler Functions app locally, as `func start` does, with the Durable extension built in.
#[derive(Debug, Parser)]
#[command(name = "durable-host", version)]
struct Args {
    /// The app folder: host.json, local.settings.json and one <Function>/function.json folder per function.
    #[arg(long, value_name = "DIR", default_value = ".")]
    app_dir: PathBuf,
    /// Port of the HTTP triggers and the Durable management API; 0 picks a free one
    /// [default: local.settings.json Host.LocalHttpPort, else 7071].
    #[arg(short, long)]
    port: Option<u16>,
    /// Address to listen on.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    listen_ip: IpAddr,
    /// SQLite file of the embedded backend, where orchestration state lives
    /// [default: <app dir>/.durable/backend.db].
    #[arg(long, value_name = "FILE", conflicts_with_all = ["in_memory", "connection_string"])]
    db: Option<PathBuf>,
    /// Keep orchestration state in memory: nothing survives the host.
    #[arg(long, conflicts_with = "connection_string")]
    in_memory: bool,
    /// A Durable Task Scheduler (or its emulator) instead of the embedded backend, e.g.
    /// "Endpoint=http://localhost:8080;Authentication=None" [default: $DURABLE_TASK_SCHEDULER_CONNECTION_STRING
    /// when set and neither --db nor --in-memory is given].
    #[arg(long, value_name = "CONNECTION_STRING")]
    connection_string: Option<String>,
    /// Task hub, instead of host.json extensions.durableTask.hubName.
    #[arg(long, value_name = "NAME")]
    task_hub: Option<String>,
    /// Check keys on the Durable management webhooks and the admin API (the durabletask_extension system key or
    /// the master key), as `func start --enableAuth` does; always on when listening beyond loopback
    /// [default: the DURABLE_HOST_ENABLE_AUTH setting].
    #[arg(long, visible_alias = "enableAuth")]
    enable_auth: bool,
}

impl Args {
    fn options(self) -> HostOptions {
        let backend = if self.in_memory {
            BackendChoice::EmbeddedInMemory
        } else if let Some(db) = self.db {
            BackendChoice::EmbeddedFile(db)
        } else if let Some(cs) = self.connection_string {
            BackendChoice::ConnectionString(cs)
        } else {
            BackendChoice::Auto
        };
        let mut options = HostOptions::new(self.app_dir)
            .with_listen_ip(self.listen_ip)
            .with_backend(backend);
        if let Some(port) = self.port {
            options = options.with_port(port);
        }
        if let Some(hub) = self.task_hub {
            options = options.with_task_hub(hub);
        }
        if self.enable_auth {
            options = options.with_enable_auth(true);
        }
        options
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Logs on stderr, so stdout carries only the line that says where the host listens; inside the runtime, which
    // the OTLP gRPC exporter needs.
    let _telemetry = runtime.block_on(async {
        durable_telemetry::init_or_warn(
            durable_telemetry::TelemetryOptions::new("durable-host").show_target(false),
        )
    });
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), HostError> {
    if args.db.is_none()
        && !args.in_memory
        && args.connection_string.is_none()
        && std::env::var(CONNECTION_STRING_SETTING).is_ok_and(|cs| !cs.trim().is_empty())
    {
        tracing::info!("using the scheduler in ${CONNECTION_STRING_SETTING}");
    }
    let options = args.options();
    let mut stop = durable_telemetry::StopSignal::listen().map_err(HostError::Signal)?;
    // A stop request during start-up drops the half-started host, which kills the handler with it.
    let host = tokio::select! {
        host = durable_host::start(options) => host?,
        () = stop.recv() => return Ok(()),
    };
    println!("durable-host listening on {}", host.base_url());
    tracing::info!("{}", host.key_summary());
    tracing::info!("press Ctrl-C to stop");
    stop.recv().await;
    tracing::info!("stopping");
    host.stop().await
}
