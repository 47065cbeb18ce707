//! `DurableClient`: start, inspect and manage orchestrations and entities.

mod entities;
mod paging;
mod typed;
mod types;

use std::time::{Duration, SystemTime};

use durable_proto as proto;
use futures::Stream;
use proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use serde::Serialize;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::connection::{Connection, ConnectionOptions};
use crate::error::{Error, Result};
use paging::paged;

pub use typed::EntityClient;
pub use types::{
    CleanEntityStorageResult, EntityMetadata, EntityQuery, FailureDetails, InstanceIdQuery,
    InstanceQuery, OrchestrationMetadata, OrchestrationStatus, Page, PurgeFilter, PurgeResult,
    StartOptions,
};

/// A client for the scheduler's management API. Cheap to clone; clones share one connection.
#[derive(Clone, Debug)]
pub struct DurableClient {
    connection: Connection,
}

pub(crate) fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Option<String>> {
    let json = serde_json::to_string(value).map_err(|e| Error::payload(what, e))?;
    // A JSON null travels as "no payload", as the other SDKs send it.
    Ok((json != "null").then_some(json))
}

fn ts(time: Option<SystemTime>) -> Option<prost_types::Timestamp> {
    time.map(prost_types::Timestamp::from)
}

fn statuses(list: &[OrchestrationStatus]) -> Vec<i32> {
    list.iter().map(|s| s.to_proto()).collect()
}

fn page_size(size: Option<u32>) -> i32 {
    size.map_or(0, |s| i32::try_from(s).unwrap_or(i32::MAX))
}

fn non_empty(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    Ok(())
}

impl DurableClient {
    /// A client for the endpoint the options name. The connection is made on the first call.
    pub fn new(options: &ConnectionOptions) -> Result<Self> {
        Ok(Self {
            connection: options.connect(None)?,
        })
    }

    /// A client from a connection string (see [`ConnectionOptions::from_connection_string`]).
    pub fn from_connection_string(connection_string: &str) -> Result<Self> {
        Self::new(&ConnectionOptions::from_connection_string(
            connection_string,
        )?)
    }

    /// A client for another task hub over the same channel and credential: no new connection, one token cache.
    pub fn with_task_hub(&self, task_hub: &str) -> Result<Self> {
        Ok(Self {
            connection: self.connection.with_task_hub(task_hub)?,
        })
    }

    /// The generated gRPC stub on this client's channel, with the connection's message size limit
    /// ([`ConnectionOptions::with_max_message_bytes`]), for calls the typed methods do not cover (a proxy that forwards requests as they come, for instance). Wrap every message with
    /// [`DurableClient::request`], so that it carries the task hub, the user agent, the extra headers and a current
    /// token.
    pub fn raw_stub(&self) -> TaskHubSidecarServiceClient<Channel> {
        self.stub()
    }

    /// Wraps a message for [`DurableClient::raw_stub`] with this client's headers and a current token (fetched or
    /// renewed here when the connection has a credential). Its size is not checked here; the stub refuses a
    /// message over the limit when it sends it.
    pub async fn request<T>(&self, message: T) -> Result<tonic::Request<T>> {
        self.connection.wrap(message).await
    }

    fn stub(&self) -> TaskHubSidecarServiceClient<Channel> {
        self.connection.stub()
    }

