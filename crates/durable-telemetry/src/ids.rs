//! Span IDs chosen by the caller: the OpenTelemetry SDK always asks its ID generator, so the generator is where a
//! history-derived ID gets in.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    static NEXT: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// An [`IdGenerator`] that hands out random IDs, except for the span that [`emit`](crate::emit) is building on
/// this thread, which gets the ID the engine derived from history. Install it in the tracer provider that the
/// global tracer uses.
#[derive(Debug, Default)]
pub struct HistoryIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for HistoryIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        match NEXT.with(Cell::get) {
            Some((trace_id, _)) => trace_id,
            None => self.random.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match NEXT.with(Cell::take) {
            Some((_, span_id)) => span_id,
            None => self.random.new_span_id(),
        }
    }
}

/// Runs `build` with the next span's IDs fixed; whatever `build` does not use is cleared afterwards.
pub(crate) fn with_ids<T>(trace_id: TraceId, span_id: SpanId, build: impl FnOnce() -> T) -> T {
    NEXT.with(|next| next.set(Some((trace_id, span_id))));
    let built = build();
    NEXT.with(|next| next.set(None));
    built
}
