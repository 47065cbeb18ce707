//! The served RPCs, each as `TaskHubGrpcServer` (Azure/azure-functions-durable-extension
//! `src/WebJobs.Extensions.DurableTask/TaskHubGrpcServer.cs`) and the `DurableClient` methods it calls behave:
//! the same request rewriting, state checks, response shapes and error codes and texts, over the host's backend.

use std::time::Duration;

use durable_proto as proto;
use futures::StreamExt as _;
use proto::OrchestrationStatus;
use proto::purge_instances_request::Request as Purge;
use tonic::{Code, Request, Response, Status};

use super::Boxed;
use super::routing::{Routes, Target};
use super::shape::{self, caught, no_instance, null_argument, status_name, unhandled};
use crate::config::OverridableStates;

type Reply<T> = Result<Response<T>, Status>;

/// The reuse policy that stands for the extension's dedupe statuses (`OverridableStatesExtensions.ToDedupeStatuses`
/// in `OverridableStates.cs`): `AnyState` dedupes nothing, so any existing instance is replaced; `NonRunningStates`
/// dedupes the running, continued-as-new, pending and suspended ones, so only finished instances are replaced.
fn reuse_policy(states: OverridableStates) -> proto::OrchestrationIdReusePolicy {
    proto::OrchestrationIdReusePolicy {
        replaceable_status: states.replaceable().into_iter().map(|s| s as i32).collect(),
    }
}

fn new_instance_id() -> String {
    // `Guid.NewGuid().ToString("N")`: 32 hex digits.
    uuid::Uuid::new_v4().simple().to_string()
}

/// The instance's state, or `None` when it does not exist.
async fn state(
    target: &Target,
    instance_id: &str,
    with_payloads: bool,
) -> Result<Option<proto::OrchestrationState>, Status> {
    let request = target
        .request(proto::GetInstanceRequest {
            instance_id: instance_id.to_owned(),
            get_inputs_and_outputs: with_payloads,
        })
        .await?;
    match target.stub().get_instance(request).await {
        Ok(response) => {
            let response = response.into_inner();
            Ok(response.orchestration_state.filter(|_| response.exists))
        }
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}

/// `ExecutionStartedEvent` + `CreateTaskOrchestrationAsync` with the host's dedupe statuses, as `StartInstance`
/// and `DurableClient.StartNewAsync` do.
async fn create(
    routes: &Routes,
    target: &Target,
    mut request: proto::CreateInstanceRequest,
) -> Result<String, Status> {
    if request.instance_id.is_empty() {
        request.instance_id = new_instance_id();
    }
    if request.version.is_none() {
        request.version = routes.config.durable.default_version.clone();
    }
    // The extension builds its own `ExecutionStartedEvent`: no tags, its own execution ID, and the host's
    // overridable states instead of the caller's reuse policy.
    request.tags.clear();
    request.execution_id = None;
    request.orchestration_id_reuse_policy =
        Some(reuse_policy(routes.config.durable.overridable_states));
    let id = request.instance_id.clone();
    target
        .stub()
        .start_instance(target.request(request).await?)
        .await?;
    Ok(id)
}

pub(super) async fn start_instance(
    routes: &Routes,
    request: Request<proto::CreateInstanceRequest>,
) -> Reply<proto::CreateInstanceResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    // The messages name the ID as the caller sent it, empty when the extension generated one.
    let requested = request.instance_id.clone();
    match create(routes, &target, request).await {
        Ok(instance_id) => Ok(Response::new(proto::CreateInstanceResponse { instance_id })),
        Err(status) if status.code() == Code::AlreadyExists => Err(Status::already_exists(
            format!("An Orchestration instance with the ID {requested} already exists."),
        )),
        Err(status) if shape::passes_through(&status) => {
            Err(Status::new(status.code(), status.message()))
        }
        Err(status) => Err(Status::internal(format!(
            "Failed to start instance with ID {requested}.\nInner Exception message: {}.",
            status.message()
        ))),
    }
}

