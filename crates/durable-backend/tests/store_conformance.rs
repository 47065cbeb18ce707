//! One conformance suite for the storage contract, run over SQLite in memory and in a file.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use durable_backend::{
    LeaseRequest, SqliteStore, Storage, Store, StoreError, Synchronous, WorkKind,
};
use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::*;

struct Fixture {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    path: Option<std::path::PathBuf>,
}

fn memory() -> Fixture {
    let store = SqliteStore::open(&Storage::InMemory, Synchronous::Full, 64).unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: tempfile::tempdir().unwrap(),
        path: None,
    }
}

fn file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/store.db");
    let store = SqliteStore::open(&Storage::File(path.clone()), Synchronous::Full, 64).unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: dir,
        path: Some(path),
    }
}

const HUB: &str = "conformance";

fn everything() -> LeaseRequest {
    let mut r = LeaseRequest::default();
    r.orchestrations = 10;
    r.activities = 10;
    r.entities = 10;
    r.orchestration_lease_ms = 60_000;
    r.activity_lease_ms = 60_000;
    r.entity_lease_ms = 60_000;
    r.max_entity_batch = 10;
    r.history_streaming_threshold = None;
    r.entity_v2 = false;
    r
}

fn start(id: &str, input: &str) -> CreateInstanceRequest {
    CreateInstanceRequest {
        instance_id: id.into(),
        name: "orch".into(),
        input: Some(input.into()),
        tags: HashMap::from([("k".to_owned(), "v".to_owned())]),
        ..Default::default()
    }
}

fn kinds(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let name = format!("{:?}", e.event_type.as_ref().unwrap());
            name.split('(').next().unwrap().to_owned()
        })
        .collect()
}

fn action(id: i32, kind: OrchestratorActionType) -> OrchestratorAction {
    OrchestratorAction {
        id,
        orchestrator_action_type: Some(kind),
    }
}

fn respond(token: &str, actions: Vec<OrchestratorAction>) -> OrchestratorResponse {
    OrchestratorResponse {
        actions,
        completion_token: token.into(),
        ..Default::default()
    }
}

async fn lease_one(store: &Arc<dyn Store>, kind: WorkKind) -> durable_backend::LeasedWork {
    let mut leased = store.lease(HUB.into(), everything()).await.unwrap();
    leased.retain(|w| w.kind == kind);
    assert_eq!(leased.len(), 1, "exactly one {kind:?} work item expected");
    leased.pop().unwrap()
}

fn orchestrator(work: &durable_backend::LeasedWork) -> &OrchestratorRequest {
    match &work.item.request {
        Some(work_item::Request::OrchestratorRequest(r)) => r,
        other => panic!("{other:?}"),
    }
}

