//! What the fuzzer generates: hostile IDs, payloads around the limit, timestamps, worker actions and histories,
//! and the operations of a case.

use durable_proto::history_event::EventType;
use durable_proto::*;
use proptest::prelude::*;
use prost::Message;

use super::LIMIT;

/// Instance IDs: a small pool (so operations meet each other and form parent/child cycles) and hostile ones.
pub(crate) fn instance_id() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => proptest::sample::select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => Just("x".repeat(100)),
        1 => Just("x".repeat(101)),
        1 => Just("y".repeat(5000)),
        1 => "[\\x00-\\x1f\\x7f]{1,4}",
        1 => "@[a-z]{0,4}@?[a-z]{0,4}",
        1 => any::<String>(),
        1 => "[ -~]{1,110}",
    ]
}

pub(crate) fn entity_id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(vec!["@counter@a", "@counter@b", "@Counter@a", "@lock@x"])
            .prop_map(str::to_owned),
        1 => Just("@c@".to_owned()),
        1 => Just(format!("@{}@k", "n".repeat(101))),
        1 => Just(format!("@n@{}", "k".repeat(101))),
        1 => instance_id(),
    ]
}

pub(crate) fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(vec!["o", "p", "act", "op"]).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => any::<String>(),
    ]
}

/// Payloads: none, small, and sizes just under, at and over the limit.
pub(crate) fn payload() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => Just(None),
        8 => proptest::sample::select(vec!["1", "\"s\"", "null", "{}", "not json"])
            .prop_map(|s| Some(s.to_owned())),
        1 => Just(Some("p".repeat(LIMIT - 1))),
        1 => Just(Some("p".repeat(LIMIT))),
        1 => Just(Some("p".repeat(LIMIT + 1))),
        1 => Just(Some("q".repeat(40 * LIMIT))),
        1 => any::<String>().prop_map(Some),
    ]
}

pub(crate) fn timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
    let seconds = prop_oneof![
        Just(0i64),
        Just(i64::MIN),
        Just(i64::MAX),
        1_500_000_000i64..2_500_000_000,
        any::<i64>(),
    ];
    let nanos = prop_oneof![Just(0i32), 0i32..1_000_000_000, any::<i32>()];
    (seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
}

pub(crate) fn status() -> impl Strategy<Value = i32> {
    prop_oneof![8 => 0i32..=6, 1 => any::<i32>()]
}

pub(crate) fn failure() -> impl Strategy<Value = Option<TaskFailureDetails>> {
    proptest::option::of(
        (name(), payload()).prop_map(|(error_type, message)| TaskFailureDetails {
            error_type,
            error_message: message.unwrap_or_default(),
            ..TaskFailureDetails::default()
        }),
    )
}

/// A history event a worker might hand back: structured ones with hostile contents, and decoded random bytes.
pub(crate) fn history_event() -> impl Strategy<Value = HistoryEvent> {
    let typed = prop_oneof![
        (name(), payload())
            .prop_map(|(name, input)| EventType::EventRaised(EventRaisedEvent { name, input })),
        (name(), payload()).prop_map(|(name, input)| {
            EventType::TaskScheduled(TaskScheduledEvent {
                name,
                input,
                ..TaskScheduledEvent::default()
            })
        }),
        (any::<i32>(), payload()).prop_map(|(task_scheduled_id, result)| {
            EventType::TaskCompleted(TaskCompletedEvent {
                task_scheduled_id,
                result,
            })
        }),
        (instance_id(), name(), payload()).prop_map(|(instance_id, name, input)| {
            EventType::SubOrchestrationInstanceCreated(SubOrchestrationInstanceCreatedEvent {
                instance_id,
                name,
                input,
                ..SubOrchestrationInstanceCreatedEvent::default()
            })
        }),
        (name(), payload()).prop_map(|(name, input)| {
            EventType::ExecutionStarted(ExecutionStartedEvent {
                name,
                input,
                ..ExecutionStartedEvent::default()
            })
        }),
        payload().prop_map(|reason| EventType::ExecutionRewound(ExecutionRewoundEvent {
            reason,
            ..ExecutionRewoundEvent::default()
        })),
        Just(EventType::OrchestratorStarted(OrchestratorStartedEvent {})),
    ];
    prop_oneof![
        4 => (-2i32..20, typed).prop_map(|(event_id, event_type)| HistoryEvent {
            event_id,
            timestamp: None,
            event_type: Some(event_type),
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..48)
            .prop_map(|bytes| HistoryEvent::decode(bytes.as_slice()).unwrap_or_default()),
    ]
}

/// `grpc-timeout` values for the waits: short valid ones, the longest valid one, and malformed ones.
pub(crate) fn timeout_header() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "30m",
        "0n",
        "20u",
        "18446744073709551615S",
        "123456789S",
        "5x",
        "S",
        "",
    ])
}

