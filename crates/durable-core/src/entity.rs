//! Entities: typed state plus named operations, executed one batch at a time. Each operation is a transaction: a
//! failed operation leaves the state and outgoing actions as they were before it.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entity_id::EntityId;
use crate::errors::{EntityError, FailureDetails, panic_message};
use crate::orchestration::decode_json;
use crate::proto;
use crate::time_util;

type OperationFn<S> = dyn Fn(&mut S, &mut EntityContext, Option<&str>) -> Result<Option<String>, FailureDetails>
    + Send
    + Sync;

/// An entity definition: a state type and its operations.
///
/// ```
/// use durable_core::{Entity, EntityError};
///
/// let counter = Entity::<i64>::new()
///     .operation("add", |state: &mut i64, _ctx, amount: i64| {
///         *state += amount;
///         Ok::<_, EntityError>(*state)
///     })
///     .operation("get", |state: &mut i64, _ctx, (): ()| Ok::<_, EntityError>(*state));
/// # let _ = counter;
/// ```
///
/// Operation names are case-insensitive. An unregistered `delete` operation deletes the state.
pub struct Entity<S> {
    operations: HashMap<String, Arc<OperationFn<S>>>,
}

impl<S> fmt::Debug for Entity<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.operations.keys().collect();
        names.sort();
        f.debug_struct("Entity")
            .field("operations", &names)
            .finish()
    }
}

impl<S> Default for Entity<S>
where
    S: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Entity<S>
where
    S: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// An entity with no operations yet.
    pub fn new() -> Self {
        Self {
            operations: HashMap::new(),
        }
    }

    /// Adds an operation with typed input and output. A missing input decodes as JSON `null`.
    pub fn operation<I, O, F>(mut self, name: impl AsRef<str>, f: F) -> Self
    where
        I: DeserializeOwned,
        O: Serialize,
        F: Fn(&mut S, &mut EntityContext, I) -> Result<O, EntityError> + Send + Sync + 'static,
    {
        let op = move |state: &mut S, ctx: &mut EntityContext, input: Option<&str>| {
            let input: I = decode_json(input).map_err(|e| {
                FailureDetails::new(
                    "SerializationError",
                    format!("could not decode the input of '{}': {e}", ctx.operation),
                )
            })?;
            let output = f(state, ctx, input).map_err(EntityError::into_details)?;
            serde_json::to_string(&output).map(Some).map_err(|e| {
                FailureDetails::new(
                    "SerializationError",
                    format!("could not encode the output of '{}': {e}", ctx.operation),
                )
            })
        };
        self.operations
            .insert(name.as_ref().to_lowercase(), Arc::new(op));
        self
    }
}

/// What an entity operation may do besides changing its state.
#[derive(Debug)]
pub struct EntityContext {
    id: EntityId,
    operation: String,
    request_id: String,
    actions: Vec<proto::OperationAction>,
    next_action_id: i32,
    deleted: bool,
    guid_counter: u32,
}

impl EntityContext {
    /// The entity's id.
    pub fn entity_id(&self) -> &EntityId {
        &self.id
    }

    /// The operation being executed.
    pub fn operation_name(&self) -> &str {
        &self.operation
    }

    /// Deletes the entity's state once the operation succeeds; the next operation starts from the default state.
    pub fn delete_state(&mut self) {
        self.deleted = true;
    }

    /// Signals another entity (fire and forget), sent only if this operation succeeds.
    pub fn signal_entity<I: Serialize>(
        &mut self,
        target: &EntityId,
        operation: impl Into<String>,
        input: I,
    ) -> Result<(), EntityError> {
        self.signal(target, operation.into(), input, None)
    }

    /// Signals another entity for delivery at `at`.
    pub fn signal_entity_at<I: Serialize>(
        &mut self,
        target: &EntityId,
        operation: impl Into<String>,
        input: I,
        at: OffsetDateTime,
    ) -> Result<(), EntityError> {
        self.signal(target, operation.into(), input, Some(at))
    }

    fn signal<I: Serialize>(
        &mut self,
        target: &EntityId,
        operation: String,
        input: I,
        at: Option<OffsetDateTime>,
    ) -> Result<(), EntityError> {
        let input = serde_json::to_string(&input)?;
        let id = self.take_action_id();
        self.actions.push(proto::OperationAction {
            id,
            operation_action_type: Some(proto::operation_action::OperationActionType::SendSignal(
                proto::SendSignalAction {
                    instance_id: target.to_string(),
                    name: operation,
                    input: Some(input),
                    scheduled_time: at.map(time_util::to_timestamp),
                    ..Default::default()
                },
            )),
        });
        Ok(())
    }

