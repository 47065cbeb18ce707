//! The dispatcher over real gRPC: leases, redelivery, per-stream limits, filters, hubs, pings and waits.

mod common;

use std::time::Duration;

use common::raw::{self, Client};
use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::*;
use tonic::Streaming;

/// Generous bound for "this must arrive"; tests never wait for it to pass.
const ARRIVES: Duration = Duration::from_secs(20);

async fn stream(client: &mut Client, request: GetWorkItemsRequest) -> Streaming<WorkItem> {
    client
        .get_work_items(request)
        .await
        .expect("stream opens")
        .into_inner()
}

/// The next work item that is not a health ping.
async fn next(stream: &mut Streaming<WorkItem>) -> WorkItem {
    tokio::time::timeout(ARRIVES, async {
        loop {
            let item = stream
                .message()
                .await
                .expect("stream ok")
                .expect("stream open");
            if !matches!(item.request, Some(work_item::Request::HealthPing(_))) {
                return item;
            }
        }
    })
    .await
    .expect("a work item arrives")
}

fn orchestration(item: &WorkItem) -> &OrchestratorRequest {
    match &item.request {
        Some(work_item::Request::OrchestratorRequest(r)) => r,
        other => panic!("expected an orchestrator request, got {other:?}"),
    }
}

fn activity(item: &WorkItem) -> &ActivityRequest {
    match &item.request {
        Some(work_item::Request::ActivityRequest(r)) => r,
        other => panic!("expected an activity request, got {other:?}"),
    }
}

fn kinds(events: &[HistoryEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e.event_type {
            Some(EventType::OrchestratorStarted(_)) => "OrchestratorStarted",
            Some(EventType::ExecutionStarted(_)) => "ExecutionStarted",
            Some(EventType::EventRaised(_)) => "EventRaised",
            Some(EventType::TaskScheduled(_)) => "TaskScheduled",
            Some(EventType::TaskCompleted(_)) => "TaskCompleted",
            Some(EventType::TaskFailed(_)) => "TaskFailed",
            Some(EventType::ExecutionCompleted(_)) => "ExecutionCompleted",
            _ => "other",
        })
        .collect()
}

