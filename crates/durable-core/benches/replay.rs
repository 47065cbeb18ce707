//! Replay throughput: history events per second, plus allocations per replay (counted by a global allocator).
//!
//! Run with `cargo bench -p durable-core --bench replay`. Numbers are recorded in `BENCHMARKS.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use durable_core::proto::{self, history_event::EventType};
use durable_core::{OrchestrationContext, OrchestrationError, Registry, when_all};

/// Counts allocations so the bench can report allocations per replay next to the time.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// The allocator trait is unsafe by definition; this one only forwards to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn event(event_id: i32, seconds: i64, event_type: EventType) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id,
        timestamp: Some(proto::prost_types::Timestamp { seconds, nanos: 0 }),
        event_type: Some(event_type),
    }
}

fn started(name: &str, input: i32, seconds: i64) -> Vec<proto::HistoryEvent> {
    vec![
        event(
            -1,
            seconds,
            EventType::OrchestratorStarted(Default::default()),
        ),
        event(
            -1,
            seconds,
            EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name: name.into(),
                input: Some(input.to_string()),
                ..Default::default()
            }),
        ),
    ]
}

fn scheduled(id: i32, seconds: i64) -> proto::HistoryEvent {
    event(
        id,
        seconds,
        EventType::TaskScheduled(proto::TaskScheduledEvent {
            name: "work".into(),
            input: Some(id.to_string()),
            ..Default::default()
        }),
    )
}

fn completed(id: i32, seconds: i64) -> proto::HistoryEvent {
    event(
        -1,
        seconds,
        EventType::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id: id,
            result: Some(id.to_string()),
        }),
    )
}

fn turn_end(seconds: i64) -> Vec<proto::HistoryEvent> {
    vec![event(
        -1,
        seconds,
        EventType::OrchestratorCompleted(Default::default()),
    )]
}

/// The request for the last turn of a sequential orchestration of `n` activities: the past holds every earlier
/// turn, the new events complete the last activity.
fn sequential_request(instance: &str, n: i32) -> proto::OrchestratorRequest {
    let mut past = started("sequential", n, 0);
    past.push(scheduled(0, 0));
    past.extend(turn_end(0));
    for i in 1..n {
        let t = i64::from(i);
        past.push(event(
            -1,
            t,
            EventType::OrchestratorStarted(Default::default()),
        ));
        past.push(completed(i - 1, t));
        past.push(scheduled(i, t));
        past.extend(turn_end(t));
    }
    let last = i64::from(n);
    proto::OrchestratorRequest {
        instance_id: instance.into(),
        past_events: past,
        new_events: vec![
            event(-1, last, EventType::OrchestratorStarted(Default::default())),
            completed(n - 1, last),
        ],
        ..Default::default()
    }
}

