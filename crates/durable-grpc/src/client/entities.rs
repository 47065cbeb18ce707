//! The entity half of the client.

use std::fmt::Display;
use std::time::SystemTime;

use durable_proto as proto;
use futures::Stream;
use serde::Serialize;

use super::paging::paged;
use super::{
    CleanEntityStorageResult, DurableClient, EntityMetadata, EntityQuery, Page, non_empty, to_json,
    ts,
};
use crate::error::{Error, Result};

fn entity_id(id: &dyn Display) -> Result<String> {
    let id = id.to_string();
    let valid = id
        .strip_prefix('@')
        .and_then(|rest| rest.split_once('@'))
        .is_some_and(|(name, _)| !name.is_empty());
    if !valid {
        return Err(Error::InvalidArgument(format!(
            "{id:?} is not an entity ID; expected \"@name@key\""
        )));
    }
    Ok(id)
}

impl DurableClient {
    /// Sends a one-way operation to an entity (`@name@key`), now or at `scheduled_at`. The operation's span is a
    /// child of the current span when OpenTelemetry is set up (its context travels as `parentTraceContext`).
    pub async fn signal_entity<T: Serialize + ?Sized>(
        &self,
        entity: impl Display + Send,
        operation: &str,
        input: &T,
        scheduled_at: Option<SystemTime>,
    ) -> Result<()> {
        let instance_id = entity_id(&entity)?;
        non_empty("the operation name", operation)?;
        let request = proto::SignalEntityRequest {
            instance_id,
            name: operation.to_owned(),
            input: to_json(&format!("input of entity operation {operation:?}"), input)?,
            request_id: uuid::Uuid::new_v4().to_string(),
            scheduled_time: ts(scheduled_at),
            parent_trace_context: durable_telemetry::context_of(&tracing::Span::current()),
            request_time: Some(SystemTime::now().into()),
        };
        self.stub()
            .signal_entity(self.connection.request(request).await?)
            .await?;
        Ok(())
    }

    /// The entity's metadata (and state, if asked), or `None` when it does not exist.
    pub async fn get_entity(
        &self,
        entity: impl Display + Send,
        include_state: bool,
    ) -> Result<Option<EntityMetadata>> {
        let instance_id = entity_id(&entity)?;
        let request = proto::GetEntityRequest {
            instance_id,
            include_state,
        };
        let response = match self
            .stub()
            .get_entity(self.connection.request(request).await?)
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(status) => return Err(status.into()),
        };
        Ok(response
            .entity
            .filter(|_| response.exists)
            .map(EntityMetadata::from_proto))
    }

    /// One page of entities matching the query.
    pub async fn query_entities(&self, query: &EntityQuery) -> Result<Page<EntityMetadata>> {
        let request = proto::QueryEntitiesRequest {
            query: Some(proto::EntityQuery {
                instance_id_starts_with: query.instance_id_prefix.clone(),
                last_modified_from: ts(query.modified_from),
                last_modified_to: ts(query.modified_to),
                include_state: query.include_state,
                include_transient: query.include_transient,
                page_size: query
                    .page_size
                    .map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
                continuation_token: query.continuation_token.clone(),
            }),
        };
        let response = self
            .stub()
            .query_entities(self.connection.request(request).await?)
            .await?
            .into_inner();
        Ok(Page {
            items: response
                .entities
                .into_iter()
                .map(EntityMetadata::from_proto)
                .collect(),
            continuation_token: response.continuation_token.filter(|t| !t.is_empty()),
        })
    }

    /// Every entity matching the query, fetched page by page as the stream is read.
    pub fn query_all_entities(
        &self,
        query: EntityQuery,
    ) -> impl Stream<Item = Result<EntityMetadata>> + Send + 'static {
        let client = self.clone();
        paged(query, move |query| {
            let client = client.clone();
            async move {
                let page = client.query_entities(&query).await?;
                let next = page
                    .continuation_token
                    .clone()
                    .map(|t| query.with_continuation_token(Some(t)));
                Ok((page.items, next))
            }
        })
    }

    /// Removes empty entities and releases locks held by finished orchestrations, across every page.
    pub async fn clean_entity_storage(
        &self,
        remove_empty_entities: bool,
        release_orphaned_locks: bool,
    ) -> Result<CleanEntityStorageResult> {
        let mut total = CleanEntityStorageResult::default();
        let mut continuation_token = None;
        loop {
            let request = proto::CleanEntityStorageRequest {
                continuation_token,
                remove_empty_entities,
                release_orphaned_locks,
            };
            let response = self
                .stub()
                .clean_entity_storage(self.connection.request(request).await?)
                .await?
                .into_inner();
            total.empty_entities_removed +=
                u32::try_from(response.empty_entities_removed).unwrap_or(0);
            total.orphaned_locks_released +=
                u32::try_from(response.orphaned_locks_released).unwrap_or(0);
            continuation_token = response.continuation_token.filter(|t| !t.is_empty());
            if continuation_token.is_none() {
                return Ok(total);
            }
        }
    }
}
