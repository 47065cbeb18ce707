//! Span IDs chosen by the caller: the OpenTelemetry SDK always asks its ID generator, so the generator is where a
//! history-derived ID gets in.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    // Two cells, each taken by its own question: the SDK asks for the span ID first and for a trace ID only when
    // the span has no parent, and neither answer may leak into the next span.
    static NEXT_TRACE: Cell<Option<TraceId>> = const { Cell::new(None) };
    static NEXT_SPAN: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// An [`IdGenerator`] that hands out random IDs, except for the span that [`emit`](crate::emit) is building on
/// this thread, which gets the IDs the engine derived from history. Install it in the tracer provider that the
/// global tracer uses.
#[derive(Debug, Default)]
pub struct HistoryIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for HistoryIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE
            .with(Cell::take)
            .unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_SPAN
            .with(Cell::take)
            .unwrap_or_else(|| self.random.new_span_id())
    }
}

/// Runs `build` with the next span's IDs fixed; whatever `build` does not use is cleared afterwards.
pub(crate) fn with_ids<T>(trace_id: TraceId, span_id: SpanId, build: impl FnOnce() -> T) -> T {
    NEXT_TRACE.with(|next| next.set(Some(trace_id)));
    NEXT_SPAN.with(|next| next.set(Some(span_id)));
    let built = build();
    NEXT_TRACE.with(|next| next.set(None));
    NEXT_SPAN.with(|next| next.set(None));
    built
}
