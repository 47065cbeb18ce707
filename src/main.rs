//! The sample Durable Functions app, and the one executable that runs it every way:
//!
//! - `durable-app` (what `cargo run` does): the local Functions host on http://localhost:7071 with the embedded
//!   backend, running this same executable as its custom handler;
//! - `durable-app handler`: the custom handler the Functions host starts (automatic when
//!   `FUNCTIONS_CUSTOMHANDLER_PORT` is set, so `host.json` needs no arguments);
//! - `durable-app worker`: the durable functions as a gRPC worker against the Durable Task Scheduler, its emulator
//!   or the embedded backend, outside Functions;
//! - `durable-app functions write`: the `<Function>/function.json` folders, generated from the registrations.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "durable-app",
    version,
    about = "A Durable Functions app in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the app locally: the local Functions host on http://localhost:7071 (the default command).
    Start {
        /// The port of the HTTP triggers and the Durable management API.
        #[arg(long, default_value_t = 7071)]
        port: u16,
        /// The folder with host.json and local.settings.json.
        #[arg(long, default_value = ".")]
        app_dir: PathBuf,
    },
    /// Serve the custom handler on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT (what the Functions host starts).
    Handler,
    /// Run the orchestrators, activities and entities as a gRPC worker (portable mode).
    Worker {
        /// `Endpoint=...;TaskHub=...;Authentication=...`, or a plain URL of the embedded backend.
        #[arg(long, env = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING")]
        connection_string: String,
    },
    /// Functions app files generated from the registrations.
    Functions {
        #[command(subcommand)]
        command: FunctionsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum FunctionsCommand {
    /// Write one `<Function>/function.json` folder per function.
    Write {
        /// Where to write the folders (the Functions app root).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let under_functions_host = std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some();
    match cli.command {
        Some(Command::Handler) => serve_handler().await,
        None if under_functions_host => serve_handler().await,
        None => start_local_host(7071, PathBuf::from(".")).await,
        Some(Command::Start { port, app_dir }) => start_local_host(port, app_dir).await,
        Some(Command::Worker { connection_string }) => run_worker(&connection_string).await,
        Some(Command::Functions {
            command: FunctionsCommand::Write { dir },
        }) => {
            let written = durable_app::function_app()?.write_function_files(&dir)?;
            println!(
                "wrote {} function.json files under {}",
                written.len(),
                dir.display()
            );
            Ok(())
        }
    }
}

async fn serve_handler() -> anyhow::Result<()> {
    init_logging();
    durable_handler::serve(durable_app::function_app()?)
        .await
        .context("the custom handler stopped")
}

async fn start_local_host(port: u16, app_dir: PathBuf) -> anyhow::Result<()> {
    let this = std::env::current_exe().context("cannot locate this executable")?;
    let options = durable_host::HostOptions::new(app_dir)
        .with_port(port)
        .with_handler(&this)
        .with_handler_args(["handler"])
        .with_function_generator(["functions", "write", "--dir"]);
    durable_host::run(options)
        .await
        .context("the local host stopped")
}

async fn run_worker(connection_string: &str) -> anyhow::Result<()> {
    init_logging();
    let connection = durable_grpc::ConnectionOptions::from_connection_string(connection_string)?;
    let worker = durable_grpc::Worker::builder()
        .connection(connection)
        .registry(durable_app::registry())
        .build()?;
    tracing::info!("worker started; press Ctrl-C to stop");
    worker
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the worker stopped")
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        // Under a Functions host the output is captured and re-logged: colour codes would only be noise there.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
