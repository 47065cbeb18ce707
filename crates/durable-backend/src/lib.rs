//! An embedded Durable Task backend: the `TaskHubSidecarService` gRPC protocol of the Durable Task Scheduler,
//! served from a SQLite file. Microsoft's Durable Task SDKs and this workspace's worker connect to it as they would
//! to the scheduler's emulator (`Endpoint=http://localhost:8080;TaskHub=default;Authentication=None`).
//!
//! ```no_run
//! # async fn run() -> Result<(), durable_backend::Error> {
//! let backend = durable_backend::start(
//!     durable_backend::Options::new()
//!         .with_db_path("./.durable/backend.db")
//!         .with_bind("127.0.0.1:0".parse().unwrap()),
//! )
//! .await?;
//! println!("connect to {}", backend.endpoint());
//! backend.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The backend is a store and a dispatcher, nothing else: it keeps histories, queues and leases, hands work items
//! to workers over `GetWorkItems`, and applies their completions, each in one SQLite transaction.

#![warn(missing_docs)]

mod check;
mod codec;
mod error;
mod options;
mod past_events;
mod server;
mod service;
mod store;

pub use check::{CheckReport, check_database};
pub use error::{Error, StoreError};
pub use options::{EntityFormat, MAX_DURATION, Options, Storage, Synchronous};
pub use past_events::EncodedPastEvents;
pub use server::{Handle, start, start_with_store};
pub use store::{Changes, LeaseRequest, LeasedWork, SqliteStore, Store, StoreFuture, WorkKind};
