//! The scenario suite against our embedded backend (`durable_backend::start`), on a SQLite file per test.

mod common;
mod scenarios;

use std::time::Duration;

use durable_grpc::{ConnectionOptions, DurableClient, Worker, WorkerHandle, WorkerOptions};

struct Fixture {
    worker: WorkerHandle,
    backend: durable_backend::Handle,
    _dir: tempfile::TempDir,
}

async fn setup() -> Option<(Fixture, DurableClient)> {
    let dir = tempfile::tempdir().unwrap();
    let options = durable_backend::Options::new()
        .with_db_path(dir.path().join("hub.db"))
        .with_bind("127.0.0.1:0".parse().unwrap());
    let backend = durable_backend::start(options)
        .await
        .expect("start the embedded backend");
    let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("default");
    let worker = Worker::builder()
        .connection(connection.clone())
        .registry(scenarios::registry())
        .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
        .build()
        .unwrap()
        .start();
    let client = DurableClient::new(&connection).unwrap();
    Some((
        Fixture {
            worker,
            backend,
            _dir: dir,
        },
        client,
    ))
}

async fn teardown(fixture: Fixture) {
    fixture.worker.shutdown().await.unwrap();
    fixture.backend.shutdown().await.unwrap();
}

scenario_tests!(setup, teardown);
