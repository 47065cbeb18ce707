//! Unit tests for orchestrations, activities and entities, without a backend: no gRPC, no database, no host.
//!
//! Two tools, both built on the engine's own replay ([`Registry::execute_orchestrator`](crate::Registry::execute_orchestrator),
//! [`execute_activity`](crate::Registry::execute_activity), [`execute_entity_batch`](crate::Registry::execute_entity_batch)),
//! fed with the history a backend would have written, so what passes here is what runs in production:
//!
//! - [`OrchestrationHarness`]: one orchestrator, turn by turn. The test scripts every result (activities,
//!   sub-orchestrations, entity calls, lock grants), raises events and moves a virtual clock to fire timers, and
//!   asserts the [`Action`]s each turn decided. Each turn is also replayed from history alone, which catches
//!   non-deterministic orchestrator code.
//! - [`InProcessRuntime`]: a whole app in memory. Orchestrations run with their real registered activities,
//!   sub-orchestrations and entities; entity state, locks, signals, events and timers are kept as a backend keeps
//!   them, and time is virtual: [`run_to_completion`](InProcessRuntime::run_to_completion) skips to the next timer
//!   whenever nothing else can happen, so an orchestration that sleeps for a week finishes at once.
//!
//! ```
//! use durable_core::testing::{InProcessRuntime, RuntimeStatus};
//! use durable_core::{ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, Registry};
//! use std::time::Duration;
//!
//! durable_core::activity! { pub Double: u32 => u32; }
//! durable_core::orchestrator! { pub DoubleTwiceSlowly: u32 => u32; }
//!
//! async fn double_twice_slowly(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
//!     let once = ctx.call(Double, n).await?;
//!     ctx.create_timer_after(Duration::from_secs(7 * 24 * 3600)).await?; // a week, skipped
//!     Ok(ctx.call(Double, once).await?)
//! }
//!
//! async fn double(_ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
//!     Ok(n * 2)
//! }
//!
//! let mut registry = Registry::new();
//! registry
//!     .register_orchestrator(DoubleTwiceSlowly, double_twice_slowly)
//!     .register_activity(Double, double);
//!
//! let mut runtime = InProcessRuntime::new(&registry);
//! let id = runtime.start(DoubleTwiceSlowly, 5).unwrap();
//! // Any executor will do: activities are awaited, nothing else needs a runtime.
//! let state = futures::executor::block_on(runtime.run_to_completion(&id)).unwrap();
//! assert_eq!(state.status(), RuntimeStatus::Completed);
//! assert_eq!(runtime.output_of(DoubleTwiceSlowly, &id).unwrap(), 20);
//! assert_eq!((runtime.now() - runtime.start_time()).whole_days(), 7);
//! ```

mod action;
mod harness;
pub mod history;
mod runtime;

pub use action::Action;
pub use harness::{OrchestrationHarness, Turn};
pub use runtime::{InProcessRuntime, InstanceState};

use std::fmt;

use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::errors::FailureDetails;

/// Where an orchestration instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuntimeStatus {
    /// Not started yet.
    Pending,
    /// Started and not finished (a continue-as-new keeps it running).
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with a failure.
    Failed,
    /// Terminated from outside.
    Terminated,
}

impl RuntimeStatus {
    /// Whether the instance has finished.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Terminated)
    }
}

impl fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What went wrong in a test run: misuse of the harness or runtime, or an orchestration that did not get where the
/// test expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// The harness has not started an orchestration yet.
    #[error("no orchestration was started")]
    NotStarted,
    /// The harness already started its orchestration.
    #[error("instance '{0}' was already started")]
    AlreadyStarted(String),
    /// The instance has finished; it takes no more turns.
    #[error("instance '{instance_id}' has finished ({status})")]
    Finished {
        /// The instance.
        instance_id: String,
        /// How it finished.
        status: RuntimeStatus,
    },
    /// A result was scripted for a task the orchestration has not started (or that was already answered).
    #[error("no open {what}; open tasks: [{}]", open.join(", "))]
    NoOpenTask {
        /// The task the test named.
        what: String,
        /// The tasks that are open.
        open: Vec<String>,
    },
    /// The same history led to different decisions when replayed: the orchestrator code is not deterministic.
    #[error(
        "turn {turn} decided {decided:?}, but replaying the same history decided {replayed:?}: the orchestrator \
         must take time, ids and randomness from its context"
    )]
    NonDeterministic {
        /// The turn (1-based).
        turn: usize,
        /// What the turn decided.
        decided: Vec<action::Action>,
        /// What the replay decided.
        replayed: Vec<action::Action>,
    },
    /// A value could not be encoded or decoded as JSON.
    #[error("{what}: {message}")]
    Json {
        /// Which value.
        what: String,
        /// The serde error.
        message: String,
    },
    /// The instance does not exist.
    #[error("no instance '{0}'")]
    NoSuchInstance(String),
    /// An instance with this id already exists.
    #[error("instance '{0}' already exists")]
    InstanceExists(String),
    /// The orchestration failed; its output was asked for.
    #[error("instance '{instance_id}' failed: {details}")]
    Failed {
        /// The instance.
        instance_id: String,
        /// Why.
        details: FailureDetails,
    },
    /// The output was asked for, but the instance is not completed.
    #[error("instance '{instance_id}' is {status}, not completed")]
    NotCompleted {
        /// The instance.
        instance_id: String,
        /// Where it stands.
        status: RuntimeStatus,
    },
    /// Nothing can happen any more (no work, no timer), but the instance has not finished: it waits for an
    /// external event the test did not raise, or for something that never comes.
    #[error("instance '{instance_id}' is stuck: nothing is left to run and it has not finished")]
    Stuck {
        /// The instance.
        instance_id: String,
    },
    /// The run took more steps than the runtime's limit (an eternal orchestration, or a loop of signals).
    #[error(
        "gave up after {0} steps; raise the limit with InProcessRuntime::max_steps if this is expected"
    )]
    TooManySteps(usize),
}

/// 2026-01-01T00:00:00Z: the default clock of a test, fixed so that runs are reproducible.
pub(crate) fn default_start_time() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 0:00 UTC)
}

pub(crate) fn output_of<T: DeserializeOwned>(
    instance_id: &str,
    status: RuntimeStatus,
    output: Option<&str>,
    failure: Option<&FailureDetails>,
) -> Result<T, TestingError> {
    match status {
        RuntimeStatus::Completed => {
            crate::orchestration::decode_json(output).map_err(|e| TestingError::Json {
                what: format!("the output of '{instance_id}'"),
                message: e.to_string(),
            })
        }
        RuntimeStatus::Failed => Err(TestingError::Failed {
            instance_id: instance_id.to_string(),
            details: failure.cloned().unwrap_or_default(),
        }),
        status => Err(TestingError::NotCompleted {
            instance_id: instance_id.to_string(),
            status,
        }),
    }
}