#[derive(Debug, Clone)]
pub(crate) enum ActionSpec {
    Schedule(String, Option<String>),
    Sub(String, Option<String>),
    Timer(prost_types::Timestamp),
    Send(String, Option<String>),
    Complete {
        status: i32,
        result: Option<String>,
        failure: Option<TaskFailureDetails>,
        carried: Vec<HistoryEvent>,
    },
    Terminate(String, Option<String>, bool),
    Entity {
        kind: u8,
        target: String,
        input: Option<String>,
        lock_set: Vec<String>,
        position: i32,
    },
    Rewind(Vec<HistoryEvent>),
}

pub(crate) fn action() -> impl Strategy<Value = ActionSpec> {
    prop_oneof![
        3 => (name(), payload()).prop_map(|(n, i)| ActionSpec::Schedule(n, i)),
        3 => (instance_id(), payload()).prop_map(|(id, i)| ActionSpec::Sub(id, i)),
        1 => timestamp().prop_map(ActionSpec::Timer),
        2 => (instance_id(), payload()).prop_map(|(id, d)| ActionSpec::Send(id, d)),
        3 => (status(), payload(), failure(), proptest::collection::vec(history_event(), 0..3))
            .prop_map(|(status, result, failure, carried)| ActionSpec::Complete { status, result, failure, carried }),
        2 => (instance_id(), payload(), any::<bool>()).prop_map(|(id, r, rec)| ActionSpec::Terminate(id, r, rec)),
        3 => (0u8..5, entity_id(), payload(), proptest::collection::vec(entity_id(), 0..3), -1i32..4)
            .prop_map(|(kind, target, input, lock_set, position)| ActionSpec::Entity {
                kind, target, input, lock_set, position,
            }),
        1 => proptest::collection::vec(history_event(), 0..6).prop_map(ActionSpec::Rewind),
    ]
}

/// How a worker answers one work item, whatever its kind turns out to be.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// 0-5 complete, 6 abandon, 7 keep holding it.
    pub(crate) mode: u8,
    pub(crate) actions: Vec<ActionSpec>,
    /// Orchestrator turns: sent as this many partial chunks before the last one.
    pub(crate) chunks: u8,
    pub(crate) payload: Option<String>,
    pub(crate) failure: Option<TaskFailureDetails>,
    pub(crate) results: u8,
    pub(crate) entity_actions: Vec<(bool, String, Option<String>)>,
}

