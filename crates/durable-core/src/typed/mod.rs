//! Typed functions: activities, orchestrators and entity operations named by a type, so that the name, the input
//! type and the output type of every call are checked by the compiler.
//!
//! A function is declared once, by a zero-sized marker type (the [`activity!`](crate::activity),
//! [`orchestrator!`](crate::orchestrator) and [`entity!`](crate::entity) macros write the marker and its trait
//! implementation), and that declaration is used everywhere the function is named: to register it
//! ([`Registry::register_activity`](crate::Registry::register_activity), ...), to call it from an orchestration
//! ([`OrchestrationContext::call`](crate::OrchestrationContext::call)), to call or signal an entity through a
//! typed proxy ([`OrchestrationContext::entity`](crate::OrchestrationContext::entity)), and from the clients. A
//! renamed function or a changed input type is then a compile error, not a failed instance.
//!
//! ```
//! use durable_core::{
//!     ActivityContext, ActivityError, Entity, EntityError, OrchestrationContext, OrchestrationError, Registry,
//! };
//!
//! durable_core::activity! {
//!     /// Greets one city.
//!     pub SayHello: String => String;
//! }
//! durable_core::orchestrator! {
//!     /// Greets every city, then counts the greetings.
//!     pub Greetings: Vec<String> => Vec<String>;
//! }
//! durable_core::entity! {
//!     /// A counter; its state is the count.
//!     pub Counter: i64 {
//!         /// Adds to the count and returns the new count.
//!         pub Add = "add": i64 => i64;
//!     }
//! }
//!
//! async fn greetings(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
//!     let mut out = Vec::new();
//!     for city in cities {
//!         // `ctx.call(SayHello, 42)` or `let n: u32 = ctx.call(SayHello, city).await?` would not compile.
//!         out.push(ctx.call(SayHello, city).await?);
//!     }
//!     ctx.entity(Counter, "greetings").signal(Add, out.len() as i64)?;
//!     Ok(out)
//! }
//!
//! async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello {city}!"))
//! }
//!
//! let mut registry = Registry::new();
//! registry
//!     .register_orchestrator(Greetings, greetings)
//!     .register_activity(SayHello, say_hello)
//!     .register_entity(
//!         Counter,
//!         Entity::new().on(Add, |count, _ctx, n| {
//!             *count += n;
//!             Ok::<_, EntityError>(*count)
//!         }),
//!     );
//! // The names come from the declarations.
//! assert!(registry.has_activity("SayHello") && registry.has_orchestrator("Greetings"));
//! assert!(registry.has_entity("counter"));
//! ```
//!
//! What the compiler refuses (each of these fails to build):
//!
//! ```compile_fail
//! # use durable_core::{OrchestrationContext, OrchestrationError};
//! durable_core::activity! { pub SayHello: String => String; }
//! async fn wrong_input(ctx: OrchestrationContext) -> Result<String, OrchestrationError> {
//!     Ok(ctx.call(SayHello, 42u32).await?)
//! }
//! ```
//!
//! ```compile_fail
//! # use durable_core::{OrchestrationContext, OrchestrationError};
//! durable_core::activity! { pub SayHello: String => String; }
//! async fn wrong_output(ctx: OrchestrationContext) -> Result<u64, OrchestrationError> {
//!     let n: u64 = ctx.call(SayHello, "Oslo".to_string()).await?;
//!     Ok(n)
//! }
//! ```
//!
//! ```compile_fail
//! # use durable_core::{OrchestrationContext, OrchestrationError};
//! durable_core::entity! { pub Counter: i64 { pub Add: i64 => i64; } }
//! durable_core::entity! { pub Account: u64 { pub Withdraw: u64 => u64; } }
//! async fn wrong_entity(ctx: OrchestrationContext) -> Result<(), OrchestrationError> {
//!     ctx.entity(Counter, "c").signal(Withdraw, 5u64)?; // an operation of another entity
//!     Ok(())
//! }
//! ```
//!
//! ```compile_fail
//! # use durable_core::{ActivityContext, ActivityError, Registry};
//! durable_core::activity! { pub SayHello: String => String; }
//! async fn say_hello(_ctx: ActivityContext, city: String) -> Result<u32, ActivityError> { Ok(1) }
//! Registry::new().register_activity(SayHello, say_hello); // returns u32, declared String
//! ```
//!
//! Calls by string name ([`OrchestrationContext::call_activity`](crate::OrchestrationContext::call_activity) and
//! the others) stay, for functions written in other languages; a declaration can also name such a function
//! (`pub Remote = "remote_fn": Input => Output;`) and so type calls to it.

mod calls;
mod entities;
mod macros;

pub use calls::{ActivityKind, CallKind, Callable, OrchestratorKind};
pub use entities::{EntityProxy, EntitySignaler};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::entity_id::EntityId;

/// An activity declared by type: its registered name, its input and its output. Usually written by
/// [`activity!`](crate::activity).
pub trait Activity: 'static {
    /// The registered name.
    const NAME: &'static str;
    /// What the activity takes.
    type Input: Serialize + DeserializeOwned + 'static;
    /// What the activity returns.
    type Output: Serialize + DeserializeOwned + 'static;
}

/// An orchestrator declared by type: its registered name, its input and its output. Usually written by
/// [`orchestrator!`](crate::orchestrator).
pub trait Orchestrator: 'static {
    /// The registered name.
    const NAME: &'static str;
    /// What the orchestrator takes.
    type Input: Serialize + DeserializeOwned + 'static;
    /// What the orchestrator returns.
    type Output: Serialize + DeserializeOwned + 'static;
}

/// An entity declared by type: its registered name and its state. Usually written by [`entity!`](crate::entity),
/// together with its [operations](EntityOperation).
pub trait EntityType: 'static {
    /// The registered name (entity names are case-insensitive).
    const NAME: &'static str;
    /// The entity's state; a new entity starts from `Default`.
    type State: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The id of the entity of this type with `key`.
    fn id(key: impl Into<String>) -> EntityId {
        EntityId::new(Self::NAME, key)
    }
}

/// An operation of an [`EntityType`], declared by type: its name, input and output.
pub trait EntityOperation: 'static {
    /// The entity the operation belongs to.
    type Entity: EntityType;
    /// The operation name (operation names are case-insensitive).
    const NAME: &'static str;
    /// What the operation takes.
    type Input: Serialize + DeserializeOwned + 'static;
    /// What the operation returns.
    type Output: Serialize + DeserializeOwned + 'static;
}
