//! The Functions client's typed calls, through a `durableClient` binding pointed at the embedded backend, with a
//! worker running the typed functions.

use std::time::{Duration, Instant};

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, OrchestrationContext, OrchestrationError,
    Registry,
};
use durable_grpc::{ConnectionOptions, OrchestrationStatus, StartOptions, Worker, WorkerOptions};
use durable_handler::{ClientBinding, DurableFunctionsClient};

durable_core::activity! { pub Double: u64 => u64; }
durable_core::orchestrator! { pub DoubleIt: u64 => u64; }
durable_core::entity! {
    pub Total: u64 {
        pub Plus = "plus": u64 => u64;
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register_orchestrator(DoubleIt, |ctx: OrchestrationContext, n: u64| async move {
            Ok::<_, OrchestrationError>(ctx.call(Double, n).await?)
        })
        .register_activity(Double, |_ctx: ActivityContext, n: u64| async move {
            Ok::<_, ActivityError>(n * 2)
        })
        .register_entity(
            Total,
            Entity::new().on(Plus, |total, _ctx, n| {
                *total += n;
                Ok::<_, EntityError>(*total)
            }),
        );
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_start_and_entity_through_the_binding() {
    let dir = tempfile::tempdir().unwrap();
    let options = durable_backend::Options::new()
        .with_db_path(dir.path().join("hub.db"))
        .with_bind("127.0.0.1:0".parse().unwrap());
    let backend = durable_backend::start(options).await.unwrap();
    let endpoint = backend.endpoint().to_string();
    let worker = Worker::builder()
        .connection(ConnectionOptions::new(&endpoint).with_task_hub("default"))
        .registry(registry())
        .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
        .build()
        .unwrap()
        .start();
    let client =
        DurableFunctionsClient::from_binding(ClientBinding::new(endpoint, "default")).unwrap();

    let id = client
        .start(DoubleIt, &21, StartOptions::new())
        .await
        .unwrap();
    let done = client
        .wait_for_completion(&id, true, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed, "{done:?}");
    assert_eq!(done.output_of(DoubleIt).unwrap(), Some(42));

    let total = client.entity(Total, "t");
    total.signal(Plus, &5).await.unwrap();
    total.signal(Plus, &7).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while total.state().await.unwrap() != Some(12) {
        assert!(Instant::now() < deadline, "the entity never reached 12");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    worker.shutdown().await.unwrap();
    backend.shutdown().await.unwrap();
}