async fn starting_and_reading_an_instance(f: Fixture) {
    let s = &f.store;
    let id = s.start_instance(HUB.into(), start("a", "1")).await.unwrap();
    assert_eq!(id, "a");
    let state = s
        .get_instance(HUB.into(), "a".into(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state.orchestration_status,
        OrchestrationStatus::Pending as i32
    );
    assert_eq!(state.input.as_deref(), Some("1"));
    assert_eq!(state.tags.get("k").map(String::as_str), Some("v"));
    let without = s
        .get_instance(HUB.into(), "a".into(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(without.input, None);
    assert!(
        s.get_instance(HUB.into(), "missing".into(), true)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.get_instance("other-hub".into(), "a".into(), true)
            .await
            .unwrap()
            .is_none()
    );
    let again = s.start_instance(HUB.into(), start("a", "2")).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    let generated = s.start_instance(HUB.into(), start("", "3")).await.unwrap();
    assert!(!generated.is_empty());
}

async fn a_turn_appends_history_and_queues_work(f: Fixture) {
    let s = &f.store;
    s.start_instance(HUB.into(), start("t", "1")).await.unwrap();
    let work = lease_one(s, WorkKind::Orchestration).await;
    assert_eq!(
        kinds(&orchestrator(&work).new_events),
        ["OrchestratorStarted", "ExecutionStarted"]
    );
    // In flight: not handed out twice.
    assert!(s.lease(HUB.into(), everything()).await.unwrap().is_empty());
    let fire_at = prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    let actions = vec![
        action(
            0,
            OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
                name: "act".into(),
                ..Default::default()
            }),
        ),
        action(
            1,
            OrchestratorActionType::CreateTimer(CreateTimerAction {
                fire_at: Some(fire_at),
            }),
        ),
    ];
    s.complete_orchestration(HUB.into(), respond(&work.token, actions))
        .await
        .unwrap();
    let stale = s
        .complete_orchestration(HUB.into(), respond(&work.token, vec![]))
        .await;
    assert!(matches!(stale, Err(StoreError::StaleLease(_))), "{stale:?}");
    let history = s.history(HUB.into(), "t".into()).await.unwrap().unwrap();
    assert_eq!(
        kinds(&history),
        [
            "OrchestratorStarted",
            "ExecutionStarted",
            "TaskScheduled",
            "TimerCreated"
        ]
    );
    assert_eq!(history[2].event_id, 0);
    assert_eq!(history[3].event_id, 1);
    let state = s
        .get_instance(HUB.into(), "t".into(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state.orchestration_status,
        OrchestrationStatus::Running as i32
    );
    // The activity is available; the far-future timer is not, but it is reported as due.
    let act = lease_one(s, WorkKind::Activity).await;
    assert_eq!(
        s.next_due(HUB.into())
            .await
            .unwrap()
            .map(|d| d <= 4_000_000_000_000),
        Some(true)
    );
    s.complete_activity(
        HUB.into(),
        ActivityResponse {
            result: Some("r".into()),
            completion_token: act.token.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let work = lease_one(s, WorkKind::Orchestration).await;
    assert_eq!(
        kinds(&orchestrator(&work).new_events),
        ["OrchestratorStarted", "TaskCompleted"]
    );
    let complete = CompleteOrchestrationAction {
        orchestration_status: OrchestrationStatus::Completed as i32,
        result: Some("done".into()),
        ..Default::default()
    };
    s.complete_orchestration(
        HUB.into(),
        respond(
            &work.token,
            vec![action(
                2,
                OrchestratorActionType::CompleteOrchestration(complete),
            )],
        ),
    )
    .await
    .unwrap();
    let state = s
        .get_instance(HUB.into(), "t".into(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state.orchestration_status,
        OrchestrationStatus::Completed as i32
    );
    assert_eq!(state.output.as_deref(), Some("done"));
    assert!(state.completed_timestamp.is_some());
    let history = s.history(HUB.into(), "t".into()).await.unwrap().unwrap();
    assert_eq!(
        kinds(&history).last().map(String::as_str),
        Some("ExecutionCompleted")
    );
}

async fn released_and_abandoned_work_comes_back(f: Fixture) {
    let s = &f.store;
    s.start_instance(HUB.into(), start("r", "1")).await.unwrap();
    let first = lease_one(s, WorkKind::Orchestration).await;
    s.release(
        HUB.into(),
        vec![(WorkKind::Orchestration, first.token.clone())],
    )
    .await
    .unwrap();
    let second = lease_one(s, WorkKind::Orchestration).await;
    assert_ne!(first.token, second.token);
    s.abandon(HUB.into(), WorkKind::Orchestration, second.token.clone())
        .await
        .unwrap();
    let stale = s
        .abandon(HUB.into(), WorkKind::Orchestration, second.token.clone())
        .await;
    assert!(matches!(stale, Err(StoreError::StaleLease(_))));
    let third = lease_one(s, WorkKind::Orchestration).await;
    assert_eq!(
        kinds(&orchestrator(&third).new_events),
        ["OrchestratorStarted", "ExecutionStarted"]
    );
}

fn raise(id: &str, name: &str) -> RaiseEventRequest {
    RaiseEventRequest {
        instance_id: id.into(),
        name: name.into(),
        input: Some("1".into()),
    }
}

/// The names of the raised events among `events`, in order.
fn raised(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.event_type {
            Some(EventType::EventRaised(r)) => Some(r.name.clone()),
            _ => None,
        })
        .collect()
}

async fn messages_for_a_busy_instance_wait_for_its_turn_to_end(f: Fixture) {
    let s = &f.store;
    s.start_instance(HUB.into(), start("busy", "1"))
        .await
        .unwrap();
    let first = lease_one(s, WorkKind::Orchestration).await;
    for name in ["a", "b"] {
        s.raise_event(HUB.into(), raise("busy", name))
            .await
            .unwrap();
    }
    assert!(s.lease(HUB.into(), everything()).await.unwrap().is_empty());
    s.complete_orchestration(HUB.into(), respond(&first.token, vec![]))
        .await
        .unwrap();
    let second = lease_one(s, WorkKind::Orchestration).await;
    assert_eq!(raised(&orchestrator(&second).new_events), ["a", "b"]);
    // Given back: what it was given and what arrived meanwhile come again, in arrival order.
    s.raise_event(HUB.into(), raise("busy", "c")).await.unwrap();
    s.abandon(HUB.into(), WorkKind::Orchestration, second.token.clone())
        .await
        .unwrap();
    let third = lease_one(s, WorkKind::Orchestration).await;
    assert_eq!(raised(&orchestrator(&third).new_events), ["a", "b", "c"]);
    s.complete_orchestration(HUB.into(), respond(&third.token, vec![]))
        .await
        .unwrap();
    // A turn whose lease runs out: the next lease has what arrived while it was out.
    s.raise_event(HUB.into(), raise("busy", "d")).await.unwrap();
    let mut short = everything();
    short.orchestration_lease_ms = 300;
    let lapsing = s.lease(HUB.into(), short).await.unwrap();
    assert_eq!(lapsing.len(), 1);
    s.raise_event(HUB.into(), raise("busy", "e")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let again = loop {
        let mut got = s.lease(HUB.into(), everything()).await.unwrap();
        if let Some(work) = got.pop() {
            break work;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lapsed turn never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(again.token, lapsing[0].token);
    assert_eq!(raised(&orchestrator(&again).new_events), ["d", "e"]);
}

async fn continue_as_new_starts_a_fresh_generation(f: Fixture) {
    let s = &f.store;
    s.start_instance(HUB.into(), start("c", "0")).await.unwrap();
    let work = lease_one(s, WorkKind::Orchestration).await;
    let first_exec = orchestrator(&work).execution_id.clone();
    let carried = HistoryEvent {
        event_id: -1,
        timestamp: None,
        event_type: Some(EventType::EventRaised(EventRaisedEvent {
            name: "kept".into(),
            input: None,
        })),
    };
    let can = CompleteOrchestrationAction {
        orchestration_status: OrchestrationStatus::ContinuedAsNew as i32,
        result: Some("1".into()),
        new_version: Some("v2".into()),
        carryover_events: vec![carried],
        ..Default::default()
    };
    s.complete_orchestration(
        HUB.into(),
        respond(
            &work.token,
            vec![action(
                0,
                OrchestratorActionType::CompleteOrchestration(can),
            )],
        ),
    )
    .await
    .unwrap();
    let work = lease_one(s, WorkKind::Orchestration).await;
    let request = orchestrator(&work);
    assert!(work.past_events.is_empty() && request.past_events.is_empty());
    assert_eq!(
        kinds(&request.new_events),
        ["OrchestratorStarted", "ExecutionStarted", "EventRaised"]
    );
    assert_ne!(request.execution_id, first_exec);
    let Some(EventType::ExecutionStarted(started)) = &request.new_events[1].event_type else {
        unreachable!()
    };
    assert_eq!(started.input.as_deref(), Some("1"));
    assert_eq!(started.version.as_deref(), Some("v2"));
}

async fn sub_orchestrations_know_and_notify_their_parent(f: Fixture) {
    let s = &f.store;
    s.start_instance(HUB.into(), start("p", "0")).await.unwrap();
    let work = lease_one(s, WorkKind::Orchestration).await;
    let sub = CreateSubOrchestrationAction {
        instance_id: "p-child".into(),
        name: "child".into(),
        ..Default::default()
    };
    s.complete_orchestration(
        HUB.into(),
        respond(
            &work.token,
            vec![action(
                5,
                OrchestratorActionType::CreateSubOrchestration(sub),
            )],
        ),
    )
    .await
    .unwrap();
    let child = lease_one(s, WorkKind::Orchestration).await;
    let Some(EventType::ExecutionStarted(started)) = &orchestrator(&child).new_events[1].event_type
    else {
        panic!()
    };
    let parent = started.parent_instance.as_ref().unwrap();
    assert_eq!(parent.task_scheduled_id, 5);
    assert_eq!(
        parent.orchestration_instance.as_ref().unwrap().instance_id,
        "p"
    );
    let failed = CompleteOrchestrationAction {
        orchestration_status: OrchestrationStatus::Failed as i32,
        failure_details: Some(TaskFailureDetails {
            error_type: "E".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.complete_orchestration(
        HUB.into(),
        respond(
            &child.token,
            vec![action(
                0,
                OrchestratorActionType::CompleteOrchestration(failed),
            )],
        ),
    )
    .await
    .unwrap();
    let back = lease_one(s, WorkKind::Orchestration).await;
    assert_eq!(orchestrator(&back).instance_id, "p");
    let Some(EventType::SubOrchestrationInstanceFailed(f)) =
        &orchestrator(&back).new_events[1].event_type
    else {
        panic!()
    };
    assert_eq!(f.task_scheduled_id, 5);
    assert_eq!(f.failure_details.as_ref().unwrap().error_type, "E");
}

fn entity_request(work: &durable_backend::LeasedWork) -> &EntityBatchRequest {
    match &work.item.request {
        Some(work_item::Request::EntityRequest(r)) => r,
        other => panic!("{other:?}"),
    }
}

async fn entities_batch_operations_and_honour_locks(f: Fixture) {
    let s = &f.store;
    for n in 0..2 {
        let signal = SignalEntityRequest {
            instance_id: "@Counter@x".into(),
            name: "add".into(),
            input: Some(n.to_string()),
            request_id: format!("r{n}"),
            ..Default::default()
        };
        s.signal_entity(HUB.into(), signal).await.unwrap();
    }
    let work = lease_one(s, WorkKind::Entity).await;
    let batch = entity_request(&work);
    assert_eq!(batch.instance_id, "@counter@x");
    assert_eq!(batch.operations.len(), 2);
    let ok = OperationResult {
        result_type: Some(operation_result::ResultType::Success(
            OperationResultSuccess::default(),
        )),
    };
    let result = EntityBatchResult {
        results: vec![ok.clone(), ok.clone()],
        entity_state: Some("1".into()),
        completion_token: work.token.clone(),
        ..Default::default()
    };
    s.complete_entity(HUB.into(), result).await.unwrap();
    let meta = s
        .get_entity(HUB.into(), "@counter@x".into(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.serialized_state.as_deref(), Some("1"));

    // An orchestration locks two entities; a client signal to a locked one waits for the unlock.
    s.start_instance(HUB.into(), start("locker", "0"))
        .await
        .unwrap();
    let turn = lease_one(s, WorkKind::Orchestration).await;
    let lock = SendEntityMessageAction {
        entity_message_type: Some(EntityMessageType::EntityLockRequested(
            EntityLockRequestedEvent {
                critical_section_id: "cs".into(),
                lock_set: vec!["@counter@x".into(), "@counter@y".into()],
                position: 0,
                parent_instance_id: None,
            },
        )),
    };
    s.complete_orchestration(
        HUB.into(),
        respond(
            &turn.token,
            vec![action(0, OrchestratorActionType::SendEntityMessage(lock))],
        ),
    )
    .await
    .unwrap();
    // Lock requests travel entity by entity, one lease pass each, before the grant reaches the orchestration.
    let mut granted = None;
    for _ in 0..5 {
        let mut leased = s.lease(HUB.into(), everything()).await.unwrap();
        assert!(
            leased.iter().all(|w| w.kind == WorkKind::Orchestration),
            "locks are handled by the store"
        );
        if let Some(work) = leased.pop() {
            granted = Some(work);
            break;
        }
    }
    let granted = granted.expect("the lock is granted");
    assert_eq!(
        kinds(&orchestrator(&granted).new_events),
        ["OrchestratorStarted", "EntityLockGranted"]
    );
    let meta = s
        .get_entity(HUB.into(), "@counter@y".into(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.locked_by.as_deref(), Some("locker"));
    // More signals wait than a batch holds (10) and than one page of the queue reads (11), so the unlock that
    // follows them is found only on the queue's second page.
    for n in 0..15 {
        let waiting = SignalEntityRequest {
            instance_id: "@counter@x".into(),
            name: "add".into(),
            input: Some(n.to_string()),
            request_id: format!("w{n}"),
            ..Default::default()
        };
        s.signal_entity(HUB.into(), waiting).await.unwrap();
    }
    assert!(
        s.lease(HUB.into(), everything()).await.unwrap().is_empty(),
        "the signal waits for the lock"
    );
    let unlocks = ["@counter@x", "@counter@y"]
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let unlock = SendEntityMessageAction {
                entity_message_type: Some(EntityMessageType::EntityUnlockSent(
                    EntityUnlockSentEvent {
                        critical_section_id: "cs".into(),
                        parent_instance_id: None,
                        target_instance_id: Some((*target).into()),
                    },
                )),
            };
            action(
                i as i32 + 1,
                OrchestratorActionType::SendEntityMessage(unlock),
            )
        })
        .collect();
    s.complete_orchestration(HUB.into(), respond(&granted.token, unlocks))
        .await
        .unwrap();
    // Released, the waiting signals run in the order they came, a batch at a time.
    let inputs = |work: &durable_backend::LeasedWork| {
        entity_request(work)
            .operations
            .iter()
            .map(|o| o.input.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let released = lease_one(s, WorkKind::Entity).await;
    assert_eq!(
        inputs(&released),
        (0..10).map(|n| n.to_string()).collect::<Vec<_>>()
    );
    let done = EntityBatchResult {
        results: vec![ok.clone(); 10],
        entity_state: Some("11".into()),
        completion_token: released.token.clone(),
        ..Default::default()
    };
    s.complete_entity(HUB.into(), done).await.unwrap();
    let rest = lease_one(s, WorkKind::Entity).await;
    assert_eq!(
        inputs(&rest),
        (10..15).map(|n| n.to_string()).collect::<Vec<_>>()
    );
    let meta = s
        .get_entity(HUB.into(), "@counter@y".into(), false)
        .await
        .unwrap();
    assert!(meta.is_none_or(|m| m.locked_by.is_none()));
}

async fn commits_are_announced(f: Fixture) {
    let s = &f.store;
    let mut changes = s.changes();
    s.start_instance(HUB.into(), start("n", "1")).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(seen.work.contains(HUB));
    assert!(seen.instances.contains(&(HUB.to_owned(), "n".to_owned())));
}

async fn many_concurrent_operations_all_commit(f: Fixture) {
    let s = &f.store;
    let mut commits = s.changes();
    let calls = (0..300).map(|i| s.start_instance(HUB.into(), start(&format!("many-{i}"), "1")));
    let ids = futures::future::join_all(calls).await;
    assert!(ids.iter().all(Result::is_ok));
    // One announcement per commit group: queued operations were committed together.
    let mut groups = 0;
    while commits.try_recv().is_ok() {
        groups += 1;
    }
    assert!(
        (1..300).contains(&groups),
        "{groups} commits for 300 operations"
    );
    let query = InstanceQuery {
        max_instance_count: 1000,
        ..Default::default()
    };
    let page = s.query_instances(HUB.into(), query).await.unwrap();
    assert_eq!(page.orchestration_state.len(), 300);
    assert!(
        page.continuation_token.is_none(),
        "everything fits in one page"
    );
    // Finished instances only, in completion order, page by page.
    for i in 0..5 {
        let terminate = TerminateRequest {
            instance_id: format!("many-{i}"),
            output: None,
            recursive: false,
        };
        s.terminate(HUB.into(), terminate).await.unwrap();
    }
    let mut listed = Vec::new();
    let mut key = None;
    loop {
        let request = ListInstanceIdsRequest {
            page_size: 2,
            last_instance_key: key.clone(),
            ..Default::default()
        };
        let page = s.list_instance_ids(HUB.into(), request).await.unwrap();
        listed.extend(page.instance_ids);
        key = page.last_instance_key;
        if key.is_none() {
            break;
        }
    }
    assert_eq!(
        listed,
        (0..5).map(|i| format!("many-{i}")).collect::<Vec<_>>()
    );
}

/// An entity's state comes back whole, small or large, to the next batch and to queries; a removed entity leaves
/// nothing behind (in a file, the store keeps large states apart and must delete them with their entity).
async fn entity_states_of_any_size_come_back_whole(f: Fixture) {
    let s = &f.store;
    let blobs = || {
        f.path.as_ref().map(|path| {
            rusqlite::Connection::open(path)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get::<_, i64>(0))
                .unwrap()
        })
    };
    let states = [
        Some(format!("\"{}\"", "s".repeat(5_000))),
        Some(format!("\"{}\"", "t".repeat(900))),
        Some("1".to_owned()),
        Some(format!("\"{}\"", "u".repeat(4_000))),
        None,
    ];
    let mut previous: Option<String> = None;
    for (n, state) in states.iter().enumerate() {
        let signal = SignalEntityRequest {
            instance_id: "@cart@big".into(),
            name: "set".into(),
            request_id: format!("s{n}"),
            ..Default::default()
        };
        s.signal_entity(HUB.into(), signal).await.unwrap();
        let work = lease_one(s, WorkKind::Entity).await;
        assert_eq!(entity_request(&work).entity_state, previous, "batch {n}");
        let ok = OperationResult {
            result_type: Some(operation_result::ResultType::Success(
                OperationResultSuccess::default(),
            )),
        };
        let result = EntityBatchResult {
            results: vec![ok],
            entity_state: state.clone(),
            completion_token: work.token.clone(),
            ..Default::default()
        };
        s.complete_entity(HUB.into(), result).await.unwrap();
        let meta = s
            .get_entity(HUB.into(), "@cart@big".into(), true)
            .await
            .unwrap();
        assert_eq!(
            meta.and_then(|m| m.serialized_state),
            state.clone(),
            "state {n}"
        );
        if let Some(state) = state {
            let listed = s
                .query_entities(
                    HUB.into(),
                    EntityQuery {
                        include_state: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let found = listed
                .entities
                .iter()
                .find(|e| e.instance_id == "@cart@big")
                .and_then(|e| e.serialized_state.as_ref());
            assert_eq!(found, Some(state), "listed state {n}");
        }
        // Only the current state, when it is large, is kept apart.
        let large = state.as_ref().is_some_and(|s| s.len() > 800);
        if let Some(count) = blobs() {
            assert_eq!(count, i64::from(large), "blobs after state {n}");
        }
        previous = state.clone();
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            $( #[tokio::test] async fn $name() { super::$name(super::memory()).await } )*
        }
        mod in_a_file {
            $( #[tokio::test] async fn $name() { super::$name(super::file()).await } )*
        }
    };
}

conformance!(
    starting_and_reading_an_instance,
    a_turn_appends_history_and_queues_work,
    released_and_abandoned_work_comes_back,
    messages_for_a_busy_instance_wait_for_its_turn_to_end,
    continue_as_new_starts_a_fresh_generation,
    sub_orchestrations_know_and_notify_their_parent,
    entities_batch_operations_and_honour_locks,
    entity_states_of_any_size_come_back_whole,
    commits_are_announced,
    many_concurrent_operations_all_commit,
);

#[tokio::test]
async fn a_reopened_file_keeps_its_data_and_frees_old_leases() {
    let f = file();
    let path = f.path.clone().unwrap();
    f.store
        .start_instance(HUB.into(), start("kept", "1"))
        .await
        .unwrap();
    // Enough messages that the turn takes them out of the ready queue while it is out.
    let early: Vec<String> = (0..40).map(|i| format!("early-{i:02}")).collect();
    for name in &early {
        f.store
            .raise_event(HUB.into(), raise("kept", name))
            .await
            .unwrap();
    }
    let leased = lease_one(&f.store, WorkKind::Orchestration).await;
    assert_eq!(raised(&orchestrator(&leased).new_events), early);
    // Arrives while the turn is out, so it is held back until the turn ends: a restart must not forget it.
    f.store
        .raise_event(HUB.into(), raise("kept", "late"))
        .await
        .unwrap();
    drop(f.store);
    let reopened: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&Storage::File(path), Synchronous::Full, 8).unwrap());
    let state = reopened
        .get_instance(HUB.into(), "kept".into(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.input.as_deref(), Some("1"));
    let again = lease_one(&reopened, WorkKind::Orchestration).await;
    assert_ne!(again.token, leased.token);
    let mut expected = early.clone();
    expected.push("late".to_owned());
    assert_eq!(raised(&orchestrator(&again).new_events), expected);
    let stale = reopened
        .complete_orchestration(HUB.into(), respond(&leased.token, vec![]))
        .await;
    assert!(matches!(stale, Err(StoreError::StaleLease(_))));
}
