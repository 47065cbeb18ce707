//! The typed client calls against the embedded backend, with a worker running typed functions.

mod common;

use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, OrchestrationContext, OrchestrationError,
    Registry,
};
use durable_grpc::{
    ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker, WorkerOptions,
};

durable_core::activity! { pub Shout: String => String; }
durable_core::orchestrator! { pub ShoutAll: Vec<String> => Vec<String>; }
durable_core::entity! {
    pub Tally: u32 {
        pub Bump = "bump": u32 => u32;
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register_orchestrator(
            ShoutAll,
            |ctx: OrchestrationContext, words: Vec<String>| async move {
                let mut out = Vec::new();
                for word in words {
                    out.push(ctx.call(Shout, word).await?);
                }
                ctx.entity(Tally, "shouts").signal(Bump, out.len() as u32)?;
                Ok::<_, OrchestrationError>(out)
            },
        )
        .register_activity(Shout, |_ctx: ActivityContext, word: String| async move {
            Ok::<_, ActivityError>(word.to_uppercase())
        })
        .register_entity(
            Tally,
            Entity::new().on(Bump, |n, _ctx, by| {
                *n += by;
                Ok::<_, EntityError>(*n)
            }),
        );
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_start_output_signal_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let options = durable_backend::Options::new()
        .with_db_path(dir.path().join("hub.db"))
        .with_bind("127.0.0.1:0".parse().unwrap());
    let backend = durable_backend::start(options).await.unwrap();
    let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("default");
    let worker = Worker::builder()
        .connection(connection.clone())
        .registry(registry())
        .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
        .build()
        .unwrap()
        .start();
    let client = DurableClient::new(&connection).unwrap();

    let words = vec!["hi".to_string(), "there".to_string()];
    let id = client
        .start(
            ShoutAll,
            &words,
            StartOptions::new().with_instance_id("typed-1"),
        )
        .await
        .unwrap();
    assert_eq!(id, "typed-1");
    let done = client
        .wait_for_completion(&id, true, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed, "{done:?}");
    assert_eq!(done.name, "ShoutAll");
    assert_eq!(done.output_of(ShoutAll).unwrap().unwrap(), ["HI", "THERE"]);
    assert_eq!(done.input_of(ShoutAll).unwrap().unwrap(), words);

    let tally = client.entity(Tally, "shouts");
    assert_eq!(tally.id().to_string(), "@tally@shouts");
    common::eventually(Duration::from_secs(30), || async {
        tally.state().await.unwrap() == Some(2)
    })
    .await;
    tally.signal(Bump, &40).await.unwrap();
    common::eventually(Duration::from_secs(30), || async {
        tally.state().await.unwrap() == Some(42)
    })
    .await;
    assert_eq!(client.entity(Tally, "never").state().await.unwrap(), None);

    worker.shutdown().await.unwrap();
    backend.shutdown().await.unwrap();
}