pub(super) async fn get_instance(
    routes: &Routes,
    request: Request<proto::GetInstanceRequest>,
) -> Reply<proto::GetInstanceResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let with_payloads = request.get_inputs_and_outputs;
    let state = state(&target, &request.instance_id, with_payloads)
        .await
        .map_err(unhandled)?;
    Ok(Response::new(shape::instance_response(
        proto::GetInstanceResponse {
            exists: state.is_some(),
            orchestration_state: state,
        },
        with_payloads,
    )))
}

/// Polls until the instance exists and is no longer pending, backing off by a second every ten tries up to ten
/// seconds, as the extension does; a missing instance is waited for too (until the caller's deadline). Each try is
/// the backend's own wait, so a pending instance is watched rather than polled.
pub(super) async fn wait_for_instance_start(
    routes: &Routes,
    request: Request<proto::GetInstanceRequest>,
) -> Reply<proto::GetInstanceResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let with_payloads = request.get_inputs_and_outputs;
    let mut tries: u64 = 0;
    loop {
        let call = target.request(request.clone()).await?;
        let response = match target.stub().wait_for_instance_start(call).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == Code::NotFound => proto::GetInstanceResponse::default(),
            Err(status) => return Err(unhandled(status)),
        };
        if response.exists {
            return Ok(Response::new(shape::instance_response(
                response,
                with_payloads,
            )));
        }
        tokio::time::sleep(Duration::from_secs((tries / 10 + 1).min(10))).await;
        tries += 1;
    }
}

pub(super) async fn wait_for_instance_completion(
    routes: &Routes,
    request: Request<proto::GetInstanceRequest>,
) -> Reply<proto::GetInstanceResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let with_payloads = request.get_inputs_and_outputs;
    let call = target.request(request).await?;
    let response = match target.stub().wait_for_instance_completion(call).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == Code::NotFound => proto::GetInstanceResponse::default(),
        Err(status) => return Err(unhandled(status)),
    };
    Ok(Response::new(shape::instance_response(
        response,
        with_payloads,
    )))
}

/// `RaiseEventAsync` with the status check (`throwStatusExceptionsOnRaiseEvent`, when not set to `false`): a
/// missing instance is `NOT_FOUND`, a finished one `FAILED_PRECONDITION`. With the check off the event is sent
/// regardless and silently dropped when nobody can take it.
pub(super) async fn raise_event(
    routes: &Routes,
    request: Request<proto::RaiseEventRequest>,
) -> Reply<proto::RaiseEventResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    if request.name.is_empty() {
        return Err(Status::invalid_argument(null_argument("eventName")));
    }
    let check = routes
        .config
        .durable
        .throw_status_exceptions_on_raise_event
        // `ThrowStatusExceptionsOnRaiseEvent ?? DefaultDurabilityProvider.CheckStatusBeforeRaiseEvent`: the base
        // provider says false; whether the scheduler's provider overrides it is not public.
        .unwrap_or(false);
    if check {
        if request.instance_id.is_empty() {
            return Err(Status::invalid_argument(null_argument("instanceId")));
        }
        match state(&target, &request.instance_id, false).await {
            Ok(None) => return Err(Status::not_found(no_instance(&request.instance_id))),
            Ok(Some(s)) if !shape::is_running(s.orchestration_status) => {
                return Err(Status::failed_precondition(
                    "The orchestration instance with the provided instance id is not running.",
                ));
            }
            Ok(Some(_)) => {}
            Err(status) => return Err(caught(status, Code::Unknown, "")),
        }
    }
    let call = target.request(request).await?;
    match target.stub().raise_event(call).await {
        Ok(_) => Ok(Response::new(proto::RaiseEventResponse {})),
        Err(status)
            if !check && matches!(status.code(), Code::NotFound | Code::FailedPrecondition) =>
        {
            Ok(Response::new(proto::RaiseEventResponse {}))
        }
        Err(status) => Err(caught(status, Code::Unknown, "")),
    }
}