    /// Starts an orchestration and returns its instance ID.
    pub async fn schedule_new_orchestration<I: Serialize + ?Sized>(
        &self,
        name: &str,
        input: &I,
        options: StartOptions,
    ) -> Result<String> {
        non_empty("the orchestrator name", name)?;
        let instance_id = options
            .instance_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        non_empty("the instance ID", &instance_id)?;
        // The SDKs' PRODUCER span for a start; the orchestration's spans become its children.
        let span = tracing::info_span!(
            target: "durabletask",
            "create orchestration",
            otel.name = %durable_core::trace::span_name("create_orchestration", name, options.version.as_deref()),
            otel.kind = "producer",
            durabletask.r#type = "orchestration",
            durabletask.task.name = %name,
            durabletask.task.instance_id = %instance_id,
        );
        durable_telemetry::set_parent_from_proto(&span, options.parent_trace_context.as_ref());
        let parent_trace_context =
            durable_telemetry::context_of(&span).or(options.parent_trace_context);
        let request = proto::CreateInstanceRequest {
            instance_id,
            name: name.to_owned(),
            version: options.version,
            input: to_json(&format!("input of orchestration {name:?}"), input)?,
            scheduled_start_timestamp: ts(options.start_at),
            orchestration_id_reuse_policy: options.replaceable.map(|list| {
                proto::OrchestrationIdReusePolicy {
                    replaceable_status: statuses(&list),
                }
            }),
            tags: options.tags,
            request_time: Some(SystemTime::now().into()),
            parent_trace_context,
            ..Default::default()
        };
        let response = async {
            self.stub()
                .start_instance(self.connection.request(request).await?)
                .await
                .map_err(Error::from)
        }
        .instrument(span)
        .await?;
        Ok(response.into_inner().instance_id)
    }

    /// The instance's metadata, or `None` when it does not exist.
    pub async fn get_instance(
        &self,
        instance_id: &str,
        with_payloads: bool,
    ) -> Result<Option<OrchestrationMetadata>> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::GetInstanceRequest {
            instance_id: instance_id.to_owned(),
            get_inputs_and_outputs: with_payloads,
        };
        match self
            .stub()
            .get_instance(self.connection.request(request).await?)
            .await
        {
            Ok(response) => Ok(existing(response.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// Waits (server-side) until the instance has started, for at most `timeout` (timeouts beyond
    /// [`MAX_TIMEOUT`](crate::MAX_TIMEOUT), `Duration::MAX` included, mean no practical limit).
    pub async fn wait_for_start(
        &self,
        instance_id: &str,
        with_payloads: bool,
        timeout: Duration,
    ) -> Result<OrchestrationMetadata> {
        self.wait(instance_id, with_payloads, timeout, false).await
    }

    /// Waits (server-side) until the instance has finished, for at most `timeout` (timeouts beyond
    /// [`MAX_TIMEOUT`](crate::MAX_TIMEOUT), `Duration::MAX` included, mean no practical limit).
    pub async fn wait_for_completion(
        &self,
        instance_id: &str,
        with_payloads: bool,
        timeout: Duration,
    ) -> Result<OrchestrationMetadata> {
        self.wait(instance_id, with_payloads, timeout, true).await
    }

    async fn wait(
        &self,
        instance_id: &str,
        with_payloads: bool,
        timeout: Duration,
        completion: bool,
    ) -> Result<OrchestrationMetadata> {
        non_empty("the instance ID", instance_id)?;
        let timeout = timeout.min(crate::MAX_TIMEOUT);
        let message = proto::GetInstanceRequest {
            instance_id: instance_id.to_owned(),
            get_inputs_and_outputs: with_payloads,
        };
        let request = self
            .connection
            .request_with_timeout(message, Some(timeout))
            .await?;
        let call = async {
            if completion {
                self.stub().wait_for_instance_completion(request).await
            } else {
                self.stub().wait_for_instance_start(request).await
            }
        };
        // The local bound guards against servers that ignore the gRPC deadline.
        let what = if completion { "completion" } else { "start" };
        let timed_out = || {
            Error::Timeout(format!(
                "instance {instance_id:?} did not reach {what} within {timeout:?}"
            ))
        };
        let response = match tokio::time::timeout(
            timeout.saturating_add(Duration::from_secs(1)),
            call,
        )
        .await
        {
            Err(_) => return Err(timed_out()),
            Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
                return Err(timed_out());
            }
            Ok(Err(status)) => return Err(status.into()),
            Ok(Ok(response)) => response.into_inner(),
        };
        existing(response)
            .ok_or_else(|| Error::NotFound(format!("instance {instance_id:?} does not exist")))
    }

    /// Sends an external event to an instance.
    pub async fn raise_event<T: Serialize + ?Sized>(
        &self,
        instance_id: &str,
        event_name: &str,
        data: &T,
    ) -> Result<()> {
        non_empty("the instance ID", instance_id)?;
        non_empty("the event name", event_name)?;
        let request = proto::RaiseEventRequest {
            instance_id: instance_id.to_owned(),
            name: event_name.to_owned(),
            input: to_json(&format!("data of event {event_name:?}"), data)?,
        };
        // The SDKs' PRODUCER span for an event; the request has no field to carry its context on.
        let span = tracing::info_span!(
            target: "durabletask",
            "raise event",
            otel.name = %durable_core::trace::span_name("orchestration_event", event_name, None),
            otel.kind = "producer",
            durabletask.r#type = "event",
            durabletask.task.name = %event_name,
            durabletask.event.target_instance_id = %instance_id,
        );
        async {
            self.stub()
                .raise_event(self.connection.request(request).await?)
                .await
                .map_err(Error::from)
        }
        .instrument(span)
        .await?;
        Ok(())
    }

    /// Terminates an instance (and, if `recursive`, its sub-orchestrations) with `output` as its output.
    pub async fn terminate<T: Serialize + ?Sized>(
        &self,
        instance_id: &str,
        output: &T,
        recursive: bool,
    ) -> Result<()> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::TerminateRequest {
            instance_id: instance_id.to_owned(),
            output: to_json("termination output", output)?,
            recursive,
        };
        self.stub()
            .terminate_instance(self.connection.request(request).await?)
            .await?;
        Ok(())
    }

    /// Suspends a running instance: it keeps its inbox but takes no turns until resumed.
    pub async fn suspend(&self, instance_id: &str, reason: Option<&str>) -> Result<()> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::SuspendRequest {
            instance_id: instance_id.to_owned(),
            reason: reason.map(str::to_owned),
        };
        self.stub()
            .suspend_instance(self.connection.request(request).await?)
            .await?;
        Ok(())
    }

