//! End-to-end checks of the engine's rewind (and continue-as-new with a new version) against both servers: the
//! Python SDK's reference server and our embedded backend. Each test starts its own server and worker.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, CallOptions, ContinueAsNewOptions, OrchestrationContext,
    OrchestrationError, Registry, when_all,
};
use durable_grpc::proto::history_event::EventType;
use durable_grpc::{
    ConnectionOptions, DurableClient, OrchestrationStatus, StartOptions, Worker, WorkerHandle,
    WorkerOptions,
};

const WAIT: Duration = Duration::from_secs(60);

/// Calls per activity key (process-wide; keys are unique per test).
static CALLS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

fn count_call(key: &str) -> u32 {
    let mut calls = CALLS.lock().unwrap();
    let n = calls
        .get_or_insert_with(HashMap::new)
        .entry(key.to_owned())
        .or_insert(0);
    *n += 1;
    *n
}

fn calls(key: &str) -> u32 {
    CALLS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|c| c.get(key).copied())
        .unwrap_or(0)
}

/// Succeeds, counting its calls.
async fn record(_ctx: ActivityContext, key: String) -> Result<String, ActivityError> {
    count_call(&key);
    Ok(format!("{key} done"))
}

/// Fails on its first call per key (keys ending in "-fails"; others always succeed).
async fn fails_once(_ctx: ActivityContext, key: String) -> Result<String, ActivityError> {
    if count_call(&key) == 1 && key.ends_with("-fails") {
        return Err(ActivityError::new(
            "Boom",
            format!("{key}: first call fails"),
        ));
    }
    Ok(format!("{key} ok"))
}

/// Records a step, then runs a child that fails the first time.
async fn parent(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    let first: String = ctx.call_activity("record", format!("{key}-parent")).await?;
    let options = CallOptions::new().instance_id(format!("{}-child", ctx.instance_id()));
    let child: String = ctx
        .call_sub_orchestrator_with_options("child", key, options)
        .await?;
    Ok(format!("{first} / {child}"))
}

async fn child(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    let first: String = ctx.call_activity("record", format!("{key}-child")).await?;
    let second: String = ctx
        .call_activity("fails_once", format!("{key}-fails"))
        .await?;
    Ok(format!("{first}, {second}"))
}

/// Three calls at once, the middle one failing the first time.
async fn fan_out(
    ctx: OrchestrationContext,
    key: String,
) -> Result<Vec<String>, OrchestrationError> {
    let keys = [
        format!("{key}-a"),
        format!("{key}-b-fails"),
        format!("{key}-c"),
    ];
    let tasks = keys
        .into_iter()
        .map(|k| ctx.call_activity::<_, String>("fails_once", k));
    Ok(when_all(tasks)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?)
}

/// Moves to version "2" on its first generation, then reports the version it runs as.
async fn upgrade(ctx: OrchestrationContext, generation: u32) -> Result<String, OrchestrationError> {
    if generation == 0 {
        ctx.continue_as_new_with_options(&1, ContinueAsNewOptions::new().version("2"))?;
        return Ok(String::new());
    }
    Ok(format!(
        "generation {generation} runs as {:?}",
        ctx.version()
    ))
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_activity("record", record)
        .add_activity("fails_once", fails_once)
        .add_orchestrator("parent", parent)
        .add_orchestrator("child", child)
        .add_orchestrator("fan_out", fan_out)
        .add_orchestrator("upgrade", upgrade);
    r
}

enum Server {
    Python(common::PythonServer),
    Embedded(durable_backend::Handle, tempfile::TempDir),
}

struct Fixture {
    worker: WorkerHandle,
    server: Server,
    client: DurableClient,
}

impl Fixture {
    async fn python() -> Option<Self> {
        let python = common::python()?;
        let server = common::PythonServer::start(&python, 0);
        let connection = ConnectionOptions::new(server.endpoint());
        Some(Self::connect(connection, Server::Python(server)))
    }