    /// Starts an orchestration, sent only if this operation succeeds; returns its instance id. Without an explicit
    /// id, one is derived from the entity and request ids (stable if the batch is retried).
    pub fn start_new_orchestration<I: Serialize>(
        &mut self,
        name: impl Into<String>,
        input: I,
        instance_id: Option<String>,
    ) -> Result<String, EntityError> {
        let input = serde_json::to_string(&input)?;
        let instance_id = instance_id.unwrap_or_else(|| {
            self.guid_counter += 1;
            let seed = format!("{}_{}_{}", self.id, self.request_id, self.guid_counter);
            Uuid::new_v5(&Uuid::NAMESPACE_OID, seed.as_bytes())
                .simple()
                .to_string()
        });
        let id = self.take_action_id();
        self.actions.push(proto::OperationAction {
            id,
            operation_action_type: Some(
                proto::operation_action::OperationActionType::StartNewOrchestration(
                    proto::StartNewOrchestrationAction {
                        instance_id: instance_id.clone(),
                        name: name.into(),
                        input: Some(input),
                        ..Default::default()
                    },
                ),
            ),
        });
        Ok(instance_id)
    }

    fn take_action_id(&mut self) -> i32 {
        let id = self.next_action_id;
        self.next_action_id += 1;
        id
    }
}

/// Type-erased entity execution, what the registry stores.
pub(crate) trait EntityHandler: Send + Sync {
    fn execute(
        &self,
        id: EntityId,
        request: &proto::EntityBatchRequest,
        env: Env<'_>,
    ) -> proto::EntityBatchResult;
}

/// The transport's wall clock, used only to stamp operation start and end times.
pub(crate) type Clock<'a> = &'a dyn Fn() -> OffsetDateTime;

/// Makes the span one operation runs in; the transport decides its name and parent (see
/// [`Registry::execute_entity_batch_traced`](crate::Registry::execute_entity_batch_traced)).
pub(crate) type OperationSpan<'a> = &'a dyn Fn(&proto::OperationRequest) -> tracing::Span;

/// What the transport lends a batch: a clock, and a span per operation.
#[derive(Clone, Copy, Default)]
pub(crate) struct Env<'a> {
    pub(crate) clock: Option<Clock<'a>>,
    pub(crate) span: Option<OperationSpan<'a>>,
}

impl Env<'_> {
    fn stamp(&self) -> Option<prost_types::Timestamp> {
        self.clock.map(|now| time_util::to_timestamp(now()))
    }

    fn span(&self, op: &proto::OperationRequest) -> tracing::Span {
        self.span.map_or_else(tracing::Span::none, |make| make(op))
    }
}

/// Marks an operation's span as failed, in the fields `tracing-opentelemetry` turns into the span's status.
fn record_failure(span: &tracing::Span, details: &proto::TaskFailureDetails) {
    span.record("otel.status_code", "error");
    span.record("otel.status_description", details.error_message.as_str());
}

/// A batch that cannot run at all (unknown entity, bad id, unreadable or unwritable state): every operation fails,
/// non-retriable, with the state untouched and no actions. A batch-level `failureDetails` would be wrong here:
/// backends read it as "abandon and retry the batch", which can never succeed for these causes, and the callers would
/// wait forever instead of getting an error.
fn all_operations_failed(
    request: &proto::EntityBatchRequest,
    details: FailureDetails,
    env: Env<'_>,
) -> proto::EntityBatchResult {
    let details = details.with_non_retriable(true).to_proto();
    let results = request
        .operations
        .iter()
        .map(|op| {
            record_failure(&env.span(op), &details);
            let start_time_utc = env.stamp();
            proto::OperationResult {
                result_type: Some(proto::operation_result::ResultType::Failure(
                    proto::OperationResultFailure {
                        failure_details: Some(details.clone()),
                        start_time_utc,
                        end_time_utc: env.stamp(),
                    },
                )),
            }
        })
        .collect();
    proto::EntityBatchResult {
        results,
        entity_state: request.entity_state.clone(),
        ..Default::default()
    }
}

