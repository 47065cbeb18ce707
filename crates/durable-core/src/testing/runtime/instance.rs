//! One orchestration instance as the in-process runtime keeps it.

use serde::de::DeserializeOwned;

use crate::errors::FailureDetails;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::testing::history;
use crate::testing::{RuntimeStatus, TestingError, output_of};

/// One orchestration instance as the runtime keeps it.
#[derive(Debug, Clone)]
pub struct InstanceState {
    pub(super) instance_id: String,
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) generation: u32,
    pub(super) status: RuntimeStatus,
    pub(super) output: Option<String>,
    pub(super) failure: Option<FailureDetails>,
    pub(super) custom_status: Option<String>,
    pub(super) history: Vec<proto::HistoryEvent>,
    pub(super) inbox: Vec<proto::HistoryEvent>,
    /// The parent instance and the id of its `CreateSubOrchestration` action.
    pub(super) parent: Option<(String, i32)>,
}

impl InstanceState {
    /// The instance id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The orchestrator name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it stands.
    pub fn status(&self) -> RuntimeStatus {
        self.status
    }

    /// The output, once completed.
    pub fn output<T: DeserializeOwned>(&self) -> Result<T, TestingError> {
        output_of(
            &self.instance_id,
            self.status,
            self.output.as_deref(),
            self.failure.as_ref(),
        )
    }

    /// The raw JSON output, once completed.
    pub fn serialized_output(&self) -> Option<&str> {
        self.output.as_deref()
    }

    /// Why it failed.
    pub fn failure(&self) -> Option<&FailureDetails> {
        self.failure.as_ref()
    }

    /// The custom status it last set.
    pub fn custom_status<T: DeserializeOwned>(&self) -> Result<Option<T>, TestingError> {
        self.custom_status
            .as_deref()
            .map(|text| {
                serde_json::from_str(text).map_err(|e| TestingError::Json {
                    what: format!("the custom status of '{}'", self.instance_id),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// The history of the current generation.
    pub fn history(&self) -> &[proto::HistoryEvent] {
        &self.history
    }

    pub(super) fn execution_id(&self) -> String {
        format!("{}-execution-{}", self.instance_id, self.generation)
    }
}

/// Resets `instance` to a new generation that starts with `input`.
pub(super) fn begin_generation(
    instance: &mut InstanceState,
    input: Option<String>,
    parent: Option<proto::ParentInstanceInfo>,
    carryover: Vec<proto::HistoryEvent>,
) {
    instance.generation += 1;
    instance.history.clear();
    let mut inbox = vec![history::event(
        -1,
        EventType::ExecutionStarted(proto::ExecutionStartedEvent {
            name: instance.name.clone(),
            version: instance.version.clone(),
            input,
            orchestration_instance: Some(proto::OrchestrationInstance {
                instance_id: instance.instance_id.clone(),
                execution_id: Some(instance.execution_id()),
            }),
            parent_instance: parent,
            ..Default::default()
        }),
    )];
    inbox.extend(carryover);
    inbox.append(&mut instance.inbox);
    instance.inbox = inbox;
}
