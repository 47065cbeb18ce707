//! Emitting the engine's finished spans through the global OpenTelemetry tracer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use durable_core::trace::{SpanKind, SpanRecord};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue, global};

use crate::ids::with_ids;

/// Emits one span the engine finished, with its own IDs, parent and times. Spans of work that is only replayed are
/// never in a turn's list, so calling this for every [`TurnTrace`](crate::TurnTrace) span of every turn emits
/// each span once.
///
/// Also logs it at `debug` as a `tracing` event, for subscribers without OpenTelemetry.
pub fn emit(record: &SpanRecord) {
    tracing::debug!(
        target: "durabletask::span",
        name = %record.name,
        trace_id = %record.context.trace_id_hex(),
        span_id = %record.context.span_id_hex(),
        error = record.error.as_deref(),
        "span finished"
    );
    let tracer = global::tracer(crate::TRACER_NAME);
    let trace_id = TraceId::from_bytes(record.context.trace_id);
    let span_id = SpanId::from_bytes(record.context.span_id);
    let flags = TraceFlags::new(record.context.flags);
    let state = record
        .trace_state
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let parent = match record.parent_span_id {
        Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
            trace_id,
            SpanId::from_bytes(parent),
            flags,
            true,
            state,
        )),
        None => Context::new(),
    };
    let attributes: Vec<KeyValue> = record
        .attributes
        .iter()
        .map(|(k, v)| KeyValue::new(*k, v.clone()))
        .collect();
    let builder = tracer
        .span_builder(record.name.clone())
        .with_kind(kind(record.kind))
        .with_start_time(SystemTime::from(record.start))
        .with_attributes(attributes);
    let mut span = with_ids(trace_id, span_id, || {
        builder.start_with_context(&tracer, &parent)
    });
    let built = span.span_context();
    if built.is_valid() && (built.span_id() != span_id || built.trace_id() != trace_id) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the global tracer provider does not use durable_telemetry::HistoryIdGenerator: orchestration, \
                 call and timer spans get random IDs and their children lose their parent"
            );
        }
    }
    if let Some(message) = &record.error {
        span.set_status(Status::error(message.clone()));
    }
    match record.end {
        Some(end) => span.end_with_timestamp(SystemTime::from(end)),
        None => span.end(),
    }
}

fn kind(kind: SpanKind) -> opentelemetry::trace::SpanKind {
    match kind {
        SpanKind::Internal => opentelemetry::trace::SpanKind::Internal,
        SpanKind::Server => opentelemetry::trace::SpanKind::Server,
        SpanKind::Client => opentelemetry::trace::SpanKind::Client,
        SpanKind::Producer => opentelemetry::trace::SpanKind::Producer,
    }
}
