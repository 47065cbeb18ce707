//! The command line every app gets from [`run`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use durable_handler::{FunctionApp, Handler};

use crate::error::Error;
use crate::new_app::NewAppOptions;
use crate::package::PackageOptions;

/// The environment variable through which the Functions host tells a custom handler where to listen.
const HANDLER_PORT_VARIABLE: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

#[derive(Debug, Parser)]
#[command(about = "A Durable Functions app in Rust", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the app locally: the local Functions host on http://localhost:7071 with the embedded backend (the
    /// default command).
    Start {
        /// Port of the HTTP triggers and the Durable management API; 0 picks a free one
        /// [default: local.settings.json Host.LocalHttpPort, else 7071].
        #[arg(long)]
        port: Option<u16>,
        /// The folder with host.json and local.settings.json.
        #[arg(long, value_name = "DIR", default_value = ".")]
        app_dir: PathBuf,
        /// Keep orchestration state in memory: nothing survives the host
        /// [default: <app dir>/.durable/backend.db, or the scheduler in
        /// $DURABLE_TASK_SCHEDULER_CONNECTION_STRING].
        #[arg(long)]
        in_memory: bool,
    },
    /// Serve the custom handler on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT (what the Functions host starts; also
    /// what the executable does without arguments when that variable is set).
    Handler,
    /// Run the orchestrators, activities and entities as a gRPC worker, outside Functions (portable mode).
    Worker {
        /// `Endpoint=...;TaskHub=...;Authentication=...`, or the URL of an embedded backend.
        #[arg(long, env = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING")]
        connection_string: String,
    },
    /// Replay recorded histories with this code and report every instance it no longer matches (exits 1 then):
    /// from a backend (the worker's connection settings) or from files written by `export-histories`.
    ReplayCheck {
        /// `Endpoint=...;TaskHub=...;Authentication=...`, or the URL of an embedded backend.
        #[arg(long, env = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING")]
        connection_string: Option<String>,
        /// Read the histories from this export file instead of a backend (repeatable).
        #[arg(long = "from", value_name = "FILE")]
        from: Vec<PathBuf>,
        #[command(flatten)]
        selection: SelectionArgs,
        /// Skip instances of orchestrators this app does not register (a task hub shared with other apps).
        #[arg(long)]
        skip_unknown: bool,
    },
    /// Write the histories of a backend's instances to a file, one instance per line, for `replay-check --from`.
    ExportHistories {
        /// `Endpoint=...;TaskHub=...;Authentication=...`, or the URL of an embedded backend.
        #[arg(long, env = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING")]
        connection_string: String,
        /// The file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        selection: SelectionArgs,
    },
    /// Functions app files generated from the registrations.
    Functions {
        #[command(subcommand)]
        command: FunctionsCommand,
    },
    /// Create a new app from the template, in a new folder.
    New {
        /// The folder to create; its name is the package name unless --name says otherwise.
        path: PathBuf,
        /// The package (and executable) name.
        #[arg(long)]
        name: Option<String>,
        /// Depend on azure-durable-functions through this folder instead of crates.io.
        #[arg(long, value_name = "DIR")]
        facade_path: Option<PathBuf>,
    },
    /// Build for Linux x64 and write the zip that `az functionapp deployment source config-zip` deploys.
    Package {
        /// Where to write `<name>.zip` [default: <target dir>/azure-functions].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The app folder: Cargo.toml and host.json.
        #[arg(long, value_name = "DIR", default_value = ".")]
        app_dir: PathBuf,
        /// The cargo profile to build (`dev` packages the debug build: quicker, for trying things out).
        #[arg(long, default_value = "release")]
        profile: String,
        /// Build for this target instead of choosing x86_64-unknown-linux-musl or x86_64-unknown-linux-gnu.
        #[arg(long, value_name = "TRIPLE")]
        target: Option<String>,
        /// Package this already built Linux x64 executable instead of building one.
        #[arg(long, value_name = "FILE")]
        executable: Option<PathBuf>,
        /// The executable's name in the package [default: the name of this executable].
        #[arg(long)]
        bin: Option<String>,
        /// A further file or folder to ship, at the same relative path (repeatable).
        #[arg(long, value_name = "PATH")]
        include: Vec<PathBuf>,
    },
}

