//! The registry: named orchestrators, activities and entities, and the three entry points transports call.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::activity::{self, ActivityContext};
use crate::entity::{self, Entity, EntityHandler};
use crate::errors::{ActivityError, FailureDetails, OrchestrationError, ReplayError};
use crate::orchestration::{LocalBoxFuture, OrchestrationContext, decode_json, executor};
use crate::proto;
use time::OffsetDateTime;

pub(crate) type OrchestratorFuture =
    LocalBoxFuture<'static, Result<Option<String>, OrchestrationError>>;
pub(crate) type OrchestratorFn = dyn Fn(OrchestrationContext, Option<&str>) -> Result<OrchestratorFuture, ReplayError>
    + Send
    + Sync;
pub(crate) type ActivityFuture =
    Pin<Box<dyn Future<Output = Result<Option<String>, FailureDetails>> + Send>>;
pub(crate) type ActivityFn =
    dyn Fn(ActivityContext, Option<String>) -> ActivityFuture + Send + Sync;

/// Engine settings shared by every replay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayOptions {
    /// Longest single `CreateTimer`; longer timers are split. `None` disables splitting. Default: 3 days, as in
    /// the Python and .NET SDKs.
    pub maximum_timer_interval: Option<Duration>,
    /// The worker's versioning (see [`Versioning`](crate::Versioning)); `None` accepts every version.
    pub versioning: Option<crate::versioning::Versioning>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            maximum_timer_interval: Some(Duration::from_secs(3 * 24 * 60 * 60)),
            versioning: None,
        }
    }
}

impl ReplayOptions {
    /// Sets the maximum timer interval (`None` disables splitting).
    pub fn maximum_timer_interval(mut self, interval: Option<Duration>) -> Self {
        self.maximum_timer_interval = interval;
        self
    }
}

#[derive(Clone, Default)]
struct Inner {
    orchestrators: HashMap<String, Arc<OrchestratorFn>>,
    activities: HashMap<String, Arc<ActivityFn>>,
    entities: HashMap<String, Arc<dyn EntityHandler>>,
    options: ReplayOptions,
}

/// Named orchestrators, activities and entities. Cheap to clone (shared inside); `Send + Sync`.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("orchestrators", &self.orchestrator_names())
            .field("activities", &self.activity_names())
            .field("entities", &self.entity_names())
            .field("options", &self.inner.options)
            .finish()
    }
}

fn sorted_keys<V>(map: &HashMap<String, V>) -> Vec<String> {
    let mut names: Vec<String> = map.keys().cloned().collect();
    names.sort();
    names
}

/// Exact match first, then case-insensitive (the Functions host treats function names case-insensitively).
fn lookup<'a, V>(map: &'a HashMap<String, V>, name: &str) -> Option<&'a V> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

impl Registry {
    /// An empty registry with default options.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Replaces the engine options.
    pub fn set_replay_options(&mut self, options: ReplayOptions) -> &mut Self {
        self.inner_mut().options = options;
        self
    }

    /// The engine options.
    pub fn replay_options(&self) -> &ReplayOptions {
        &self.inner.options
    }

    /// Registers an orchestrator. Its input is decoded from JSON (absent input decodes as `null`) and its output
    /// encoded as JSON.
    pub fn add_orchestrator<I, O, F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, OrchestrationError>> + 'static,
    {
        let wrapped = move |ctx: OrchestrationContext,
                            input: Option<&str>|
              -> Result<OrchestratorFuture, ReplayError> {
            let input: I = decode_json(input).map_err(|e| ReplayError::Input(e.to_string()))?;
            let fut = f(ctx, input);
            Ok(Box::pin(async move {
                let output = fut.await?;
                serde_json::to_string(&output).map(Some).map_err(|e| {
                    OrchestrationError::from_details(
                        ReplayError::Output(e.to_string()).to_failure_details(),
                    )
                })
            }))
        };
        self.inner_mut()
            .orchestrators
            .insert(name.into(), Arc::new(wrapped));
        self
    }

    /// Registers an activity. Input decoding failures are non-retriable failures.
    pub fn add_activity<I, O, F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ActivityError>> + Send + 'static,
    {
        let wrapped = move |ctx: ActivityContext, input: Option<String>| -> ActivityFuture {
            let input: I = match decode_json(input.as_deref()) {
                Ok(input) => input,
                Err(e) => {
                    let details = FailureDetails::new(
                        "SerializationError",
                        format!(
                            "could not decode the input of activity '{}': {e}",
                            ctx.name()
                        ),
                    )
                    .with_non_retriable(true);
                    return Box::pin(std::future::ready(Err(details)));
                }
            };
            let fut = f(ctx, input);
            Box::pin(async move {
                let output = fut.await.map_err(ActivityError::into_details)?;
                serde_json::to_string(&output).map(Some).map_err(|e| {
                    FailureDetails::new(
                        "SerializationError",
                        format!("could not encode the activity output: {e}"),
                    )
                    .with_non_retriable(true)
                })
            })
        };
        self.inner_mut()
            .activities
            .insert(name.into(), Arc::new(wrapped));
        self
    }

