//! A web dashboard for Durable Task orchestrations and entities: what the Durable Task Scheduler's dashboard shows,
//! for any `TaskHubSidecarService` endpoint a [`DurableClient`] reaches (the embedded backend, the scheduler, its
//! emulator, the local Functions host's client endpoint).
//!
//! [`router`] returns an axum [`Router`](axum::Router) with the pages (plain HTML, CSS and JavaScript compiled into
//! the library: no CDN, no network at run time) and the small JSON API they call. Mount it anywhere:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use durable_dashboard::DashboardOptions;
//! use durable_grpc::DurableClient;
//!
//! let client = DurableClient::from_connection_string(
//!     "Endpoint=http://localhost:8080;TaskHub=default;Authentication=None",
//! )?;
//! let app = axum::Router::new().nest_service(
//!     "/dashboard",
//!     durable_dashboard::router(client, DashboardOptions::new().with_task_hubs(["default"])),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8082").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! or let [`start`] serve it on a port of its own. Pages: the instance list (status, name, instance ID and creation
//! time filters, paging, auto-refresh), one instance (input, output, custom status, failure details with their
//! inner failures, the history as a table and as a timeline, parent and sub-orchestrations, and the actions raise
//! event, suspend, resume, terminate, rewind, restart and purge, each confirmed first), and the entities (state,
//! lock holder, backlog).
//!
//! Everything is paged and filtered by the backend except the name filter, which the protocol does not have: the
//! dashboard reads pages of instances and keeps the matching ones, at most
//! [`DashboardOptions::with_name_scan_limit`] instances per request (see the README).
#![warn(missing_docs)]

mod api;
mod assets;
mod cursor;
mod error;
mod options;
mod server;
mod timeline;
mod view;

pub use error::DashboardError;
pub use options::{ApiGuard, DashboardOptions};
pub use server::{DashboardServer, start};

use durable_grpc::DurableClient;

/// The dashboard's pages, assets and JSON API for `client`'s task hub (and the other hubs in the options).
///
/// Nest it under any path (`Router::nest_service("/dashboard", ...)`) or serve it at the root: the pages find their
/// assets and API relative to where they were served from.
pub fn router(client: DurableClient, options: DashboardOptions) -> axum::Router {
    let state = std::sync::Arc::new(api::AppState::new(client, options));
    assets::routes().merge(api::routes(state))
}
