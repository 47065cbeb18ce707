//! Typed calls of the Functions client: orchestrations and entities named by their declarations.

use durable_core::{EntityType, Orchestrator};
use durable_grpc::{EntityClient, StartOptions};

use super::{DurableFunctionsClient, Result};

impl DurableFunctionsClient {
    /// Starts the orchestrator declared by `O` and returns the instance ID (see
    /// [`schedule_new_orchestration`](Self::schedule_new_orchestration) for what the extension does with the
    /// options).
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
        EntityClient::new(&self.client, E::id(key))
    }
}