    /// Registers an entity: typed state and named operations (see [`Entity`]). Entity names are case-insensitive
    /// (stored lower-cased, as in entity ids).
    pub fn add_entity<S>(&mut self, name: impl Into<String>, entity: Entity<S>) -> &mut Self
    where
        S: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.inner_mut()
            .entities
            .insert(name.into().to_lowercase(), Arc::new(entity));
        self
    }

    /// Registered orchestrator names, sorted.
    pub fn orchestrator_names(&self) -> Vec<String> {
        sorted_keys(&self.inner.orchestrators)
    }

    /// Registered activity names, sorted.
    pub fn activity_names(&self) -> Vec<String> {
        sorted_keys(&self.inner.activities)
    }

    /// Registered entity names (lower-cased), sorted.
    pub fn entity_names(&self) -> Vec<String> {
        sorted_keys(&self.inner.entities)
    }

    /// Whether an orchestrator with this name is registered.
    pub fn has_orchestrator(&self, name: &str) -> bool {
        lookup(&self.inner.orchestrators, name).is_some()
    }

    /// Whether an activity with this name is registered.
    pub fn has_activity(&self, name: &str) -> bool {
        lookup(&self.inner.activities, name).is_some()
    }

    /// Whether an entity with this name is registered.
    pub fn has_entity(&self, name: &str) -> bool {
        self.inner.entities.contains_key(&name.to_lowercase())
    }

    pub(crate) fn orchestrator(&self, name: &str) -> Option<Arc<OrchestratorFn>> {
        lookup(&self.inner.orchestrators, name).cloned()
    }

    pub(crate) fn activity(&self, name: &str) -> Option<Arc<ActivityFn>> {
        lookup(&self.inner.activities, name).cloned()
    }

    pub(crate) fn entity(&self, name: &str) -> Option<Arc<dyn EntityHandler>> {
        self.inner.entities.get(&name.to_lowercase()).cloned()
    }

    /// Pure and synchronous: replays past + new events and returns the next actions.
    ///
    /// Never panics (user panics become a FAILED completion); copies `instanceId`; leaves `completionToken` empty.
    /// An empty `newEvents` is accepted (the replay then only re-derives pending decisions); a request without any
    /// `ExecutionStarted` event completes FAILED with `errorType` `InvalidHistoryError`. A rewind request
    /// (`ExecutionRewound` in `newEvents` for a history that ended in failure) is answered with a single
    /// `RewindOrchestration` action (id -1) without running orchestrator code; see the crate docs.
    ///
    /// A request whose `properties` say the history was left out (`IncludeState: false`, what the Durable
    /// extension sends inside an extended session) is answered with `requiresHistory` and no actions: the engine
    /// keeps nothing between requests, so the extension sends the turn again with its history.
    pub fn execute_orchestrator(
        &self,
        request: &proto::OrchestratorRequest,
    ) -> proto::OrchestratorResponse {
        if let Err(mismatch) = self.check_orchestration_version(request) {
            return crate::versioning::refused_response(request, &mismatch);
        }
        executor::execute(self, request)
    }

    /// Runs the activity's user code; the future is `Send + 'static`. Failures become `failureDetails`.
    pub fn execute_activity(
        &self,
        request: proto::ActivityRequest,
    ) -> impl Future<Output = proto::ActivityResponse> + Send + 'static {
        activity::execute(self, request)
    }

    /// One result per operation; state rolled back for a failed operation. A batch that cannot run at all (unknown
    /// entity, bad id, unreadable state) fails every operation, non-retriable, and never sets the batch-level
    /// `failureDetails` (which backends treat as "abandon and retry"). A request whose `properties` say the state
    /// was left out (`IncludeState: false`) is answered with `requiresState` and no results.
    pub fn execute_entity_batch(
        &self,
        request: &proto::EntityBatchRequest,
    ) -> proto::EntityBatchResult {
        entity::execute_batch(self, request, entity::Env::default())
    }

    /// [`execute_entity_batch`](Self::execute_entity_batch), stamping each operation result's start and end times
    /// with `now` (the transport's clock; the engine has none of its own).
    pub fn execute_entity_batch_with_clock(
        &self,
        request: &proto::EntityBatchRequest,
        now: &dyn Fn() -> OffsetDateTime,
    ) -> proto::EntityBatchResult {
        let env = entity::Env {
            clock: Some(now),
            span: None,
        };
        entity::execute_batch(self, request, env)
    }

    /// [`execute_entity_batch`](Self::execute_entity_batch), running each operation inside the span that
    /// `span_for` makes for it, and stamping result times with `now` when given. A failed operation records
    /// `otel.status_code = "error"` and `otel.status_description` on its span (fields that `tracing-opentelemetry`
    /// turns into the span's status, when the span declares them). The engine only enters the spans; their names
    /// and parents are the transport's (`durable-telemetry` makes them under each operation's `traceContext`).
    pub fn execute_entity_batch_traced(
        &self,
        request: &proto::EntityBatchRequest,
        now: Option<&dyn Fn() -> OffsetDateTime>,
        span_for: &dyn Fn(&proto::OperationRequest) -> tracing::Span,
    ) -> proto::EntityBatchResult {
        let env = entity::Env {
            clock: now,
            span: Some(span_for),
        };
        entity::execute_batch(self, request, env)
    }
}

/// Whether a request's `properties` say that its history or state was left out: the Durable extension's
/// `IncludeState` (Azure/azure-functions-durable-extension `RemoteInstanceConfiguration`), false inside an
/// extended session.
pub(crate) fn state_left_out(
    properties: &std::collections::HashMap<String, prost_types::Value>,
) -> bool {
    matches!(
        properties.get("IncludeState").and_then(|v| v.kind.as_ref()),
        Some(prost_types::value::Kind::BoolValue(false))
    )
}
