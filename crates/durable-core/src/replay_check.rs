//! The replay check: run the current code against recorded histories before deploying it, and learn which
//! instances it would no longer replay.
//!
//! Orchestrator code must make the same decisions for the same history. A change that breaks this (a call added,
//! removed or reordered, a timer where there was an activity, an orchestrator renamed or its input type changed)
//! fails every instance that was in flight when the new code arrived, with a `NonDeterminismError`. The check
//! finds those instances beforehand: [`check_histories`] replays each recorded history with the registry's code,
//! without I/O, and reports per instance the first place where the code departs from it: the history event, the
//! sequence number of the action, what the history recorded and what the code did.
//!
//! It compares what a worker compares in a real turn, and more, because a whole history shows where each turn
//! ended: an action the code takes that the recorded turn did not take is reported too, and so is an end that
//! differs from the recorded `ExecutionCompleted` (a different status, or no end at all). Outputs are not compared:
//! a new result is a change of behaviour, not a replay failure.
//!
//! ```
//! use durable_core::proto::{self, history_event::EventType};
//! use durable_core::replay_check::{MismatchKind, RecordedHistory, ReplayCheckOptions, check_histories};
//! use durable_core::{OrchestrationContext, OrchestrationError, Registry};
//!
//! // Version 1 called "Charge"; version 2 calls "Reserve" first.
//! async fn checkout_v2(ctx: OrchestrationContext, order: String) -> Result<(), OrchestrationError> {
//!     ctx.call_activity::<_, ()>("Reserve", &order).await?;
//!     ctx.call_activity::<_, ()>("Charge", &order).await?;
//!     Ok(())
//! }
//! let mut registry = Registry::new();
//! registry.add_orchestrator("Checkout", checkout_v2);
//!
//! // A history recorded with version 1: started, then "Charge" scheduled as action 0.
//! let event = |id, event_type| proto::HistoryEvent { event_id: id, timestamp: None, event_type: Some(event_type) };
//! let history = RecordedHistory::new(
//!     "order-7",
//!     vec![
//!         event(-1, EventType::OrchestratorStarted(Default::default())),
//!         event(-1, EventType::ExecutionStarted(proto::ExecutionStartedEvent {
//!             name: "Checkout".into(),
//!             input: Some(r#""o-7""#.into()),
//!             ..Default::default()
//!         })),
//!         event(0, EventType::TaskScheduled(proto::TaskScheduledEvent { name: "Charge".into(), ..Default::default() })),
//!     ],
//! );
//!
//! let report = check_histories(&registry, [&history], &ReplayCheckOptions::new());
//! assert!(!report.is_clean());
//! let (instance, mismatch) = report.mismatches().next().unwrap();
//! assert_eq!(instance.instance_id, "order-7");
//! assert_eq!(mismatch.kind, MismatchKind::NonDeterminism);
//! assert_eq!(mismatch.sequence_number, Some(0));
//! assert_eq!(mismatch.expected, "TaskScheduled 'Charge'");
//! assert_eq!(mismatch.found, "ScheduleTask 'Reserve'");
//! ```
//!
//! Histories come from wherever they are kept: a backend's `StreamInstanceHistory` (the gRPC client's
//! `get_history`), or files in the export format of [`RecordedHistory::to_export_line`], one instance per line.
//! The `replay-check` command of the `azure-durable-functions` facade does both.

use std::fmt;

use base64::Engine as _;
use prost::Message as _;

use crate::orchestration::check;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::registry::Registry;

/// The value of the `format` field of every export line.
pub const EXPORT_FORMAT: &str = "durable-history/1";

/// One instance's recorded history, oldest event first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedHistory {
    /// The instance id.
    pub instance_id: String,
    /// The history, as a backend's `StreamInstanceHistory` returns it.
    pub events: Vec<proto::HistoryEvent>,
}

/// An export line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
#[non_exhaustive]
pub struct HistoryFormatError {
    /// The 1-based line number (1 for a single line).
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportLine {
    format: String,
    instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    orchestrator: Option<String>,
    /// The events as one `HistoryChunk` message, protobuf-encoded and base64-encoded: exact, whatever the event.
    history: String,
}

impl RecordedHistory {
    /// A history of `instance_id`.
    pub fn new(instance_id: impl Into<String>, events: Vec<proto::HistoryEvent>) -> Self {
        Self {
            instance_id: instance_id.into(),
            events,
        }
    }