impl<S> EntityHandler for Entity<S>
where
    S: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn execute(
        &self,
        id: EntityId,
        request: &proto::EntityBatchRequest,
        env: Env<'_>,
    ) -> proto::EntityBatchResult {
        let mut state: Option<S> = match request.entity_state.as_deref() {
            None | Some("") => None,
            Some(text) => match serde_json::from_str(text) {
                Ok(s) => Some(s),
                Err(e) => {
                    return all_operations_failed(
                        request,
                        FailureDetails::new(
                            "EntityStateDeserializationError",
                            format!("could not decode the state of {id}: {e}"),
                        ),
                        env,
                    );
                }
            },
        };
        let mut results = Vec::with_capacity(request.operations.len());
        let mut actions = Vec::new();
        for op in &request.operations {
            let span = env.span(op);
            let _entered = span.enter();
            let start_time_utc = env.stamp();
            let backup = state.clone();
            let mut ctx = EntityContext {
                id: id.clone(),
                operation: op.operation.clone(),
                request_id: op.request_id.clone(),
                actions: Vec::new(),
                next_action_id: i32::try_from(actions.len()).unwrap_or(i32::MAX),
                deleted: false,
                guid_counter: 0,
            };
            let handler = self.operations.get(&op.operation.to_lowercase()).cloned();
            let outcome = catch_unwind(AssertUnwindSafe(|| match handler {
                Some(handler) => {
                    let current = state.get_or_insert_with(S::default);
                    handler(current, &mut ctx, op.input.as_deref())
                }
                None if op.operation.eq_ignore_ascii_case("delete") => {
                    ctx.deleted = true;
                    Ok(None)
                }
                None => Err(FailureDetails::new(
                    "EntityOperationNotFound",
                    format!("entity {} has no operation '{}'", id, op.operation),
                )),
            }))
            .unwrap_or_else(|payload| {
                Err(FailureDetails::new(
                    "Panic",
                    format!(
                        "the entity operation panicked: {}",
                        panic_message(payload.as_ref())
                    ),
                ))
            });
            let result_type = match outcome {
                Ok(output) => {
                    if ctx.deleted {
                        state = None;
                    }
                    actions.append(&mut ctx.actions);
                    proto::operation_result::ResultType::Success(proto::OperationResultSuccess {
                        result: output,
                        start_time_utc,
                        end_time_utc: env.stamp(),
                    })
                }
                Err(details) => {
                    state = backup;
                    let details = details.to_proto();
                    record_failure(&span, &details);
                    proto::operation_result::ResultType::Failure(proto::OperationResultFailure {
                        failure_details: Some(details),
                        start_time_utc,
                        end_time_utc: env.stamp(),
                    })
                }
            };
            results.push(proto::OperationResult {
                result_type: Some(result_type),
            });
        }
        let entity_state = match state.as_ref().map(serde_json::to_string).transpose() {
            Ok(text) => text,
            Err(e) => {
                return all_operations_failed(
                    request,
                    FailureDetails::new(
                        "EntityStateSerializationError",
                        format!("could not encode the state of {id}: {e}"),
                    ),
                    // The operations ran, each in its span; a second span each would count them twice.
                    Env { span: None, ..env },
                );
            }
        };
        proto::EntityBatchResult {
            results,
            actions,
            entity_state,
            ..Default::default()
        }
    }
}

pub(crate) fn execute_batch(
    registry: &crate::Registry,
    request: &proto::EntityBatchRequest,
    env: Env<'_>,
) -> proto::EntityBatchResult {
    if crate::registry::state_left_out(&request.properties) {
        return proto::EntityBatchResult {
            requires_state: true,
            ..Default::default()
        };
    }
    let id: EntityId = match request.instance_id.parse() {
        Ok(id) => id,
        Err(e) => {
            return all_operations_failed(
                request,
                FailureDetails::new("InvalidEntityId", e.to_string()),
                env,
            );
        }
    };
    match registry.entity(&id.name) {
        Some(handler) => handler.execute(id, request, env),
        None => all_operations_failed(
            request,
            FailureDetails::new(
                "EntityFunctionNotFound",
                format!("no entity named '{}' is registered", id.name),
            ),
            env,
        ),
    }
}

/// The scheduler's V2 entity work item as an old-style batch, plus the routing info (one per operation, in order)
/// to send back in `operationInfos`. Events other than operation calls and signals are skipped.
pub fn entity_batch_from_v2(
    request: &proto::EntityRequest,
) -> (proto::EntityBatchRequest, Vec<proto::OperationInfo>) {
    use proto::history_event::EventType;
    let mut operations = Vec::with_capacity(request.operation_requests.len());
    let mut infos = Vec::with_capacity(request.operation_requests.len());
    for event in &request.operation_requests {
        match &event.event_type {
            Some(EventType::EntityOperationSignaled(s)) => {
                operations.push(proto::OperationRequest {
                    operation: s.operation.clone(),
                    request_id: s.request_id.clone(),
                    input: s.input.clone(),
                    trace_context: None,
                });
                infos.push(proto::OperationInfo {
                    request_id: s.request_id.clone(),
                    response_destination: None,
                });
            }
            Some(EventType::EntityOperationCalled(c)) => {
                operations.push(proto::OperationRequest {
                    operation: c.operation.clone(),
                    request_id: c.request_id.clone(),
                    input: c.input.clone(),
                    trace_context: None,
                });
                infos.push(proto::OperationInfo {
                    request_id: c.request_id.clone(),
                    response_destination: Some(proto::OrchestrationInstance {
                        instance_id: c.parent_instance_id.clone().unwrap_or_default(),
                        execution_id: c.parent_execution_id.clone(),
                    }),
                });
            }
            _ => tracing::warn!(
                entity = %request.instance_id,
                "skipping an entity work item event that is neither a call nor a signal"
            ),
        }
    }
    (
        proto::EntityBatchRequest {
            instance_id: request.instance_id.clone(),
            entity_state: request.entity_state.clone(),
            operations,
            properties: Default::default(),
        },
        infos,
    )
}
