//! What a proxy in front of a scheduler needs from the client: another task hub over the same connection, extra
//! headers, and the raw stub with requests that carry the client's headers. Against the embedded backend, which
//! keeps task hubs apart by the `taskhub` header (else `durable-taskhub`).

use durable_grpc::{ConnectionOptions, DurableClient, Error, StartOptions, proto};

#[tokio::test]
async fn other_hubs_extra_headers_and_raw_calls() {
    let backend = durable_backend::start(
        durable_backend::Options::new()
            .in_memory()
            .with_bind("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let endpoint = backend.endpoint();

    let hub_a =
        DurableClient::new(&ConnectionOptions::new(&endpoint).with_task_hub("hub-a")).unwrap();
    let hub_b = hub_a.with_task_hub("hub-b").unwrap();
    let id = hub_b
        .schedule_new_orchestration("Nobody", &1, StartOptions::new().with_instance_id("in-b"))
        .await
        .unwrap();
    assert_eq!(id, "in-b");
    assert!(hub_b.get_instance("in-b", false).await.unwrap().is_some());
    assert!(
        hub_a.get_instance("in-b", false).await.unwrap().is_none(),
        "the original client still addresses its own hub"
    );

    // The raw stub with a wrapped request reaches the same hub as the typed methods.
    let request = hub_b
        .request(proto::GetInstanceRequest {
            instance_id: "in-b".into(),
            get_inputs_and_outputs: true,
        })
        .await
        .unwrap();
    let response = hub_b
        .raw_stub()
        .get_instance(request)
        .await
        .unwrap()
        .into_inner();
    assert!(response.exists);
    assert_eq!(
        response.orchestration_state.unwrap().input.as_deref(),
        Some("1")
    );

    // Extra headers travel with every call: without a `taskhub` header the backend reads `durable-taskhub`.
    let via_header = DurableClient::new(
        &ConnectionOptions::new(&endpoint).with_header("Durable-TaskHub", "hub-b"),
    )
    .unwrap();
    assert!(
        via_header
            .get_instance("in-b", false)
            .await
            .unwrap()
            .is_some()
    );
    let other = DurableClient::new(
        &ConnectionOptions::new(&endpoint).with_header("durable-taskhub", "hub-c"),
    )
    .unwrap();
    assert!(other.get_instance("in-b", false).await.unwrap().is_none());

    // Headers that cannot travel are refused up front.
    for options in [
        ConnectionOptions::new(&endpoint).with_header("bad header", "v"),
        ConnectionOptions::new(&endpoint).with_header("x-ok", "caf\u{e9}"),
    ] {
        let result = DurableClient::new(&options);
        assert!(
            matches!(result, Err(Error::Transport(_))),
            "{options:?}: {result:?}"
        );
    }
    assert!(matches!(
        hub_a.with_task_hub("h\u{fc}b"),
        Err(Error::Transport(_))
    ));

    backend.shutdown().await.unwrap();
}
