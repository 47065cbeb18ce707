//! Per-invocation log capture, so a function's log lines reach the host's log stream through `Logs`.
//!
//! Two ways in: [`InvocationLogLayer`] (add it to the app's `tracing` subscriber and every event emitted while an
//! invocation runs is captured), and the explicit logger on [`crate::InvocationContext`], which works without it.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Events with this target were already put in the invocation's `Logs` by hand; the layer skips them.
pub(crate) const DIRECT_TARGET: &str = "durable_handler::invocation";

// A reply with unbounded logs could exceed what the host accepts; keep the head, count the rest.
const MAX_LINES: usize = 500;
const MAX_LINE_BYTES: usize = 8 * 1024;

tokio::task_local! {
    static CURRENT: LogSink;
}

#[derive(Debug, Clone, Default)]
pub(crate) struct LogSink(Arc<Mutex<SinkState>>);

#[derive(Debug, Default)]
struct SinkState {
    lines: Vec<String>,
    dropped: usize,
}

impl LogSink {
    pub(crate) fn push(&self, line: String) {
        let mut state = match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.lines.len() >= MAX_LINES {
            state.dropped += 1;
            return;
        }
        let line = truncate(line);
        state.lines.push(line);
    }

    pub(crate) fn take(&self) -> Vec<String> {
        let mut state = match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut lines = std::mem::take(&mut state.lines);
        if state.dropped > 0 {
            lines.push(format!(
                "[durable-handler] {} more log lines were dropped",
                state.dropped
            ));
            state.dropped = 0;
        }
        lines
    }

    /// Runs an async body with this sink as the current invocation's.
    pub(crate) async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// Runs a blocking body with this sink as the current invocation's.
    pub(crate) fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }

    /// Records a line both in `Logs` and in the process's own log.
    pub(crate) fn log(&self, level: Level, message: &str) {
        self.push(format_line(level, message));
        match level {
            Level::ERROR => tracing::error!(target: DIRECT_TARGET, "{message}"),
            Level::WARN => tracing::warn!(target: DIRECT_TARGET, "{message}"),
            Level::INFO => tracing::info!(target: DIRECT_TARGET, "{message}"),
            Level::DEBUG => tracing::debug!(target: DIRECT_TARGET, "{message}"),
            Level::TRACE => tracing::trace!(target: DIRECT_TARGET, "{message}"),
        }
    }
}

fn truncate(mut line: String) -> String {
    if line.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

fn format_line(level: Level, message: &str) -> String {
    // The host logs every line at Information, so the level has to travel in the text.
    format!("[{}] {message}", level.as_str().to_ascii_lowercase())
}

/// A `tracing` layer that copies each event emitted during an invocation into that invocation's `Logs`.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
/// let subscriber = tracing_subscriber::registry().with(durable_handler::InvocationLogLayer::new());
/// let _ = tracing::subscriber::set_global_default(subscriber);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct InvocationLogLayer {
    _private: (),
}

impl InvocationLogLayer {
    /// The layer; it only captures events while an invocation is being handled.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S: Subscriber> Layer<S> for InvocationLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if metadata.target() == DIRECT_TARGET {
            return;
        }
        let _ = CURRENT.try_with(|sink| {
            let mut visitor = LineVisitor::default();
            event.record(&mut visitor);
            let mut message = visitor.message;
            if !visitor.fields.is_empty() {
                if !message.is_empty() {
                    message.push(' ');
                }
                message.push_str(&visitor.fields);
            }
            sink.push(format_line(*metadata.level(), &message));
        });
    }
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.add_field(field, format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.add_field(field, format_args!("{value:?}"));
        }
    }
}

impl LineVisitor {
    fn add_field(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{}={}", field.name(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_lines_and_reports_the_rest() {
        let sink = LogSink::default();
        for i in 0..MAX_LINES + 3 {
            sink.push(format!("line {i}"));
        }
        let lines = sink.take();
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert!(lines.last().unwrap().contains("3 more log lines"));
    }

    #[test]
    fn truncates_long_lines_on_a_char_boundary() {
        let line = truncate("é".repeat(MAX_LINE_BYTES));
        assert!(line.len() <= MAX_LINE_BYTES + 3);
        assert!(line.ends_with("..."));
    }
}
