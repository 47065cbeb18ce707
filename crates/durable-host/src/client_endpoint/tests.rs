//! The endpoint against the embedded backend with a worker: every served RPC through it, the unserved ones
//! refused, and the extension's shapes and error texts.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext,
    OrchestrationError, Registry,
};
use durable_grpc::{
    ConnectionOptions, DurableClient, EntityQuery, Error, InstanceQuery, OrchestrationStatus,
    PurgeFilter, StartOptions, Worker, WorkerHandle, WorkerOptions,
};
use durable_proto as proto;
use proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use super::{ClientEndpoint, EndpointConfig};
use crate::config::{DurableClientSettings, OverridableStates};

pub(super) const HUB: &str = "apphub";
pub(super) const WAIT: Duration = Duration::from_secs(60);

/// Keys `fails_once` has seen: it fails the first time per key, so a rewound instance completes.
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

async fn fails_once(_ctx: ActivityContext, key: String) -> Result<String, ActivityError> {
    let first = SEEN
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(key.clone());
    if first {
        return Err(ActivityError::new("FirstTime", "the first call fails"));
    }
    Ok(format!("{key} ok"))
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator(
            "Echo",
            |_ctx: OrchestrationContext, input: serde_json::Value| async move {
                Ok::<_, OrchestrationError>(input)
            },
        )
        .add_orchestrator("Waiter", |ctx: OrchestrationContext, _: ()| async move {
            ctx.set_custom_status(&"waiting")?;
            Ok::<_, OrchestrationError>(ctx.wait_for_external_event::<String>("go").await?)
        })
        .add_orchestrator(
            "Rewindable",
            |ctx: OrchestrationContext, _: ()| async move {
                let key = ctx.instance_id();
                Ok::<_, OrchestrationError>(
                    ctx.call_activity::<_, String>("fails_once", key).await?,
                )
            },
        )
        .add_orchestrator(
            "Locker",
            |ctx: OrchestrationContext, key: String| async move {
                let lock = ctx
                    .lock_entities(&[durable_core::EntityId::new("counter", key)])
                    .await?;
                let go: String = ctx.wait_for_external_event("go").await?;
                lock.release();
                Ok::<_, OrchestrationError>(go)
            },
        )
        .add_activity("fails_once", fails_once)
        .add_entity(
            "counter",
            Entity::<i64>::new().operation("add", |n: &mut i64, _ctx, by: i64| {
                *n += by;
                Ok::<_, EntityError>(*n)
            }),
        );
    registry
}

/// An embedded backend with a worker, the endpoint in front of it, and clients on both sides.
pub(super) struct Fixture {
    pub(super) backend: durable_backend::Handle,
    worker: WorkerHandle,
    pub(super) endpoint: ClientEndpoint,
    /// The host's own client: the backend, the app's hub.
    pub(super) host: DurableClient,
    /// A starter's client: the endpoint, the hub left to the endpoint.
    pub(super) starter: DurableClient,
}

impl Fixture {
    pub(super) async fn start(
        durable: DurableClientSettings,
        settings: BTreeMap<String, String>,
    ) -> Self {
        let backend = durable_backend::start(
            durable_backend::Options::new()
                .in_memory()
                .with_bind(([127, 0, 0, 1], 0).into()),
        )
        .await
        .unwrap();
        let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub(HUB);
        let worker = Worker::builder()
            .connection(connection.clone())
            .registry(registry())
            .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(2)))
            .build()
            .unwrap()
            .start();
        let host = DurableClient::new(&connection).unwrap();
        let config = EndpointConfig {
            hub: HUB.to_owned(),
            durable,
            settings,
            orchestrators: ["Echo", "Waiter", "Rewindable", "Locker"]
                .map(str::to_owned)
                .to_vec(),
        };
        let endpoint = ClientEndpoint::start(host.clone(), config).await.unwrap();
        let starter = DurableClient::new(
            &ConnectionOptions::new(endpoint.url())
                .with_task_hub_header(durable_grpc::FUNCTIONS_TASK_HUB_HEADER),
        )
        .unwrap();
        Self {
            backend,
            worker,
            endpoint,
            host,
            starter,
        }
    }

    pub(super) async fn raw(&self) -> TaskHubSidecarServiceClient<Channel> {
        TaskHubSidecarServiceClient::connect(self.endpoint.url().to_owned())
            .await
            .unwrap()
    }

    pub(super) async fn stop(self) {
        self.endpoint.stop().await;
        self.worker.shutdown().await.unwrap();
        self.backend.shutdown().await.unwrap();
    }
}

