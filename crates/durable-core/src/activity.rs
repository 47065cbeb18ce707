//! Activities: ordinary async functions with typed input and output. They may do I/O; the engine only runs them.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::errors::{FailureDetails, panic_message};
use crate::proto;
use crate::registry::{ActivityFuture, Registry};

/// What an activity knows about its invocation.
#[derive(Debug, Clone)]
pub struct ActivityContext {
    instance_id: String,
    task_id: i32,
    name: String,
    version: Option<String>,
}

impl ActivityContext {
    /// A context for calling an activity function directly (tests, local runs).
    pub fn new(instance_id: impl Into<String>, task_id: i32, name: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            task_id,
            name: name.into(),
            version: None,
        }
    }

    /// The orchestration instance that scheduled the activity.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The sequence number of the scheduling action (unique within the orchestration execution).
    pub fn task_id(&self) -> i32 {
        self.task_id
    }

    /// The activity name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The requested activity version, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

/// Polls the inner future, turning a panic into a failure.
struct CatchUnwind {
    inner: Option<ActivityFuture>,
}

impl Future for CatchUnwind {
    type Output = Result<Option<String>, FailureDetails>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(FailureDetails::new(
                "Panic",
                "the activity was polled after it panicked",
            )));
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                self.inner = None;
                Poll::Ready(Err(FailureDetails::new(
                    "Panic",
                    format!("the activity panicked: {}", panic_message(payload.as_ref())),
                )))
            }
        }
    }
}

pub(crate) fn execute(
    registry: &Registry,
    request: proto::ActivityRequest,
) -> impl Future<Output = proto::ActivityResponse> + Send + 'static {
    let instance_id = request
        .orchestration_instance
        .as_ref()
        .map(|i| i.instance_id.clone())
        .unwrap_or_default();
    let task_id = request.task_id;
    let ctx = ActivityContext {
        instance_id: instance_id.clone(),
        task_id,
        name: request.name.clone(),
        version: request.version.clone(),
    };
    let started: Result<ActivityFuture, FailureDetails> = match registry.activity(&request.name) {
        None => Err(FailureDetails::new(
            "ActivityNotFound",
            format!("no activity named '{}' is registered", request.name),
        )
        .with_non_retriable(true)),
        Some(f) => catch_unwind(AssertUnwindSafe(|| f(ctx, request.input))).map_err(|payload| {
            FailureDetails::new(
                "Panic",
                format!("the activity panicked: {}", panic_message(payload.as_ref())),
            )
        }),
    };
    async move {
        let outcome = match started {
            Ok(fut) => CatchUnwind { inner: Some(fut) }.await,
            Err(details) => Err(details),
        };
        let (result, failure_details) = match outcome {
            Ok(result) => (result, None),
            Err(details) => {
                tracing::debug!(instance_id = %instance_id, task_id, "activity failed: {details}");
                (None, Some(details.to_proto()))
            }
        };
        proto::ActivityResponse {
            instance_id,
            task_id,
            result,
            failure_details,
            completion_token: String::new(),
        }
    }
}