fn turn(item: &WorkItem, actions: Vec<OrchestratorAction>) -> OrchestratorResponse {
    OrchestratorResponse {
        instance_id: orchestration(item).instance_id.clone(),
        actions,
        completion_token: item.completion_token.clone(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_dead_stream_hands_its_work_to_another_worker_and_its_token_goes_stale() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("i1", "o", "1"))
        .await
        .unwrap();

    let mut first = stream(&mut client, GetWorkItemsRequest::default()).await;
    let lost = next(&mut first).await;
    assert_eq!(orchestration(&lost).instance_id, "i1");
    drop(first);

    let mut second = stream(&mut client, GetWorkItemsRequest::default()).await;
    let again = next(&mut second).await;
    assert_eq!(orchestration(&again).instance_id, "i1");
    assert_ne!(again.completion_token, lost.completion_token);
    assert_eq!(
        kinds(&orchestration(&again).new_events),
        ["OrchestratorStarted", "ExecutionStarted"]
    );

    let stale = client
        .complete_orchestrator_task(turn(&lost, vec![raw::complete(0, "\"x\"")]))
        .await;
    assert_eq!(stale.unwrap_err().code(), tonic::Code::NotFound);
    client
        .complete_orchestrator_task(turn(&again, vec![raw::complete(0, "\"ok\"")]))
        .await
        .unwrap();
    let state = client
        .get_instance(GetInstanceRequest {
            instance_id: "i1".into(),
            get_inputs_and_outputs: true,
        })
        .await
        .unwrap()
        .into_inner()
        .orchestration_state
        .unwrap();
    assert_eq!(state.output.as_deref(), Some("\"ok\""));
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_is_handed_out_again() {
    let options = common::memory().with_orchestration_lease(Duration::from_millis(200));
    let backend = common::backend(options).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("slow", "o", "1"))
        .await
        .unwrap();
    let mut holder = stream(&mut client, GetWorkItemsRequest::default()).await;
    let held = next(&mut holder).await;
    // The holder's stream stays open but never completes: the lease runs out and the item comes back.
    let mut other = stream(&mut client, GetWorkItemsRequest::default()).await;
    let redelivered = tokio::select! {
        item = next(&mut other) => item,
        item = next(&mut holder) => item,
    };
    assert_eq!(orchestration(&redelivered).instance_id, "slow");
    assert_ne!(redelivered.completion_token, held.completion_token);
    let stale = client.complete_orchestrator_task(turn(&held, vec![])).await;
    assert_eq!(stale.unwrap_err().code(), tonic::Code::NotFound);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_instance_is_not_dispatched_while_in_flight_and_runs_again_after() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("busy", "o", "1"))
        .await
        .unwrap();
    // One slot, so this stream cannot take "later" below.
    let one = GetWorkItemsRequest {
        max_concurrent_orchestration_work_items: 1,
        ..Default::default()
    };
    let mut a = stream(&mut client, one).await;
    let first = next(&mut a).await;
    client
        .raise_event(RaiseEventRequest {
            instance_id: "busy".into(),
            name: "go".into(),
            input: None,
        })
        .await
        .unwrap();
    client
        .start_instance(raw::start_request("later", "o", "2"))
        .await
        .unwrap();
    // The event for "busy" is older than "later", so "busy" would come first if it could be dispatched twice.
    let mut b = stream(&mut client, GetWorkItemsRequest::default()).await;
    let other = next(&mut b).await;
    assert_eq!(orchestration(&other).instance_id, "later");
    client
        .complete_orchestrator_task(turn(&first, vec![]))
        .await
        .unwrap();
    let again = tokio::select! { i = next(&mut a) => i, i = next(&mut b) => i };
    let request = orchestration(&again);
    assert_eq!(request.instance_id, "busy");
    assert_eq!(
        kinds(&request.past_events),
        ["OrchestratorStarted", "ExecutionStarted"]
    );
    assert_eq!(
        kinds(&request.new_events),
        ["OrchestratorStarted", "EventRaised"]
    );
    backend.shutdown().await.unwrap();
}

