//! Typed entity proxies: operations called and signaled through the entity's declaration.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;

use time::OffsetDateTime;

use super::{EntityOperation, EntityType, Orchestrator};
use crate::entity::EntityContext;
use crate::entity_id::EntityId;
use crate::errors::{EntityError, TaskError};
use crate::orchestration::{DurableFuture, OrchestrationContext};

/// An entity seen from an orchestration, through its declaration: only the entity's own operations can be called
/// or signaled, with their declared input and output types. Made by [`OrchestrationContext::entity`].
///
/// ```
/// use durable_core::{OrchestrationContext, OrchestrationError};
///
/// durable_core::entity! {
///     pub Counter: i64 {
///         pub Add = "add": i64 => i64;
///         pub Reset = "reset": () => ();
///     }
/// }
///
/// async fn count(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
///     let counter = ctx.entity(Counter, "visits");
///     counter.signal(Reset, ())?;          // fire and forget
///     let total = counter.call(Add, n).await?; // i64, as declared
///     Ok(total)
/// }
/// ```
pub struct EntityProxy<E> {
    ctx: OrchestrationContext,
    id: EntityId,
    entity: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for EntityProxy<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityProxy").field("id", &self.id).finish()
    }
}

impl<E> Clone for EntityProxy<E> {
    fn clone(&self) -> Self {
        Self {
            ctx: self.ctx.clone(),
            id: self.id.clone(),
            entity: PhantomData,
        }
    }
}

impl<E: EntityType> EntityProxy<E> {
    /// The entity's id.
    pub fn id(&self) -> &EntityId {
        &self.id
    }

    /// Calls an operation and waits for its result (see
    /// [`OrchestrationContext::call_entity`]; the same rules apply inside critical sections).
    pub fn call<Op>(
        &self,
        operation: Op,
        input: impl Borrow<Op::Input>,
    ) -> DurableFuture<Op::Output>
    where
        Op: EntityOperation<Entity = E>,
    {
        let _ = operation;
        self.ctx.call_entity(&self.id, Op::NAME, input.borrow())
    }

    /// Signals an operation (fire and forget).
    pub fn signal<Op>(&self, operation: Op, input: impl Borrow<Op::Input>) -> Result<(), TaskError>
    where
        Op: EntityOperation<Entity = E>,
    {
        let _ = operation;
        self.ctx.signal_entity(&self.id, Op::NAME, input.borrow())
    }

    /// Signals an operation to be delivered at `at`.
    pub fn signal_at<Op>(
        &self,
        operation: Op,
        input: impl Borrow<Op::Input>,
        at: OffsetDateTime,
    ) -> Result<(), TaskError>
    where
        Op: EntityOperation<Entity = E>,
    {
        let _ = operation;
        self.ctx
            .signal_entity_at(&self.id, Op::NAME, input.borrow(), at)
    }
}

impl OrchestrationContext {
    /// A typed proxy for the entity of type `E` with `key`.
    pub fn entity<E: EntityType>(&self, entity: E, key: impl Into<String>) -> EntityProxy<E> {
        let _ = entity;
        EntityProxy {
            ctx: self.clone(),
            id: E::id(key),
            entity: PhantomData,
        }
    }
}

