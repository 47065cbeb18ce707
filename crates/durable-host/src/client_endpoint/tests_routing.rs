//! Routing by `Durable-TaskHub` / `Durable-ConnectionName`, and the extension's refusals, code and text.

use std::collections::BTreeMap;
use std::time::Duration;

use durable_grpc::{ConnectionOptions, DurableClient, StartOptions};
use durable_proto as proto;
use tonic::Code;
use tonic::metadata::MetadataValue;

use super::tests::{Fixture, HUB, WAIT};
use crate::config::DurableClientSettings;

/// Metadata to put on a request: (key, value).
type Headers<'a> = &'a [(&'static str, &'a str)];

fn start_request(
    instance_id: &str,
    headers: Headers<'_>,
) -> tonic::Request<proto::CreateInstanceRequest> {
    let mut request = tonic::Request::new(proto::CreateInstanceRequest {
        instance_id: instance_id.into(),
        name: "Nobody".into(),
        ..Default::default()
    });
    for (name, value) in headers {
        request
            .metadata_mut()
            .insert(*name, MetadataValue::try_from(*value).unwrap());
    }
    request
}

async fn exists(client: &DurableClient, instance_id: &str) -> bool {
    client
        .get_instance(instance_id, false)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_route_the_hub_and_the_connection() {
    let second = durable_backend::start(
        durable_backend::Options::new()
            .in_memory()
            .with_bind(([127, 0, 0, 1], 0).into()),
    )
    .await
    .unwrap();
    let settings = BTreeMap::from([
        (
            "OTHER_DTS".to_owned(),
            format!("Endpoint={};Authentication=None", second.endpoint()),
        ),
        (
            "BROKEN_DTS".to_owned(),
            "Authentication=Sometimes".to_owned(),
        ),
    ]);
    let f = Fixture::start(DurableClientSettings::default(), settings).await;
    let mut raw = f.raw().await;
    let app_hub = &f.host;
    let other_hub = f.host.with_task_hub("otherhub").unwrap();
    let second_app_hub =
        DurableClient::new(&ConnectionOptions::new(second.endpoint()).with_task_hub(HUB)).unwrap();
    let second_other_hub = second_app_hub.with_task_hub("otherhub").unwrap();

    let cases: [(&str, Headers, &DurableClient); 7] = [
        ("plain", &[], app_hub),
        ("hub", &[("durable-taskhub", "otherhub")], &other_hub),
        ("blank-hub", &[("durable-taskhub", "   ")], app_hub),
        // The Python SDK's header: ignored, as the extension ignores it.
        ("python", &[("taskhub", "otherhub")], app_hub),
        (
            "own-connection",
            &[(
                "durable-connectionname",
                "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
            )],
            app_hub,
        ),
        (
            "other-connection",
            &[("durable-connectionname", "OTHER_DTS")],
            &second_app_hub,
        ),
        (
            "other-connection-hub",
            &[
                ("durable-connectionname", "OTHER_DTS"),
                ("durable-taskhub", "otherhub"),
            ],
            &second_other_hub,
        ),
    ];
    let everywhere = [app_hub, &other_hub, &second_app_hub, &second_other_hub];
    for (instance_id, headers, home) in cases {
        let started = raw
            .start_instance(start_request(instance_id, headers))
            .await
            .unwrap();
        assert_eq!(started.into_inner().instance_id, instance_id);
        for place in everywhere {
            let expected = std::ptr::eq(place, home);
            assert_eq!(
                exists(place, instance_id).await,
                expected,
                "{instance_id} in {place:?}"
            );
        }
    }

    // The handler's client sends both headers from its binding.
    let bound = DurableClient::new(
        &ConnectionOptions::new(f.endpoint.url())
            .with_task_hub_header(durable_grpc::FUNCTIONS_TASK_HUB_HEADER)
            .with_task_hub("otherhub")
            .with_header(durable_grpc::FUNCTIONS_CONNECTION_NAME_HEADER, "OTHER_DTS"),
    )
    .unwrap();
    bound
        .schedule_new_orchestration("Nobody", &(), StartOptions::new().with_instance_id("bound"))
        .await
        .unwrap();
    assert!(exists(&second_other_hub, "bound").await);
    assert!(exists(&bound, "bound").await);

    // A connection name without a setting, or with one that is not a connection string: a clear refusal.
    for (name, expected) in [
        ("MISSING_DTS", "which is not set"),
        ("BROKEN_DTS", "not a usable"),
    ] {
        let refused = raw
            .start_instance(start_request("x", &[("durable-connectionname", name)]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unknown, "{name}: {refused:?}");
        assert!(
            refused.message().contains(&format!("'{name}'")),
            "{}",
            refused.message()
        );
        assert!(
            refused.message().contains(expected),
            "{}",
            refused.message()
        );
    }

    f.stop().await;
    second.shutdown().await.unwrap();
}

async fn refusal<T: std::fmt::Debug>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> (Code, String) {
    let status = call.await.expect_err("a refusal");
    (status.code(), status.message().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_extensions_codes_and_texts() {
    let strict = DurableClientSettings {
        throw_status_exceptions_on_raise_event: Some(true),
        ..DurableClientSettings::default()
    };
    let f = Fixture::start(strict, BTreeMap::new()).await;
    let client = &f.starter;
    let mut raw = f.raw().await;
    let opts = |id: &str| StartOptions::new().with_instance_id(id);
    client
        .schedule_new_orchestration("Echo", &1, opts("done"))
        .await
        .unwrap();
    client
        .wait_for_completion("done", false, WAIT)
        .await
        .unwrap();
    client
        .schedule_new_orchestration("Waiter", &(), opts("live"))
        .await
        .unwrap();
    client.wait_for_start("live", false, WAIT).await.unwrap();
    let no_ghost = "No instance with ID 'ghost' was found. (Parameter 'instanceId')";
    // An instance whose orchestrator the app does not have cannot be restarted (the extension's StartNewAsync).
    f.host
        .schedule_new_orchestration("Unlisted", &(), opts("unlisted"))
        .await
        .unwrap();
    let (code, message) = refusal(raw.restart_instance(proto::RestartInstanceRequest {
        instance_id: "unlisted".into(),
        restart_with_new_instance_id: true,
    }))
    .await;
    assert_eq!(code, Code::NotFound);
    assert!(
        message.starts_with(
            "ArgumentException: The function 'Unlisted' doesn't exist, is disabled, or is not an orchestrator function."
        ),
        "{message}"
    );

    let raise = |id: &str, name: &str| proto::RaiseEventRequest {
        instance_id: id.into(),
        name: name.into(),
        input: None,
    };
    assert_eq!(
        refusal(raw.raise_event(raise("ghost", "e"))).await,
        (Code::NotFound, no_ghost.into())
    );
    assert_eq!(
        refusal(raw.raise_event(raise("done", "e"))).await,
        (
            Code::FailedPrecondition,
            "The orchestration instance with the provided instance id is not running.".into()
        )
    );
    assert_eq!(
        refusal(raw.raise_event(raise("live", ""))).await,
        (
            Code::InvalidArgument,
            "Value cannot be null. (Parameter 'eventName')".into()
        )
    );

    let terminate = |id: &str| proto::TerminateRequest {
        instance_id: id.into(),
        ..Default::default()
    };
    assert_eq!(
        refusal(raw.terminate_instance(terminate("ghost"))).await,
        (Code::NotFound, format!("ArgumentException: {no_ghost}"))
    );
    assert_eq!(
        refusal(raw.terminate_instance(terminate("done"))).await,
        (
            Code::FailedPrecondition,
            "InvalidOperationException: Cannot terminate the orchestration instance done because instance is \
             in the Completed state."
                .into()
        )
    );
    let suspended = refusal(raw.suspend_instance(proto::SuspendRequest {
        instance_id: "done".into(),
        reason: None,
    }))
    .await;
    assert_eq!(
        suspended,
        (
            Code::Unknown,
            "Cannot suspend the orchestration instance done because instance is in the Completed state.".into()
        )
    );
    let resumed = refusal(raw.resume_instance(proto::ResumeRequest {
        instance_id: "live".into(),
        reason: None,
    }))
    .await;
    assert_eq!(
        resumed,
        (
            Code::Unknown,
            "Cannot resume the orchestration instance live because instance is in the Running state.".into()
        )
    );
    let rewind = |id: &str| proto::RewindInstanceRequest {
        instance_id: id.into(),
        reason: None,
    };
    assert_eq!(
        refusal(raw.rewind_instance(rewind("ghost"))).await,
        (Code::NotFound, no_ghost.into())
    );
    assert_eq!(
        refusal(raw.rewind_instance(rewind("done"))).await,
        (
            Code::FailedPrecondition,
            "The rewind operation is only supported on failed orchestration instances.".into()
        )
    );
    assert_eq!(
        refusal(raw.restart_instance(proto::RestartInstanceRequest {
            instance_id: "ghost".into(),
            restart_with_new_instance_id: false,
        }))
        .await,
        (
            Code::NotFound,
            "ArgumentException: An orchestrastion with the instanceId ghost was not found.".into()
        )
    );
    let batch = proto::PurgeInstancesRequest {
        request: Some(proto::purge_instances_request::Request::InstanceBatch(
            proto::InstanceBatch {
                instance_ids: vec!["done".into()],
            },
        )),
        ..Default::default()
    };
    assert_eq!(
        refusal(raw.purge_instances(batch)).await,
        (
            Code::InvalidArgument,
            "Unknown purge request type 'InstanceBatch'.".into()
        )
    );
    let (code, message) = refusal(raw.signal_entity(proto::SignalEntityRequest {
        instance_id: "@counter@c".into(),
        name: "add".into(),
        request_id: "not-a-guid".into(),
        ..Default::default()
    }))
    .await;
    assert_eq!(code, Code::Unknown);
    assert!(message.contains("not a GUID"), "{message}");

    // WaitForInstanceStart waits for an instance that does not exist yet, until the caller gives up.
    let mut wait = tonic::Request::new(proto::GetInstanceRequest {
        instance_id: "later".into(),
        get_inputs_and_outputs: false,
    });
    wait.set_timeout(Duration::from_millis(300));
    let gave_up = raw.wait_for_instance_start(wait).await.unwrap_err();
    assert!(
        matches!(gave_up.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{gave_up:?}"
    );
    let waiting = {
        let mut raw = raw.clone();
        tokio::spawn(async move {
            raw.wait_for_instance_start(proto::GetInstanceRequest {
                instance_id: "later".into(),
                get_inputs_and_outputs: true,
            })
            .await
        })
    };
    client
        .schedule_new_orchestration("Waiter", &(), opts("later"))
        .await
        .unwrap();
    let started = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_inner();
    assert!(started.exists);
    assert_eq!(started.orchestration_state.unwrap().instance_id, "later");
    f.stop().await;

    // Without throwStatusExceptionsOnRaiseEvent (the base provider's default), or with it false, events for nobody
    // are dropped without a word.
    for throw in [None, Some(false)] {
        let durable = DurableClientSettings {
            throw_status_exceptions_on_raise_event: throw,
            ..Default::default()
        };
        let f = Fixture::start(durable, BTreeMap::new()).await;
        f.starter.raise_event("ghost", "e", &1).await.unwrap();
        f.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_without_state_does_not_exist_for_a_client() {
    let f = Fixture::start(DurableClientSettings::default(), BTreeMap::new()).await;
    f.host
        .schedule_new_orchestration(
            "Locker",
            "held",
            StartOptions::new().with_instance_id("locker"),
        )
        .await
        .unwrap();
    // The backend knows the entity as soon as the lock is held (no state yet).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = f.host.get_entity("@counter@held", false).await.unwrap();
        if seen.is_some_and(|e| e.locked_by.is_some()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never locked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut raw = f.raw().await;
    for include_state in [false, true] {
        let through_endpoint = raw
            .get_entity(proto::GetEntityRequest {
                instance_id: "@counter@held".into(),
                include_state,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!through_endpoint.exists, "{through_endpoint:?}");
    }
    f.starter.raise_event("locker", "go", "done").await.unwrap();
    // With state, it exists; the state comes only on request.
    f.starter
        .signal_entity("@counter@held", "add", &2, None)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let entity = raw
            .get_entity(proto::GetEntityRequest {
                instance_id: "@counter@held".into(),
                include_state: false,
            })
            .await
            .unwrap()
            .into_inner();
        if entity.exists {
            assert_eq!(entity.entity.unwrap().serialized_state, None);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never got its state"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.stop().await;
}