/// `TerminateAsync(instanceId, reason)`: only the instance itself (the request's `recursive` is not used), and
/// only while it runs.
pub(super) async fn terminate_instance(
    routes: &Routes,
    request: Request<proto::TerminateRequest>,
) -> Reply<proto::TerminateResponse> {
    let target = routes.target(&request)?;
    let mut request = request.into_inner();
    let id = request.instance_id.clone();
    if id.is_empty() {
        return Err(Status::invalid_argument(null_argument("instanceId")));
    }
    match state(&target, &id, false)
        .await
        .map_err(|s| caught(s, Code::Unknown, ""))?
    {
        None => {
            return Err(Status::not_found(format!(
                "ArgumentException: {}",
                no_instance(&id)
            )));
        }
        Some(s) if !shape::is_running(s.orchestration_status) => {
            return Err(Status::failed_precondition(format!(
                "InvalidOperationException: Cannot terminate the orchestration instance {id} because instance is \
                 in the {} state.",
                status_name(s.orchestration_status)
            )));
        }
        Some(_) => {}
    }
    request.recursive = false;
    target
        .stub()
        .terminate_instance(target.request(request).await?)
        .await
        .map_err(|s| caught(s, Code::Unknown, ""))?;
    Ok(Response::new(proto::TerminateResponse {}))
}

/// `SuspendAsync`: the extension catches nothing here, so every refusal is `UNKNOWN`.
pub(super) async fn suspend_instance(
    routes: &Routes,
    request: Request<proto::SuspendRequest>,
) -> Reply<proto::SuspendResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let status = existing_status(&target, &request.instance_id).await?;
    if !shape::is_suspendable(status) {
        return Err(Status::unknown(format!(
            "Cannot suspend the orchestration instance {} because instance is in the {} state.",
            request.instance_id,
            status_name(status)
        )));
    }
    target
        .stub()
        .suspend_instance(target.request(request).await?)
        .await
        .map_err(unhandled)?;
    Ok(Response::new(proto::SuspendResponse {}))
}

/// `ResumeAsync`: only a suspended instance; refusals are `UNKNOWN`, as for suspend.
pub(super) async fn resume_instance(
    routes: &Routes,
    request: Request<proto::ResumeRequest>,
) -> Reply<proto::ResumeResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let status = existing_status(&target, &request.instance_id).await?;
    if status != OrchestrationStatus::Suspended as i32 {
        return Err(Status::unknown(format!(
            "Cannot resume the orchestration instance {} because instance is in the {} state.",
            request.instance_id,
            status_name(status)
        )));
    }
    target
        .stub()
        .resume_instance(target.request(request).await?)
        .await
        .map_err(unhandled)?;
    Ok(Response::new(proto::ResumeResponse {}))
}

/// `GetOrchestrationInstanceStateAsync` for the methods that do not catch its exceptions (`UNKNOWN`).
async fn existing_status(target: &Target, instance_id: &str) -> Result<i32, Status> {
    if instance_id.is_empty() {
        return Err(Status::unknown(null_argument("instanceId")));
    }
    match state(target, instance_id, false).await.map_err(unhandled)? {
        Some(s) => Ok(s.orchestration_status),
        None => Err(Status::unknown(no_instance(instance_id))),
    }
}

/// `RewindAsync`: only a failed instance. `ArgumentException` (missing or empty ID) is `NOT_FOUND`, the state check
/// `FAILED_PRECONDITION`, anything else `UNKNOWN`.
pub(super) async fn rewind_instance(
    routes: &Routes,
    request: Request<proto::RewindInstanceRequest>,
) -> Reply<proto::RewindInstanceResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let id = request.instance_id.clone();
    if id.is_empty() {
        return Err(Status::not_found(null_argument("instanceId")));
    }
    match state(&target, &id, false)
        .await
        .map_err(|s| caught(s, Code::Unknown, ""))?
    {
        None => return Err(Status::not_found(no_instance(&id))),
        Some(s) if s.orchestration_status != OrchestrationStatus::Failed as i32 => {
            return Err(Status::failed_precondition(
                "The rewind operation is only supported on failed orchestration instances.",
            ));
        }
        Some(_) => {}
    }
    target
        .stub()
        .rewind_instance(target.request(request).await?)
        .await
        .map_err(|s| caught(s, Code::Unknown, ""))?;
    Ok(Response::new(proto::RewindInstanceResponse {}))
}

