//! Durable Functions in Rust on Azure Functions, as one dependency.
//!
//! Write orchestrators, activities and entities, put them in a [`FunctionApp`] with the HTTP functions that start
//! them, and hand the app to [`run`]. The executable that comes out is the whole app: `cargo run` serves it on
//! <http://localhost:7071> with the local Functions host and the embedded backend, Azure Functions runs it as its
//! custom handler, and `cargo run -- package` turns it into the zip that Azure deploys.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! use azure_durable_functions::{
//!     ActivityContext, ActivityError, AuthLevel, DurableFunctionsClient, FunctionApp, FunctionError, HttpRequest,
//!     HttpResponse, HttpTrigger, InvocationContext, OrchestrationContext, OrchestrationError, Registry,
//!     StartOptions,
//! };
//!
//! /// The orchestrator: replayed from its history, so it only decides; the work happens in activities.
//! async fn greet(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
//!     let greeting: String = ctx.call_activity("SayHello", name).await?;
//!     Ok(greeting)
//! }
//!
//! /// An activity: ordinary async Rust, free to do I/O.
//! async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello {name}!"))
//! }
//!
//! /// `POST /api/greet?name=Rust` starts an orchestration and answers 202 with its status URLs.
//! async fn start(
//!     req: HttpRequest,
//!     client: DurableFunctionsClient,
//!     _ctx: InvocationContext,
//! ) -> Result<HttpResponse, FunctionError> {
//!     let name = req.query_param("name").unwrap_or("world").to_owned();
//!     let id = client.schedule_new_orchestration("Greet", &name, StartOptions::new()).await?;
//!     Ok(client.create_check_status_response(&id))
//! }
//!
//! fn app() -> FunctionApp {
//!     let mut registry = Registry::new();
//!     registry.add_orchestrator("Greet", greet).add_activity("SayHello", say_hello);
//!     FunctionApp::new(registry).http_starter(
//!         "HttpStart",
//!         HttpTrigger::new().route("greet").methods(["post"]).auth_level(AuthLevel::Anonymous),
//!         start,
//!     )
//! }
//!
//! fn main() -> ExitCode {
//!     azure_durable_functions::run(app())
//! }
//! ```
//!
//! # The command line every app gets
//!
//! [`run`] reads the command line; `cargo run -- <command>` passes one.
//!
//! | command | what it does |
//! |---|---|
//! | `start [--port N] [--app-dir DIR] [--in-memory]` (the default) | the local Functions host on `:7071` (or `Host.LocalHttpPort`) with the embedded backend, running this executable as its custom handler; prints `listening on <url>` |
//! | `handler` (automatic when `FUNCTIONS_CUSTOMHANDLER_PORT` is set) | the custom handler the Functions host starts, in Azure and under `func start` |
//! | `worker [--connection-string CS]` | the durable functions as a gRPC worker against the Durable Task Scheduler, its emulator or the embedded backend, outside Functions (`DURABLE_TASK_SCHEDULER_CONNECTION_STRING`) |
//! | `functions write [--dir DIR]` | one `<Function>/function.json` folder per function, from the registrations |
//! | `new <dir>` | a new app from the template (also `azure-durable-functions new <dir>`) |
//! | `package [--out DIR]` | the zip for `az functionapp deployment source config-zip`, checked, and the commands that deploy it |
//! | `replay-check [--connection-string CS \| --from FILE] [--running-only] [--instance ID]` | replays recorded histories with this code and lists every instance it no longer matches (event, sequence number, expected and found); exits 1 if there is one (see [`replay`]) |
//! | `export-histories --out FILE [--connection-string CS]` | writes the backend's histories to a file, one instance per line, for `replay-check --from` |
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`), without colours when stderr is not a terminal.
//!
//! # A tour
//!
//! ## Orchestrators
//!
//! An orchestrator is an `async fn(OrchestrationContext, Input) -> Result<Output, OrchestrationError>`; inputs and
//! outputs are anything serde can read and write. Its code is replayed from the instance's history after every
//! step, so it must decide the same way every time: time, IDs and logging come from the context, and the waiting
//! is done with durable calls (activities, timers, events, sub-orchestrations, entities).
//!
//! ```
//! use std::time::Duration;
//!
//! use azure_durable_functions::{OrchestrationContext, OrchestrationError, RetryPolicy, when_all};
//!
//! /// Fan-out/fan-in: one activity per city in parallel, each retried up to three times.
//! async fn count_letters(ctx: OrchestrationContext, cities: Vec<String>) -> Result<u64, OrchestrationError> {
//!     let retry = RetryPolicy::new(3, Duration::from_secs(1));
//!     let calls = cities
//!         .into_iter()
//!         .map(|city| ctx.call_activity_with_retry::<_, u64>("CountLetters", city, retry.clone()))
//!         .collect::<Vec<_>>();
//!     let counts = when_all(calls).await.into_iter().collect::<Result<Vec<_>, _>>()?;
//!     // A durable timer: the instance sleeps in the backend, not in this process.
//!     ctx.create_timer_after(Duration::from_secs(5)).await?;
//!     Ok(counts.iter().sum())
//! }
//! # let _ = count_letters;
//! ```
//!
//! ## Activities
//!
//! Activities do the work: I/O, calls to other services, anything non-deterministic. An error fails the call in
//! the orchestrator (as a [`TaskError`] carrying the type and message); a non-retriable one skips the retries.
//!
//! ```
//! use azure_durable_functions::{ActivityContext, ActivityError};
//!
//! async fn count_letters(ctx: ActivityContext, city: String) -> Result<u64, ActivityError> {
//!     if city.trim().is_empty() {
//!         return Err(ActivityError::non_retriable("a city needs a name"));
//!     }
//!     tracing::info!(instance = %ctx.instance_id(), %city, "counting");
//!     Ok(city.chars().filter(|c| c.is_alphabetic()).count() as u64)
//! }
//! # let _ = count_letters;
//! # use azure_durable_functions::tracing;
//! ```
//!
//! ## Entities
//!
//! An entity is named, typed state (`@counter@greetings` is the `Counter` entity with key `greetings`) with
//! operations that run one at a time. Orchestrators call them (`ctx.call_entity`, and wait for the result) or
//! signal them (`ctx.signal_entity`, one-way); HTTP functions signal them and read their state through the client.
//!
//! ```
//! use azure_durable_functions::{Entity, EntityError, Registry};
//!
//! let counter = Entity::<i64>::new()
//!     .operation("add", |total: &mut i64, _ctx, amount: i64| {
//!         *total = total.checked_add(amount).ok_or_else(|| EntityError::msg("overflow"))?;
//!         Ok(*total)
//!     })
//!     .operation("get", |total: &mut i64, _ctx, _: ()| Ok::<_, EntityError>(*total));
//! let mut registry = Registry::new();
//! registry.add_entity("Counter", counter);
//! // Entity names are case-insensitive; the registry keeps them in lower case, as entity IDs spell them.
//! assert_eq!(registry.entity_names(), ["counter"]);
//! ```
//!
//! ## HTTP starters and other triggers
//!
//! A [`FunctionApp`] adds ordinary functions to the registry's durable ones. An HTTP starter gets a
//! [`DurableFunctionsClient`] (the `durableClient` binding) to start and manage instances; plain HTTP, queue and
//! timer functions are there too, and every function becomes a `function.json` written from the code.
//!
//! ```
//! use azure_durable_functions::{
//!     AuthLevel, DurableFunctionsClient, FunctionApp, FunctionError, HttpRequest, HttpResponse, HttpTrigger,
//!     InvocationContext, Registry, StartOptions, StatusCode,
//! };
//!
//! /// `POST /api/orchestrators/{name}` with the input as the JSON body.
//! async fn http_start(
//!     req: HttpRequest,
//!     client: DurableFunctionsClient,
//!     _ctx: InvocationContext,
//! ) -> Result<HttpResponse, FunctionError> {
//!     let name = req.param("name").unwrap_or_default().to_owned();
//!     let Ok(input) = req.json::<serde_json::Value>() else {
//!         return Ok(HttpResponse::text("the body must be JSON").status(StatusCode::BAD_REQUEST));
//!     };
//!     let id = client.schedule_new_orchestration(&name, &input, StartOptions::new()).await?;
//!     Ok(client.create_check_status_response(&id))
//! }
//! # use azure_durable_functions::serde_json;
//!
//! let handler = FunctionApp::new(Registry::new())
//!     .http_starter(
//!         "HttpStart",
//!         HttpTrigger::new().route("orchestrators/{name}").methods(["post"]).auth_level(AuthLevel::Anonymous),
//!         http_start,
//!     )
//!     .build()?;
//! let (name, function_json) = &handler.function_json()?[0];
//! assert_eq!(name, "HttpStart");
//! assert_eq!(function_json["bindings"][1]["type"], "durableClient");
//! # Ok::<(), azure_durable_functions::BuildError>(())
//! ```
//!
//! ## The client, and running it all in one process
//!
//! [`DurableClient`] starts, queries, signals and manages instances over gRPC, from anywhere: a tool, a test, a
//! service next to the app. Here the embedded backend, a [`Worker`] running the registry and a client share one
//! process: what the `worker` command does against a scheduler.
//!
//! ```
//! use std::time::Duration;
//!
//! use azure_durable_functions::{
//!     ActivityContext, ActivityError, ConnectionOptions, DurableClient, Entity, EntityError, EntityId,
//!     OrchestrationContext, OrchestrationError, OrchestrationStatus, Registry, StartOptions, Worker, backend,
//! };
//!
//! async fn greet(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
//!     let greeting: String = ctx.call_activity("SayHello", name).await?;
//!     let total: i64 = ctx.call_entity(&EntityId::new("Counter", "greetings"), "add", 1).await?;
//!     Ok(format!("{greeting} (greeting number {total})"))
//! }
//!
//! async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello {name}!"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::new();
//! registry.add_orchestrator("Greet", greet).add_activity("SayHello", say_hello).add_entity(
//!     "Counter",
//!     Entity::<i64>::new().operation("add", |n: &mut i64, _ctx, by: i64| {
//!         *n += by;
//!         Ok::<_, EntityError>(*n)
//!     }),
//! );
//!
//! let store = backend::start(backend::Options::new().in_memory().with_bind("127.0.0.1:0".parse()?)).await?;
//! let connection = ConnectionOptions::new(store.endpoint());
//! let worker = Worker::builder().connection(connection.clone()).registry(registry).build()?.start();
//!
//! let client = DurableClient::new(&connection)?;
//! let id = client.schedule_new_orchestration("Greet", "Rust", StartOptions::new()).await?;
//! let done = client.wait_for_completion(&id, true, Duration::from_secs(30)).await?;
//! assert_eq!(done.status, OrchestrationStatus::Completed);
//! assert_eq!(done.output::<String>()?.as_deref(), Some("Hello Rust! (greeting number 1)"));
//!
//! worker.shutdown().await?;
//! store.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `local-host` (default): the local Functions host behind `start`, re-exported as [`host`]. An app that only
//!   deploys can do without it (`default-features = false`): its `start` command then says so.
//! - `embedded-backend` (default, through `local-host`): the embedded backend, re-exported as [`backend`].
//!
//! The building blocks are re-exported whole as [`engine`], [`handler`] and [`client`] for what the top level leaves
//! out.
#![warn(missing_docs)]

