//! Activity and sub-orchestration calls, with options and retries.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::{OrchestrationContext, encode_input};
use super::futures::{DurableFuture, LocalBoxFuture};
use super::retry::RetryPolicy;
use super::state::OpenTask;
use crate::errors::{TaskError, TaskKind};
use crate::proto;
use crate::proto::orchestrator_action::OrchestratorActionType;

/// Options for activity and sub-orchestration calls.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Retry policy; waits between attempts are durable timers.
    pub retry: Option<RetryPolicy>,
    /// The requested version of the activity or orchestrator.
    pub version: Option<String>,
    /// Tags recorded with the scheduled task.
    pub tags: BTreeMap<String, String>,
    /// The child instance id (sub-orchestrations only; ignored for activities).
    pub instance_id: Option<String>,
    /// Retry decisions made by code; takes precedence over `retry` (see [`RetryHandler`](super::RetryHandler)).
    pub retry_handler: Option<super::RetryHandler>,
    /// Stops the retries of a call made with a retry handler.
    pub cancellation: Option<super::CancellationToken>,
}

impl CallOptions {
    /// No retry, version, tags or instance id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sets the version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Sets the child instance id of a sub-orchestration.
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = Some(instance_id.into());
        self
    }
}

/// One scheduled call, kept so retries can schedule it again identically.
#[derive(Clone)]
struct Call {
    name: String,
    input: String,
    version: Option<String>,
    tags: BTreeMap<String, String>,
}

impl Call {
    fn new(name: String, input: String) -> Self {
        Self {
            name,
            input,
            version: None,
            tags: BTreeMap::new(),
        }
    }
}