/// `RestartAsync`: a new start of the instance's orchestrator with its original input, under the same ID or a new
/// one, through the same path as any start (the host's default version and overridable states apply, so with
/// `AnyState` a running instance is started over).
pub(super) async fn restart_instance(
    routes: &Routes,
    request: Request<proto::RestartInstanceRequest>,
) -> Reply<proto::RestartInstanceResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let id = request.instance_id;
    let original = state(&target, &id, true)
        .await
        .map_err(|s| caught(s, Code::Unknown, ""))?
        .ok_or_else(|| {
            // The extension's text, misspelling included.
            Status::not_found(format!(
                "ArgumentException: An orchestrastion with the instanceId {id} was not found."
            ))
        })?;
    // `RestartAsync` starts through `StartNewAsync`, which refuses an orchestrator the app does not have.
    let known = &routes.config.orchestrators;
    if !known.iter().any(|o| o.eq_ignore_ascii_case(&original.name)) {
        return Err(Status::not_found(format!(
            "ArgumentException: {}",
            crate::extension::function_not_found(&original.name, "orchestrator", known)
        )));
    }
    let start = proto::CreateInstanceRequest {
        instance_id: if request.restart_with_new_instance_id {
            String::new()
        } else {
            id
        },
        name: original.name,
        input: original.input,
        ..Default::default()
    };
    match create(routes, &target, start).await {
        Ok(instance_id) => Ok(Response::new(proto::RestartInstanceResponse {
            instance_id,
        })),
        Err(status) if status.code() == Code::AlreadyExists => Err(Status::failed_precondition(
            format!("InvalidOperationException: {}", status.message()),
        )),
        Err(status) => Err(caught(status, Code::Unknown, "")),
    }
}

/// `PurgeInstanceStateAsync` by ID or by filter. The extension passes neither `recursive` nor the entity flag on:
/// an ID is purged whatever it names.
pub(super) async fn purge_instances(
    routes: &Routes,
    request: Request<proto::PurgeInstancesRequest>,
) -> Reply<proto::PurgeInstancesResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let forwarded = match request.request {
        Some(Purge::InstanceId(id)) => proto::PurgeInstancesRequest {
            is_orchestration: !id.starts_with('@'),
            request: Some(Purge::InstanceId(id)),
            recursive: false,
        },
        Some(Purge::PurgeInstanceFilter(filter)) => proto::PurgeInstancesRequest {
            request: Some(Purge::PurgeInstanceFilter(filter)),
            recursive: false,
            is_orchestration: true,
        },
        other => {
            let case = if other.is_some() {
                "InstanceBatch"
            } else {
                "None"
            };
            return Err(Status::invalid_argument(format!(
                "Unknown purge request type '{case}'."
            )));
        }
    };
    let response = target
        .stub()
        .purge_instances(target.request(forwarded).await?)
        .await
        .map_err(|s| caught(s, Code::Internal, "Failed during purging instances: "))?;
    Ok(Response::new(response.into_inner()))
}

pub(super) async fn query_instances(
    routes: &Routes,
    request: Request<proto::QueryInstancesRequest>,
) -> Reply<proto::QueryInstancesResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    if request.query.is_none() {
        return Err(Status::unknown("the QueryInstancesRequest has no query"));
    }
    let response = target
        .stub()
        .query_instances(target.request(request).await?)
        .await
        .map_err(unhandled)?;
    Ok(Response::new(shape::query_response(response.into_inner())))
}

/// The history as the backend streams it; a missing instance is `NOT_FOUND`, other failures `INTERNAL`.
pub(super) async fn stream_instance_history(
    routes: &Routes,
    request: Request<proto::StreamInstanceHistoryRequest>,
) -> Reply<Boxed<proto::HistoryChunk>> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    let map = |status: Status| {
        if status.code() == Code::NotFound {
            Status::not_found(status.message())
        } else {
            caught(status, Code::Internal, "")
        }
    };
    let stream = target
        .stub()
        .stream_instance_history(target.request(request).await?)
        .await
        .map_err(map)?
        .into_inner();
    let stream: Boxed<proto::HistoryChunk> = Box::pin(stream.map(move |item| item.map_err(map)));
    Ok(Response::new(stream))
}