mod cli;
mod error;
pub mod new_app;
pub mod package;
pub mod replay;

pub use cli::{RunError, run, run_with_args};
pub use error::Error;

/// The replay engine and authoring API (`durable-core`); not called `core`, which would shadow the language's.
pub use durable_core as engine;
/// The gRPC client and worker (`durable-grpc`).
pub use durable_grpc as client;
/// The custom handler (`durable-handler`).
pub use durable_handler as handler;
/// Distributed tracing (`durable-telemetry`): span helpers, `HistoryIdGenerator`, and `init` from `OTEL_*`.
pub use durable_telemetry as telemetry;

/// The embedded backend (`durable-backend`): the scheduler's gRPC protocol served from SQLite.
#[cfg(feature = "embedded-backend")]
pub use durable_backend as backend;
/// The local Functions host (`durable-host`): what `func start` and the Durable extension do.
#[cfg(feature = "local-host")]
pub use durable_host as host;

/// Durable HTTP (`ctx.call_http`, see `durable_core::http`).
pub use durable_core::http::{DurableHttpRequest, DurableHttpResponse, ManagedIdentityTokenSource};
/// Unit tests without a backend: the turn-by-turn harness and the in-process runtime.
pub use durable_core::testing;
/// Typed functions (see `durable_core::typed`): declare with `activity!`, `orchestrator!` and `entity!`, then
/// register, call, signal and start through the declarations.
pub use durable_core::{
    Activity, EntityOperation, EntityType, Orchestrator, activity, entity, orchestrator,
};
pub use durable_core::{
    ActivityContext, ActivityError, CallOptions, ContinueAsNewOptions, Entity, EntityContext,
    EntityError, EntityId, OrchestrationContext, OrchestrationError, Registry, RetryPolicy,
    TaskError, when_all, when_any,
};
/// Retry handlers (see `durable_core::RetryHandler`) and versioning (see `durable_core::versioning`).
pub use durable_core::{
    CancellationToken, RetryContext, RetryHandler, VersionFailureStrategy, VersionMatchStrategy,
    Versioning,
};
pub use durable_grpc::{
    ConnectionOptions, DurableClient, OrchestrationMetadata, OrchestrationStatus, StartOptions,
    Worker,
};
pub use durable_handler::{
    AuthLevel, BuildError, DurableFunctionsClient, FunctionApp, FunctionError, Handler,
    HttpRequest, HttpResponse, HttpTrigger, InvocationContext, OutputBinding, QueueTrigger,
    TimerInfo, TimerTrigger,
};

/// HTTP status codes for [`HttpResponse::status`].
pub use axum::http::StatusCode;
/// Re-exported for inputs, outputs and HTTP bodies that are plain JSON.
pub use serde_json;
/// Re-exported so that an app logs without a dependency of its own; the invocation's logs reach the host.
pub use tracing;
