//! Azure Functions custom handler for Durable Functions written in Rust.
//!
//! The Functions host starts the app's executable and calls it over HTTP: `POST /<FunctionName>` with
//! `{"Data", "Metadata"}`, answered with `{"Outputs", "Logs", "ReturnValue"}`. This crate is that HTTP surface:
//! it decodes the durable triggers (orchestrator, entity, activity) and hands them to the
//! [`durable_core::Registry`], gives HTTP starters a client for the `durableClient` binding, runs ordinary HTTP,
//! queue and timer functions, and writes the `function.json` files that declare all of them to the host.
//!
//! ```no_run
//! use durable_handler::{FunctionApp, HttpTrigger, AuthLevel};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = durable_core::Registry::new();
//! // registry.add_orchestrator(...), add_activity(...), add_entity(...)
//! let handler = FunctionApp::new(registry)
//!     .http_starter(
//!         "HttpStart",
//!         HttpTrigger::new().route("start/{name}").methods(["post"]).auth_level(AuthLevel::Anonymous),
//!         |req, client, _ctx| async move {
//!             let name = req.param("name").unwrap_or_default().to_owned();
//!             let input: serde_json::Value = req.json()?;
//!             let id = client.schedule_new_orchestration(&name, &input, durable_grpc::StartOptions::new()).await?;
//!             Ok(client.create_check_status_response(&id))
//!         },
//!     )
//!     .build()?;
//! handler.write_function_files(std::path::Path::new("."))?; // one folder per function
//! durable_handler::serve(handler).await?;                   // 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT
//! # Ok(()) }
//! ```
//!
//! Activity failures travel as a 200 whose `ReturnValue` is [`durable_core::failure_envelope`], because the host
//! drops the body of any non-2xx reply. See the crate README for the wire format decisions.
#![warn(missing_docs)]

mod app;
mod client;
mod client_binding;
mod context;
mod dispatch;
mod envelope;
mod error;
mod function_json;
mod http_types;
mod logs;
mod options;
mod reply;
mod routes;
mod server;
mod triggers;

pub use app::{FunctionApp, Handler};
pub use client::DurableFunctionsClient;
pub use client_binding::{ClientBinding, HttpManagementPayload};
pub use context::InvocationContext;
pub use error::{BuildError, FunctionError, ServeError};
pub use http_types::{BodyError, HttpRequest, HttpResponse};
pub use logs::InvocationLogLayer;
pub use options::HandlerOptions;
pub use server::{app, port_from_env, serve, serve_listener};
pub use triggers::{
    AuthLevel, HttpTrigger, OutputBinding, QueueTrigger, ScheduleStatus, TimerInfo, TimerTrigger,
};