    async fn embedded() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let options = durable_backend::Options::new()
            .with_db_path(dir.path().join("hub.db"))
            .with_bind("127.0.0.1:0".parse().unwrap());
        let backend = durable_backend::start(options)
            .await
            .expect("start the embedded backend");
        let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("default");
        Some(Self::connect(connection, Server::Embedded(backend, dir)))
    }

    fn connect(connection: ConnectionOptions, server: Server) -> Self {
        let worker = Worker::builder()
            .connection(connection.clone())
            .registry(registry())
            .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
            .build()
            .unwrap()
            .start();
        let client = DurableClient::new(&connection).unwrap();
        Self {
            worker,
            server,
            client,
        }
    }

    async fn stop(self) {
        self.worker.shutdown().await.unwrap();
        match self.server {
            Server::Python(server) => server.stop(),
            Server::Embedded(backend, _dir) => backend.shutdown().await.unwrap(),
        }
    }

    async fn start<I: serde::Serialize + ?Sized>(&self, name: &str, input: &I, id: &str) -> String {
        self.client
            .schedule_new_orchestration(name, input, StartOptions::new().with_instance_id(id))
            .await
            .unwrap()
    }

    async fn status(&self, id: &str) -> OrchestrationStatus {
        self.client
            .get_instance(id, false)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no instance {id}"))
            .status
    }

    /// Rewinds the failed instance `id` and waits until it completes.
    async fn rewind_to_completion(&self, id: &str) {
        let failed = self
            .client
            .wait_for_completion(id, false, WAIT)
            .await
            .unwrap();
        assert_eq!(failed.status, OrchestrationStatus::Failed);
        self.client.rewind(id, Some("try again")).await.unwrap();
        common::eventually(WAIT, || async {
            self.status(id).await == OrchestrationStatus::Completed
        })
        .await;
    }

    async fn output<T: serde::de::DeserializeOwned>(&self, id: &str) -> T {
        let done = self.client.get_instance(id, true).await.unwrap().unwrap();
        done.output::<T>().unwrap().expect("an output")
    }

    async fn history_has_rewind(&self, id: &str) -> bool {
        let history = self.client.get_history(id).await.unwrap();
        history
            .iter()
            .any(|e| matches!(e.event_type, Some(EventType::ExecutionRewound(_))))
    }
}

/// A parent whose child failed: rewinding the parent rewinds the child, which reruns only its failed call; the
/// parent's successful call does not run again.
async fn sub_orchestration(fixture: Fixture, key: &str) {
    let id = fixture.start("parent", key, &format!("{key}-1")).await;
    fixture.rewind_to_completion(&id).await;
    assert_eq!(
        fixture.output::<String>(&id).await,
        format!("{key}-parent done / {key}-child done, {key}-fails ok")
    );
    let child_id = format!("{id}-child");
    assert_eq!(
        fixture.status(&child_id).await,
        OrchestrationStatus::Completed
    );
    assert_eq!(
        calls(&format!("{key}-parent")),
        1,
        "the parent's call ran again"
    );
    assert_eq!(
        calls(&format!("{key}-child")),
        1,
        "the child's good call ran again"
    );
    assert_eq!(calls(&format!("{key}-fails")), 2);
    assert!(fixture.history_has_rewind(&id).await);
    assert!(fixture.history_has_rewind(&child_id).await);
    fixture.stop().await;
}

/// Only the failed call of a fan-out runs again.
async fn partial_fan_out(fixture: Fixture, key: &str) {
    let id = fixture.start("fan_out", key, &format!("{key}-1")).await;
    fixture.rewind_to_completion(&id).await;
    assert_eq!(
        fixture.output::<Vec<String>>(&id).await,
        [
            format!("{key}-a ok"),
            format!("{key}-b-fails ok"),
            format!("{key}-c ok")
        ]
    );
    assert_eq!(calls(&format!("{key}-a")), 1);
    assert_eq!(calls(&format!("{key}-b-fails")), 2);
    assert_eq!(calls(&format!("{key}-c")), 1);
    fixture.stop().await;
}

/// Continue-as-new with a new version: the next generation starts under it.
async fn new_version(fixture: Fixture, key: &str) {
    let id = fixture.start("upgrade", &0, &format!("{key}-1")).await;
    let done = fixture
        .client
        .wait_for_completion(&id, true, WAIT)
        .await
        .unwrap();
    assert_eq!(
        done.status,
        OrchestrationStatus::Completed,
        "{:?}",
        done.failure_details
    );
    assert_eq!(
        done.output::<String>().unwrap().unwrap(),
        r#"generation 1 runs as Some("2")"#
    );
    let history = fixture.client.get_history(&id).await.unwrap();
    let started_as = history.iter().find_map(|e| match &e.event_type {
        Some(EventType::ExecutionStarted(s)) => Some(s.version.clone()),
        _ => None,
    });
    assert_eq!(started_as, Some(Some("2".to_owned())), "{history:?}");
    fixture.stop().await;
}

macro_rules! on_both_servers {
    ($($scenario:ident),* $(,)?) => {
        mod python {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    common::init_tracing();
                    let Some(fixture) = Fixture::python().await else { return };
                    super::$scenario(fixture, concat!("py-", stringify!($scenario))).await;
                }
            )*
        }
        mod embedded {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    common::init_tracing();
                    let Some(fixture) = Fixture::embedded().await else { return };
                    super::$scenario(fixture, concat!("emb-", stringify!($scenario))).await;
                }
            )*
        }
    };
}

on_both_servers!(sub_orchestration, partial_fan_out, new_version);
