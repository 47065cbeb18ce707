//! How to run the local host: a builder, like every option struct in this workspace.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The app setting (and environment variable) that names a scheduler to use instead of the embedded backend.
pub const CONNECTION_STRING_SETTING: &str = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING";

/// Where orchestration state lives while the local host runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackendChoice {
    /// The embedded backend on `<app dir>/.durable/backend.db`, unless the process environment has
    /// [`CONNECTION_STRING_SETTING`], in which case that scheduler is used. What `cargo run` does.
    #[default]
    Auto,
    /// The embedded backend on this SQLite file.
    EmbeddedFile(PathBuf),
    /// The embedded backend in memory: nothing survives the host. Tests and benchmarks.
    EmbeddedInMemory,
    /// A running scheduler (emulator or DTS) named by a connection string
    /// (`Endpoint=http://localhost:8080;Authentication=None`).
    ConnectionString(String),
}

/// Options of [`crate::start`] and [`crate::run`]. Build with [`HostOptions::new`] and the `with_*` methods.
///
/// ```
/// use durable_host::HostOptions;
/// let options = HostOptions::new(".").with_port(0).with_handler("target/debug/durable-app");
/// assert_eq!(options.port(), Some(0));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostOptions {
    pub(crate) app_dir: PathBuf,
    pub(crate) handler: Option<PathBuf>,
    pub(crate) handler_args: Vec<String>,
    pub(crate) handler_env: Vec<(String, String)>,
    pub(crate) function_generator: Option<Vec<String>>,
    pub(crate) listen_ip: IpAddr,
    /// `None`: what `func start` does (`Host.LocalHttpPort`, else 7071).
    pub(crate) port: Option<u16>,
    pub(crate) backend: BackendChoice,
    pub(crate) task_hub: Option<String>,
    pub(crate) ready_timeout: Duration,
    pub(crate) invocation_timeout: Duration,
    /// `None`: the gRPC worker's default.
    pub(crate) concurrency: Option<(usize, usize, usize)>,
    pub(crate) function_key: Option<String>,
    pub(crate) master_key: Option<String>,
    pub(crate) system_key: Option<String>,
    /// `None`: the `DURABLE_HOST_ENABLE_AUTH` setting, else off.
    pub(crate) enable_auth: Option<bool>,
    /// `None`: the `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` setting, else the Functions host's default.
    pub(crate) max_request_body: Option<usize>,
    pub(crate) run_timers: bool,
}

impl HostOptions {
    /// Host the app whose `host.json` is in `app_dir`, with the embedded backend, on the port `func start` would
    /// use: `Host.LocalHttpPort` from `local.settings.json`, else 7071.
    pub fn new(app_dir: impl Into<PathBuf>) -> Self {
        HostOptions {
            app_dir: app_dir.into(),
            handler: None,
            handler_args: Vec::new(),
            handler_env: Vec::new(),
            function_generator: None,
            listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: None,
            backend: BackendChoice::Auto,
            task_hub: None,
            ready_timeout: Duration::from_secs(30),
            invocation_timeout: Duration::from_secs(30 * 60),
            concurrency: None,
            function_key: None,
            master_key: None,
            system_key: None,
            enable_auth: None,
            max_request_body: None,
            run_timers: true,
        }
    }

    /// Runs this executable as the custom handler instead of `customHandler.description.defaultExecutablePath`.
    pub fn with_handler(mut self, executable: impl Into<PathBuf>) -> Self {
        self.handler = Some(executable.into());
        self
    }

