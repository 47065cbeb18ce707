//! The store behaves like the Durable Task Scheduler in details Microsoft's SDKs can see: scheduled entity signals
//! from orchestrations, entities that vanish once empty, histories without `OrchestratorCompleted`, reuse policies
//! that make no sense, and activity versions under work-item filters. The interop tests show the same through the
//! SDKs; these pin the mechanism at the storage contract.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use durable_backend::{
    LeaseRequest, LeasedWork, SqliteStore, Storage, Store, StoreError, Synchronous, WorkKind,
};
use durable_proto::history_event::EventType;
use durable_proto::orchestrator_action::OrchestratorActionType;
use durable_proto::send_entity_message_action::EntityMessageType;
use durable_proto::*;
use prost::Message;

const HUB: &str = "parity";

fn memory() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&Storage::InMemory, Synchronous::Full, 16).unwrap())
}

fn lease_request(filters: Option<WorkItemFilters>) -> LeaseRequest {
    let mut r = LeaseRequest::default();
    r.orchestrations = 10;
    r.activities = 10;
    r.entities = 10;
    r.orchestration_lease_ms = 60_000;
    r.activity_lease_ms = 60_000;
    r.entity_lease_ms = 60_000;
    r.max_entity_batch = 10;
    r.filters = filters;
    r
}

async fn lease(
    store: &Arc<dyn Store>,
    kind: WorkKind,
    filters: Option<WorkItemFilters>,
) -> Vec<LeasedWork> {
    let mut leased = store
        .lease(HUB.into(), lease_request(filters))
        .await
        .unwrap();
    leased.retain(|w| w.kind == kind);
    leased
}

async fn lease_one(store: &Arc<dyn Store>, kind: WorkKind) -> LeasedWork {
    let mut leased = lease(store, kind, None).await;
    assert_eq!(leased.len(), 1, "exactly one {kind:?} work item expected");
    leased.pop().unwrap()
}

/// The orchestration's next turn once its lock request has travelled (lock messages move one lease pass at a time).
async fn lease_after_locks(store: &Arc<dyn Store>) -> LeasedWork {
    for _ in 0..5 {
        if let Some(work) = lease(store, WorkKind::Orchestration, None).await.pop() {
            return work;
        }
    }
    panic!("the lock was never granted");
}

/// Starts orchestration `id`, has its first turn lock `entity` (critical section `section`), and returns its turn
/// once the lock is granted.
async fn start_holding(
    store: &Arc<dyn Store>,
    id: &str,
    section: &str,
    entity: &str,
) -> LeasedWork {
    store
        .start_instance(HUB.into(), start(id, None))
        .await
        .unwrap();
    let work = lease_one(store, WorkKind::Orchestration).await;
    turn(
        store,
        &work,
        vec![entity_message(0, lock_request(section, entity))],
    )
    .await;
    lease_after_locks(store).await
}

fn start(id: &str, version: Option<&str>) -> CreateInstanceRequest {
    CreateInstanceRequest {
        instance_id: id.into(),
        name: "orch".into(),
        version: version.map(str::to_owned),
        ..Default::default()
    }
}

fn action(id: i32, kind: OrchestratorActionType) -> OrchestratorAction {
    OrchestratorAction {
        id,
        orchestrator_action_type: Some(kind),
    }
}

fn entity_message(id: i32, message: EntityMessageType) -> OrchestratorAction {
    action(
        id,
        OrchestratorActionType::SendEntityMessage(SendEntityMessageAction {
            entity_message_type: Some(message),
        }),
    )
}

/// An orchestration's request to lock one entity, in critical section `section`.
fn lock_request(section: &str, entity: &str) -> EntityMessageType {
    EntityMessageType::EntityLockRequested(EntityLockRequestedEvent {
        critical_section_id: section.into(),
        lock_set: vec![entity.into()],
        position: 0,
        parent_instance_id: None,
    })
}

fn complete(id: i32) -> OrchestratorAction {
    action(
        id,
        OrchestratorActionType::CompleteOrchestration(CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::Completed as i32,
            ..Default::default()
        }),
    )
}

async fn turn(store: &Arc<dyn Store>, work: &LeasedWork, actions: Vec<OrchestratorAction>) {
    let response = OrchestratorResponse {
        actions,
        completion_token: work.token.clone(),
        ..Default::default()
    };
    store
        .complete_orchestration(HUB.into(), response)
        .await
        .unwrap();
}

