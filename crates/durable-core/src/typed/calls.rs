//! Typed calls and registrations of activities and orchestrators.

use std::borrow::Borrow;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Activity, EntityOperation, EntityType, Orchestrator};
use crate::activity::ActivityContext;
use crate::entity::{Entity, EntityContext};
use crate::errors::{ActivityError, EntityError, OrchestrationError, TaskError, TaskKind};
use crate::orchestration::{CallOptions, DurableFuture, LocalBoxFuture, OrchestrationContext};
use crate::registry::Registry;

mod sealed {
    pub trait Sealed {}
}

/// What a [`Callable`] is: [`ActivityKind`] or [`OrchestratorKind`]. Sealed.
pub trait CallKind: sealed::Sealed + 'static {
    #[doc(hidden)]
    const TASK: TaskKind;
}

/// The kind of [`Callable`] every [`Activity`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {}

/// The kind of [`Callable`] every [`Orchestrator`] is (called as a sub-orchestration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrchestratorKind {}

impl sealed::Sealed for ActivityKind {}
impl sealed::Sealed for OrchestratorKind {}

impl CallKind for ActivityKind {
    const TASK: TaskKind = TaskKind::Activity;
}

impl CallKind for OrchestratorKind {
    const TASK: TaskKind = TaskKind::SubOrchestration;
}

/// What [`OrchestrationContext::call`] accepts: every [`Activity`] and every [`Orchestrator`]. `K` is the kind,
/// inferred; it only keeps the two blanket implementations apart.
pub trait Callable<K: CallKind>: 'static {
    /// The registered name.
    const NAME: &'static str;
    /// What the function takes.
    type Input: Serialize + DeserializeOwned + 'static;
    /// What the function returns.
    type Output: Serialize + DeserializeOwned + 'static;
}

impl<A: Activity> Callable<ActivityKind> for A {
    const NAME: &'static str = A::NAME;
    type Input = A::Input;
    type Output = A::Output;
}

impl<O: Orchestrator> Callable<OrchestratorKind> for O {
    const NAME: &'static str = O::NAME;
    type Input = O::Input;
    type Output = O::Output;
}

impl OrchestrationContext {
    /// Calls an activity, or an orchestrator as a sub-orchestration, declared by type: the name comes from the
    /// declaration and the compiler checks the input and output types.
    ///
    /// A sub-orchestration gets the instance id `"<instanceId>:<sequence number as 4 hex digits>"`; use
    /// [`call_with`](Self::call_with) and [`CallOptions::instance_id`] to choose one.
    ///
    /// ```
    /// # use durable_core::{OrchestrationContext, OrchestrationError};
    /// durable_core::activity! { pub SayHello: String => String; }
    /// durable_core::orchestrator! { pub Child: u32 => u32; }
    ///
    /// async fn parent(ctx: OrchestrationContext, city: String) -> Result<(String, u32), OrchestrationError> {
    ///     let greeting = ctx.call(SayHello, city).await?;
    ///     let doubled = ctx.call(Child, 21).await?;
    ///     Ok((greeting, doubled))
    /// }
    /// ```
    pub fn call<K, F>(&self, function: F, input: impl Borrow<F::Input>) -> DurableFuture<F::Output>
    where
        K: CallKind,
        F: Callable<K>,
    {
        let _ = function;
        match K::TASK {
            TaskKind::Activity => self.call_activity(F::NAME, input.borrow()),
            _ => self.call_sub_orchestrator(F::NAME, input.borrow(), None),
        }
    }

    /// [`call`](Self::call) with options: a retry policy (waits between attempts are durable timers), a version,
    /// tags and, for a sub-orchestration, its instance id.
    pub fn call_with<K, F>(
        &self,
        function: F,
        input: impl Borrow<F::Input>,
        options: CallOptions,
    ) -> LocalBoxFuture<'static, Result<F::Output, TaskError>>
    where
        K: CallKind,
        F: Callable<K>,
    {
        let _ = function;
        match K::TASK {
            TaskKind::Activity => self.call_activity_with_options(F::NAME, input.borrow(), options),
            _ => self.call_sub_orchestrator_with_options(F::NAME, input.borrow(), options),
        }
    }
}

impl Registry {
    /// Registers an activity under its declared name; the compiler checks the function against the declaration.
    /// See [`add_activity`](Self::add_activity) for how input and output are handled.
    pub fn register_activity<A, F, Fut>(&mut self, activity: A, f: F) -> &mut Self
    where
        A: Activity,
        F: Fn(ActivityContext, A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        let _ = activity;
        self.add_activity(A::NAME, f)
    }

    /// Registers an orchestrator under its declared name; the compiler checks the function against the
    /// declaration. See [`add_orchestrator`](Self::add_orchestrator).
    pub fn register_orchestrator<O, F, Fut>(&mut self, orchestrator: O, f: F) -> &mut Self
    where
        O: Orchestrator,
        F: Fn(OrchestrationContext, O::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O::Output, OrchestrationError>> + 'static,
    {
        let _ = orchestrator;
        self.add_orchestrator(O::NAME, f)
    }

    /// Registers an entity under its declared name, with operations added by [`Entity::on`] (or by name).
    pub fn register_entity<E: EntityType>(
        &mut self,
        entity: E,
        definition: Entity<E::State>,
    ) -> &mut Self {
        let _ = entity;
        self.add_entity(E::NAME, definition)
    }
}

impl<S> Entity<S>
where
    S: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Adds an operation declared by type: its name comes from the declaration, and the compiler checks that it
    /// belongs to an entity with this state and that the function takes and returns its types.
    pub fn on<Op, F>(self, operation: Op, f: F) -> Self
    where
        Op: EntityOperation,
        Op::Entity: EntityType<State = S>,
        F: Fn(&mut S, &mut EntityContext, Op::Input) -> Result<Op::Output, EntityError>
            + Send
            + Sync
            + 'static,
    {
        let _ = operation;
        self.operation(Op::NAME, f)
    }
}