/// `CreateAsync` / `DeleteAsync` are started and not awaited by the extension, so the caller never hears of a
/// failure; it is logged here.
pub(super) async fn create_task_hub(
    routes: &Routes,
    request: Request<proto::CreateTaskHubRequest>,
) -> Reply<proto::CreateTaskHubResponse> {
    let target = routes.target(&request)?;
    let call = target.request(request.into_inner()).await?;
    if let Err(status) = target.stub().create_task_hub(call).await {
        tracing::warn!(target: "host", "CreateTaskHub through the client endpoint failed: {}", status.message());
    }
    Ok(Response::new(proto::CreateTaskHubResponse {}))
}

pub(super) async fn delete_task_hub(
    routes: &Routes,
    request: Request<proto::DeleteTaskHubRequest>,
) -> Reply<proto::DeleteTaskHubResponse> {
    let target = routes.target(&request)?;
    let call = target.request(request.into_inner()).await?;
    if let Err(status) = target.stub().delete_task_hub(call).await {
        tracing::warn!(target: "host", "DeleteTaskHub through the client endpoint failed: {}", status.message());
    }
    Ok(Response::new(proto::DeleteTaskHubResponse {}))
}

/// The extension parses `requestId` with `Guid.Parse`; anything else fails there, so it fails here too.
pub(super) async fn signal_entity(
    routes: &Routes,
    request: Request<proto::SignalEntityRequest>,
) -> Reply<proto::SignalEntityResponse> {
    let target = routes.target(&request)?;
    let request = request.into_inner();
    if uuid::Uuid::parse_str(request.request_id.trim()).is_err() {
        return Err(Status::unknown(format!(
            "the signal's requestId {:?} is not a GUID (the Durable extension parses it with Guid.Parse)",
            request.request_id
        )));
    }
    target
        .stub()
        .signal_entity(target.request(request).await?)
        .await
        .map_err(unhandled)?;
    Ok(Response::new(proto::SignalEntityResponse {}))
}

pub(super) async fn get_entity(
    routes: &Routes,
    request: Request<proto::GetEntityRequest>,
) -> Reply<proto::GetEntityResponse> {
    let target = routes.target(&request)?;
    let mut request = request.into_inner();
    let include_state = request.include_state;
    // The extension asks its backend with `includeStateless: false`: an entity without state (one that is only
    // locked, say) does not exist for a client.
    request.include_state = true;
    let call = target.request(request).await?;
    match target.stub().get_entity(call).await {
        Ok(response) => {
            let response = response.into_inner();
            let entity = response
                .entity
                .filter(|e| response.exists && e.serialized_state.is_some())
                .map(|mut e| {
                    if !include_state {
                        e.serialized_state = None;
                    }
                    e
                });
            Ok(Response::new(proto::GetEntityResponse {
                exists: entity.is_some(),
                entity,
            }))
        }
        Err(status) if status.code() == Code::NotFound => {
            Ok(Response::new(proto::GetEntityResponse::default()))
        }
        Err(status) => Err(unhandled(status)),
    }
}

pub(super) async fn query_entities(
    routes: &Routes,
    request: Request<proto::QueryEntitiesRequest>,
) -> Reply<proto::QueryEntitiesResponse> {
    let target = routes.target(&request)?;
    let call = target.request(request.into_inner()).await?;
    let response = target
        .stub()
        .query_entities(call)
        .await
        .map_err(unhandled)?;
    Ok(Response::new(response.into_inner()))
}

pub(super) async fn clean_entity_storage(
    routes: &Routes,
    request: Request<proto::CleanEntityStorageRequest>,
) -> Reply<proto::CleanEntityStorageResponse> {
    let target = routes.target(&request)?;
    let call = target.request(request.into_inner()).await?;
    let response = target
        .stub()
        .clean_entity_storage(call)
        .await
        .map_err(unhandled)?;
    Ok(Response::new(response.into_inner()))
}
