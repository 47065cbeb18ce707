//! Bringing the app up: backend, handler, durable worker, HTTP front door and timers, in that order; and taking
//! them down in reverse.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use durable_grpc::{ConnectionOptions, DurableClient, Worker, WorkerHandle};
use tokio::sync::watch;

use crate::client_endpoint::{ClientEndpoint, EndpointConfig};
use crate::config::{
    DEFAULT_PORT, FunctionKind, FunctionMeta, read_functions, read_host_json, read_local_http_port,
    read_settings, substitute,
};
use crate::error::{HostError, Result};
use crate::extension::{Catalog, HttpExecutor, request_settings};
use crate::http::{
    BODY_LIMIT_SETTING, DASHBOARD_PATH, DEFAULT_MAX_BODY, DurableClientBinding, DurableInfo,
    HttpFunction, HttpState, Keys, RouteTemplate, router,
};
use crate::invoke::Invoker;
use crate::options::{BackendChoice, CONNECTION_STRING_SETTING, HostOptions};
use crate::process::{Handler, Launch};
use crate::queue::{Queues, Setup as QueueSetup};
use crate::timer::{Timers, check_schedules};

/// A running local host. Stop it with [`HostHandle::stop`]; dropping it without stopping stops the handler process
/// and the HTTP front door too, without waiting for them.
#[derive(Debug)]
pub struct HostHandle {
    local_addr: SocketAddr,
    base_url: String,
    task_hub: String,
    backend_endpoint: String,
    client_endpoint: String,
    keys: Keys,
    handler: Arc<Handler>,
    http_stop: watch::Sender<bool>,
    generated: Option<PathBuf>,
    /// What [`HostHandle::stop`] waits for; `None` once stopped.
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    worker: WorkerHandle,
    timers: Timers,
    queues: Queues,
    http_task: tokio::task::JoinHandle<()>,
    client_endpoint: ClientEndpoint,
    backend: Option<durable_backend::Handle>,
}