/// Polls (bounded) until the instance reaches the status.
pub(super) async fn until_status(
    client: &DurableClient,
    instance_id: &str,
    status: OrchestrationStatus,
) -> durable_grpc::OrchestrationMetadata {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(now) = client.get_instance(instance_id, true).await.unwrap()
            && now.status == status
        {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{instance_id} never reached {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn id(name: &str) -> StartOptions {
    StartOptions::new().with_instance_id(name)
}

fn get(instance_id: &str, payloads: bool) -> proto::GetInstanceRequest {
    proto::GetInstanceRequest {
        instance_id: instance_id.into(),
        get_inputs_and_outputs: payloads,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_rpcs_work_through_the_endpoint() {
    let durable = DurableClientSettings {
        default_version: Some("1.5".into()),
        ..Default::default()
    };
    let f = Fixture::start(durable, BTreeMap::new()).await;
    assert!(f.endpoint.url().starts_with("http://127.0.0.1:"));
    let client = &f.starter;
    let mut raw = f.raw().await;
    raw.hello(()).await.unwrap();

    // Start without an ID: 32 hex digits, the default version, then completion.
    let generated = client
        .schedule_new_orchestration("Echo", &"hi", StartOptions::new().with_instance_id(""))
        .await;
    assert!(
        matches!(generated, Err(Error::InvalidArgument(_))),
        "the typed client refuses an empty ID"
    );
    let response = raw
        .start_instance(proto::CreateInstanceRequest {
            name: "Echo".into(),
            input: Some("\"hi\"".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let generated = response.instance_id;
    assert_eq!(generated.len(), 32, "{generated}");
    assert!(
        generated
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let done = client
        .wait_for_completion(&generated, true, WAIT)
        .await
        .unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed);
    assert_eq!(done.output::<String>().unwrap().as_deref(), Some("hi"));
    let stored = f
        .host
        .get_instance(&generated, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version.as_deref(), Some("1.5"));

    // GetInstance: only what the extension copies; payloads only when asked for.
    let full = raw
        .get_instance(get(&generated, true))
        .await
        .unwrap()
        .into_inner();
    let state = full.orchestration_state.unwrap();
    assert!(full.exists);
    assert_eq!(state.name, "Echo");
    assert_eq!(state.output.as_deref(), Some("\"hi\""));
    assert!(state.created_timestamp.is_some() && state.last_updated_timestamp.is_some());
    assert_eq!(state.version, None, "GetInstance carries no version");
    assert_eq!(state.execution_id, None);
    assert_eq!(state.completed_timestamp, None);
    let bare = raw
        .get_instance(get(&generated, false))
        .await
        .unwrap()
        .into_inner();
    let bare = bare.orchestration_state.unwrap();
    assert_eq!((bare.input, bare.output), (None, None));
    let missing = raw
        .get_instance(get("nobody", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(missing, proto::GetInstanceResponse::default());
    assert!(
        client
            .get_instance("nobody", false)
            .await
            .unwrap()
            .is_none()
    );

    // QueryInstances: the version is there, failure details and completion time are not.
    let page = raw
        .query_instances(proto::QueryInstancesRequest {
            query: Some(proto::InstanceQuery {
                fetch_inputs_and_outputs: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let listed = page
        .orchestration_state
        .iter()
        .find(|s| s.instance_id == generated)
        .unwrap();
    assert_eq!(listed.version.as_deref(), Some("1.5"));
    assert_eq!(listed.completed_timestamp, None);
    let typed = client.query_instances(&InstanceQuery::new()).await.unwrap();
    assert!(typed.items.iter().any(|m| m.instance_id == generated));

    // Events, suspend and resume, custom status, then terminate.
    client
        .schedule_new_orchestration("Waiter", &(), id("w1"))
        .await
        .unwrap();
    let started = client.wait_for_start("w1", false, WAIT).await.unwrap();
    assert_eq!(started.instance_id, "w1");
    client.suspend("w1", Some("pause")).await.unwrap();
    // The backend applies a suspension in the instance's next turn; resume is refused until then.
    until_status(client, "w1", OrchestrationStatus::Suspended).await;
    client.resume("w1", Some("go on")).await.unwrap();
    client.raise_event("w1", "go", "now").await.unwrap();
    let done = client.wait_for_completion("w1", true, WAIT).await.unwrap();
    assert_eq!(done.output::<String>().unwrap().as_deref(), Some("now"));
    client
        .schedule_new_orchestration("Waiter", &(), id("w2"))
        .await
        .unwrap();
    client.wait_for_start("w2", false, WAIT).await.unwrap();
    client.terminate("w2", "enough", false).await.unwrap();
    let done = client.wait_for_completion("w2", true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Terminated);

    // Rewind a failed instance; restart a finished one under its own ID and under a new one.
    client
        .schedule_new_orchestration("Rewindable", &(), id("r1"))
        .await
        .unwrap();
    let failed = client.wait_for_completion("r1", true, WAIT).await.unwrap();
    assert_eq!(failed.status, OrchestrationStatus::Failed);
    let details = failed
        .failure_details
        .expect("failure details with payloads");
    let stored = f.host.get_instance("r1", true).await.unwrap().unwrap();
    assert!(
        stored.failure_details.unwrap().inner.is_some(),
        "the backend keeps the inner failure"
    );
    assert!(
        details.inner.is_none(),
        "GetInstance keeps type, message and stack trace only"
    );
    client.rewind("r1", Some("again")).await.unwrap();
    let rewound = until_status(client, "r1", OrchestrationStatus::Completed).await;
    assert_eq!(
        rewound.output::<String>().unwrap().as_deref(),
        Some("r1 ok")
    );
    let same = client.restart(&generated, false).await.unwrap();
    assert_eq!(same, generated);
    let again = client.wait_for_completion(&same, true, WAIT).await.unwrap();
    assert_eq!(again.output::<String>().unwrap().as_deref(), Some("hi"));
    let fresh = client.restart(&generated, true).await.unwrap();
    assert_ne!(fresh, generated);
    assert_eq!(fresh.len(), 32);
    let fresh_done = client
        .wait_for_completion(&fresh, true, WAIT)
        .await
        .unwrap();
    assert_eq!(fresh_done.name, "Echo");

    // History through StreamInstanceHistory.
    let history = client.get_history("w1").await.unwrap();
    assert!(history.iter().any(|e| matches!(
        e.event_type,
        Some(proto::history_event::EventType::EventRaised(_))
    )));

    // Entities: signal, read, query, clean.
    let counter = EntityId::new("counter", "c1");
    client
        .signal_entity(&counter, "add", &5, None)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let entity = loop {
        if let Some(e) = client.get_entity(&counter, true).await.unwrap() {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the signal never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entity.serialized_state.as_deref(), Some("5"));
    let entities = client.query_entities(&EntityQuery::new()).await.unwrap();
    assert!(
        entities
            .items
            .iter()
            .any(|e| e.instance_id == "@counter@c1")
    );
    client.clean_entity_storage(true, true).await.unwrap();
    let listed = client.query_instances(&InstanceQuery::new()).await.unwrap();
    assert!(listed.items.iter().all(|m| !m.instance_id.starts_with('@')));

    // Purge one, then by filter; CreateTaskHub is accepted.
    let purged = client.purge_instance("w2", true).await.unwrap();
    assert_eq!(purged.deleted_instance_count, 1);
    assert!(f.host.get_instance("w2", false).await.unwrap().is_none());
    let filter = PurgeFilter::new().with_statuses([OrchestrationStatus::Completed]);
    let purged = client.purge_instances(filter, false).await.unwrap();
    assert!(purged.deleted_instance_count >= 3, "{purged:?}");
    raw.create_task_hub(proto::CreateTaskHubRequest::default())
        .await
        .unwrap();

    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_rpcs_are_unimplemented_with_the_reason() {
    let f = Fixture::start(DurableClientSettings::default(), BTreeMap::new()).await;
    let mut raw = f.raw().await;
    let check = |method: &str, result: Result<(), tonic::Status>| {
        let status = result.expect_err(method);
        assert_eq!(status.code(), Code::Unimplemented, "{method}: {status:?}");
        assert!(
            status.message().starts_with(method),
            "{method}: {}",
            status.message()
        );
        assert!(
            status.message().contains(
                "not served by the Durable extension's client endpoint in Azure Functions"
            ),
            "{}",
            status.message()
        );
    };
    fn ok<T>(_: T) {}
    check(
        "ListInstanceIds",
        raw.list_instance_ids(proto::ListInstanceIdsRequest::default())
            .await
            .map(ok),
    );
    check(
        "GetWorkItems",
        raw.get_work_items(proto::GetWorkItemsRequest::default())
            .await
            .map(ok),
    );
    check(
        "CompleteActivityTask",
        raw.complete_activity_task(proto::ActivityResponse::default())
            .await
            .map(ok),
    );
    check(
        "CompleteOrchestratorTask",
        raw.complete_orchestrator_task(proto::OrchestratorResponse::default())
            .await
            .map(ok),
    );
    check(
        "CompleteEntityTask",
        raw.complete_entity_task(proto::EntityBatchResult::default())
            .await
            .map(ok),
    );
    check(
        "AbandonTaskActivityWorkItem",
        raw.abandon_task_activity_work_item(proto::AbandonActivityTaskRequest::default())
            .await
            .map(ok),
    );
    check(
        "AbandonTaskOrchestratorWorkItem",
        raw.abandon_task_orchestrator_work_item(proto::AbandonOrchestrationTaskRequest::default())
            .await
            .map(ok),
    );
    check(
        "AbandonTaskEntityWorkItem",
        raw.abandon_task_entity_work_item(proto::AbandonEntityTaskRequest::default())
            .await
            .map(ok),
    );
    check(
        "GetTombstonedPayloads",
        raw.get_tombstoned_payloads(proto::GetTombstonedPayloadsRequest::default())
            .await
            .map(ok),
    );
    check(
        "AckPurgedPayloads",
        raw.ack_purged_payloads(proto::AckPurgedPayloadsRequest::default())
            .await
            .map(ok),
    );
    check(
        "SkipGracefulOrchestrationTerminations",
        raw.skip_graceful_orchestration_terminations(
            proto::SkipGracefulOrchestrationTerminationsRequest::default(),
        )
        .await
        .map(ok),
    );
    // The typed client sees the same refusal.
    match f
        .starter
        .list_instance_ids(&durable_grpc::InstanceIdQuery::new())
        .await
    {
        Err(Error::Rpc {
            code: Code::Unimplemented,
            message,
        }) => {
            assert!(message.contains("ListInstanceIds"), "{message}")
        }
        other => panic!("expected UNIMPLEMENTED, got {other:?}"),
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_follow_the_host_settings_not_the_request() {
    let f = Fixture::start(DurableClientSettings::default(), BTreeMap::new()).await;
    let client = &f.starter;
    // Tags and the caller's reuse policy are not the extension's to keep; an explicit version is.
    let options = id("s1")
        .with_tag("team", "a")
        .with_version("2.0")
        .with_reuse_policy([OrchestrationStatus::Failed]);
    client
        .schedule_new_orchestration("Waiter", &(), options)
        .await
        .unwrap();
    client.wait_for_start("s1", false, WAIT).await.unwrap();
    let stored = f.host.get_instance("s1", false).await.unwrap().unwrap();
    assert!(stored.tags.is_empty(), "{:?}", stored.tags);
    assert_eq!(stored.version.as_deref(), Some("2.0"));
    // AnyState (the default): a running instance is replaced by a start with its ID.
    client
        .schedule_new_orchestration("Echo", &7, id("s1"))
        .await
        .unwrap();
    let replaced = client.wait_for_completion("s1", true, WAIT).await.unwrap();
    assert_eq!(
        (replaced.name.as_str(), replaced.output::<i64>().unwrap()),
        ("Echo", Some(7))
    );
    // A start the backend refuses: INTERNAL with the extension's text.
    let mut raw = f.raw().await;
    let refused = raw
        .start_instance(proto::CreateInstanceRequest {
            instance_id: "bad-name".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Internal);
    assert!(
        refused
            .message()
            .starts_with("Failed to start instance with ID bad-name.\nInner Exception message: "),
        "{}",
        refused.message()
    );
    f.stop().await;

    let durable = DurableClientSettings {
        overridable_states: OverridableStates::NonRunningStates,
        ..Default::default()
    };
    let f = Fixture::start(durable, BTreeMap::new()).await;
    let client = &f.starter;
    client
        .schedule_new_orchestration("Waiter", &(), id("n1"))
        .await
        .unwrap();
    client.wait_for_start("n1", false, WAIT).await.unwrap();
    match client
        .schedule_new_orchestration("Echo", &1, id("n1"))
        .await
    {
        Err(Error::AlreadyExists(message)) => {
            assert_eq!(
                message,
                "An Orchestration instance with the ID n1 already exists."
            )
        }
        other => panic!("expected ALREADY_EXISTS, got {other:?}"),
    }
    // Restarting a running instance under its own ID goes through the same check.
    match client.restart("n1", false).await {
        Err(Error::InvalidArgument(message)) => {
            assert!(
                message.starts_with("InvalidOperationException: "),
                "{message}"
            )
        }
        other => panic!("expected FAILED_PRECONDITION, got {other:?}"),
    }
    client.terminate("n1", "stop", false).await.unwrap();
    client.wait_for_completion("n1", false, WAIT).await.unwrap();
    client
        .schedule_new_orchestration("Echo", &1, id("n1"))
        .await
        .unwrap();
    let replaced = client.wait_for_completion("n1", true, WAIT).await.unwrap();
    assert_eq!(replaced.output::<i64>().unwrap(), Some(1));
    f.stop().await;
}