    /// The orchestrator name in the history's `ExecutionStarted`.
    pub fn orchestrator(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => Some(s.name.as_str()),
            _ => None,
        })
    }

    /// One line of the export format (no newline): a JSON object with `format` ([`EXPORT_FORMAT`]),
    /// `instanceId`, `orchestrator` (informative) and `history`, the events as one protobuf `HistoryChunk` message
    /// in standard base64, so that every field of every event survives as the backend sent it.
    pub fn to_export_line(&self) -> String {
        let chunk = proto::HistoryChunk {
            events: self.events.clone(),
        };
        let line = ExportLine {
            format: EXPORT_FORMAT.to_owned(),
            instance_id: self.instance_id.clone(),
            orchestrator: self.orchestrator().map(str::to_owned),
            history: base64::engine::general_purpose::STANDARD.encode(chunk.encode_to_vec()),
        };
        // A struct of strings always serializes.
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Reads one line of the export format.
    pub fn from_export_line(line: &str) -> Result<Self, HistoryFormatError> {
        parse_line(line).map_err(|message| HistoryFormatError { line: 1, message })
    }
}

fn parse_line(line: &str) -> Result<RecordedHistory, String> {
    let parsed: ExportLine =
        serde_json::from_str(line).map_err(|e| format!("not an export line: {e}"))?;
    if parsed.format != EXPORT_FORMAT {
        return Err(format!(
            "unknown format '{}' (expected '{EXPORT_FORMAT}')",
            parsed.format
        ));
    }
    if parsed.instance_id.is_empty() {
        return Err("the instance id is empty".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(parsed.history.as_bytes())
        .map_err(|e| format!("history is not base64: {e}"))?;
    let chunk = proto::HistoryChunk::decode(bytes.as_slice())
        .map_err(|e| format!("history is not a protobuf HistoryChunk: {e}"))?;
    Ok(RecordedHistory::new(parsed.instance_id, chunk.events))
}

/// Reads a whole export (one [`RecordedHistory::to_export_line`] per line; blank lines are skipped).
pub fn read_export(text: &str) -> Result<Vec<RecordedHistory>, HistoryFormatError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            parse_line(line).map_err(|message| HistoryFormatError {
                line: index + 1,
                message,
            })
        })
        .collect()
}

/// What kind of departure from the history was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MismatchKind {
    /// A history event confirms an action the code did not take, or took differently (the engine's
    /// `NonDeterminismError`).
    NonDeterminism,
    /// The code took an action the recorded turn did not take.
    UnexpectedAction,
    /// The code ends differently from the recorded `ExecutionCompleted`, or ends where the instance did not.
    Completion,
    /// The history's orchestrator is not registered.
    OrchestratorNotFound,
    /// The orchestrator cannot decode the recorded input.
    Input,
    /// The orchestrator code panicked while being created.
    Panic,
    /// The history itself cannot be replayed.
    InvalidHistory,
    /// The replay engine failed.
    Engine,
}

/// Where and how the code departs from a recorded history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayMismatch {
    /// What kind of departure.
    pub kind: MismatchKind,
    /// The 0-based position of the history event where it was found; `None` at the end of the history.
    pub event_index: Option<usize>,
    /// That event's `eventId`.
    pub event_id: Option<i32>,
    /// That event, e.g. `TaskScheduled 'Charge'`, or `end of history`.
    pub event: String,
    /// The sequence number (action id) concerned, when there is one.
    pub sequence_number: Option<i32>,
    /// What the history recorded.
    pub expected: String,
    /// What the current code did.
    pub found: String,
}

impl fmt::Display for ReplayMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event_index {
            Some(index) => write!(f, "at history event #{index} ({})", self.event)?,
            None => write!(f, "at the {}", self.event)?,
        }
        if let Some(sequence) = self.sequence_number {
            write!(f, ", sequence number {sequence}")?;
        }
        write!(
            f,
            ": the history has {}, the code {}",
            self.expected, self.found
        )
    }
}

/// The result for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceOutcome {
    /// The code replays the history as recorded.
    Matches,
    /// The code departs from the history.
    Mismatch(ReplayMismatch),
    /// Not checked, and why (an entity, a history with no turn yet, an orchestrator the options skip).
    Skipped(String),
}

/// The check of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceCheck {
    /// The instance id.
    pub instance_id: String,
    /// The orchestrator named in the history.
    pub orchestrator: Option<String>,
    /// How many history events were read.
    pub events: usize,
    /// The result.
    pub outcome: InstanceOutcome,
}

/// Settings of [`check_histories`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReplayCheckOptions {
    /// Skip instances of orchestrators the registry does not have (for a task hub shared with other apps) instead
    /// of reporting them.
    pub skip_unknown_orchestrators: bool,
}

impl ReplayCheckOptions {
    /// Every instance is checked; unknown orchestrators are reported.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether instances of unregistered orchestrators are skipped.
    pub fn skip_unknown_orchestrators(mut self, skip: bool) -> Self {
        self.skip_unknown_orchestrators = skip;
        self
    }
}

/// The checks of many instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayCheckReport {
    /// One entry per history, in the order given.
    pub instances: Vec<InstanceCheck>,
}