pub(crate) fn reply() -> impl Strategy<Value = Reply> {
    (
        0u8..8,
        proptest::collection::vec(action(), 0..5),
        prop_oneof![4 => Just(0u8), 1 => 1u8..4],
        payload(),
        failure(),
        0u8..4,
        proptest::collection::vec((any::<bool>(), entity_id(), payload()), 0..3),
    )
        .prop_map(
            |(mode, actions, chunks, payload, failure, results, entity_actions)| Reply {
                mode,
                actions,
                chunks,
                payload,
                failure,
                results,
                entity_actions,
            },
        )
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Start {
        id: String,
        name: String,
        input: Option<String>,
        at: Option<prost_types::Timestamp>,
        policy: Vec<i32>,
    },
    Get(String, bool),
    Raise(String, String, Option<String>),
    Terminate(String, Option<String>, bool),
    Suspend(String, Option<String>, bool),
    Restart(String, bool),
    Rewind(String, Option<String>),
    PurgeId(String, bool),
    PurgeBatch(Vec<String>, bool),
    PurgeFilter(Vec<i32>, Option<prost_types::Timestamp>, bool),
    Query(Option<String>, i32, Option<String>, Vec<i32>),
    ListIds(i32, Option<String>, Vec<i32>),
    History(String),
    Wait(String, bool, &'static str),
    Signal(
        String,
        String,
        Option<String>,
        Option<prost_types::Timestamp>,
    ),
    GetEntity(String, bool),
    QueryEntities(Option<String>, Option<i32>, Option<String>, bool),
    CleanEntities,
    SkipGraceful(Vec<String>, Option<String>),
    Housekeeping,
    CreateHub(bool),
    DeleteHub,
    OtherStream(i32, Vec<String>, Vec<i32>),
    Forge(u8, String, bool),
    Work(Vec<Reply>),
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let ids = || proptest::collection::vec(instance_id(), 0..4);
    let statuses = || proptest::collection::vec(status(), 0..3);
    prop_oneof![
        12 => (instance_id(), name(), payload(), proptest::option::weighted(0.1, timestamp()),
               proptest::option::weighted(0.2, statuses()))
            .prop_map(|(id, name, input, at, policy)| Op::Start { id, name, input, at, policy: policy.unwrap_or_default() }),
        2 => (instance_id(), any::<bool>()).prop_map(|(id, p)| Op::Get(id, p)),
        3 => (instance_id(), name(), payload()).prop_map(|(id, n, d)| Op::Raise(id, n, d)),
        3 => (instance_id(), payload(), any::<bool>()).prop_map(|(id, o, r)| Op::Terminate(id, o, r)),
        1 => (instance_id(), payload(), any::<bool>()).prop_map(|(id, r, s)| Op::Suspend(id, r, s)),
        1 => (instance_id(), any::<bool>()).prop_map(|(id, n)| Op::Restart(id, n)),
        2 => (instance_id(), payload()).prop_map(|(id, r)| Op::Rewind(id, r)),
        2 => (instance_id(), any::<bool>()).prop_map(|(id, r)| Op::PurgeId(id, r)),
        1 => (ids(), any::<bool>()).prop_map(|(ids, r)| Op::PurgeBatch(ids, r)),
        1 => (statuses(), proptest::option::of(timestamp()), any::<bool>())
            .prop_map(|(s, t, r)| Op::PurgeFilter(s, t, r)),
        1 => (proptest::option::of(instance_id()), any::<i32>(), proptest::option::of(instance_id()), statuses())
            .prop_map(|(p, n, c, s)| Op::Query(p, n, c, s)),
        1 => (any::<i32>(), proptest::option::of("[0-9a-z:-]{0,12}"), statuses())
            .prop_map(|(n, k, s)| Op::ListIds(n, k, s)),
        1 => instance_id().prop_map(Op::History),
        1 => (instance_id(), any::<bool>(), timeout_header()).prop_map(|(id, c, t)| Op::Wait(id, c, t)),
        3 => (entity_id(), name(), payload(), proptest::option::weighted(0.1, timestamp()))
            .prop_map(|(id, n, i, t)| Op::Signal(id, n, i, t)),
        1 => (entity_id(), any::<bool>()).prop_map(|(id, s)| Op::GetEntity(id, s)),
        1 => (proptest::option::of(entity_id()), proptest::option::of(any::<i32>()),
              proptest::option::of(entity_id()), any::<bool>())
            .prop_map(|(p, n, c, t)| Op::QueryEntities(p, n, c, t)),
        1 => Just(Op::CleanEntities),
        1 => (ids(), payload()).prop_map(|(ids, r)| Op::SkipGraceful(ids, r)),
        1 => Just(Op::Housekeeping),
        1 => any::<bool>().prop_map(Op::CreateHub),
        1 => Just(Op::DeleteHub),
        1 => (any::<i32>(), proptest::collection::vec(name(), 0..3), proptest::collection::vec(any::<i32>(), 0..3))
            .prop_map(|(n, f, c)| Op::OtherStream(n, f, c)),
        2 => (0u8..7, prop_oneof![Just(String::new()), "[a-f0-9]{32}", any::<String>()], any::<bool>())
            .prop_map(|(k, t, p)| Op::Forge(k, t, p)),
        16 => proptest::collection::vec(reply(), 1..6).prop_map(Op::Work),
    ]
}
