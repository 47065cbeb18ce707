//! The decisions of a turn in a form that is pleasant to assert on.

use std::borrow::Borrow;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::history::timestamp;
use crate::entity_id::EntityId;
use crate::errors::FailureDetails;
use crate::proto;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::proto::send_entity_message_action::EntityMessageType;
use crate::typed::{Activity, EntityOperation, EntityType};

/// One decision of an orchestrator turn, decoded from the protocol's `OrchestratorAction`. Inputs, outputs and
/// event data are JSON values (`null` when absent), so expectations can be written with `serde_json::json!` or
/// with the constructors below.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// An activity call (`ScheduleTask`).
    CallActivity {
        /// The activity name.
        name: String,
        /// Its input.
        input: Value,
    },
    /// A sub-orchestration (`CreateSubOrchestration`).
    CallSubOrchestrator {
        /// The orchestrator name.
        name: String,
        /// The child's instance id.
        instance_id: String,
        /// Its input.
        input: Value,
    },
    /// A durable timer (`CreateTimer`); long timers show up one slice at a time.
    CreateTimer {
        /// When it fires.
        fire_at: OffsetDateTime,
    },
    /// An event raised on another instance (`SendEvent`).
    SendEvent {
        /// The target instance.
        instance_id: String,
        /// The event name.
        name: String,
        /// The event data.
        data: Value,
    },
    /// An entity operation called, whose result the orchestration awaits.
    CallEntity {
        /// The entity.
        entity: EntityId,
        /// The operation.
        operation: String,
        /// Its input.
        input: Value,
    },
    /// An entity operation signaled (fire and forget).
    SignalEntity {
        /// The entity.
        entity: EntityId,
        /// The operation.
        operation: String,
        /// Its input.
        input: Value,
        /// When it is to be delivered, for a scheduled signal.
        at: Option<OffsetDateTime>,
    },
    /// A critical section requested over these entities.
    LockEntities {
        /// The entities, in lock order.
        entities: Vec<EntityId>,
    },
    /// A lock released.
    UnlockEntity {
        /// The entity.
        entity: EntityId,
    },
    /// The orchestration completed with this output.
    Complete {
        /// The output.
        output: Value,
    },
    /// The orchestration failed.
    Fail {
        /// Why.
        details: FailureDetails,
    },
    /// The orchestration continued as new with this input.
    ContinueAsNew {
        /// The next generation's input.
        input: Value,
    },
    /// Anything else (terminations of other instances, rewinds), as sent.
    Other(proto::OrchestratorAction),
}

/// A JSON text as a value: `null` when absent or empty, a string when it is not JSON.
pub(crate) fn json_value(text: Option<&str>) -> Value {
    match text {
        None | Some("") => Value::Null,
        Some(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        }
    }
}

fn value_of<T: Serialize + ?Sized>(value: &T) -> Value {
    // Serializing to a `Value` fails only for maps with non-string keys; the expectation then shows the error.
    serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("<not JSON: {e}>")))
}

fn entity(id: Option<&String>) -> EntityId {
    id.and_then(|s| s.parse().ok())
        .unwrap_or_else(|| EntityId::new("", id.cloned().unwrap_or_default()))
}

