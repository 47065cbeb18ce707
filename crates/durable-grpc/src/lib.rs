//! gRPC client and worker for the Durable Task Scheduler (DTS), its emulator, the embedded backend and the Azure
//! Functions host's local endpoint.
#![warn(missing_docs)]

mod auth;
mod client;
mod connection;
mod connection_string;
mod error;
mod history;
mod worker;

pub use auth::{DEFAULT_RESOURCE, credential_from_connection_string};
pub use client::{
    CleanEntityStorageResult, DurableClient, EntityMetadata, EntityQuery, FailureDetails,
    InstanceIdQuery, InstanceQuery, OrchestrationMetadata, OrchestrationStatus, Page, PurgeFilter,
    PurgeResult, StartOptions,
};
pub use connection::{ConnectionOptions, FUNCTIONS_TASK_HUB_HEADER, TASK_HUB_HEADER};
pub use connection_string::{Authentication, ConnectionString};
pub use worker::{
    BoxFuture, Capability, Executor, ExecutorError, Worker, WorkerBuilder, WorkerHandle,
    WorkerOptions,
};

pub use durable_proto as proto;
pub use error::{Error, Result};
