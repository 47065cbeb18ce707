//! `OrchestrationContext`: everything orchestrator code may do.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

use super::futures::{DurableFuture, decode_json};
use super::state::{OrchState, Outcome, ParentInfo};
use crate::errors::{TaskError, TaskKind};
use crate::proto;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::time_util;

/// The orchestration's handle on the durable world. Cheap to clone; not `Send` (orchestrator futures run on the
/// thread that replays them).
///
/// Everything here is deterministic: calls are numbered in the order the code makes them, the clock only moves
/// with history, and GUIDs are derived from the instance id and that clock.
#[derive(Clone)]
pub struct OrchestrationContext {
    pub(crate) state: Rc<RefCell<OrchState>>,
}

impl fmt::Debug for OrchestrationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("OrchestrationContext")
            .field("instance_id", &st.instance_id)
            .field("name", &st.name)
            .field("is_replaying", &st.is_replaying)
            .finish()
    }
}

/// Options for [`OrchestrationContext::continue_as_new_with_options`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ContinueAsNewOptions {
    /// Carry the events the code has not consumed over to the new generation.
    pub keep_unprocessed_events: bool,
    /// The version the new generation runs as; `None` keeps the current one.
    pub version: Option<String>,
}

impl ContinueAsNewOptions {
    /// Unconsumed events are dropped and the version is kept.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether unconsumed events are carried over.
    pub fn keep_unprocessed_events(mut self, keep: bool) -> Self {
        self.keep_unprocessed_events = keep;
        self
    }

    /// Sets the version of the new generation.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

/// Namespace of the deterministic GUIDs: `uuid5(NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")`, the same
/// derivation the Python SDK uses, so both produce identical ids for identical histories.
fn guid_namespace() -> Uuid {
    static NAMESPACE: std::sync::OnceLock<Uuid> = std::sync::OnceLock::new();
    *NAMESPACE.get_or_init(|| {
        Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            b"9e952958-5e33-4daf-827f-2fa12937b875",
        )
    })
}

pub(crate) fn encode_input<T: Serialize + ?Sized>(
    name: &str,
    input: &T,
) -> Result<String, TaskError> {
    serde_json::to_string(input).map_err(|e| TaskError::Encode {
        name: name.to_string(),
        message: e.to_string(),
    })
}

impl OrchestrationContext {
    pub(crate) fn new(state: Rc<RefCell<OrchState>>) -> Self {
        Self { state }
    }

    /// The instance id.
    pub fn instance_id(&self) -> String {
        self.state.borrow().instance_id.clone()
    }

    /// The execution id of this generation, when the history carries one.
    pub fn execution_id(&self) -> Option<String> {
        self.state.borrow().execution_id.clone()
    }

    /// The orchestrator name.
    pub fn name(&self) -> String {
        self.state.borrow().name.clone()
    }

    /// The orchestration version, if one was given at start.
    pub fn version(&self) -> Option<String> {
        self.state.borrow().version.clone()
    }

    /// The parent orchestration, for a sub-orchestration.
    pub fn parent(&self) -> Option<ParentInfo> {
        self.state.borrow().parent.clone()
    }

    /// The raw JSON input text.
    pub fn raw_input(&self) -> Option<String> {
        self.state.borrow().input.clone()
    }

