//! gRPC client and worker for the Durable Task Scheduler (DTS), its emulator, the embedded backend and the Azure
//! Functions host's local endpoint.
//!
//! A [`Worker`] takes work items from the scheduler's `GetWorkItems` stream and runs them through the engine's
//! `Registry` (or any [`Executor`]); a [`DurableClient`] starts and manages instances. Both connect with
//! [`ConnectionOptions`], usually built from a scheduler connection string.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use durable_core::{ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry};
//! use durable_grpc::{ConnectionOptions, DurableClient, StartOptions, Worker};
//!
//! async fn greet(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
//!     Ok(ctx.call_activity::<_, String>("say_hello", name).await?)
//! }
//!
//! async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello {name}!"))
//! }
//!
//! # async fn run() -> Result<(), durable_grpc::Error> {
//! let mut registry = Registry::new();
//! registry.add_orchestrator("greet", greet).add_activity("say_hello", say_hello);
//!
//! // The emulator; in Azure: "Endpoint=https://<scheduler>.durabletask.io;TaskHub=<hub>;Authentication=ManagedIdentity".
//! let connection =
//!     ConnectionOptions::from_connection_string("Endpoint=http://localhost:8080;TaskHub=default;Authentication=None")?;
//! let worker = Worker::builder().connection(connection.clone()).registry(registry).build()?.start();
//!
//! let client = DurableClient::new(&connection)?;
//! let id = client.schedule_new_orchestration("greet", "Tokyo", StartOptions::new()).await?;
//! let done = client.wait_for_completion(&id, true, Duration::from_secs(30)).await?;
//! assert_eq!(done.output::<String>()?.as_deref(), Some("Hello Tokyo!"));
//!
//! worker.shutdown().await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod auth;
mod client;
mod connection;
mod connection_string;
mod error;
mod history;
pub mod http_activity;
mod worker;

pub use auth::{DEFAULT_RESOURCE, credential_from_connection_string};
pub use client::EntityClient;
pub use client::{
    CleanEntityStorageResult, DurableClient, EntityMetadata, EntityQuery, FailureDetails,
    InstanceIdQuery, InstanceQuery, OrchestrationMetadata, OrchestrationStatus, Page, PurgeFilter,
    PurgeResult, StartOptions,
};
pub use connection::{
    ConnectionOptions, DEFAULT_MAX_MESSAGE_BYTES, FUNCTIONS_CONNECTION_NAME_HEADER,
    FUNCTIONS_TASK_HUB_HEADER, MAX_TIMEOUT, TASK_HUB_HEADER,
};
pub use connection_string::{Authentication, ConnectionString};
pub use worker::{
    BoxFuture, Capability, Executor, ExecutorError, Worker, WorkerBuilder, WorkerHandle,
    WorkerOptions,
};

pub use durable_proto as proto;
pub use error::{Error, Result};