#[tokio::test]
#[allow(deprecated)]
async fn chunked_completions_are_accumulated_until_the_last_chunk() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("chunky", "o", "1"))
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    let mut part = turn(&item, vec![raw::schedule(0, "a", "1")]);
    part.is_partial = true;
    client.complete_orchestrator_task(part).await.unwrap();
    let mut last = turn(&item, vec![raw::schedule(1, "b", "2")]);
    last.chunk_index = Some(1);
    client.complete_orchestrator_task(last).await.unwrap();
    let mut names = vec![
        activity(&next(&mut s).await).name.clone(),
        activity(&next(&mut s).await).name.clone(),
    ];
    names.sort();
    assert_eq!(names, ["a", "b"]);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrency_limits_are_per_stream() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("fan", "o", "1"))
        .await
        .unwrap();
    let mut narrow = stream(
        &mut client,
        GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: 1,
            max_concurrent_activity_work_items: 1,
            ..Default::default()
        },
    )
    .await;
    let item = next(&mut narrow).await;
    let actions = (0..3)
        .map(|i| raw::schedule(i, "work", &i.to_string()))
        .collect();
    client
        .complete_orchestrator_task(turn(&item, actions))
        .await
        .unwrap();
    let held = next(&mut narrow).await;
    let _ = activity(&held);
    // The narrow stream is full, so a second stream gets the two other activities.
    let mut wide = stream(&mut client, GetWorkItemsRequest::default()).await;
    let mut ids = vec![
        activity(&next(&mut wide).await).task_id,
        activity(&next(&mut wide).await).task_id,
    ];
    ids.push(activity(&held).task_id);
    ids.sort();
    assert_eq!(ids, [0, 1, 2]);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn work_item_filters_route_by_orchestration_name() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("b1", "beta", "1"))
        .await
        .unwrap();
    // Plenty of older work for other workers must not hide this worker's work.
    for i in 0..100 {
        let gamma = raw::start_request(&format!("g{i}"), "gamma", "1");
        client.start_instance(gamma).await.unwrap();
    }
    client
        .start_instance(raw::start_request("a1", "alpha", "1"))
        .await
        .unwrap();
    let filters = |name: &str| GetWorkItemsRequest {
        work_item_filters: Some(WorkItemFilters {
            orchestrations: vec![OrchestrationFilter {
                name: name.into(),
                versions: vec![],
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut alpha = stream(&mut client, filters("alpha")).await;
    assert_eq!(orchestration(&next(&mut alpha).await).instance_id, "a1");
    let mut beta = stream(&mut client, filters("beta")).await;
    assert_eq!(orchestration(&next(&mut beta).await).instance_id, "b1");
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_streams_get_health_pings() {
    let backend =
        common::backend(common::memory().with_ping_interval(Duration::from_millis(50))).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let first = tokio::time::timeout(ARRIVES, s.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        first.request,
        Some(work_item::Request::HealthPing(_))
    ));
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn hubs_are_separate_and_calls_without_a_header_use_the_default_hub() {
    let backend = common::backend(common::memory().with_task_hubs(["blue"])).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::on_hub(
            "blue",
            raw::start_request("same-id", "o", "\"blue\""),
        ))
        .await
        .unwrap();
    client
        .start_instance(raw::start_request("same-id", "o", "\"default\""))
        .await
        .unwrap();
    let get = |hub: Option<&str>| {
        let message = GetInstanceRequest {
            instance_id: "same-id".into(),
            get_inputs_and_outputs: true,
        };
        match hub {
            Some(h) => raw::on_hub(h, message),
            None => tonic::Request::new(message),
        }
    };
    let blue = client
        .get_instance(get(Some("blue")))
        .await
        .unwrap()
        .into_inner();
    let default = client
        .get_instance(get(Some("default")))
        .await
        .unwrap()
        .into_inner();
    let bare = client.get_instance(get(None)).await.unwrap().into_inner();
    let green = client
        .get_instance(get(Some("green")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        blue.orchestration_state.unwrap().input.as_deref(),
        Some("\"blue\"")
    );
    assert_eq!(
        default.orchestration_state.unwrap().input.as_deref(),
        Some("\"default\"")
    );
    assert_eq!(
        bare.orchestration_state.unwrap().input.as_deref(),
        Some("\"default\"")
    );
    assert!(!green.exists);

    let mut default_worker = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut default_worker).await;
    let started = &orchestration(&item).new_events[1];
    let Some(EventType::ExecutionStarted(s)) = &started.event_type else {
        panic!("{started:?}")
    };
    assert_eq!(s.input.as_deref(), Some("\"default\""));
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn waiting_without_a_deadline_returns_when_the_instance_completes() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("w", "o", "1"))
        .await
        .unwrap();
    let mut waiter = client.clone();
    let wait = tokio::spawn(async move {
        waiter
            .wait_for_instance_completion(GetInstanceRequest {
                instance_id: "w".into(),
                get_inputs_and_outputs: true,
            })
            .await
    });
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    client
        .complete_orchestrator_task(turn(&item, vec![raw::complete(0, "42")]))
        .await
        .unwrap();
    let state = tokio::time::timeout(ARRIVES, wait)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_inner();
    let state = state.orchestration_state.unwrap();
    assert_eq!(
        state.orchestration_status,
        OrchestrationStatus::Completed as i32
    );
    assert_eq!(state.output.as_deref(), Some("42"));
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_oversized_activity_result_fails_the_task_not_the_instance() {
    let backend = common::backend(common::memory().with_max_payload_bytes(1000)).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("big", "o", "1"))
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    client
        .complete_orchestrator_task(turn(&item, vec![raw::schedule(0, "a", "1")]))
        .await
        .unwrap();
    let work = next(&mut s).await;
    client
        .complete_activity_task(ActivityResponse {
            instance_id: "big".into(),
            task_id: 0,
            result: Some("x".repeat(2000)),
            completion_token: work.completion_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let item = next(&mut s).await;
    let new = &orchestration(&item).new_events;
    let Some(EventType::TaskFailed(failed)) = &new[1].event_type else {
        panic!("{new:?}")
    };
    assert_eq!(
        failed.failure_details.as_ref().unwrap().error_type,
        "PayloadTooLarge"
    );
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_abandoned_work_item_is_delivered_again() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("ab", "o", "1"))
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    client
        .complete_orchestrator_task(turn(&item, vec![raw::schedule(0, "a", "1")]))
        .await
        .unwrap();
    let work = next(&mut s).await;
    client
        .abandon_task_activity_work_item(AbandonActivityTaskRequest {
            completion_token: work.completion_token.clone(),
        })
        .await
        .unwrap();
    let again = next(&mut s).await;
    assert_eq!(activity(&again).task_id, 0);
    assert_ne!(again.completion_token, work.completion_token);
    let twice = client
        .abandon_task_activity_work_item(AbandonActivityTaskRequest {
            completion_token: work.completion_token,
        })
        .await;
    assert_eq!(twice.unwrap_err().code(), tonic::Code::NotFound);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_work_item_streams() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    tokio::time::timeout(ARRIVES, backend.shutdown())
        .await
        .expect("shutdown finishes")
        .unwrap();
    let end = tokio::time::timeout(ARRIVES, s.message())
        .await
        .expect("the stream ends");
    assert!(matches!(end, Ok(None) | Err(_)));
}

#[tokio::test]
async fn large_histories_are_streamed_to_workers_that_ask_for_it() {
    let backend = common::backend(common::memory().with_history_streaming_threshold(10)).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    for id in ["plain", "streamed"] {
        client
            .start_instance(raw::start_request(id, id, "\"a long enough input\""))
            .await
            .unwrap();
    }
    let only = |name: &str| {
        Some(WorkItemFilters {
            orchestrations: vec![OrchestrationFilter {
                name: name.into(),
                versions: vec![],
            }],
            ..Default::default()
        })
    };
    let mut plain = stream(
        &mut client,
        GetWorkItemsRequest {
            work_item_filters: only("plain"),
            ..Default::default()
        },
    )
    .await;
    let mut streaming = stream(
        &mut client,
        GetWorkItemsRequest {
            work_item_filters: only("streamed"),
            capabilities: vec![WorkerCapability::HistoryStreaming as i32],
            ..Default::default()
        },
    )
    .await;
    for (id, s) in [("plain", &mut plain), ("streamed", &mut streaming)] {
        let first = next(s).await;
        client
            .complete_orchestrator_task(turn(&first, vec![]))
            .await
            .unwrap();
        client
            .raise_event(RaiseEventRequest {
                instance_id: id.into(),
                name: "e".into(),
                input: None,
            })
            .await
            .unwrap();
    }
    let inline = next(&mut plain).await;
    assert!(!orchestration(&inline).requires_history_streaming);
    assert_eq!(orchestration(&inline).past_events.len(), 2);
    let deferred = next(&mut streaming).await;
    assert!(orchestration(&deferred).requires_history_streaming);
    assert!(orchestration(&deferred).past_events.is_empty());
    let mut chunks = client
        .stream_instance_history(StreamInstanceHistoryRequest {
            instance_id: "streamed".into(),
            execution_id: orchestration(&deferred).execution_id.clone(),
            for_work_item_processing: true,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        events.extend(chunk.events);
    }
    assert_eq!(kinds(&events), ["OrchestratorStarted", "ExecutionStarted"]);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn continue_as_new_drops_the_old_generations_timers() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("gen", "o", "0"))
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let first = next(&mut s).await;
    let past = prost_types::Timestamp {
        seconds: 1,
        nanos: 0,
    };
    let timer = raw::action(
        0,
        OrchestratorActionType::CreateTimer(CreateTimerAction {
            fire_at: Some(past),
        }),
    );
    let can = raw::action(
        1,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::ContinuedAsNew as i32,
            result: Some("1".into()),
            ..Default::default()
        }),
    );
    client
        .complete_orchestrator_task(turn(&first, vec![timer, can]))
        .await
        .unwrap();
    let second = next(&mut s).await;
    let request = orchestration(&second);
    assert_ne!(request.execution_id, orchestration(&first).execution_id);
    assert!(request.past_events.is_empty());
    assert_eq!(
        kinds(&request.new_events),
        ["OrchestratorStarted", "ExecutionStarted"]
    );
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_for_an_instance_scheduled_later_wait_for_its_start() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let later = now + Duration::from_millis(300);
    let mut request = raw::start_request("scheduled", "o", "1");
    request.scheduled_start_timestamp = Some(prost_types::Timestamp {
        seconds: later.as_secs() as i64,
        nanos: later.subsec_nanos() as i32,
    });
    client.start_instance(request).await.unwrap();
    client
        .raise_event(RaiseEventRequest {
            instance_id: "scheduled".into(),
            name: "early".into(),
            input: None,
        })
        .await
        .unwrap();
    let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
    let item = next(&mut s).await;
    assert_eq!(
        kinds(&orchestration(&item).new_events),
        ["OrchestratorStarted", "ExecutionStarted", "EventRaised"]
    );
    let started = orchestration(&item).new_events[0].timestamp.unwrap();
    assert!(
        (started.seconds, started.nanos)
            >= (
                later.as_secs() as i64,
                (later.subsec_millis() * 1_000_000) as i32
            ),
        "dispatched before its scheduled start"
    );
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_functions_hub_header_selects_the_hub_and_taskhub_wins_over_it() {
    // Clients of the Functions host's local endpoint (durableClient bindings) name the hub with Durable-TaskHub.
    let backend = common::backend(common::memory().with_task_hubs(["blue"])).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let with_headers = |headers: &[(&'static str, &str)], message| {
        let mut request = tonic::Request::new(message);
        for (name, value) in headers {
            request.metadata_mut().insert(*name, value.parse().unwrap());
        }
        request
    };
    client
        .start_instance(with_headers(
            &[("durable-taskhub", "blue")],
            raw::start_request("fx", "o", "\"via functions header\""),
        ))
        .await
        .unwrap();
    let exists_on = |hub: &str| {
        let mut client = client.clone();
        let request = raw::on_hub(
            hub,
            GetInstanceRequest {
                instance_id: "fx".into(),
                get_inputs_and_outputs: true,
            },
        );
        async move { client.get_instance(request).await.unwrap().into_inner() }
    };
    let blue = exists_on("blue").await;
    assert_eq!(
        blue.orchestration_state.unwrap().input.as_deref(),
        Some("\"via functions header\"")
    );
    assert!(!exists_on("default").await.exists);

    // Both headers: the scheduler's own header decides.
    client
        .start_instance(with_headers(
            &[("taskhub", "default"), ("durable-taskhub", "blue")],
            raw::start_request("both", "o", "null"),
        ))
        .await
        .unwrap();
    let on_default = client
        .get_instance(raw::on_hub(
            "default",
            GetInstanceRequest {
                instance_id: "both".into(),
                get_inputs_and_outputs: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(on_default.exists);
}

#[tokio::test]
async fn hubs_can_be_deleted_and_recreated_and_housekeeping_calls_answer() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    let exists = |client: &mut Client| {
        let mut client = client.clone();
        async move {
            let request = GetInstanceRequest {
                instance_id: "h".into(),
                get_inputs_and_outputs: false,
            };
            client
                .get_instance(raw::on_hub("temp", request))
                .await
                .unwrap()
                .into_inner()
                .exists
        }
    };
    client
        .start_instance(raw::on_hub("temp", raw::start_request("h", "o", "1")))
        .await
        .unwrap();
    assert!(exists(&mut client).await);
    client
        .delete_task_hub(raw::on_hub("temp", DeleteTaskHubRequest {}))
        .await
        .unwrap();
    assert!(!exists(&mut client).await);
    client
        .start_instance(raw::on_hub("temp", raw::start_request("h", "o", "1")))
        .await
        .unwrap();
    client
        .create_task_hub(raw::on_hub(
            "temp",
            CreateTaskHubRequest {
                recreate_if_exists: false,
            },
        ))
        .await
        .unwrap();
    assert!(exists(&mut client).await);
    client
        .create_task_hub(raw::on_hub(
            "temp",
            CreateTaskHubRequest {
                recreate_if_exists: true,
            },
        ))
        .await
        .unwrap();
    assert!(!exists(&mut client).await);

    for id in ["s1", "s2"] {
        client
            .start_instance(raw::start_request(id, "o", "1"))
            .await
            .unwrap();
    }
    let skipped = client
        .skip_graceful_orchestration_terminations(SkipGracefulOrchestrationTerminationsRequest {
            instance_batch: Some(InstanceBatch {
                instance_ids: vec!["s1".into(), "s2".into(), "nope".into()],
            }),
            reason: Some("\"bye\"".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(skipped.unterminated_instance_ids, ["nope"]);
    let purged = client
        .purge_instances(PurgeInstancesRequest {
            request: Some(purge_instances_request::Request::InstanceBatch(
                InstanceBatch {
                    instance_ids: vec!["s1".into(), "s2".into()],
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(purged.deleted_instance_count, 2);

    let tombstones = client
        .get_tombstoned_payloads(GetTombstonedPayloadsRequest { limit: 10 })
        .await
        .unwrap()
        .into_inner();
    assert!(tombstones.payloads.is_empty());
    client
        .ack_purged_payloads(AckPurgedPayloadsRequest { acks: vec![] })
        .await
        .unwrap();
    client.hello(()).await.unwrap();
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn long_histories_are_streamed_in_chunks() {
    let backend = common::backend(common::memory()).await;
    let mut client = raw::connect(&backend.endpoint()).await;
    client
        .start_instance(raw::start_request("long", "o", "1"))
        .await
        .unwrap();
    let mut s = stream(
        &mut client,
        GetWorkItemsRequest {
            max_concurrent_activity_work_items: 1,
            ..Default::default()
        },
    )
    .await;
    let item = next(&mut s).await;
    let actions = (0..700).map(|i| raw::schedule(i, "a", "1")).collect();
    client
        .complete_orchestrator_task(turn(&item, actions))
        .await
        .unwrap();
    let mut chunks = client
        .stream_instance_history(StreamInstanceHistoryRequest {
            instance_id: "long".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        sizes.push(chunk.events.len());
        ids.extend(chunk.events.iter().map(|e| e.event_id));
    }
    // OrchestratorStarted, ExecutionStarted and the 700 TaskScheduled events.
    assert_eq!(sizes.iter().sum::<usize>(), 702);
    assert!(sizes.len() >= 2, "one chunk of {sizes:?}");
    assert_eq!(
        ids[2..],
        (0..700).collect::<Vec<i32>>()[..],
        "events keep their order across chunks"
    );
    let missing = client
        .stream_instance_history(StreamInstanceHistoryRequest {
            instance_id: "nope".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
    backend.shutdown().await.unwrap();
}

#[tokio::test]
async fn entity_work_uses_the_configured_format() {
    for format in [
        durable_backend::EntityFormat::Batch,
        durable_backend::EntityFormat::V2,
    ] {
        let backend = common::backend(common::memory().with_entity_format(format)).await;
        let mut client = raw::connect(&backend.endpoint()).await;
        let signal = SignalEntityRequest {
            instance_id: "@Counter@k".into(),
            name: "add".into(),
            input: Some("1".into()),
            request_id: "r1".into(),
            ..Default::default()
        };
        client.signal_entity(signal).await.unwrap();
        let mut s = stream(&mut client, GetWorkItemsRequest::default()).await;
        let item = next(&mut s).await;
        match (format, &item.request) {
            (durable_backend::EntityFormat::Batch, Some(work_item::Request::EntityRequest(r))) => {
                assert_eq!(r.instance_id, "@counter@k");
                assert_eq!(r.operations[0].request_id, "r1");
            }
            (durable_backend::EntityFormat::V2, Some(work_item::Request::EntityRequestV2(r))) => {
                assert_eq!(r.instance_id, "@counter@k");
                let Some(EventType::EntityOperationSignaled(op)) =
                    &r.operation_requests[0].event_type
                else {
                    panic!("{r:?}")
                };
                assert_eq!(op.request_id, "r1");
            }
            other => panic!("unexpected work item {other:?}"),
        }
        backend.shutdown().await.unwrap();
    }
}