fn kinds(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!("{:?}", e.event_type.as_ref().unwrap())
                .split('(')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn at_ms(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap(),
    }
}

fn signal_at(target: &str, request_id: &str, at: Option<i64>) -> EntityMessageType {
    EntityMessageType::EntityOperationSignaled(EntityOperationSignaledEvent {
        request_id: request_id.into(),
        operation: "add".into(),
        scheduled_time: at.map(at_ms),
        input: Some("1".into()),
        target_instance_id: Some(target.into()),
    })
}

fn operations(work: &LeasedWork) -> Vec<String> {
    match &work.item.request {
        Some(work_item::Request::EntityRequest(r)) => {
            r.operations.iter().map(|o| o.request_id.clone()).collect()
        }
        other => panic!("expected an entity batch, got {other:?}"),
    }
}

async fn finish_entity_batch(store: &Arc<dyn Store>, work: &LeasedWork, state: Option<&str>) {
    let ok = OperationResult {
        result_type: Some(operation_result::ResultType::Success(
            OperationResultSuccess::default(),
        )),
    };
    let result = EntityBatchResult {
        results: vec![ok; operations(work).len()],
        entity_state: state.map(str::to_owned),
        completion_token: work.token.clone(),
        ..Default::default()
    };
    store.complete_entity(HUB.into(), result).await.unwrap();
}

async fn transient_entities(store: &Arc<dyn Store>) -> Vec<String> {
    let query = EntityQuery {
        include_transient: true,
        ..Default::default()
    };
    let page = store.query_entities(HUB.into(), query).await.unwrap();
    page.entities.into_iter().map(|e| e.instance_id).collect()
}

async fn clean(store: &Arc<dyn Store>) -> (i32, i32) {
    let request = CleanEntityStorageRequest {
        remove_empty_entities: true,
        release_orphaned_locks: true,
        ..Default::default()
    };
    let r = store
        .clean_entity_storage(HUB.into(), request)
        .await
        .unwrap();
    (r.empty_entities_removed, r.orphaned_locks_released)
}

#[tokio::test]
async fn a_signal_an_orchestration_schedules_waits_for_its_time() {
    let s = memory();
    s.start_instance(HUB.into(), start("sender", None))
        .await
        .unwrap();
    let work = lease_one(&s, WorkKind::Orchestration).await;
    let later = now_ms() + 3_600_000;
    let actions = vec![
        entity_message(0, signal_at("@counter@later", "later", Some(later))),
        entity_message(1, signal_at("@counter@now", "now", None)),
        entity_message(2, signal_at("@counter@due", "due", Some(now_ms() - 1_000))),
    ];
    turn(&s, &work, actions).await;
    let leased = lease(&s, WorkKind::Entity, None).await;
    let mut delivered: Vec<String> = leased.iter().flat_map(operations).collect();
    delivered.sort();
    assert_eq!(delivered, ["due", "now"], "the signal for later waits");
    for work in &leased {
        finish_entity_batch(&s, work, Some("1")).await;
    }
    let due = s
        .next_due(HUB.into())
        .await
        .unwrap()
        .expect("the waiting signal is due later");
    assert!(
        (later - 1_000..=later).contains(&due),
        "due at {due}, scheduled for {later}"
    );
    // The orchestration's own history records the signal with its time, as the SDKs replay it.
    let history = s
        .history(HUB.into(), "sender".into())
        .await
        .unwrap()
        .unwrap();
    let recorded = history.iter().find_map(|e| match &e.event_type {
        Some(EventType::EntityOperationSignaled(m)) if m.request_id == "later" => m.scheduled_time,
        _ => None,
    });
    assert_eq!(recorded, Some(at_ms(later)));
}