impl Drop for HostHandle {
    fn drop(&mut self) {
        self.handler.stop();
        let _ = self.http_stop.send(true);
        if let Some(dir) = &self.generated {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl HostHandle {
    /// The address the HTTP front door listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://localhost:<port>`: what the host calls itself in the URLs it hands out.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The task hub in use.
    pub fn task_hub(&self) -> &str {
        &self.task_hub
    }

    /// The web dashboard, `http://localhost:<port>/dashboard/`: instances, histories, entities and the management
    /// actions, over the host's own client. Its API takes the management webhooks' keys when they check keys.
    pub fn dashboard_url(&self) -> String {
        format!("{}{DASHBOARD_PATH}/", self.base_url)
    }

    /// The gRPC endpoint of the backend, which the host's worker and management API use.
    pub fn backend_endpoint(&self) -> &str {
        &self.backend_endpoint
    }

    /// The Durable client endpoint, `http://127.0.0.1:<port>`: the `durableClient` binding's `rpcBaseUrl`. It serves
    /// what the Durable extension's endpoint serves in Azure and forwards it to the backend.
    pub fn client_endpoint(&self) -> &str {
        &self.client_endpoint
    }

    /// The key `function`-level HTTP triggers accept.
    pub fn function_key(&self) -> &str {
        &self.keys.function
    }

    /// The key `admin`-level (and `function`-level) HTTP triggers accept.
    pub fn master_key(&self) -> &str {
        &self.keys.master
    }

    /// The `durabletask_extension` system key the Durable management webhooks take (as does the master key);
    /// `None` when they check no keys (the host listens on loopback only and no checks were asked for).
    pub fn system_key(&self) -> Option<&str> {
        self.keys.system.as_deref()
    }

    /// What to tell the user about keys at start, as `func start` does: the keys this host generated (keys given
    /// through options or settings are never shown), and whether the management webhooks check keys.
    pub fn key_summary(&self) -> String {
        let mut shown: Vec<String> = Vec::new();
        let mut show = |name: &'static str, key: &str| {
            if self.keys.generated.contains(&name) {
                shown.push(format!("{name}: {key}"));
            }
        };
        show("function key", &self.keys.function);
        show("master key", &self.keys.master);
        if let Some(system) = &self.keys.system {
            show("durabletask_extension key", system);
        }
        let mut summary = if shown.is_empty() {
            "keys: as configured".to_owned()
        } else {
            format!(
                "{}   (send as ?code=... or the x-functions-key header)",
                shown.join("   ")
            )
        };
        summary.push_str(match self.keys.system {
            Some(_) => "; the management webhooks take the durabletask_extension or master key",
            None => "; the management webhooks are open (loopback only)",
        });
        summary
    }

    /// The handler's current process id; 0 while it is being restarted.
    pub fn handler_pid(&self) -> u32 {
        self.handler.pid()
    }

    /// Stops timers, the durable worker (in-flight invocations get a grace period, then are abandoned for a later
    /// run), the HTTP front door, the handler, the client endpoint and the embedded backend.
    pub async fn stop(mut self) -> Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        running.timers.stop().await;
        running.queues.stop().await;
        let worker = running.worker.shutdown().await;
        let _ = self.http_stop.send(true);
        let _ = running.http_task.await;
        self.handler.stop();
        running.client_endpoint.stop().await;
        if let Some(backend) = running.backend {
            backend
                .shutdown()
                .await
                .map_err(|e| HostError::Backend(e.to_string()))?;
        }
        // Drop removes the generated function folders.
        worker.map_err(|e| HostError::Backend(format!("worker: {e}")))
    }
}

/// The body size limit: the option, else `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` (a number of bytes, as the
/// Functions host reads it), else the Functions host's default.
fn max_request_body(
    options: &HostOptions,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<usize> {
    if let Some(limit) = options.max_request_body {
        return Ok(limit);
    }
    let Some(text) = settings
        .get(BODY_LIMIT_SETTING)
        .cloned()
        .or_else(|| std::env::var(BODY_LIMIT_SETTING).ok())
    else {
        return Ok(DEFAULT_MAX_BODY);
    };
    text.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            HostError::Options(format!(
                "the {BODY_LIMIT_SETTING} setting is {text:?}; use a number of bytes"
            ))
        })
}