impl Action {
    /// Decodes a protocol action.
    pub fn from_proto(action: &proto::OrchestratorAction) -> Self {
        let other = || Action::Other(action.clone());
        let Some(kind) = action.orchestrator_action_type.as_ref() else {
            return other();
        };
        match kind {
            OrchestratorActionType::ScheduleTask(t) => Action::CallActivity {
                name: t.name.clone(),
                input: json_value(t.input.as_deref()),
            },
            OrchestratorActionType::CreateSubOrchestration(s) => Action::CallSubOrchestrator {
                name: s.name.clone(),
                instance_id: s.instance_id.clone(),
                input: json_value(s.input.as_deref()),
            },
            OrchestratorActionType::CreateTimer(t) => match timestamp(t.fire_at.as_ref()) {
                Some(fire_at) => Action::CreateTimer { fire_at },
                None => other(),
            },
            OrchestratorActionType::SendEvent(e) => Action::SendEvent {
                instance_id: e
                    .instance
                    .as_ref()
                    .map(|i| i.instance_id.clone())
                    .unwrap_or_default(),
                name: e.name.clone(),
                data: json_value(e.data.as_deref()),
            },
            OrchestratorActionType::CompleteOrchestration(c) => {
                match proto::OrchestrationStatus::try_from(c.orchestration_status) {
                    Ok(proto::OrchestrationStatus::Completed) => Action::Complete {
                        output: json_value(c.result.as_deref()),
                    },
                    Ok(proto::OrchestrationStatus::Failed) => Action::Fail {
                        details: c
                            .failure_details
                            .as_ref()
                            .map(FailureDetails::from)
                            .unwrap_or_default(),
                    },
                    Ok(proto::OrchestrationStatus::ContinuedAsNew) => Action::ContinueAsNew {
                        input: json_value(c.result.as_deref()),
                    },
                    _ => other(),
                }
            }
            OrchestratorActionType::SendEntityMessage(m) => match m.entity_message_type.as_ref() {
                Some(EntityMessageType::EntityOperationCalled(c)) => Action::CallEntity {
                    entity: entity(c.target_instance_id.as_ref()),
                    operation: c.operation.clone(),
                    input: json_value(c.input.as_deref()),
                },
                Some(EntityMessageType::EntityOperationSignaled(s)) => Action::SignalEntity {
                    entity: entity(s.target_instance_id.as_ref()),
                    operation: s.operation.clone(),
                    input: json_value(s.input.as_deref()),
                    at: timestamp(s.scheduled_time.as_ref()),
                },
                Some(EntityMessageType::EntityLockRequested(l)) => Action::LockEntities {
                    entities: l.lock_set.iter().map(|id| entity(Some(id))).collect(),
                },
                Some(EntityMessageType::EntityUnlockSent(u)) => Action::UnlockEntity {
                    entity: entity(u.target_instance_id.as_ref()),
                },
                None => other(),
            },
            OrchestratorActionType::TerminateOrchestration(_)
            | OrchestratorActionType::RewindOrchestration(_) => other(),
        }
    }

    /// An activity call, by name.
    pub fn call_activity<T: Serialize + ?Sized>(name: impl Into<String>, input: &T) -> Self {
        Action::CallActivity {
            name: name.into(),
            input: value_of(input),
        }
    }

    /// A call of the activity declared by `A`.
    pub fn activity<A: Activity>(activity: A, input: impl Borrow<A::Input>) -> Self {
        let _ = activity;
        Self::call_activity(A::NAME, input.borrow())
    }

    /// A call of an entity operation declared by type.
    pub fn call_entity<Op: EntityOperation>(
        key: impl Into<String>,
        operation: Op,
        input: impl Borrow<Op::Input>,
    ) -> Self {
        let _ = operation;
        Action::CallEntity {
            entity: Op::Entity::id(key),
            operation: Op::NAME.to_string(),
            input: value_of(input.borrow()),
        }
    }

    /// A signal (delivered now) of an entity operation declared by type.
    pub fn signal_entity<Op: EntityOperation>(
        key: impl Into<String>,
        operation: Op,
        input: impl Borrow<Op::Input>,
    ) -> Self {
        let _ = operation;
        Action::SignalEntity {
            entity: Op::Entity::id(key),
            operation: Op::NAME.to_string(),
            input: value_of(input.borrow()),
            at: None,
        }
    }

    /// An event raised on another instance.
    pub fn send_event<T: Serialize + ?Sized>(
        instance_id: impl Into<String>,
        name: impl Into<String>,
        data: &T,
    ) -> Self {
        Action::SendEvent {
            instance_id: instance_id.into(),
            name: name.into(),
            data: value_of(data),
        }
    }

    /// The orchestration completing with `output`.
    pub fn complete<T: Serialize + ?Sized>(output: &T) -> Self {
        Action::Complete {
            output: value_of(output),
        }
    }
}