/// Which instances `replay-check` and `export-histories` fetch from a backend.
#[derive(Debug, clap::Args)]
struct SelectionArgs {
    /// Only this instance (repeatable) [default: every instance].
    #[arg(long = "instance", value_name = "ID")]
    instances: Vec<String>,
    /// Only instances that have not ended (pending, running, suspended): the ones new code will replay.
    #[arg(long)]
    running_only: bool,
    /// Only instances whose id starts with this.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
}

impl SelectionArgs {
    fn selection(self) -> crate::replay::HistorySelection {
        let mut selection =
            crate::replay::HistorySelection::new().with_running_only(self.running_only);
        selection.instance_ids = self.instances;
        selection.instance_id_prefix = self.prefix;
        selection
    }
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

/// Runs the app as its command line says; the whole `main` of an app:
///
/// ```no_run
/// # fn app() -> azure_durable_functions::FunctionApp { unimplemented!() }
/// fn main() -> std::process::ExitCode {
///     azure_durable_functions::run(app())
/// }
/// ```
///
/// Without arguments it serves the custom handler when `FUNCTIONS_CUSTOMHANDLER_PORT` is set (the Functions host
/// starts it that way) and the local host otherwise (`cargo run`). Errors are printed on stderr and give a failure
/// exit code.
pub fn run(app: FunctionApp) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return report(&Error::Runtime(error)),
    };
    match runtime.block_on(run_with_args(app, std::env::args_os())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Usage(error)) => {
            let _ = error.print();
            if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(RunError::Failed(error)) => report(&error),
    }
}

fn report(error: &Error) -> ExitCode {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Why [`run_with_args`] returned early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The command line was not understood, or asked for help (print it with [`clap::Error::print`]).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// The command failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

/// [`run`] for an app that has its own tokio runtime: the arguments include the program name, as
/// [`std::env::args_os`] gives them.
pub async fn run_with_args<I, T>(app: FunctionApp, args: I) -> Result<(), RunError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let name = program_name();
    let command = Cli::command().name(name.clone()).bin_name(name.clone());
    let cli = Cli::from_arg_matches(&command.try_get_matches_from(args)?)?;
    let under_functions_host = std::env::var_os(HANDLER_PORT_VARIABLE).is_some();
    let result = match cli.command {
        Some(Command::Handler) => serve_handler(app).await,
        None if under_functions_host => serve_handler(app).await,
        None => start_local_host(&name, None, PathBuf::from("."), false).await,
        Some(Command::Start {
            port,
            app_dir,
            in_memory,
        }) => start_local_host(&name, port, app_dir, in_memory).await,
        Some(Command::Worker { connection_string }) => run_worker(app, &connection_string).await,
        Some(Command::ReplayCheck {
            connection_string,
            from,
            selection,
            skip_unknown,
        }) => replay_check(app, connection_string, from, selection, skip_unknown).await,
        Some(Command::ExportHistories {
            connection_string,
            out,
            selection,
        }) => export_histories(&connection_string, &out, selection).await,
        Some(Command::Functions {
            command: FunctionsCommand::Write { dir },
        }) => write_functions(app, &dir),
        Some(Command::New {
            path,
            name,
            facade_path,
        }) => {
            let mut options = NewAppOptions::new(path);
            if let Some(name) = name {
                options = options.with_name(name);
            }
            if let Some(dir) = facade_path {
                options = options.with_facade_path(dir);
            }
            create_app(&options)
        }
        Some(Command::Package {
            out,
            app_dir,
            profile,
            target,
            executable,
            bin,
            include,
        }) => {
            let mut options = PackageOptions::new(app_dir, bin.unwrap_or(name))
                .with_profile(profile)
                .with_includes(include);
            if let Some(out) = out {
                options = options.with_out_dir(out);
            }
            if let Some(target) = target {
                options = options.with_target(target);
            }
            if let Some(executable) = executable {
                options = options.with_executable(executable);
            }
            package(app, &options)
        }
    };
    Ok(result?)
}

/// The name people call this executable by: its file name, as cargo named it after the `[[bin]]`.
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".to_owned())
}

/// Logs on stderr (`RUST_LOG`), and spans exported over OTLP when the `OTEL_*` variables ask for it; the guard
/// exports what is still buffered when the command ends.
fn init_logging() -> durable_telemetry::Telemetry {
    durable_telemetry::init_or_warn(
        durable_telemetry::TelemetryOptions::new(program_name()).show_target(false),
    )
}

async fn serve_handler(app: FunctionApp) -> Result<(), Error> {
    let _telemetry = init_logging();
    durable_handler::serve(app.build()?).await?;
    Ok(())
}