    /// The input decoded again (the orchestrator function already receives it decoded).
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        decode_json(self.state.borrow().input.as_deref())
    }

    /// True while the code runs over events it has already seen in an earlier turn.
    pub fn is_replaying(&self) -> bool {
        self.state.borrow().is_replaying
    }

    /// The deterministic current time: the timestamp of the latest `OrchestratorStarted` event.
    pub fn current_utc_datetime(&self) -> OffsetDateTime {
        self.state.borrow().now
    }

    /// A deterministic GUID (name-based, version 5); identical on every replay.
    pub fn new_guid(&self) -> Uuid {
        let mut st = self.state.borrow_mut();
        let counter = st.next_guid_counter();
        let name = format!(
            "{}_{}_{}",
            st.instance_id,
            time_util::format_for_guid(st.now),
            counter
        );
        Uuid::new_v5(&guid_namespace(), name.as_bytes())
    }

    /// Sets the custom status reported with the instance.
    pub fn set_custom_status<T: Serialize + ?Sized>(&self, status: &T) -> Result<(), TaskError> {
        let text = encode_input("custom status", status)?;
        self.state.borrow_mut().custom_status = Some(text);
        Ok(())
    }

    /// Clears the custom status.
    pub fn clear_custom_status(&self) {
        self.state.borrow_mut().custom_status = None;
    }

    /// A durable timer firing at `fire_at`. Timers longer than the maximum timer interval are split into several
    /// `CreateTimer` actions; the future completes only at the final time.
    pub fn create_timer(&self, fire_at: OffsetDateTime) -> DurableFuture<()> {
        let mut st = self.state.borrow_mut();
        let handle = st.new_cell();
        st.push_timer(handle, fire_at, None);
        drop(st);
        DurableFuture::from_cell(self.state.clone(), handle, TaskKind::Timer, "timer")
    }

    /// A durable timer firing `delay` after the current orchestration time.
    pub fn create_timer_after(&self, delay: Duration) -> DurableFuture<()> {
        let fire_at = time_util::add(self.current_utc_datetime(), delay);
        self.create_timer(fire_at)
    }

    /// Waits for an external event. Names are case-insensitive; events that arrived earlier are buffered per name
    /// and handed out oldest first.
    pub fn wait_for_external_event<T: DeserializeOwned>(
        &self,
        name: impl Into<String>,
    ) -> DurableFuture<T> {
        let name = name.into();
        let handle = self.claim_event(&name).unwrap_or_else(|h| h);
        DurableFuture::from_cell(self.state.clone(), handle, TaskKind::ExternalEvent, name)
    }

    /// Waits for an external event for at most `timeout` (a durable timer); on timeout the future fails with
    /// [`TaskError::Timeout`].
    pub fn wait_for_external_event_with_timeout<T: DeserializeOwned>(
        &self,
        name: impl Into<String>,
        timeout: Duration,
    ) -> DurableFuture<T> {
        let name = name.into();
        let handle = match self.claim_event(&name) {
            Ok(buffered) => buffered,
            Err(waiting) => {
                let mut st = self.state.borrow_mut();
                let fire_at = time_util::add(st.now, timeout);
                let timer_handle = st.new_cell();
                st.push_timer(timer_handle, fire_at, Some((waiting, name.clone())));
                waiting
            }
        };
        DurableFuture::from_cell(self.state.clone(), handle, TaskKind::ExternalEvent, name)
    }

    /// `Ok(handle)` when a buffered event was taken, `Err(handle)` when the call now waits.
    fn claim_event(&self, name: &str) -> Result<usize, usize> {
        let key = name.to_lowercase();
        let mut st = self.state.borrow_mut();
        let buffered = st
            .buffered
            .get_mut(&key)
            .and_then(|queue| queue.pop_front());
        if st.buffered.get(&key).is_some_and(|q| q.is_empty()) {
            st.buffered.remove(&key);
        }
        match buffered {
            Some(event) => Ok(st.resolved_cell(Outcome::Value(event.input))),
            None => {
                let handle = st.new_cell();
                st.waiters.entry(key).or_default().push_back(handle);
                Err(handle)
            }
        }
    }

    /// Raises an event on another orchestration instance (fire and forget).
    pub fn send_event<T: Serialize + ?Sized>(
        &self,
        instance_id: impl Into<String>,
        name: impl Into<String>,
        data: &T,
    ) -> Result<(), TaskError> {
        let instance_id = instance_id.into();
        let name = name.into();
        if instance_id.trim().is_empty() || name.trim().is_empty() {
            return Err(TaskError::InvalidOperation(
                "send_event needs a target instance id and an event name".into(),
            ));
        }
        if instance_id.starts_with('@') {
            return Err(TaskError::InvalidOperation(
                "instance ids starting with '@' are entities; use signal_entity".into(),
            ));
        }
        let data = encode_input(&name, data)?;
        self.state
            .borrow_mut()
            .push_action(OrchestratorActionType::SendEvent(proto::SendEventAction {
                instance: Some(proto::OrchestrationInstance {
                    instance_id,
                    execution_id: None,
                }),
                name,
                data: Some(data),
            }));
        Ok(())
    }

    /// Restarts the orchestration with a new input once the orchestrator function returns (its output is then
    /// ignored; return right away). With `keep_unprocessed_events`, events not yet consumed are carried over to the
    /// new generation. Entity locks still held are released.
    pub fn continue_as_new<T: Serialize + ?Sized>(
        &self,
        input: &T,
        keep_unprocessed_events: bool,
    ) -> Result<(), TaskError> {
        self.continue_as_new_with_options(
            input,
            ContinueAsNewOptions::new().keep_unprocessed_events(keep_unprocessed_events),
        )
    }

    /// [`continue_as_new`](Self::continue_as_new) with options: notably a new version, so that a long-lived
    /// instance can move to a newer orchestrator version at a generation boundary, where no history of the old
    /// version has to be replayed.
    pub fn continue_as_new_with_options<T: Serialize + ?Sized>(
        &self,
        input: &T,
        options: ContinueAsNewOptions,
    ) -> Result<(), TaskError> {
        let input = encode_input("continue_as_new", input)?;
        self.state.borrow_mut().continue_as_new = Some(super::state::ContinueAsNew {
            input: Some(input),
            keep_unprocessed_events: options.keep_unprocessed_events,
            version: options.version,
        });
        Ok(())
    }

    /// Emits a `tracing` event with the orchestration's identity, unless the code is replaying (so each line is
    /// logged once, not once per turn).
    pub fn log(&self, level: tracing::Level, message: impl fmt::Display) {
        let st = self.state.borrow();
        if st.is_replaying {
            return;
        }
        let (instance_id, name) = (st.instance_id.as_str(), st.name.as_str());
        match level {
            tracing::Level::ERROR => {
                tracing::error!(instance_id, orchestration = name, "{message}")
            }
            tracing::Level::WARN => tracing::warn!(instance_id, orchestration = name, "{message}"),
            tracing::Level::INFO => tracing::info!(instance_id, orchestration = name, "{message}"),
            tracing::Level::DEBUG => {
                tracing::debug!(instance_id, orchestration = name, "{message}")
            }
            tracing::Level::TRACE => {
                tracing::trace!(instance_id, orchestration = name, "{message}")
            }
        }
    }

    /// [`log`](Self::log) at INFO.
    pub fn log_info(&self, message: impl fmt::Display) {
        self.log(tracing::Level::INFO, message);
    }

    /// [`log`](Self::log) at WARN.
    pub fn log_warn(&self, message: impl fmt::Display) {
        self.log(tracing::Level::WARN, message);
    }

    /// [`log`](Self::log) at ERROR.
    pub fn log_error(&self, message: impl fmt::Display) {
        self.log(tracing::Level::ERROR, message);
    }
}
