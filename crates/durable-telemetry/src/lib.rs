//! Distributed tracing for durable-rust.
//!
//! W3C trace context travels through the Durable Task protocol's `parentTraceContext` fields; this crate turns it
//! into spans. Transports (the gRPC worker and client, the custom handler, the local host) use it to:
//!
//! - open `tracing` spans under a context that came over the wire ([`set_parent`], [`activity_span`],
//!   [`orchestration_turn_span`], [`entity_operation_span`]), so that a subscriber with a
//!   [`tracing_opentelemetry`] layer puts them in the caller's trace;
//! - read the context of a span, to send it on ([`context_of`]);
//! - emit the spans the replay engine finished in a turn ([`emit`]) with the IDs and times it derived from history,
//!   which must not change from one replay to the next (see [`durable_core::trace`]);
//! - do both for a whole turn ([`orchestration_turn`], [`try_orchestration_turn`]): run it in its span, then emit
//!   what it finished, computing nothing from the history when no subscriber takes the spans.
//!
//! Binaries set everything up with [`init`]: a `fmt` subscriber filtered by `RUST_LOG`, and, with the `otlp`
//! feature, an OTLP exporter switched on and configured by the standard `OTEL_*` environment variables. They wait
//! for their stop request (Ctrl-C, SIGTERM) with [`StopSignal`], which keeps a signal sent while they were busy.
//!
//! ```no_run
//! # async fn run() {
//! // Logs on stderr (RUST_LOG); spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER=otlp)
//! // is set, to OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf or grpc), as OTEL_SERVICE_NAME or "orders".
//! let telemetry = durable_telemetry::init_or_warn(durable_telemetry::TelemetryOptions::new("orders"));
//! // ... run the worker, the handler or the host ...
//! telemetry.shutdown(); // exports what is still buffered (dropping it does too)
//! # }
//! ```
//!
//! Spans with history-derived IDs go through the **global** OpenTelemetry tracer provider, which must use
//! [`HistoryIdGenerator`]; [`init`] installs one. An application with a subscriber and a provider of its own
//! passes the generator to the provider, installs the provider globally, and adds a [`tracing_opentelemetry`]
//! layer (the crates are re-exported here, so the versions match):
//!
//! ```
//! use durable_telemetry::opentelemetry::trace::TracerProvider as _;
//! use durable_telemetry::opentelemetry_sdk::trace::SdkTracerProvider;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let provider = SdkTracerProvider::builder()
//!     .with_id_generator(durable_telemetry::HistoryIdGenerator::default())
//!     // .with_batch_exporter(your exporter), a sampler, a resource...
//!     .build();
//! durable_telemetry::opentelemetry::global::set_tracer_provider(provider.clone());
//! let subscriber = tracing_subscriber::registry()
//!     .with(durable_telemetry::tracing_opentelemetry::layer().with_tracer(provider.tracer("my-app")));
//! let _guard = tracing::subscriber::set_default(subscriber); // or set_global_default
//! ```

#![warn(missing_docs)]

/// The OpenTelemetry API this crate is built on, for applications that set up their own provider.
pub use opentelemetry;
/// The OpenTelemetry SDK this crate is built on (its `SdkTracerProvider` takes [`HistoryIdGenerator`]).
pub use opentelemetry_sdk;
/// The `tracing` layer that turns `tracing` spans into OpenTelemetry spans.
pub use tracing_opentelemetry;

mod emit;
#[cfg(feature = "otlp")]
mod exporter;
mod ids;
mod init;
mod spans;
mod stop;
mod turn;

pub use durable_core::trace::{SpanKind, SpanRecord, TraceParent, TurnTrace};
pub use emit::emit;
pub use ids::HistoryIdGenerator;
pub use init::{Error, Telemetry, TelemetryOptions, init, init_or_warn};
pub use spans::{
    activity_span, context_of, entity_operation_span, orchestration_turn_span, parent_of,
    set_parent, set_parent_from_proto,
};
pub use stop::StopSignal;
pub use turn::{orchestration_turn, try_orchestration_turn};

/// The instrumentation scope of the spans emitted here, as the SDKs name theirs.
pub const TRACER_NAME: &str = "durabletask";
