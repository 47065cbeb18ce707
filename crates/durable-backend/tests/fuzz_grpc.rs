//! Property-based fuzzing of the whole gRPC surface: random but well-typed requests to every RPC, over real gRPC,
//! against one backend in memory and one on a SQLite file. IDs are hostile (empty, too long, control characters,
//! `@` prefixes, unicode), payloads sit just under, at and over the limit, and workers answer with random actions,
//! random histories, chunks, abandons and forged tokens, in random interleavings with start, raise, terminate,
//! purge and rewind. After every case the backend must still answer `Hello`, a fresh orchestration must still run
//! to completion, no call may hang or fail with an internal error, and nothing in the process may have panicked.
//!
//! A fixed number of cases keeps it to seconds under `cargo test`; `DURABLE_FUZZ_CASES=<n>` runs more.

mod common;
mod fuzz;

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use durable_proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use durable_proto::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use fuzz::apply::apply;
use fuzz::calls::{call, next_item, on_hub, to_action};
use fuzz::strategies::{ActionSpec, Op, op};
use fuzz::{CALL, Client, LIMIT};

// ---------------------------------------------------------------------------------------------------------------
// Panics anywhere in the process (gRPC handlers, stream tasks, the store's writer) are counted.

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Bounds a call that must succeed.
async fn must<T>(
    what: &str,
    future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, TestCaseError> {
    match tokio::time::timeout(CALL, future).await {
        Err(_) => Err(TestCaseError::fail(format!(
            "{what} did not answer within {CALL:?}"
        ))),
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(TestCaseError::fail(format!(
            "{what} failed with {status:?}"
        ))),
    }
}

/// The backend still works: it answers, and a fresh orchestration on the case's hub runs to completion.
async fn still_serving(client: &mut Client, hub: &str, case: usize) -> Result<(), TestCaseError> {
    must("hello", client.hello(on_hub(hub, ()))).await?;
    let id = format!("probe-{case}");
    let start = CreateInstanceRequest {
        instance_id: id.clone(),
        name: "__probe".into(),
        ..CreateInstanceRequest::default()
    };
    must("start the probe", client.start_instance(on_hub(hub, start))).await?;
    let only_probes = GetWorkItemsRequest {
        work_item_filters: Some(WorkItemFilters {
            orchestrations: vec![OrchestrationFilter {
                name: "__probe".into(),
                versions: vec![],
            }],
            ..WorkItemFilters::default()
        }),
        ..GetWorkItemsRequest::default()
    };
    let mut stream = must(
        "open the probe's stream",
        client.get_work_items(on_hub(hub, only_probes)),
    )
    .await?;
    let item = next_item(&mut stream, CALL)
        .await?
        .ok_or_else(|| TestCaseError::fail("the probe was not dispatched"))?;
    let done = OrchestratorResponse {
        instance_id: id.clone(),
        completion_token: item.completion_token,
        actions: vec![to_action(
            0,
            &ActionSpec::Complete {
                status: 1,
                result: Some("\"ok\"".into()),
                failure: None,
                carried: vec![],
            },
        )],
        ..OrchestratorResponse::default()
    };
    must(
        "complete the probe",
        client.complete_orchestrator_task(on_hub(hub, done)),
    )
    .await?;
    let mut wait = on_hub(
        hub,
        GetInstanceRequest {
            instance_id: id,
            get_inputs_and_outputs: true,
        },
    );
    wait.metadata_mut()
        .insert("grpc-timeout", "15S".parse().unwrap());
    let state = must(
        "wait for the probe",
        client.wait_for_instance_completion(wait),
    )
    .await?
    .orchestration_state
    .ok_or_else(|| TestCaseError::fail("the probe vanished"))?;
    prop_assert_eq!(
        state.orchestration_status,
        OrchestrationStatus::Completed as i32
    );
    prop_assert_eq!(state.output.as_deref(), Some("\"ok\""));
    Ok(())
}

struct Fuzzed {
    runtime: tokio::runtime::Runtime,
    backend: Option<durable_backend::Handle>,
    client: Client,
    cases: AtomicUsize,
}

impl Fuzzed {
    fn start(options: durable_backend::Options) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let options = options
            .with_max_payload_bytes(LIMIT)
            .with_max_chunked_turn_bytes(16 * LIMIT)
            .with_orchestration_lease(Duration::from_secs(3))
            .with_activity_lease(Duration::from_secs(3))
            .with_entity_lease(Duration::from_secs(3));
        let (backend, client) = runtime.block_on(async {
            let backend = common::backend(options).await;
            let client = TaskHubSidecarServiceClient::connect(backend.endpoint())
                .await
                .unwrap()
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024);
            (backend, client)
        });
        Fuzzed {
            runtime,
            backend: Some(backend),
            client,
            cases: AtomicUsize::new(0),
        }
    }

    fn case(&self, ops: &[Op]) -> Result<(), TestCaseError> {
        // Compared, never reset: a panic during any case fails the case that sees it.
        let panics_before = PANICS.load(Ordering::SeqCst);
        let case = self.cases.fetch_add(1, Ordering::SeqCst);
        let hub = format!("fuzz-{case}");
        let mut client = self.client.clone();
        self.runtime.block_on(async {
            let mut stream = call(
                "open the stream",
                client.get_work_items(on_hub(&hub, GetWorkItemsRequest::default())),
                &[],
            )
            .await?
            .ok_or_else(|| TestCaseError::fail("the work-item stream was refused"))?;
            for op in ops {
                apply(&mut client, &hub, &mut stream, op).await?;
            }
            drop(stream);
            still_serving(&mut client, &hub, case).await
        })?;
        let panics = PANICS.load(Ordering::SeqCst);
        prop_assert_eq!(panics, panics_before, "something in the process panicked");
        Ok(())
    }
}

impl Drop for Fuzzed {
    fn drop(&mut self) {
        if let Some(backend) = self.backend.take() {
            let _ = self.runtime.block_on(backend.shutdown());
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("DURABLE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn fuzz(options: durable_backend::Options, cases: u32) {
    count_panics();
    let fuzzed = Fuzzed::start(options);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(op(), 1..24), |ops| {
        fuzzed.case(&ops)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn every_rpc_with_random_requests_in_memory() {
    fuzz(common::memory(), cases(48));
}

#[test]
fn every_rpc_with_random_requests_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    fuzz(
        common::memory().with_db_path(dir.path().join("fuzz.db")),
        cases(16),
    );
}