/// Another entity seen from inside an entity operation: its operations can be signaled, with their declared input
/// types; the signals are sent only if the current operation succeeds. Made by [`EntityContext::entity`].
///
/// Entities do not call each other and wait for a result, as in Durable Functions: a call from inside an operation
/// would block the calling entity for as long as the other one takes. An entity signals another, and the other
/// answers, if it must, with a signal back; or an entity starts an orchestration
/// ([`EntityContext::start_orchestration`]) that calls as many entities as it needs, and locks them if the calls
/// must be atomic.
///
/// A request and its answer between two entities, run with the in-process runtime:
///
/// ```
/// use std::collections::BTreeMap;
/// use durable_core::testing::InProcessRuntime;
/// use durable_core::{Entity, EntityError, Registry};
///
/// durable_core::entity! {
///     /// A shopping cart: the items reserved for it.
///     pub Cart: Vec<String> {
///         /// Asks the inventory for an item; the answer comes back as `Reserved`.
///         pub Add = "add": String => ();
///         /// The inventory's answer.
///         pub Reserved = "reserved": String => ();
///     }
/// }
/// durable_core::entity! {
///     /// Items left in stock.
///     pub Inventory: BTreeMap<String, u32> {
///         /// Reserves one item for the cart with the given key, and tells that cart.
///         pub Reserve = "reserve": (String, String) => ();
///     }
/// }
///
/// let mut registry = Registry::new();
/// registry
///     .register_entity(
///         Cart,
///         Entity::new()
///             .on(Add, |_items, ctx, item| {
///                 let cart = ctx.entity_id().key.clone();
///                 ctx.entity(Inventory, "main").signal(Reserve, (cart, item))
///             })
///             .on(Reserved, |items, _ctx, item| {
///                 items.push(item);
///                 Ok(())
///             }),
///     )
///     .register_entity(
///         Inventory,
///         Entity::new().on(Reserve, |stock, ctx, (cart, item)| {
///             let left = stock.entry(item.clone()).or_insert(3);
///             if *left == 0 {
///                 return Err(EntityError::msg(format!("{item} is sold out")));
///             }
///             *left -= 1;
///             ctx.entity(Cart, cart).signal(Reserved, item)
///         }),
///     );
///
/// let mut runtime = InProcessRuntime::new(&registry);
/// runtime.signal("alice", Add, "lamp".to_string()).unwrap();
/// futures::executor::block_on(runtime.run_until_idle()).unwrap();
/// assert_eq!(runtime.state_of(Cart, "alice").unwrap(), Some(vec!["lamp".to_string()]));
/// assert_eq!(runtime.state_of(Inventory, "main").unwrap().unwrap()["lamp"], 2);
/// ```
pub struct EntitySignaler<'a, E> {
    ctx: &'a mut EntityContext,
    id: EntityId,
    entity: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for EntitySignaler<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntitySignaler")
            .field("id", &self.id)
            .finish()
    }
}

impl<E: EntityType> EntitySignaler<'_, E> {
    /// The target entity's id.
    pub fn id(&self) -> &EntityId {
        &self.id
    }

    /// Signals an operation of the target entity.
    pub fn signal<Op>(
        &mut self,
        operation: Op,
        input: impl Borrow<Op::Input>,
    ) -> Result<(), EntityError>
    where
        Op: EntityOperation<Entity = E>,
    {
        let _ = operation;
        self.ctx.signal_entity(&self.id, Op::NAME, input.borrow())
    }

    /// Signals an operation of the target entity, for delivery at `at`.
    pub fn signal_at<Op>(
        &mut self,
        operation: Op,
        input: impl Borrow<Op::Input>,
        at: OffsetDateTime,
    ) -> Result<(), EntityError>
    where
        Op: EntityOperation<Entity = E>,
    {
        let _ = operation;
        self.ctx
            .signal_entity_at(&self.id, Op::NAME, input.borrow(), at)
    }
}

impl EntityContext {
    /// A typed handle on the entity of type `E` with `key`, for signaling it from this operation.
    pub fn entity<E: EntityType>(
        &mut self,
        entity: E,
        key: impl Into<String>,
    ) -> EntitySignaler<'_, E> {
        let _ = entity;
        EntitySignaler {
            ctx: self,
            id: E::id(key),
            entity: PhantomData,
        }
    }

    /// Starts an orchestration declared by type, sent only if this operation succeeds; returns its instance id
    /// (see [`start_new_orchestration`](Self::start_new_orchestration)).
    pub fn start_orchestration<O: Orchestrator>(
        &mut self,
        orchestrator: O,
        input: impl Borrow<O::Input>,
        instance_id: Option<String>,
    ) -> Result<String, EntityError> {
        let _ = orchestrator;
        self.start_new_orchestration(O::NAME, input.borrow(), instance_id)
    }
}