impl OrchestrationContext {
    /// Calls an activity.
    pub fn call_activity<I, O>(&self, name: impl Into<String>, input: I) -> DurableFuture<O>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let name = name.into();
        match encode_input(&name, &input) {
            Ok(text) => self.schedule_activity(Call::new(name, text)),
            Err(e) => DurableFuture::ready(Err(e)),
        }
    }

    /// Calls an activity, retrying retriable failures as the policy allows. The first attempt is scheduled now;
    /// waits between attempts are durable timers.
    pub fn call_activity_with_retry<I, O>(
        &self,
        name: impl Into<String>,
        input: I,
        policy: RetryPolicy,
    ) -> LocalBoxFuture<'static, Result<O, TaskError>>
    where
        I: Serialize,
        O: DeserializeOwned + 'static,
    {
        self.call_activity_with_options(name, input, CallOptions::new().retry(policy))
    }

    /// Calls an activity with a version, tags and/or a retry policy.
    pub fn call_activity_with_options<I, O>(
        &self,
        name: impl Into<String>,
        input: I,
        options: CallOptions,
    ) -> LocalBoxFuture<'static, Result<O, TaskError>>
    where
        I: Serialize,
        O: DeserializeOwned + 'static,
    {
        let name = name.into();
        let mut call = match encode_input(&name, &input) {
            Ok(text) => Call::new(name, text),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        call.version = options.version;
        call.tags = options.tags;
        if let Some(handler) = options.retry_handler {
            let first = self.schedule_activity::<O>(call.clone());
            let ctx = self.clone();
            return self.with_retry_handler(handler, options.cancellation, first, move || {
                ctx.schedule_activity(call.clone())
            });
        }
        match options.retry {
            None => Box::pin(self.schedule_activity::<O>(call)),
            Some(policy) => {
                let first = self.schedule_activity::<O>(call.clone());
                let ctx = self.clone();
                self.with_retry(policy, first, move || ctx.schedule_activity(call.clone()))
            }
        }
    }

    fn schedule_activity<O>(&self, call: Call) -> DurableFuture<O> {
        let Call {
            name,
            input,
            version,
            tags,
        } = call;
        let mut st = self.state.borrow_mut();
        let handle = st.new_cell();
        let id = st.push_action(OrchestratorActionType::ScheduleTask(
            proto::ScheduleTaskAction {
                name: name.clone(),
                version,
                input: Some(input),
                tags: tags.into_iter().collect(),
                parent_trace_context: None,
            },
        ));
        st.open.insert(
            id,
            OpenTask::Activity {
                handle,
                name: name.clone(),
            },
        );
        drop(st);
        DurableFuture::from_cell(self.state.clone(), handle, TaskKind::Activity, name)
    }

    fn with_retry<O, F>(
        &self,
        policy: RetryPolicy,
        first: DurableFuture<O>,
        mut again: F,
    ) -> LocalBoxFuture<'static, Result<O, TaskError>>
    where
        O: DeserializeOwned + 'static,
        F: FnMut() -> DurableFuture<O> + 'static,
    {
        let ctx = self.clone();
        let started = self.current_utc_datetime();
        Box::pin(async move {
            let mut attempt = 1u32;
            let mut current = first;
            loop {
                let error = match current.await {
                    Ok(value) => return Ok(value),
                    Err(error) => error,
                };
                let allowed = error
                    .failure_details()
                    .is_some_and(|details| policy.allows(details));
                if !error.is_retriable() || !allowed {
                    return Err(error);
                }
                let Some(delay) = policy.next_delay(attempt, started, ctx.current_utc_datetime())
                else {
                    return Err(error);
                };
                ctx.create_timer_after(delay).await?;
                attempt += 1;
                current = again();
            }
        })
    }

    /// Starts a sub-orchestration and waits for its output. Without an explicit instance id the child gets
    /// `"<instanceId>:<sequence number as 4 hex digits>"`.
    pub fn call_sub_orchestrator<I, O>(
        &self,
        name: impl Into<String>,
        input: I,
        instance_id: Option<String>,
    ) -> DurableFuture<O>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let name = name.into();
        match self.prepare_sub_orchestration(&name, &input) {
            Ok(text) => {
                self.schedule_sub_orchestration(&Call::new(name, text), instance_id)
                    .1
            }
            Err(e) => DurableFuture::ready(Err(e)),
        }
    }

    /// Starts a sub-orchestration with retries; every attempt uses the same child instance id.
    pub fn call_sub_orchestrator_with_retry<I, O>(
        &self,
        name: impl Into<String>,
        input: I,
        instance_id: Option<String>,
        policy: RetryPolicy,
    ) -> LocalBoxFuture<'static, Result<O, TaskError>>
    where
        I: Serialize,
        O: DeserializeOwned + 'static,
    {
        let mut options = CallOptions::new().retry(policy);
        options.instance_id = instance_id;
        self.call_sub_orchestrator_with_options(name, input, options)
    }

    /// Starts a sub-orchestration with an instance id, a version, tags and/or a retry policy. With retries, every
    /// attempt uses the same child instance id.
    pub fn call_sub_orchestrator_with_options<I, O>(
        &self,
        name: impl Into<String>,
        input: I,
        options: CallOptions,
    ) -> LocalBoxFuture<'static, Result<O, TaskError>>
    where
        I: Serialize,
        O: DeserializeOwned + 'static,
    {
        let name = name.into();
        let mut call = match self.prepare_sub_orchestration(&name, &input) {
            Ok(text) => Call::new(name, text),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        call.version = options.version;
        call.tags = options.tags;
        let (child_id, first) = self.schedule_sub_orchestration::<O>(&call, options.instance_id);
        if let Some(handler) = options.retry_handler {
            let ctx = self.clone();
            return self.with_retry_handler(handler, options.cancellation, first, move || {
                ctx.schedule_sub_orchestration(&call, Some(child_id.clone()))
                    .1
            });
        }
        match options.retry {
            None => Box::pin(first),
            Some(policy) => {
                let ctx = self.clone();
                self.with_retry(policy, first, move || {
                    ctx.schedule_sub_orchestration(&call, Some(child_id.clone()))
                        .1
                })
            }
        }
    }

    fn prepare_sub_orchestration<I: Serialize>(
        &self,
        name: &str,
        input: &I,
    ) -> Result<String, TaskError> {
        if self.state.borrow().critical_section.is_some() {
            return Err(TaskError::InvalidOperation(
                "sub-orchestrations cannot be called while holding entity locks".into(),
            ));
        }
        encode_input(name, input)
    }

    fn schedule_sub_orchestration<O>(
        &self,
        call: &Call,
        instance_id: Option<String>,
    ) -> (String, DurableFuture<O>) {
        let mut st = self.state.borrow_mut();
        let handle = st.new_cell();
        let id = st.next_sequence();
        let child_id = instance_id.unwrap_or_else(|| format!("{}:{:04x}", st.instance_id, id));
        let version = call.version.clone().or_else(|| st.default_version.clone());
        st.actions.insert(
            id,
            proto::OrchestratorAction {
                id,
                orchestrator_action_type: Some(OrchestratorActionType::CreateSubOrchestration(
                    proto::CreateSubOrchestrationAction {
                        instance_id: child_id.clone(),
                        name: call.name.clone(),
                        version,
                        input: Some(call.input.clone()),
                        parent_trace_context: None,
                        tags: call.tags.clone().into_iter().collect(),
                    },
                )),
            },
        );
        st.open.insert(
            id,
            OpenTask::SubOrchestration {
                handle,
                name: call.name.clone(),
            },
        );
        drop(st);
        (
            child_id,
            DurableFuture::from_cell(
                self.state.clone(),
                handle,
                TaskKind::SubOrchestration,
                call.name.clone(),
            ),
        )
    }
}