    /// Resumes a suspended instance.
    pub async fn resume(&self, instance_id: &str, reason: Option<&str>) -> Result<()> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::ResumeRequest {
            instance_id: instance_id.to_owned(),
            reason: reason.map(str::to_owned),
        };
        self.stub()
            .resume_instance(self.connection.request(request).await?)
            .await?;
        Ok(())
    }

    /// Starts a finished instance again with its original input; returns the (possibly new) instance ID.
    pub async fn restart(&self, instance_id: &str, with_new_instance_id: bool) -> Result<String> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::RestartInstanceRequest {
            instance_id: instance_id.to_owned(),
            restart_with_new_instance_id: with_new_instance_id,
        };
        let response = self
            .stub()
            .restart_instance(self.connection.request(request).await?)
            .await?;
        Ok(response.into_inner().instance_id)
    }

    /// Rewinds a failed instance so that its failed tasks run again.
    pub async fn rewind(&self, instance_id: &str, reason: Option<&str>) -> Result<()> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::RewindInstanceRequest {
            instance_id: instance_id.to_owned(),
            reason: reason.map(str::to_owned),
        };
        self.stub()
            .rewind_instance(self.connection.request(request).await?)
            .await?;
        Ok(())
    }

    /// Deletes a finished instance (and, if `recursive`, its sub-orchestrations), or an entity (`@name@key`).
    pub async fn purge_instance(&self, instance_id: &str, recursive: bool) -> Result<PurgeResult> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::PurgeInstancesRequest {
            request: Some(proto::purge_instances_request::Request::InstanceId(
                instance_id.to_owned(),
            )),
            recursive,
            is_orchestration: !instance_id.starts_with('@'),
        };
        self.purge(request).await
    }

    /// Deletes every finished instance that matches the filter.
    pub async fn purge_instances(
        &self,
        filter: PurgeFilter,
        recursive: bool,
    ) -> Result<PurgeResult> {
        let request = proto::PurgeInstancesRequest {
            request: Some(
                proto::purge_instances_request::Request::PurgeInstanceFilter(
                    proto::PurgeInstanceFilter {
                        created_time_from: ts(filter.created_from),
                        created_time_to: ts(filter.created_to),
                        runtime_status: statuses(&filter.statuses),
                        timeout: None,
                    },
                ),
            ),
            recursive,
            is_orchestration: true,
        };
        self.purge(request).await
    }

    async fn purge(&self, request: proto::PurgeInstancesRequest) -> Result<PurgeResult> {
        let response = self
            .stub()
            .purge_instances(self.connection.request(request).await?)
            .await?
            .into_inner();
        Ok(PurgeResult {
            deleted_instance_count: u32::try_from(response.deleted_instance_count).unwrap_or(0),
            is_complete: response.is_complete,
        })
    }

    /// One page of instances matching the query.
    pub async fn query_instances(
        &self,
        query: &InstanceQuery,
    ) -> Result<Page<OrchestrationMetadata>> {
        let request = proto::QueryInstancesRequest {
            query: Some(proto::InstanceQuery {
                runtime_status: statuses(&query.statuses),
                created_time_from: ts(query.created_from),
                created_time_to: ts(query.created_to),
                task_hub_names: Vec::new(),
                max_instance_count: page_size(query.page_size),
                continuation_token: query.continuation_token.clone(),
                instance_id_prefix: query.instance_id_prefix.clone(),
                fetch_inputs_and_outputs: query.with_payloads,
            }),
        };
        let response = self
            .stub()
            .query_instances(self.connection.request(request).await?)
            .await?
            .into_inner();
        Ok(Page {
            items: response
                .orchestration_state
                .into_iter()
                .map(OrchestrationMetadata::from_proto)
                .collect(),
            continuation_token: response.continuation_token.filter(|t| !t.is_empty()),
        })
    }

    /// Every instance matching the query, fetched page by page as the stream is read.
    pub fn query_all_instances(
        &self,
        query: InstanceQuery,
    ) -> impl Stream<Item = Result<OrchestrationMetadata>> + Send + 'static {
        let client = self.clone();
        paged(query, move |query| {
            let client = client.clone();
            async move {
                let page = client.query_instances(&query).await?;
                let next = page
                    .continuation_token
                    .clone()
                    .map(|t| query.with_continuation_token(Some(t)));
                Ok((page.items, next))
            }
        })
    }

    /// One page of instance IDs (a cheaper listing than [`query_instances`](Self::query_instances)).
    pub async fn list_instance_ids(&self, query: &InstanceIdQuery) -> Result<Page<String>> {
        let request = proto::ListInstanceIdsRequest {
            runtime_status: statuses(&query.statuses),
            completed_time_from: ts(query.completed_from),
            completed_time_to: ts(query.completed_to),
            page_size: page_size(query.page_size),
            last_instance_key: query.last_instance_key.clone(),
        };
        let response = self
            .stub()
            .list_instance_ids(self.connection.request(request).await?)
            .await?
            .into_inner();
        Ok(Page {
            items: response.instance_ids,
            continuation_token: response.last_instance_key.filter(|t| !t.is_empty()),
        })
    }

    /// Every instance ID matching the query, fetched page by page as the stream is read.
    pub fn list_all_instance_ids(
        &self,
        query: InstanceIdQuery,
    ) -> impl Stream<Item = Result<String>> + Send + 'static {
        let client = self.clone();
        paged(query, move |query| {
            let client = client.clone();
            async move {
                let page = client.list_instance_ids(&query).await?;
                // An empty page with a key would loop forever on some servers; stop there.
                let next = page
                    .continuation_token
                    .clone()
                    .filter(|_| !page.items.is_empty())
                    .map(|t| query.with_continuation_token(Some(t)));
                Ok((page.items, next))
            }
        })
    }

    /// The instance's recorded history, oldest event first.
    pub async fn get_history(&self, instance_id: &str) -> Result<Vec<proto::HistoryEvent>> {
        non_empty("the instance ID", instance_id)?;
        let request = proto::StreamInstanceHistoryRequest {
            instance_id: instance_id.to_owned(),
            execution_id: None,
            for_work_item_processing: false,
        };
        crate::history::fetch(&self.connection, request).await
    }
}

fn existing(response: proto::GetInstanceResponse) -> Option<OrchestrationMetadata> {
    response
        .orchestration_state
        .filter(|_| response.exists)
        .map(OrchestrationMetadata::from_proto)
}