impl ReplayCheckReport {
    /// True when no instance departs from its history.
    pub fn is_clean(&self) -> bool {
        self.mismatches().next().is_none()
    }

    /// The instances that depart from their history, with where.
    pub fn mismatches(&self) -> impl Iterator<Item = (&InstanceCheck, &ReplayMismatch)> {
        self.instances.iter().filter_map(|i| match &i.outcome {
            InstanceOutcome::Mismatch(m) => Some((i, m)),
            _ => None,
        })
    }

    /// How many instances were checked (not skipped).
    pub fn checked(&self) -> usize {
        self.instances
            .iter()
            .filter(|i| !matches!(i.outcome, InstanceOutcome::Skipped(_)))
            .count()
    }
}

impl fmt::Display for ReplayCheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut mismatches = 0;
        for (instance, mismatch) in self.mismatches() {
            mismatches += 1;
            writeln!(
                f,
                "MISMATCH {} ({}): {mismatch}",
                instance.instance_id,
                instance
                    .orchestrator
                    .as_deref()
                    .unwrap_or("unknown orchestrator")
            )?;
        }
        let skipped = self.instances.len() - self.checked();
        write!(
            f,
            "{} instances checked, {mismatches} mismatched, {skipped} skipped",
            self.checked()
        )
    }
}

/// Checks one instance's history against the registry's code.
pub fn check_history(
    registry: &Registry,
    history: &RecordedHistory,
    options: &ReplayCheckOptions,
) -> InstanceCheck {
    let orchestrator = history.orchestrator().map(str::to_owned);
    let outcome = if history.instance_id.starts_with('@') {
        InstanceOutcome::Skipped("an entity, not an orchestration".into())
    } else if !history
        .events
        .iter()
        .any(|e| matches!(e.event_type, Some(EventType::OrchestratorStarted(_))))
    {
        InstanceOutcome::Skipped("no turn has run yet".into())
    } else if options.skip_unknown_orchestrators
        && orchestrator
            .as_deref()
            .is_some_and(|name| !registry.has_orchestrator(name))
    {
        InstanceOutcome::Skipped("its orchestrator is not registered here".into())
    } else {
        match check::first_mismatch(registry, &history.instance_id, &history.events) {
            Some(mismatch) => InstanceOutcome::Mismatch(mismatch),
            None => InstanceOutcome::Matches,
        }
    };
    InstanceCheck {
        instance_id: history.instance_id.clone(),
        orchestrator,
        events: history.events.len(),
        outcome,
    }
}

/// Checks every history against the registry's code (pure: no I/O, no clock).
pub fn check_histories<'a>(
    registry: &Registry,
    histories: impl IntoIterator<Item = &'a RecordedHistory>,
    options: &ReplayCheckOptions,
) -> ReplayCheckReport {
    ReplayCheckReport {
        instances: histories
            .into_iter()
            .map(|history| check_history(registry, history, options))
            .collect(),
    }
}

/// A short description of a history event, e.g. `TaskScheduled 'Charge'`.
pub(crate) fn describe_event(event: &proto::HistoryEvent) -> String {
    let Some(event_type) = &event.event_type else {
        return "an event without a type".into();
    };
    match event_type {
        EventType::ExecutionStarted(e) => format!("ExecutionStarted '{}'", e.name),
        EventType::ExecutionCompleted(e) => {
            format!(
                "ExecutionCompleted ({})",
                status_name(e.orchestration_status)
            )
        }
        EventType::TaskScheduled(e) => format!("TaskScheduled '{}'", e.name),
        EventType::SubOrchestrationInstanceCreated(e) => {
            format!("SubOrchestrationInstanceCreated '{}'", e.name)
        }
        EventType::EventSent(e) => format!("EventSent '{}'", e.name),
        EventType::EventRaised(e) => format!("EventRaised '{}'", e.name),
        EventType::EntityOperationCalled(e) => format!("EntityOperationCalled '{}'", e.operation),
        EventType::EntityOperationSignaled(e) => {
            format!("EntityOperationSignaled '{}'", e.operation)
        }
        EventType::TaskCompleted(e) => format!("TaskCompleted (of {})", e.task_scheduled_id),
        EventType::TaskFailed(e) => format!("TaskFailed (of {})", e.task_scheduled_id),
        EventType::TimerFired(e) => format!("TimerFired (of {})", e.timer_id),
        other => {
            // The variant name is the event's protocol name.
            let debug = format!("{other:?}");
            debug.split('(').next().unwrap_or("event").to_owned()
        }
    }
}

/// The protocol name of an orchestration status.
pub(crate) fn status_name(status: i32) -> String {
    proto::OrchestrationStatus::try_from(status)
        .map_or_else(|_| format!("status {status}"), |s| format!("{s:?}"))
}
