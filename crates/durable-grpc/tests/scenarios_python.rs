//! The scenario suite against the Python SDK's reference server (`durabletask.testing.in_memory_backend`).

mod common;
mod scenarios;

use std::time::Duration;

use durable_grpc::{ConnectionOptions, DurableClient, Worker, WorkerHandle, WorkerOptions};

struct Fixture {
    worker: WorkerHandle,
    server: common::PythonServer,
}

async fn setup() -> Option<(Fixture, DurableClient)> {
    let python = common::python()?;
    let server = common::PythonServer::start(&python, 0);
    let connection = ConnectionOptions::new(server.endpoint());
    let worker = Worker::builder()
        .connection(connection.clone())
        .registry(scenarios::registry())
        .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
        .build()
        .unwrap()
        .start();
    let client = DurableClient::new(&connection).unwrap();
    Some((Fixture { worker, server }, client))
}

async fn teardown(fixture: Fixture) {
    fixture.worker.shutdown().await.unwrap();
    fixture.server.stop();
}

scenario_tests!(setup, teardown);