/// The last turn of a fan-out of `n` activities awaited with `when_all`.
fn fan_out_request(n: i32) -> proto::OrchestratorRequest {
    let mut past = started("fan_out", n, 0);
    past.extend((0..n).map(|i| scheduled(i, 0)));
    past.extend(turn_end(0));
    past.push(event(
        -1,
        1,
        EventType::OrchestratorStarted(Default::default()),
    ));
    past.extend((0..n - 1).map(|i| completed(i, 1)));
    past.extend(turn_end(1));
    proto::OrchestratorRequest {
        instance_id: "fan".into(),
        past_events: past,
        new_events: vec![
            event(-1, 2, EventType::OrchestratorStarted(Default::default())),
            completed(n - 1, 2),
        ],
        ..Default::default()
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator(
        "sequential",
        |ctx: OrchestrationContext, n: i64| async move {
            let mut sum = 0i64;
            for i in 0..n {
                sum += ctx.call_activity::<_, i64>("work", i).await?;
            }
            Ok::<_, OrchestrationError>(sum)
        },
    )
    .add_orchestrator("fan_out", |ctx: OrchestrationContext, n: i64| async move {
        let tasks: Vec<_> = (0..n)
            .map(|i| ctx.call_activity::<_, i64>("work", i))
            .collect();
        let mut sum = 0;
        for r in when_all(tasks).await {
            sum += r?;
        }
        Ok::<_, OrchestrationError>(sum)
    });
    r
}

fn total_events(request: &proto::OrchestratorRequest) -> u64 {
    (request.past_events.len() + request.new_events.len()) as u64
}

fn check_completed(response: &proto::OrchestratorResponse) {
    let done = response.actions.iter().any(|a| {
        matches!(
            &a.orchestrator_action_type,
            Some(proto::orchestrator_action::OrchestratorActionType::CompleteOrchestration(c))
                if c.orchestration_status == proto::OrchestrationStatus::Completed as i32
        )
    });
    assert!(done, "the benchmark replay did not complete: {response:?}");
}

fn allocations_of(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    f();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn benches(c: &mut Criterion) {
    let registry = registry();

    // One orchestration with 1,000 sequential activities.
    let one = sequential_request("big", 1000);
    check_completed(&registry.execute_orchestrator(&one));
    let events = total_events(&one);
    let allocs = allocations_of(|| {
        black_box(registry.execute_orchestrator(&one));
    });
    println!("replay/1000_activities: {events} events, {allocs} allocations per replay");
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(events));
    group.bench_function("1000_activities", |b| {
        b.iter(|| black_box(registry.execute_orchestrator(black_box(&one))))
    });

    // 10,000 small orchestrations (3 activities each), replayed one after another.
    let small: Vec<_> = (0..10_000)
        .map(|i| sequential_request(&format!("small-{i}"), 3))
        .collect();
    check_completed(&registry.execute_orchestrator(&small[0]));
    let events: u64 = small.iter().map(total_events).sum();
    let allocs = allocations_of(|| {
        for request in &small {
            black_box(registry.execute_orchestrator(request));
        }
    });
    println!(
        "replay/10000_small: {events} events, {} allocations per orchestration",
        allocs / small.len() as u64
    );
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    group.bench_function("10000_small", |b| {
        b.iter(|| {
            for request in &small {
                black_box(registry.execute_orchestrator(black_box(request)));
            }
        })
    });

    // Fan-out/fan-in of 1,000 activities (when_all).
    let fan = fan_out_request(1000);
    check_completed(&registry.execute_orchestrator(&fan));
    let events = total_events(&fan);
    let allocs = allocations_of(|| {
        black_box(registry.execute_orchestrator(&fan));
    });
    println!("replay/fan_out_1000: {events} events, {allocs} allocations per replay");
    group.throughput(Throughput::Elements(events));
    group.sample_size(50);
    group.bench_function("fan_out_1000", |b| {
        b.iter_batched(
            || (),
            |()| black_box(registry.execute_orchestrator(&fan)),
            BatchSize::SmallInput,
        )
    });

    // Issue #14 (c): a whole turn of one orchestration with 10,000 history events as a worker sees it: the work
    // item's bytes decoded, the history replayed, the response encoded.
    let big = sequential_request("wire", 2500);
    let wire = prost::Message::encode_to_vec(&big);
    let events = total_events(&big);
    let turn = |bytes: &[u8]| {
        let request: proto::OrchestratorRequest =
            prost::Message::decode(bytes).expect("the benchmark's own encoding decodes");
        let response = registry.execute_orchestrator(&request);
        prost::Message::encode_to_vec(&response)
    };
    let response: proto::OrchestratorResponse =
        prost::Message::decode(turn(&wire).as_slice()).expect("the response decodes");
    check_completed(&response);
    let allocs = allocations_of(|| {
        black_box(turn(&wire));
    });
    println!(
        "replay/turn_10000_events_wire: {events} events, {} bytes, {allocs} allocations per turn",
        wire.len()
    );
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    group.bench_function("turn_10000_events_wire", |b| {
        b.iter(|| black_box(turn(black_box(&wire))))
    });
    group.finish();
}

criterion_group!(replay, benches);
criterion_main!(replay);
