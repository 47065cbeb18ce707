//! `durable-backend`: the embedded Durable Task backend as a command, a drop-in for the scheduler emulator.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// Serves the Durable Task Scheduler protocol (gRPC, plaintext HTTP/2) from a SQLite file.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on (the emulator's is 8080).
    #[arg(long, default_value_t = 8080, env = "DURABLE_BACKEND_PORT")]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "DURABLE_BACKEND_HOST")]
    host: IpAddr,
    /// SQLite database file.
    #[arg(
        long,
        default_value = "./.durable/backend.db",
        conflicts_with = "in_memory"
    )]
    db: PathBuf,
    /// Keep everything in memory (lost on exit).
    #[arg(long)]
    in_memory: bool,
    /// Task hubs to create at start-up, comma separated (like DTS_TASK_HUB_NAMES); others are created on first use.
    #[arg(long, value_delimiter = ',', env = "DTS_TASK_HUB_NAMES")]
    task_hubs: Vec<String>,
    /// The hub used by calls without a `taskhub` header.
    #[arg(long, default_value = "default")]
    default_hub: String,
    /// Largest accepted payload in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_payload_bytes: usize,
    /// Send entity work in the scheduler's newer `entityRequestV2` format instead of `entityRequest`.
    #[arg(long)]
    entity_v2: bool,
    /// Serve the web dashboard on this port too, on the same address (0 picks a free port).
    #[cfg(feature = "dashboard")]
    #[arg(long, env = "DURABLE_BACKEND_DASHBOARD_PORT")]
    dashboard_port: Option<u16>,
    /// Check the --db file instead of serving it (no backend may be serving it): SQLite's integrity check and the
    /// backend's invariants. Prints a report; exit status 1 when something is broken.
    #[arg(long, conflicts_with = "in_memory")]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    // Logs on stderr; spans over OTLP when the OTEL_* variables ask for it.
    let _telemetry = durable_telemetry::init_or_warn(durable_telemetry::TelemetryOptions::new(
        "durable-backend",
    ));
    let args = Args::parse();
    if args.check {
        // 1 for a broken store, 2 for a file that cannot be read, so that scripts can tell them apart.
        return Ok(match durable_backend::check_database(&args.db) {
            Ok(report) => {
                println!("{report}");
                if report.is_ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("cannot check {}: {e}", args.db.display());
                ExitCode::from(2)
            }
        });
    }
    // Listening starts before the store opens: a stop sent while the backend starts or prints its address is kept.
    let mut stop =
        durable_telemetry::StopSignal::listen().context("cannot listen for Ctrl-C and SIGTERM")?;
    #[cfg(feature = "dashboard")]
    let dashboard_hubs: Vec<String> = std::iter::once(args.default_hub.clone())
        .chain(args.task_hubs.iter().cloned())
        .filter(|h| !h.trim().is_empty())
        .collect();
    let mut options = durable_backend::Options::new()
        .with_bind(SocketAddr::new(args.host, args.port))
        .with_default_hub(args.default_hub)
        .with_task_hubs(args.task_hubs.into_iter().filter(|h| !h.trim().is_empty()))
        .with_max_payload_bytes(args.max_payload_bytes);
    if args.entity_v2 {
        options = options.with_entity_format(durable_backend::EntityFormat::V2);
    }
    options = if args.in_memory {
        options.in_memory()
    } else {
        options.with_db_path(args.db)
    };
    let backend = durable_backend::start(options)
        .await
        .context("cannot start the backend")?;
    println!("durable-backend listening on {}", backend.endpoint());
    #[cfg(feature = "dashboard")]
    let dashboard = match args.dashboard_port {
        Some(port) => {
            let dashboard =
                dashboard::start(&backend, SocketAddr::new(args.host, port), dashboard_hubs).await;
            match dashboard {
                Ok(dashboard) => Some(dashboard),
                Err(e) => {
                    let _ = backend.shutdown().await;
                    return Err(e);
                }
            }
        }
        None => None,
    };
    stop.recv().await;
    tracing::info!("shutting down");
    #[cfg(feature = "dashboard")]
    if let Some(dashboard) = dashboard {
        dashboard.shutdown().await;
    }
    backend.shutdown().await.context("shutdown failed")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "dashboard")]
mod dashboard {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use anyhow::Context;
    use durable_dashboard::{DashboardOptions, DashboardServer};
    use durable_grpc::{ConnectionOptions, DurableClient};

    /// The dashboard on its own port, talking to this backend through the client API like any other client.
    pub(super) async fn start(
        backend: &durable_backend::Handle,
        bind: SocketAddr,
        hubs: Vec<String>,
    ) -> anyhow::Result<DashboardServer> {
        // A backend bound to every address is reached through loopback.
        let mut target = backend.local_addr();
        if target.ip().is_unspecified() {
            target.set_ip(match target.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let mut connection = ConnectionOptions::new(format!("http://{target}"));
        if let Some(hub) = hubs.first() {
            connection = connection.with_task_hub(hub);
        }
        let client =
            DurableClient::new(&connection).context("cannot create the dashboard's client")?;
        let options = DashboardOptions::new()
            .with_title("Durable Dashboard · durable-backend")
            .with_task_hubs(hubs);
        let server = durable_dashboard::start(bind, client, options)
            .await
            .context("cannot start the dashboard")?;
        println!("durable-backend dashboard on {}", server.url());
        Ok(server)
    }
}