/// Runs the app's generator (`<handler> <args...> <dir>`) into a fresh temporary directory (so that several hosts
/// of one app can run side by side) and returns it; [`HostHandle::stop`] removes it.
async fn generate_functions(executable: &Path, args: &[String], app_dir: &Path) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("durable-host-functions-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|source| HostError::Read {
        path: dir.clone(),
        source,
    })?;
    let output = tokio::process::Command::new(executable)
        .args(args)
        .arg(&dir)
        .current_dir(app_dir)
        .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .output()
        .await
        .map_err(|e| HostError::Handler(format!("cannot run {}: {e}", executable.display())))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(HostError::Handler(format!(
            "{} {} failed ({}): {}",
            executable.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(dir)
}

struct Backend {
    connection: ConnectionOptions,
    rpc_base_url: String,
    embedded: Option<durable_backend::Handle>,
}

/// How much longer than an invocation may run the embedded backend lets a work item stay leased: nothing renews a
/// lease while the handler works, so it must outlast the invocation, or the work would be handed out again (and
/// its eventual completion refused) while it still runs.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// The embedded backend's leases for a given invocation timeout (`functionTimeout: -1` gets the longest lease the
/// backend takes).
fn lease_for(timeout: Duration) -> Duration {
    timeout
        .saturating_add(LEASE_MARGIN)
        .min(durable_backend::MAX_DURATION)
}

async fn start_backend(
    choice: &BackendChoice,
    app_dir: &Path,
    hub: &str,
    invocation_timeout: Duration,
) -> Result<Backend> {
    let choice = match choice {
        BackendChoice::Auto => match std::env::var(CONNECTION_STRING_SETTING) {
            Ok(cs) if !cs.trim().is_empty() => BackendChoice::ConnectionString(cs),
            _ => BackendChoice::EmbeddedFile(app_dir.join(".durable").join("backend.db")),
        },
        other => other.clone(),
    };
    let bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let embedded = match choice {
        BackendChoice::ConnectionString(cs) => {
            let connection = ConnectionOptions::from_connection_string(&cs)
                .map_err(|e| HostError::Backend(format!("{CONNECTION_STRING_SETTING}: {e}")))?
                .with_task_hub(hub);
            let rpc_base_url = connection.endpoint().to_owned();
            return Ok(Backend {
                connection,
                rpc_base_url,
                embedded: None,
            });
        }
        BackendChoice::EmbeddedInMemory => durable_backend::Options::new().in_memory(),
        BackendChoice::EmbeddedFile(path) => durable_backend::Options::new().with_db_path(path),
        // `Auto` was resolved above.
        _ => durable_backend::Options::new()
            .with_db_path(app_dir.join(".durable").join("backend.db")),
    };
    // Calls that name no hub (from tools pointed at the backend directly) land in the app's hub.
    let lease = lease_for(invocation_timeout);
    let options = embedded
        .with_bind(bind)
        .with_default_hub(hub)
        .with_orchestration_lease(lease)
        .with_activity_lease(lease)
        .with_entity_lease(lease);
    let handle = durable_backend::start(options)
        .await
        .map_err(|e| HostError::Backend(e.to_string()))?;
    let endpoint = handle.endpoint();
    Ok(Backend {
        connection: ConnectionOptions::new(&endpoint).with_task_hub(hub),
        rpc_base_url: endpoint,
        embedded: Some(handle),
    })
}

async fn shutdown_embedded(embedded: Option<durable_backend::Handle>) {
    if let Some(backend) = embedded {
        let _ = backend.shutdown().await;
    }
}

fn describe(f: &FunctionMeta, base_url: &str, prefix: &str) -> String {
    match &f.kind {
        FunctionKind::Http(t) => {
            let methods = t
                .methods
                .as_ref()
                .map(|m| {
                    m.iter()
                        .map(|s| s.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS".into());
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            };
            format!("{}: [{methods}] {base_url}{prefix}/{}", f.name, t.route)
        }
        FunctionKind::Orchestrator { .. } => format!("{}: orchestrationTrigger", f.name),
        FunctionKind::Activity { .. } => format!("{}: activityTrigger", f.name),
        FunctionKind::Entity { .. } => format!("{}: entityTrigger", f.name),
        FunctionKind::Timer { schedule, .. } => format!("{}: timerTrigger ({schedule})", f.name),
        FunctionKind::Queue { queue, .. } => format!("{}: queueTrigger ({queue})", f.name),
        FunctionKind::Unsupported { trigger } => {
            format!(
                "{}: {trigger} (not supported by the local host; never invoked)",
                f.name
            )
        }
    }
}

/// Starts the local host and returns once every part is up and the handler answered its readiness probe.
pub async fn start(options: HostOptions) -> Result<HostHandle> {
    let app_dir = std::path::absolute(&options.app_dir).map_err(|source| HostError::Read {
        path: options.app_dir.clone(),
        source,
    })?;
    let settings = read_settings(&app_dir)?;
    let host_json = read_host_json(&app_dir, &settings)?;
    let executable = match (&options.handler, &host_json.executable) {
        (Some(exe), _) => exe.clone(),
        (None, Some(exe)) => exe.clone(),
        (None, None) => {
            return Err(HostError::App {
                dir: app_dir,
                message:
                    "host.json has no customHandler.description.defaultExecutablePath: no custom \
                          handler to start"
                        .into(),
            });
        }
    };
    let args = if options.handler.is_some() || !options.handler_args.is_empty() {
        options.handler_args.clone()
    } else {
        host_json.arguments.clone()
    };
    let mut functions = read_functions(&app_dir)?;
    let mut generated = None;
    if functions.is_empty()
        && let Some(generator) = &options.function_generator
    {
        let dir = generate_functions(&executable, generator, &app_dir).await?;
        functions = read_functions(&dir)?;
        generated = Some(dir);
    }
    if functions.is_empty() {
        return Err(HostError::App {
            dir: app_dir,
            message: "no functions: no <Function>/function.json folders".into(),
        });
    }
    let hub = options
        .task_hub
        .clone()
        .unwrap_or(host_json.hub_name.clone());
    let keys = Keys::configure(&options, &settings)?;
    let max_body = max_request_body(&options, &settings)?;
    let mut http_functions = Vec::new();
    for f in &functions {
        if let FunctionKind::Http(trigger) = &f.kind {
            let template =
                RouteTemplate::parse(&trigger.route).map_err(|message| HostError::Config {
                    path: app_dir.join(&f.name).join("function.json"),
                    message,
                })?;
            let clients = f
                .client_bindings()
                .map(|b| {
                    let resolve =
                        |value: Option<&str>| value.map(|v| substitute(v, &settings)).transpose();
                    Ok(DurableClientBinding {
                        name: b.name.to_owned(),
                        task_hub: resolve(b.task_hub)?,
                        connection_name: resolve(b.connection_name)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|message| HostError::Config {
                    path: app_dir.join(&f.name).join("function.json"),
                    message: format!("durableClient binding: {message}"),
                })?;
            http_functions.push(HttpFunction {
                meta: f.clone(),
                trigger: trigger.clone(),
                template,
                clients,
            });
        }
    }

    check_schedules(&functions)?;
    let queue_setup = QueueSetup::new(&app_dir, &functions, &settings, &host_json.queues)?;

    let port = match options.port {
        Some(port) => port,
        None => read_local_http_port(&app_dir)?.unwrap_or(DEFAULT_PORT),
    };
    let listen = SocketAddr::new(options.listen_ip, port);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| HostError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| HostError::Bind {
        addr: listen,
        source,
    })?;
    let base_url = format!("http://localhost:{}", local_addr.port());

    let timeout = host_json
        .function_timeout
        .unwrap_or(options.invocation_timeout);
    let backend = start_backend(&options.backend, &app_dir, &hub, timeout).await?;
    // One client (one channel, one token cache) for the management API and the client endpoint.
    let client = match DurableClient::new(&backend.connection) {
        Ok(client) => client,
        Err(e) => {
            shutdown_embedded(backend.embedded).await;
            return Err(HostError::Backend(format!("client: {e}")));
        }
    };
    let endpoint_config = EndpointConfig {
        hub: hub.clone(),
        durable: host_json.durable_client.clone(),
        settings: settings.clone(),
        orchestrators: functions
            .iter()
            .filter_map(|f| match &f.kind {
                FunctionKind::Orchestrator { orchestration } => Some(orchestration.clone()),
                _ => None,
            })
            .collect(),
    };
    let client_endpoint = match ClientEndpoint::start(client.clone(), endpoint_config).await {
        Ok(endpoint) => endpoint,
        Err(e) => {
            shutdown_embedded(backend.embedded).await;
            return Err(e);
        }
    };

    let mut env: Vec<(String, String)> = settings.clone().into_iter().collect();
    if !env.iter().any(|(k, _)| k == "FUNCTIONS_WORKER_RUNTIME") {
        env.push(("FUNCTIONS_WORKER_RUNTIME".into(), "custom".into()));
    }
    env.extend(options.handler_env.iter().cloned());
    let handler = Handler::start(Launch {
        executable,
        args,
        working_dir: host_json.working_dir.clone(),
        app_root: app_dir.clone(),
        env,
        ready_timeout: options.ready_timeout,
    })
    .await;
    let handler = match handler {
        Ok(h) => h,
        Err(e) => {
            client_endpoint.stop().await;
            shutdown_embedded(backend.embedded).await;
            return Err(e);
        }
    };
    let invoker = Invoker::new(Arc::clone(&handler), timeout, options.ready_timeout)
        .map_err(HostError::Handler)?
        .with_queue_outputs(queue_setup.outputs());

    let catalog = Arc::new(Catalog::new(&functions));
    let mut builder = Worker::builder()
        .connection(backend.connection.clone())
        .executor(
            HttpExecutor::new(
                invoker.clone(),
                Arc::clone(&catalog),
                request_settings(&host_json.durable_task),
            )
            .with_versioning(
                crate::extension::versioning_settings(&host_json.durable_task)
                    .ok()
                    .flatten(),
            ),
        );
    if let Some((orchestrations, activities, entities)) = options.concurrency {
        builder = builder
            .max_concurrent_orchestrations(orchestrations)
            .max_concurrent_activities(activities)
            .max_concurrent_entities(entities);
    }
    let built = builder
        .build()
        .map_err(|e| HostError::Backend(format!("worker: {e}")))
        .map(|worker| (worker, Queues::start(queue_setup, &invoker)));
    let (worker, queues) = match built {
        Ok(parts) => parts,
        Err(e) => {
            handler.stop();
            client_endpoint.stop().await;
            shutdown_embedded(backend.embedded).await;
            return Err(e);
        }
    };
    let worker = worker.start();

    let state = Arc::new(HttpState {
        functions: http_functions,
        invoker: invoker.clone(),
        forward_http: host_json.forward_http,
        route_prefix: host_json.route_prefix.clone(),
        keys: keys.clone(),
        max_body,
        durable: DurableInfo {
            hub: hub.clone(),
            rpc_base_url: client_endpoint.url().to_owned(),
            max_grpc_message_size: host_json.durable_client.max_grpc_message_size,
            orchestrators: catalog.names().0,
            default_version: host_json.durable_client.default_version.clone(),
            overridable_states: host_json.durable_client.overridable_states,
        },
        client,
        base_url: base_url.clone(),
    });
    let (http_stop, mut http_stopped) = watch::channel(false);
    let app = router(state);
    let http_task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = http_stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(target: "host", "HTTP server: {e}");
        }
    });
    let timers = Timers::start(&functions, &invoker, options.run_timers);

    let listing: Vec<String> = functions
        .iter()
        .map(|f| describe(f, &base_url, &host_json.route_prefix))
        .collect();
    let dashboard_url = format!("{base_url}{DASHBOARD_PATH}/");
    let dashboard_keys = if keys.system.is_some() {
        " (asks for the master or durabletask_extension key)"
    } else {
        ""
    };
    tracing::info!(
        target: "host",
        "Functions host listening on {base_url} (task hub {hub:?}, backend {})\n\nDashboard: {dashboard_url}{dashboard_keys}\n\nFunctions:\n\n        {}\n",
        backend.rpc_base_url,
        listing.join("\n        ")
    );
    Ok(HostHandle {
        local_addr,
        base_url,
        task_hub: hub,
        backend_endpoint: backend.rpc_base_url,
        client_endpoint: client_endpoint.url().to_owned(),
        keys,
        handler,
        http_stop,
        generated,
        running: Some(Running {
            worker,
            timers,
            queues,
            http_task,
            client_endpoint,
            backend: backend.embedded,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_outlast_the_invocation_timeout() {
        let timeout = Duration::from_secs(30 * 60);
        assert!(lease_for(timeout) > timeout);
        // `functionTimeout: -1` must stay within what the backend accepts.
        assert_eq!(lease_for(Duration::MAX), durable_backend::MAX_DURATION);
    }
}
