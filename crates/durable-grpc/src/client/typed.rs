//! Typed client calls: orchestrations and entities named by their declarations (see `durable_core::typed`).

use std::fmt;
use std::marker::PhantomData;
use std::time::SystemTime;

use durable_core::{EntityId, EntityOperation, EntityType, Orchestrator};

use super::{DurableClient, OrchestrationMetadata, StartOptions};
use crate::error::Result;

impl DurableClient {
    /// Starts the orchestrator declared by `O` and returns the instance ID; the name and the input type come from
    /// the declaration.
    pub async fn start<O: Orchestrator>(
        &self,
        orchestrator: O,
        input: &O::Input,
        options: StartOptions,
    ) -> Result<String>
    where
        O::Input: Sync,
    {
        let _ = orchestrator;
        self.schedule_new_orchestration(O::NAME, input, options)
            .await
    }

    /// A typed handle on the entity of type `E` with `key`: signal its declared operations, read its state.
    pub fn entity<E: EntityType>(&self, entity: E, key: impl Into<String>) -> EntityClient<'_, E> {
        let _ = entity;
        EntityClient {
            client: self,
            id: E::id(key),
            entity: PhantomData,
        }
    }
}

/// An entity seen from a client, through its declaration. Made by [`DurableClient::entity`] (and the Functions
/// client's `entity`).
///
/// Clients signal entities; they do not call them and wait (as in the other SDKs): an orchestration does that.
pub struct EntityClient<'a, E> {
    client: &'a DurableClient,
    id: EntityId,
    entity: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for EntityClient<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityClient")
            .field("id", &self.id)
            .finish()
    }
}

impl<'a, E: EntityType> EntityClient<'a, E> {
    /// A handle on `id` through `client`, for clients that wrap a [`DurableClient`].
    pub fn new(client: &'a DurableClient, id: EntityId) -> Self {
        Self {
            client,
            id,
            entity: PhantomData,
        }
    }

    /// The entity's ID.
    pub fn id(&self) -> &EntityId {
        &self.id
    }

    /// Signals a declared operation of the entity.
    pub async fn signal<Op>(&self, operation: Op, input: &Op::Input) -> Result<()>
    where
        Op: EntityOperation<Entity = E>,
        Op::Input: Sync,
    {
        let _ = operation;
        self.client
            .signal_entity(&self.id, Op::NAME, input, None)
            .await
    }

    /// Signals a declared operation of the entity, for delivery at `at`.
    pub async fn signal_at<Op>(
        &self,
        operation: Op,
        input: &Op::Input,
        at: SystemTime,
    ) -> Result<()>
    where
        Op: EntityOperation<Entity = E>,
        Op::Input: Sync,
    {
        let _ = operation;
        self.client
            .signal_entity(&self.id, Op::NAME, input, Some(at))
            .await
    }

    /// The entity's state, or `None` when the entity does not exist.
    pub async fn state(&self) -> Result<Option<E::State>> {
        match self.client.get_entity(&self.id, true).await? {
            Some(metadata) => metadata.state(),
            None => Ok(None),
        }
    }
}

impl OrchestrationMetadata {
    /// The output of an instance of the orchestrator declared by `O`; `None` when absent or not fetched.
    pub fn output_of<O: Orchestrator>(&self, orchestrator: O) -> Result<Option<O::Output>> {
        let _ = orchestrator;
        self.output()
    }

    /// The input of an instance of the orchestrator declared by `O`; `None` when absent or not fetched.
    pub fn input_of<O: Orchestrator>(&self, orchestrator: O) -> Result<Option<O::Input>> {
        let _ = orchestrator;
        self.input()
    }
}