    /// Arguments for the handler, replacing `customHandler.description.arguments`.
    pub fn with_handler_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.handler_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// An extra environment variable for the handler (after the app settings, so it wins).
    pub fn with_handler_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.handler_env.push((key.into(), value.into()));
        self
    }

    /// When the app dir has no `<name>/function.json` folders, run the handler executable with these arguments
    /// plus a target directory as the last argument (a fresh temporary directory, removed at stop), and read the
    /// function folders it writes there. For the sample app: `["functions", "write"]`.
    pub fn with_function_generator<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.function_generator = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// The address to listen on (default `127.0.0.1`).
    pub fn with_listen_ip(mut self, ip: IpAddr) -> Self {
        self.listen_ip = ip;
        self
    }

    /// The HTTP port, over `Host.LocalHttpPort` (0 picks a free one, see [`crate::HostHandle::local_addr`]).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Where orchestration state lives (default [`BackendChoice::Auto`]).
    pub fn with_backend(mut self, backend: BackendChoice) -> Self {
        self.backend = backend;
        self
    }

    /// Overrides `extensions.durableTask.hubName`.
    pub fn with_task_hub(mut self, hub: impl Into<String>) -> Self {
        self.task_hub = Some(hub.into());
        self
    }

    /// How long the handler may take to answer its first request on `/` (default 30 s, as the host).
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long one invocation may run when `host.json` sets no `functionTimeout` (default 30 minutes, the
    /// Functions host's default everywhere but the Consumption plan). A timed-out invocation restarts the handler
    /// process, and durable work that timed out runs again, as in the host.
    pub fn with_invocation_timeout(mut self, timeout: Duration) -> Self {
        self.invocation_timeout = timeout;
        self
    }

    /// How many orchestrator, activity and entity invocations may be in flight at once (default: the gRPC worker's
    /// defaults, 100 of each per CPU core). The backend's dispatch latency is hidden by concurrency, so low values
    /// cost throughput rather than saving anything.
    pub fn with_concurrency(mut self, orchestrations: u16, activities: u16, entities: u16) -> Self {
        self.concurrency = Some((
            usize::from(orchestrations.max(1)),
            usize::from(activities.max(1)),
            usize::from(entities.max(1)),
        ));
        self
    }

    /// The key `function`-level HTTP triggers accept (default: the `DURABLE_HOST_FUNCTION_KEY` app setting, else
    /// a generated key printed at start).
    pub fn with_function_key(mut self, key: impl Into<String>) -> Self {
        self.function_key = Some(key.into());
        self
    }

    /// The key `admin`-level HTTP triggers accept (default: the `DURABLE_HOST_MASTER_KEY` app setting, else a
    /// generated key printed at start). It also opens `function`-level triggers.
    pub fn with_master_key(mut self, key: impl Into<String>) -> Self {
        self.master_key = Some(key.into());
        self
    }

    /// The `durabletask_extension` system key, which the Durable management webhooks take (with the master key)
    /// when they check keys (default: the `DURABLE_HOST_SYSTEM_KEY` app setting, else a generated key printed at
    /// start). The `durableClient` binding hands it to starters as `requiredQueryStringParameters`.
    pub fn with_system_key(mut self, key: impl Into<String>) -> Self {
        self.system_key = Some(key.into());
        self
    }

    /// Whether the Durable management webhooks (`/runtime/webhooks/durabletask/...`) and the admin API check keys
    /// when the host listens on loopback only, as `func start --enableAuth` does (default: the
    /// `DURABLE_HOST_ENABLE_AUTH` app setting, else off). A host that listens beyond loopback (a `listen_ip` other
    /// than `127.0.0.1` or `::1`) always checks them, whatever this says.
    pub fn with_enable_auth(mut self, enabled: bool) -> Self {
        self.enable_auth = Some(enabled);
        self
    }

    /// The largest HTTP request body accepted; larger ones are answered 413 (default: the
    /// `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` app setting, else 104857600 bytes, the Functions host's default).
    pub fn with_max_request_body_bytes(mut self, bytes: usize) -> Self {
        self.max_request_body = Some(bytes);
        self
    }

    /// Whether timer triggers fire (default true). Tests that count invocations turn them off.
    pub fn with_timers(mut self, enabled: bool) -> Self {
        self.run_timers = enabled;
        self
    }

    /// The app directory.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// The HTTP port asked for; `None` when it comes from `local.settings.json` (or is the default 7071).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The backend choice.
    pub fn backend(&self) -> &BackendChoice {
        &self.backend
    }
}