#[tokio::test]
async fn entities_vanish_once_empty_and_cleaning_finds_nothing() {
    let s = memory();
    // State deleted by an operation: gone for GetEntity and for queries that include transient entities.
    for (name, state) in [("@counter@kept", Some("5")), ("@counter@deleted", None)] {
        let signal = SignalEntityRequest {
            instance_id: name.into(),
            name: "set".into(),
            request_id: name.into(),
            ..Default::default()
        };
        s.signal_entity(HUB.into(), signal).await.unwrap();
        let work = lease_one(&s, WorkKind::Entity).await;
        finish_entity_batch(&s, &work, state).await;
    }
    assert!(
        s.get_entity(HUB.into(), "@counter@deleted".into(), true)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(transient_entities(&s).await, ["@counter@kept"]);

    // Locked, never given state, released by an unlock: gone too.
    let granted = start_holding(&s, "locker", "cs", "@counter@locked").await;
    let held = s
        .get_entity(HUB.into(), "@counter@locked".into(), false)
        .await
        .unwrap();
    assert_eq!(held.and_then(|m| m.locked_by).as_deref(), Some("locker"));
    let unlock = EntityMessageType::EntityUnlockSent(EntityUnlockSentEvent {
        critical_section_id: "cs".into(),
        parent_instance_id: None,
        target_instance_id: Some("@counter@locked".into()),
    });
    turn(&s, &granted, vec![entity_message(1, unlock), complete(2)]).await;
    assert!(
        lease(&s, WorkKind::Entity, None).await.is_empty(),
        "an unlock is no operation"
    );
    assert_eq!(transient_entities(&s).await, ["@counter@kept"]);

    // A lock request still on its way when its orchestration finished locks nothing.
    s.start_instance(HUB.into(), start("quitter", None))
        .await
        .unwrap();
    let work = lease_one(&s, WorkKind::Orchestration).await;
    let lock = EntityMessageType::EntityLockRequested(EntityLockRequestedEvent {
        critical_section_id: "cs2".into(),
        lock_set: vec!["@counter@a".into(), "@counter@b".into()],
        position: 0,
        parent_instance_id: None,
    });
    turn(&s, &work, vec![entity_message(0, lock), complete(1)]).await;
    assert!(lease(&s, WorkKind::Entity, None).await.is_empty());
    assert_eq!(transient_entities(&s).await, ["@counter@kept"]);

    assert_eq!(clean(&s).await, (0, 0), "nothing was left for cleaning");
}

#[tokio::test]
async fn turns_that_do_not_finish_keep_the_instances_payloads() {
    let s = memory();
    let input = format!("\"{}\"", "x".repeat(200_000));
    let mut request = start("payloads", None);
    request.input = Some(input.clone());
    request.tags = [("team".to_owned(), "billing".to_owned())].into();
    s.start_instance(HUB.into(), request).await.unwrap();
    let state = || async {
        s.get_instance(HUB.into(), "payloads".into(), true)
            .await
            .unwrap()
            .unwrap()
    };
    // Events too large for a row of their own (see the store's `blobs`): an activity's input and its result.
    let argument = format!("\"{}\"", "a".repeat(5_000));
    let result = |turn_number: i32| format!("\"{}{turn_number}\"", "r".repeat(3_000));
    // Two turns that schedule an activity and set a custom status: neither writes the input or the tags.
    for (turn_number, status) in [(0, "\"first\""), (1, "\"second\"")] {
        let work = lease_one(&s, WorkKind::Orchestration).await;
        if turn_number > 0 {
            let item = work.clone().into_item().unwrap();
            let Some(work_item::Request::OrchestratorRequest(o)) = &item.request else {
                panic!("an orchestrator turn was expected");
            };
            let delivered = o.new_events.iter().find_map(|e| match &e.event_type {
                Some(EventType::TaskCompleted(c)) => c.result.clone(),
                _ => None,
            });
            assert_eq!(delivered, Some(result(turn_number - 1)));
            let scheduled = o.past_events.iter().find_map(|e| match &e.event_type {
                Some(EventType::TaskScheduled(t)) => t.input.clone(),
                _ => None,
            });
            assert_eq!(scheduled, Some(argument.clone()));
        }
        let schedule = action(
            turn_number,
            OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
                name: "step".into(),
                input: Some(argument.clone()),
                ..Default::default()
            }),
        );
        let response = OrchestratorResponse {
            actions: vec![schedule],
            custom_status: Some(status.into()),
            completion_token: work.token.clone(),
            ..Default::default()
        };
        s.complete_orchestration(HUB.into(), response)
            .await
            .unwrap();
        let now = state().await;
        assert_eq!(now.input.as_deref(), Some(input.as_str()));
        assert_eq!(now.tags.get("team").map(String::as_str), Some("billing"));
        assert_eq!(now.custom_status.as_deref(), Some(status));
        let activity = lease_one(&s, WorkKind::Activity).await;
        let Some(work_item::Request::ActivityRequest(a)) = &activity.item.request else {
            panic!("an activity was expected");
        };
        assert_eq!(a.input.as_deref(), Some(argument.as_str()));
        s.complete_activity(
            HUB.into(),
            ActivityResponse {
                instance_id: "payloads".into(),
                task_id: a.task_id,
                result: Some(result(turn_number)),
                completion_token: activity.token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    // The turn that finishes writes the row whole: the input and tags are still there, beside the output.
    let work = lease_one(&s, WorkKind::Orchestration).await;
    let mut finish = complete(2);
    if let Some(OrchestratorActionType::CompleteOrchestration(a)) =
        &mut finish.orchestrator_action_type
    {
        a.result = Some("\"done\"".into());
    }
    turn(&s, &work, vec![finish]).await;
    let done = state().await;
    assert_eq!(
        done.orchestration_status,
        OrchestrationStatus::Completed as i32
    );
    assert_eq!(done.input.as_deref(), Some(input.as_str()));
    assert_eq!(done.tags.get("team").map(String::as_str), Some("billing"));
    assert_eq!(done.output.as_deref(), Some("\"done\""));
}

#[tokio::test]
async fn an_orchestration_that_finishes_holding_a_lock_gives_it_back() {
    let s = memory();
    let locked_by = |s: Arc<dyn Store>| async move {
        s.get_entity(HUB.into(), "@counter@held".into(), false)
            .await
            .unwrap()
            .and_then(|m| m.locked_by)
    };
    let granted = start_holding(&s, "holder", "cs-1", "@counter@held").await;
    assert_eq!(locked_by(s.clone()).await.as_deref(), Some("holder"));
    // Another orchestration asks for the same entity and waits behind the lock.
    s.start_instance(HUB.into(), start("waiter", None))
        .await
        .unwrap();
    let waiter = lease_one(&s, WorkKind::Orchestration).await;
    turn(
        &s,
        &waiter,
        vec![entity_message(0, lock_request("cs-2", "@counter@held"))],
    )
    .await;
    assert!(
        lease(&s, WorkKind::Orchestration, None).await.is_empty(),
        "the waiter was granted a held lock"
    );
    // The holder completes without unlocking: the lock passes to the waiter.
    turn(&s, &granted, vec![complete(1)]).await;
    let handed_on = lease_after_locks(&s).await;
    let Some(work_item::Request::OrchestratorRequest(r)) = &handed_on.item.request else {
        panic!("an orchestrator turn was expected");
    };
    assert_eq!(
        (r.instance_id.as_str(), kinds(&r.new_events)),
        (
            "waiter",
            vec![
                "OrchestratorStarted".to_owned(),
                "EntityLockGranted".to_owned()
            ]
        )
    );
    assert_eq!(locked_by(s.clone()).await.as_deref(), Some("waiter"));
    // The waiter finishing without an unlock leaves the entity unlocked (and, never given state, gone).
    turn(&s, &handed_on, vec![complete(1)]).await;
    assert_eq!(locked_by(s.clone()).await, None);
}

#[tokio::test]
async fn replacing_a_running_instance_gives_its_entity_locks_back() {
    let s = memory();
    let granted = start_holding(&s, "holder", "cs", "@counter@held").await;
    turn(&s, &granted, vec![]).await;
    let mut replace = start("holder", None);
    replace.orchestration_id_reuse_policy = Some(OrchestrationIdReusePolicy {
        replaceable_status: vec![
            OrchestrationStatus::Running as i32,
            OrchestrationStatus::Terminated as i32,
        ],
    });
    s.start_instance(HUB.into(), replace).await.unwrap();
    assert!(
        s.get_entity(HUB.into(), "@counter@held".into(), false)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(clean(&s).await, (0, 0));
}

#[tokio::test]
async fn a_lock_request_of_a_replaced_execution_is_not_granted_to_the_new_one() {
    let s = memory();
    // `other` holds the entity, so `holder`'s request waits in the entity's queue.
    let other = start_holding(&s, "other", "cs-other", "@counter@busy").await;
    s.start_instance(HUB.into(), start("holder", None))
        .await
        .unwrap();
    let work = lease_one(&s, WorkKind::Orchestration).await;
    turn(
        &s,
        &work,
        vec![entity_message(
            0,
            lock_request("cs-holder", "@counter@busy"),
        )],
    )
    .await;
    // `holder` is replaced while its request is on its way; then `other` lets go.
    let mut replace = start("holder", None);
    replace.orchestration_id_reuse_policy = Some(OrchestrationIdReusePolicy {
        replaceable_status: vec![
            OrchestrationStatus::Running as i32,
            OrchestrationStatus::Terminated as i32,
        ],
    });
    s.start_instance(HUB.into(), replace).await.unwrap();
    let unlock = EntityMessageType::EntityUnlockSent(EntityUnlockSentEvent {
        critical_section_id: "cs-other".into(),
        parent_instance_id: None,
        target_instance_id: Some("@counter@busy".into()),
    });
    turn(&s, &other, vec![entity_message(1, unlock), complete(2)]).await;
    for _ in 0..5 {
        for work in lease(&s, WorkKind::Orchestration, None).await {
            if let Some(work_item::Request::OrchestratorRequest(r)) = &work.item.request {
                assert!(
                    !r.new_events
                        .iter()
                        .any(|e| matches!(e.event_type, Some(EventType::EntityLockGranted(_)))),
                    "the new execution was granted a lock it never asked for: {:?}",
                    kinds(&r.new_events)
                );
            }
            turn(&s, &work, vec![]).await;
        }
    }
    let entity = s
        .get_entity(HUB.into(), "@counter@busy".into(), false)
        .await
        .unwrap();
    assert!(
        entity.is_none_or(|e| e.locked_by.is_none()),
        "the entity is still locked"
    );
}

#[tokio::test]
async fn a_reuse_policy_replacing_live_but_not_terminated_instances_is_refused() {
    let s = memory();
    s.start_instance(HUB.into(), start("r", None))
        .await
        .unwrap();
    let work = lease_one(&s, WorkKind::Orchestration).await;
    turn(&s, &work, vec![]).await;
    let before = s
        .get_instance(HUB.into(), "r".into(), true)
        .await
        .unwrap()
        .unwrap();
    let policy = |statuses: &[OrchestrationStatus]| OrchestrationIdReusePolicy {
        replaceable_status: statuses.iter().map(|s| *s as i32).collect(),
    };
    use OrchestrationStatus::{Completed, Failed, Running, Suspended, Terminated};
    for (id, statuses) in [
        ("r", vec![Completed, Failed, Suspended]),
        ("fresh", vec![Running]),
    ] {
        let mut request = start(id, None);
        request.input = Some("\"replacement\"".into());
        request.orchestration_id_reuse_policy = Some(policy(&statuses));
        let refused = s.start_instance(HUB.into(), request).await.unwrap_err();
        let StoreError::InvalidArgument(message) = &refused else {
            panic!("expected an invalid argument, got {refused:?}");
        };
        assert_eq!(
            message,
            "Invalid reusable statuses: cannot exclude 'Terminated' while also allowing reuse of running instances"
        );
    }
    let after = s
        .get_instance(HUB.into(), "r".into(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before, "the running instance is untouched");
    assert!(
        s.get_instance(HUB.into(), "fresh".into(), false)
            .await
            .unwrap()
            .is_none()
    );
    // The same statuses with Terminated added replace it.
    let mut request = start("r", None);
    request.orchestration_id_reuse_policy = Some(policy(&[Running, Terminated]));
    s.start_instance(HUB.into(), request).await.unwrap();
    let replaced = s
        .get_instance(HUB.into(), "r".into(), false)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(replaced.execution_id, before.execution_id);
}

fn filters(orchestration_versions: &[&str], activity_versions: &[&str]) -> Option<WorkItemFilters> {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    Some(WorkItemFilters {
        orchestrations: vec![OrchestrationFilter {
            name: "orch".into(),
            versions: owned(orchestration_versions),
        }],
        activities: vec![ActivityFilter {
            name: "act".into(),
            versions: owned(activity_versions),
        }],
        entities: vec![],
    })
}

#[tokio::test]
async fn an_activity_without_a_version_is_dispatched_as_its_orchestrations_version() {
    let s = memory();
    s.start_instance(HUB.into(), start("v3", Some("3.0.0")))
        .await
        .unwrap();
    let work = lease(&s, WorkKind::Orchestration, filters(&["3.0.0"], &["3.0.0"])).await;
    assert_eq!(work.len(), 1);
    let schedule = |id: i32, version: Option<&str>| {
        action(
            id,
            OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
                name: "act".into(),
                version: version.map(str::to_owned),
                ..Default::default()
            }),
        )
    };
    // An empty version (what some SDKs send for none) inherits too.
    turn(
        &s,
        &work[0],
        vec![
            schedule(0, None),
            schedule(1, Some("1.0")),
            schedule(2, Some("")),
        ],
    )
    .await;
    let task_ids = |leased: Vec<LeasedWork>| -> Vec<i32> {
        leased
            .iter()
            .map(|w| match &w.item.request {
                Some(work_item::Request::ActivityRequest(a)) => a.task_id,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert!(
        lease(&s, WorkKind::Activity, filters(&[], &["2.0"]))
            .await
            .is_empty()
    );
    let inherited = lease(&s, WorkKind::Activity, filters(&[], &["3.0.0"])).await;
    // The work item carries the activity as it was scheduled, without the inherited version.
    match &inherited[0].item.request {
        Some(work_item::Request::ActivityRequest(a)) => assert_eq!(a.version, None),
        other => panic!("{other:?}"),
    }
    let mut ids = task_ids(inherited);
    ids.sort();
    assert_eq!(ids, [0, 2]);
    // An activity's own version wins over its orchestration's.
    assert_eq!(
        task_ids(lease(&s, WorkKind::Activity, filters(&[], &["1.0"])).await),
        [1]
    );
}

#[tokio::test]
async fn histories_have_no_orchestrator_completed_even_in_older_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.db");
    let open = || -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&Storage::File(path.clone()), Synchronous::Full, 8).unwrap())
    };
    let s = open();
    s.start_instance(HUB.into(), start("h", None))
        .await
        .unwrap();
    let work = lease_one(&s, WorkKind::Orchestration).await;
    let schedule = action(
        0,
        OrchestratorActionType::ScheduleTask(ScheduleTaskAction {
            name: "act".into(),
            ..Default::default()
        }),
    );
    turn(&s, &work, vec![schedule]).await;
    let history = s.history(HUB.into(), "h".into()).await.unwrap().unwrap();
    assert_eq!(
        kinds(&history),
        ["OrchestratorStarted", "ExecutionStarted", "TaskScheduled"]
    );
    drop(s);

    // Earlier versions of the backend ended every turn with an OrchestratorCompleted row.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let completed = HistoryEvent {
        event_id: -1,
        timestamp: Some(at_ms(now_ms())),
        event_type: Some(EventType::OrchestratorCompleted(
            OrchestratorCompletedEvent {},
        )),
    };
    conn.execute(
        "INSERT INTO history (hub, instance_id, seq, event) \
         SELECT ?1, ?2, MAX(seq) + 1, ?3 FROM history WHERE hub = ?1 AND instance_id = ?2",
        (HUB, "h", completed.encode_to_vec()),
    )
    .unwrap();
    drop(conn);

    let s = open();
    let history = s.history(HUB.into(), "h".into()).await.unwrap().unwrap();
    assert_eq!(
        kinds(&history),
        ["OrchestratorStarted", "ExecutionStarted", "TaskScheduled"]
    );
    let activity = lease_one(&s, WorkKind::Activity).await;
    let done = ActivityResponse {
        result: Some("1".into()),
        completion_token: activity.token.clone(),
        ..Default::default()
    };
    s.complete_activity(HUB.into(), done).await.unwrap();
    let work = lease_one(&s, WorkKind::Orchestration).await;
    let item = work.clone().into_item().unwrap();
    let Some(work_item::Request::OrchestratorRequest(request)) = &item.request else {
        panic!("expected an orchestrator request");
    };
    assert_eq!(
        kinds(&request.past_events),
        ["OrchestratorStarted", "ExecutionStarted", "TaskScheduled"]
    );
    turn(&s, &work, vec![complete(1)]).await;
    let history = s.history(HUB.into(), "h".into()).await.unwrap().unwrap();
    assert_eq!(
        kinds(&history),
        [
            "OrchestratorStarted",
            "ExecutionStarted",
            "TaskScheduled",
            "OrchestratorStarted",
            "TaskCompleted",
            "ExecutionCompleted"
        ]
    );
}
