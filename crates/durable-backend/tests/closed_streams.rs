//! A worker that disappears while the backend is still sending it a batch of work: everything leased for its
//! stream, sent or not, is handed to the next worker at once rather than when the leases expire (five minutes).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::raw;
use durable_proto::*;

const INSTANCES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_leased_for_a_stream_that_closes_mid_batch_is_handed_out_again_at_once() {
    let backend = common::backend(common::memory()).await;
    let endpoint = backend.endpoint();
    let mut client = raw::connect(&endpoint).await;
    // Large inputs, so the batch cannot all fit in the transport's buffers and the backend is still sending
    // when the worker goes.
    let input = serde_json::to_string(&"x".repeat(256 * 1024)).unwrap();
    for i in 0..INSTANCES {
        client
            .start_instance(raw::start_request(&format!("big-{i:02}"), "orch", &input))
            .await
            .unwrap();
    }

    // A worker that asks for the whole batch, reads the first item (so the backend has leased and is sending) and
    // goes away without completing anything.
    let mut gone = raw::connect(&endpoint).await;
    let mut stream = gone
        .get_work_items(GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: INSTANCES as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("the first item within 30 s")
        .unwrap();
    assert!(first.is_some(), "the stream ended before any work");
    drop(stream);
    drop(gone);

    // The next worker gets every instance well before a lease could expire.
    let mut next = raw::connect(&endpoint).await;
    let mut stream = next
        .get_work_items(GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: INSTANCES as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = HashSet::new();
    let collected = tokio::time::timeout(Duration::from_secs(30), async {
        while seen.len() < INSTANCES {
            let item = stream
                .message()
                .await
                .unwrap()
                .expect("the stream stays open");
            if let Some(work_item::Request::OrchestratorRequest(request)) = item.request {
                seen.insert(request.instance_id);
            }
        }
    })
    .await;
    assert!(
        collected.is_ok(),
        "only {} of {INSTANCES} instances were handed out again within 30 s",
        seen.len()
    );
    drop(stream);
    backend.shutdown().await.unwrap();
}
