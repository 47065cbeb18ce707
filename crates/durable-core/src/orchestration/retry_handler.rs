//! Retry handlers: retry decisions made by orchestrator code, beside the declarative [`RetryPolicy`].
//!
//! A handler is called after every retriable failure of an activity or sub-orchestration with a [`RetryContext`]
//! (which attempt failed, how long the call has been retrying, the failure, the call's cancellation token) and
//! decides, asynchronously, whether to try again. It runs as part of the orchestrator: its durable calls (a timer
//! to wait before the next attempt, an activity that looks something up) are scheduled in the order the code makes
//! them and replayed like any other, so a handler must be as deterministic as the orchestrator itself. This is the
//! model of the .NET SDK's `AsyncRetryHandler` (microsoft/durabletask-dotnet
//! `src/Worker/Core/Shims/TaskOrchestrationContextWrapper.cs`, `InvokeWithCustomRetryHandler`): no wait is added
//! between attempts unless the handler waits itself, and a failure marked non-retriable ends the call without
//! asking the handler.
//!
//! [`RetryPolicy`]: super::RetryPolicy

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::calls::CallOptions;
use super::context::OrchestrationContext;
use super::futures::{DurableFuture, LocalBoxFuture};
use crate::errors::{FailureDetails, TaskError};

type HandlerFn = dyn Fn(RetryContext) -> LocalBoxFuture<'static, bool> + Send + Sync;

/// Decides, after each failed attempt, whether a call is tried again. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use durable_core::{CallOptions, OrchestrationContext, OrchestrationError, RetryHandler};
///
/// async fn charge(ctx: OrchestrationContext, order: String) -> Result<String, OrchestrationError> {
///     // Retry timeouts only, at most 5 attempts, waiting 10 s, 20 s, 30 s, ... (durable timers) in between.
///     let handler = RetryHandler::new(|retry| async move {
///         if retry.last_failure.error_type != "TimeoutError" || retry.attempt_number >= 5 {
///             return false;
///         }
///         let wait = Duration::from_secs(10 * u64::from(retry.attempt_number));
///         retry.orchestration().create_timer_after(wait).await.is_ok()
///     });
///     let receipt = ctx
///         .call_activity_with_options("Charge", order, CallOptions::new().retry_handler(handler))
///         .await?;
///     Ok(receipt)
/// }
/// # let _ = charge;
/// ```
#[derive(Clone)]
pub struct RetryHandler {
    decide: Arc<HandlerFn>,
}

impl fmt::Debug for RetryHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryHandler").finish_non_exhaustive()
    }
}

impl RetryHandler {
    /// A handler whose decision is a future: it may await durable tasks through
    /// [`RetryContext::orchestration`]. `true` tries again.
    pub fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(RetryContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + 'static,
    {
        Self {
            decide: Arc::new(move |context| Box::pin(handler(context))),
        }
    }

    /// A handler that decides at once. `true` tries again (immediately: no wait is added).
    pub fn sync(handler: impl Fn(&RetryContext) -> bool + Send + Sync + 'static) -> Self {
        Self {
            decide: Arc::new(move |context| {
                let retry = handler(&context);
                Box::pin(std::future::ready(retry))
            }),
        }
    }
}

/// What a [`RetryHandler`] knows when it decides.
#[non_exhaustive]
pub struct RetryContext {
    /// The attempt that just failed (1 after the first attempt).
    pub attempt_number: u32,
    /// Orchestration time since the first attempt was scheduled.
    pub total_retry_time: Duration,
    /// The failure of the attempt that just failed.
    pub last_failure: FailureDetails,
    /// The call's cancellation token ([`CallOptions::cancellation`]); a new, uncancelled one if the call has none.
    pub cancellation: CancellationToken,
    orchestration: OrchestrationContext,
}

impl fmt::Debug for RetryContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryContext")
            .field("attempt_number", &self.attempt_number)
            .field("total_retry_time", &self.total_retry_time)
            .field("last_failure", &self.last_failure)
            .field("cancellation", &self.cancellation)
            .finish_non_exhaustive()
    }
}

impl RetryContext {
    /// The orchestration the call belongs to: for durable timers and calls made by the handler.
    pub fn orchestration(&self) -> &OrchestrationContext {
        &self.orchestration
    }
}

/// Stops a call's retries: once cancelled, no further attempt is scheduled and the call ends with its last
/// failure. Set by orchestrator code (so it replays identically); cheap to clone, clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancellationToken {
    cancelled: Arc<AtomicBool>,
}

impl CancellationToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: calls carrying this token schedule no further attempt.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

impl CallOptions {
    /// Sets a retry handler, which takes precedence over a retry policy.
    pub fn retry_handler(mut self, handler: RetryHandler) -> Self {
        self.retry_handler = Some(handler);
        self
    }

    /// Sets the token that stops the call's retries.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancellation = Some(token);
        self
    }
}

impl OrchestrationContext {
    /// Awaits `first`, then asks `handler` after each retriable failure whether to run `again`.
    pub(crate) fn with_retry_handler<O, F>(
        &self,
        handler: RetryHandler,
        cancellation: Option<CancellationToken>,
        first: DurableFuture<O>,
        mut again: F,
    ) -> LocalBoxFuture<'static, Result<O, TaskError>>
    where
        O: DeserializeOwned + 'static,
        F: FnMut() -> DurableFuture<O> + 'static,
    {
        let ctx = self.clone();
        let started = self.current_utc_datetime();
        let cancellation = cancellation.unwrap_or_default();
        Box::pin(async move {
            let mut attempt = 1u32;
            let mut current = first;
            loop {
                let error = match current.await {
                    Ok(value) => return Ok(value),
                    Err(error) => error,
                };
                let Some(details) = error.failure_details().filter(|_| error.is_retriable()) else {
                    return Err(error);
                };
                if cancellation.is_cancelled() {
                    return Err(error);
                }
                let elapsed = ctx.current_utc_datetime() - started;
                let context = RetryContext {
                    attempt_number: attempt,
                    total_retry_time: Duration::try_from(elapsed).unwrap_or_default(),
                    last_failure: details.clone(),
                    cancellation: cancellation.clone(),
                    orchestration: ctx.clone(),
                };
                if !(handler.decide)(context).await
                    || cancellation.is_cancelled()
                    || attempt == u32::MAX
                {
                    return Err(error);
                }
                attempt += 1;
                current = again();
            }
        })
    }
}
