//! Caller-supplied durations and message sizes: `Duration::MAX` means "no practical limit" instead of a panic, and
//! messages over the connection's limit fail their call in either direction, against the embedded backend.

use std::time::Duration;

use durable_core::{OrchestrationContext, OrchestrationError, Registry};
use durable_grpc::{
    ConnectionOptions, DEFAULT_MAX_MESSAGE_BYTES, DurableClient, Error, OrchestrationStatus,
    StartOptions, Worker, WorkerOptions,
};

async fn echo(_ctx: OrchestrationContext, input: String) -> Result<usize, OrchestrationError> {
    Ok(input.len())
}

async fn backend(max_payload: usize) -> durable_backend::Handle {
    durable_backend::start(
        durable_backend::Options::new()
            .in_memory()
            .with_max_payload_bytes(max_payload)
            .with_bind("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap()
}

fn worker(connection: &ConnectionOptions) -> durable_grpc::WorkerHandle {
    let mut registry = Registry::new();
    registry.add_orchestrator("echo", echo);
    Worker::builder()
        .connection(connection.clone())
        .registry(registry)
        .options(
            WorkerOptions::new()
                .with_shutdown_grace(Duration::MAX)
                .with_silence_timeout(Duration::MAX),
        )
        .build()
        .unwrap()
        .start()
}

#[tokio::test]
async fn the_longest_durations_mean_no_practical_limit() {
    let backend = backend(1024 * 1024).await;
    let connection = ConnectionOptions::new(backend.endpoint()).with_connect_timeout(Duration::MAX);
    let worker = worker(&connection);
    let client = DurableClient::new(&connection).unwrap();
    let id = client
        .schedule_new_orchestration("echo", "four", StartOptions::new())
        .await
        .unwrap();
    let started = client
        .wait_for_start(&id, false, Duration::MAX)
        .await
        .unwrap();
    assert_eq!(started.instance_id, id);
    let done = client
        .wait_for_completion(&id, true, Duration::MAX)
        .await
        .unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed);
    assert_eq!(done.output::<usize>().unwrap(), Some(4));
    worker.shutdown().await.unwrap();
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_over_the_limit_fail_in_both_directions() {
    let backend = backend(8 * 1024 * 1024).await;
    let roomy = ConnectionOptions::new(backend.endpoint());
    assert_eq!(roomy.max_message_bytes(), DEFAULT_MAX_MESSAGE_BYTES);
    let big = "x".repeat(32 * 1024);
    let roomy_client = DurableClient::new(&roomy).unwrap();
    let id = roomy_client
        .schedule_new_orchestration("nobody", &big, StartOptions::new())
        .await
        .unwrap();

    let tight = DurableClient::new(&roomy.clone().with_max_message_bytes(16 * 1024)).unwrap();
    // Twice each, so that a failure does not spoil the connection for the next call.
    for _ in 0..2 {
        let sending = tight
            .schedule_new_orchestration("nobody", &big, StartOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(sending, Error::MessageTooLarge { limit: 16384, .. }),
            "{sending}"
        );
        assert_eq!(sending.code(), Some(tonic::Code::OutOfRange));
        let receiving = tight.get_instance(&id, true).await.unwrap_err();
        assert_eq!(
            receiving.code(),
            Some(tonic::Code::OutOfRange),
            "{receiving}"
        );
        assert!(receiving.to_string().contains("16384"), "{receiving}");
    }
    // Without the payloads the answer fits.
    assert!(tight.get_instance(&id, false).await.unwrap().is_some());

    // The default takes more than gRPC's usual 4 MiB: a 5 MiB input reaches the worker and the client.
    let worker = worker(&roomy);
    let five = "y".repeat(5 * 1024 * 1024);
    let id = roomy_client
        .schedule_new_orchestration("echo", &five, StartOptions::new())
        .await
        .unwrap();
    let done = roomy_client
        .wait_for_completion(&id, true, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.output::<usize>().unwrap(), Some(five.len()));
    worker.shutdown().await.unwrap();

    let refused = DurableClient::new(&roomy.with_max_message_bytes(0)).unwrap_err();
    assert!(matches!(refused, Error::InvalidArgument(_)), "{refused}");
    backend.shutdown().await.unwrap();
}
