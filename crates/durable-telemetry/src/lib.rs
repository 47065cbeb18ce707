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
//!   which must not change from one replay to the next (see [`durable_core::trace`]).
//!
//! Binaries set everything up with [`init`]: a `fmt` subscriber filtered by `RUST_LOG`, and, with the `otlp`
//! feature, an OTLP exporter switched on and configured by the standard `OTEL_*` environment variables.
//!
//! Spans with history-derived IDs go through the global OpenTelemetry tracer provider, which must use
//! [`HistoryIdGenerator`]; [`init`] installs one, and an application that builds its own provider passes
//! `HistoryIdGenerator::default()` to `with_id_generator` and installs it with
//! `opentelemetry::global::set_tracer_provider`.

#![warn(missing_docs)]

mod emit;
mod ids;
mod init;
mod spans;

pub use durable_core::trace::{SpanKind, SpanRecord, TraceParent, TurnTrace};
pub use emit::emit;
pub use ids::HistoryIdGenerator;
pub use init::{Error, Telemetry, TelemetryOptions, init, init_or_warn};
pub use spans::{
    activity_span, context_of, entity_operation_span, orchestration_turn_span, parent_of, set_parent,
    set_parent_from_proto,
};

/// The instrumentation scope of the spans emitted here, as the SDKs name theirs.
pub const TRACER_NAME: &str = "durabletask";