async fn run_worker(app: FunctionApp, connection_string: &str) -> Result<(), Error> {
    let _telemetry = init_logging();
    let handler = app.build()?;
    let connection = durable_grpc::ConnectionOptions::from_connection_string(connection_string)?;
    let worker = durable_grpc::Worker::builder()
        .connection(connection)
        .registry(handler.registry().clone())
        .build()?;
    let mut stop = durable_telemetry::StopSignal::listen().map_err(Error::Signal)?;
    tracing::info!("worker started; press Ctrl-C to stop");
    worker.run_until(async move { stop.recv().await }).await?;
    Ok(())
}

async fn replay_check(
    app: FunctionApp,
    connection_string: Option<String>,
    from: Vec<PathBuf>,
    selection: SelectionArgs,
    skip_unknown: bool,
) -> Result<(), Error> {
    let handler = app.build()?;
    let histories = match (from.is_empty(), connection_string) {
        (false, _) => crate::replay::read_export_files(&from)?,
        (true, Some(connection_string)) => {
            let client = crate::replay::client_for(&connection_string)?;
            crate::replay::fetch_histories(&client, &selection.selection()).await?
        }
        (true, None) => {
            return Err(Error::Options(
                "replay-check needs histories: --from FILE, or a backend through --connection-string or \
                 DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
                    .into(),
            ));
        }
    };
    let options = durable_core::replay_check::ReplayCheckOptions::new()
        .skip_unknown_orchestrators(skip_unknown);
    crate::replay::report(handler.registry(), &histories, &options).map(|_| ())
}

async fn export_histories(
    connection_string: &str,
    out: &std::path::Path,
    selection: SelectionArgs,
) -> Result<(), Error> {
    let client = crate::replay::client_for(connection_string)?;
    let histories = crate::replay::fetch_histories(&client, &selection.selection()).await?;
    crate::replay::write_export_file(out, &histories)?;
    println!("wrote {} histories to {}", histories.len(), out.display());
    Ok(())
}

fn write_functions(app: FunctionApp, dir: &std::path::Path) -> Result<(), Error> {
    let written = app.build()?.write_function_files(dir)?;
    println!(
        "wrote {} function.json files under {}",
        written.len(),
        dir.display()
    );
    Ok(())
}

fn create_app(options: &NewAppOptions) -> Result<(), Error> {
    let created = crate::new_app::create(options)?;
    print!("{}", created.next_steps());
    Ok(())
}

fn package(app: FunctionApp, options: &PackageOptions) -> Result<(), Error> {
    let handler: Handler = app.build()?;
    let report = crate::package::package(&handler, options)?;
    print!("{}", report.next_steps());
    Ok(())
}

#[cfg(feature = "local-host")]
async fn start_local_host(
    name: &str,
    port: Option<u16>,
    app_dir: PathBuf,
    in_memory: bool,
) -> Result<(), Error> {
    use durable_host::{BackendChoice, HostOptions};

    let _telemetry = init_logging();
    let this = std::env::current_exe().map_err(|source| Error::Io {
        path: PathBuf::from(name),
        source,
    })?;
    let mut options = HostOptions::new(app_dir)
        .with_handler(&this)
        .with_handler_args(["handler"])
        .with_function_generator(["functions", "write", "--dir"]);
    if let Some(port) = port {
        options = options.with_port(port);
    }
    if in_memory {
        options = options.with_backend(BackendChoice::EmbeddedInMemory);
    }
    let mut stop = durable_telemetry::StopSignal::listen().map_err(Error::Signal)?;
    // A stop request during start-up drops the half-started host, which stops the handler with it.
    let host = tokio::select! {
        host = durable_host::start(options) => host?,
        () = stop.recv() => return Ok(()),
    };
    println!("{name} listening on {}", host.base_url());
    tracing::info!(
        "function key: {}   master key: {}   (send as ?code=... or the x-functions-key header)",
        host.function_key(),
        host.master_key()
    );
    tracing::info!("press Ctrl-C to stop");
    stop.recv().await;
    tracing::info!("stopping");
    host.stop().await?;
    Ok(())
}

#[cfg(not(feature = "local-host"))]
async fn start_local_host(
    _name: &str,
    _port: Option<u16>,
    _app_dir: PathBuf,
    _in_memory: bool,
) -> Result<(), Error> {
    Err(Error::NoLocalHost)
}
