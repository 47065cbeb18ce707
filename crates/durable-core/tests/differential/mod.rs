//! The harness of the differential tests: the Python SDK's engine (durabletask 1.12.0) run on the same turns as
//! ours, with the same orchestrations written in both languages.
//!
//! Python numbers actions from 1 and we number them from 0 (as durabletask-go and DurableTask.Core do), so the
//! histories given to Python have every sequence number shifted by one, and its actions are shifted back.
#![allow(unreachable_pub)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use durable_core::proto::send_entity_message_action::EntityMessageType;
use durable_core::proto::{
    self, history_event::EventType, orchestrator_action::OrchestratorActionType,
};
use durable_core::{
    ContinueAsNewOptions, EntityId, OrchestrationContext, OrchestrationError, Registry,
    RetryPolicy, when_all, when_any,
};
use prost::Message;

pub fn python() -> Option<PathBuf> {
    durable_testkit::python()
}

pub const PYTHON_ORCHESTRATORS: &str = r#"
import logging, sys
from datetime import timedelta
from durabletask import worker, task
from durabletask.serialization import JsonDataConverter
import durabletask.internal.orchestrator_service_pb2 as pb

def sequence(ctx, n):
    out = []
    for i in range(n):
        out.append((yield ctx.call_activity("hello", input=f"c{i}")))
    return "|".join(out)

def fan_out(ctx, n):
    results = yield task.when_all([ctx.call_activity("double", input=i) for i in range(n)])
    return sum(results)

def race(ctx, _):
    a = ctx.call_activity("slow", input="a")
    b = ctx.call_activity("slow", input="b")
    winner = yield task.when_any([a, b])
    return f"{[a, b].index(winner)}:{winner.get_result()}"

def approval(ctx, _):
    first = yield ctx.wait_for_external_event("Approval")
    second = yield ctx.wait_for_external_event("approval")
    return f"{first},{second}"

def retry(ctx, _):
    policy = task.RetryPolicy(first_retry_interval=timedelta(seconds=10), max_number_of_attempts=3,
                              backoff_coefficient=2.0)
    return (yield ctx.call_activity("flaky", retry_policy=policy))

def sleep(ctx, secs):
    yield ctx.create_timer(timedelta(seconds=secs))
    return "woke"

def counter(ctx, n):
    step = yield ctx.wait_for_external_event("add")
    ctx.continue_as_new(n + step, save_events=True)

def parent(ctx, _):
    a = yield ctx.call_activity("a")
    child = yield ctx.call_sub_orchestrator("child", input=a, instance_id="child-1")
    return f"{a}:{child}"

def upgrade(ctx, n):
    step = yield ctx.wait_for_external_event("add")
    ctx.continue_as_new(n + step, save_events=True, new_version="2.0")

def two_steps(ctx, _):
    a = yield ctx.call_activity("a")
    b = yield ctx.call_activity("b")
    return a + b

from durabletask.entities import EntityInstanceId

def call(ctx, _):
    ctx.signal_entity(EntityInstanceId("Counter", "a"), "reset")
    return (yield ctx.call_entity(EntityInstanceId("Counter", "a"), "add", input=5))

def transfer(ctx, _):
    a, b = EntityInstanceId("counter", "a"), EntityInstanceId("counter", "b")
    with (yield ctx.lock_entities([b, a, b])):
        x = yield ctx.call_entity(a, "add", input=-10)
        y = yield ctx.call_entity(b, "add", input=10)
    return x + y

registry = worker._Registry()
for fn in [sequence, fan_out, race, approval, retry, sleep, counter, upgrade, parent, two_steps, call, transfer]:
    registry.add_named_orchestrator(fn.__name__, fn)

for line in sys.stdin.read().split():
    request = pb.OrchestratorRequest.FromString(bytes.fromhex(line))
    executor = worker._OrchestrationExecutor(registry, logging.getLogger("diff"), JsonDataConverter())
    result = executor.execute(request.instanceId, request.pastEvents, request.newEvents)
    response = pb.OrchestratorResponse(instanceId=request.instanceId, actions=result.actions)
    print(response.SerializeToString().hex())
"#;

pub fn rust_registry() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("sequence", |ctx: OrchestrationContext, n: u32| async move {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(
                ctx.call_activity::<_, String>("hello", format!("c{i}"))
                    .await?,
            );
        }
        Ok::<_, OrchestrationError>(out.join("|"))
    })
    .add_orchestrator("fan_out", |ctx: OrchestrationContext, n: u32| async move {
        let tasks: Vec<_> = (0..n)
            .map(|i| ctx.call_activity::<_, u32>("double", i))
            .collect();
        let mut sum = 0;
        for r in when_all(tasks).await {
            sum += r?;
        }
        Ok::<_, OrchestrationError>(sum)
    })
    .add_orchestrator("race", |ctx: OrchestrationContext, (): ()| async move {
        let a = ctx.call_activity::<_, String>("slow", "a");
        let b = ctx.call_activity::<_, String>("slow", "b");
        let (winner, value) = when_any([a, b]).await;
        Ok::<_, OrchestrationError>(format!("{winner}:{}", value?))
    })
    .add_orchestrator("approval", |ctx: OrchestrationContext, (): ()| async move {
        let first: String = ctx.wait_for_external_event("Approval").await?;
        let second: String = ctx.wait_for_external_event("approval").await?;
        Ok::<_, OrchestrationError>(format!("{first},{second}"))
    })
    .add_orchestrator("retry", |ctx: OrchestrationContext, (): ()| async move {
        let policy = RetryPolicy::new(3, Duration::from_secs(10)).backoff_coefficient(2.0);
        Ok::<_, OrchestrationError>(
            ctx.call_activity_with_retry::<_, String>("flaky", (), policy)
                .await?,
        )
    })
    .add_orchestrator("sleep", |ctx: OrchestrationContext, secs: u64| async move {
        ctx.create_timer_after(Duration::from_secs(secs)).await?;
        Ok::<_, OrchestrationError>("woke")
    })
    .add_orchestrator("counter", |ctx: OrchestrationContext, n: u32| async move {
        let step: u32 = ctx.wait_for_external_event("add").await?;
        ctx.continue_as_new(&(n + step), true)?;
        Ok::<_, OrchestrationError>(())
    })
    .add_orchestrator("parent", |ctx: OrchestrationContext, (): ()| async move {
        let a: u32 = ctx.call_activity("a", ()).await?;
        let options = durable_core::CallOptions::new().instance_id("child-1");
        let child: String = ctx
            .call_sub_orchestrator_with_options("child", a, options)
            .await?;
        Ok::<_, OrchestrationError>(format!("{a}:{child}"))
    })
    .add_orchestrator("upgrade", |ctx: OrchestrationContext, n: u32| async move {
        let step: u32 = ctx.wait_for_external_event("add").await?;
        let options = ContinueAsNewOptions::new()
            .version("2.0")
            .keep_unprocessed_events(true);
        ctx.continue_as_new_with_options(&(n + step), options)?;
        Ok::<_, OrchestrationError>(())
    })
    .add_orchestrator("call", |ctx: OrchestrationContext, (): ()| async move {
        ctx.signal_entity(&EntityId::new("Counter", "a"), "reset", ())?;
        Ok::<_, OrchestrationError>(
            ctx.call_entity::<_, i64>(&EntityId::new("Counter", "a"), "add", 5)
                .await?,
        )
    })
    .add_orchestrator("transfer", |ctx: OrchestrationContext, (): ()| async move {
        let (a, b) = (EntityId::new("counter", "a"), EntityId::new("counter", "b"));
        let lock = ctx
            .lock_entities(&[b.clone(), a.clone(), b.clone()])
            .await?;
        let x: i64 = ctx.call_entity(&a, "add", -10).await?;
        let y: i64 = ctx.call_entity(&b, "add", 10).await?;
        drop(lock);
        Ok::<_, OrchestrationError>(x + y)
    })
    .add_orchestrator(
        "two_steps",
        |ctx: OrchestrationContext, (): ()| async move {
            let a: u32 = ctx.call_activity("a", ()).await?;
            let b: u32 = ctx.call_activity("b", ()).await?;
            Ok::<_, OrchestrationError>(a + b)
        },
    );
    r
}

/// Shifts every sequence number in the events (scheduled events' ids and completions' references) by `by`.
pub fn shift(events: &mut [proto::HistoryEvent], by: i32) {
    for event in events {
        if event.event_id >= 0 {
            event.event_id += by;
        }
        match &mut event.event_type {
            Some(EventType::TaskCompleted(e)) => e.task_scheduled_id += by,
            Some(EventType::TaskFailed(e)) => e.task_scheduled_id += by,
            Some(EventType::SubOrchestrationInstanceCompleted(e)) => e.task_scheduled_id += by,
            Some(EventType::SubOrchestrationInstanceFailed(e)) => e.task_scheduled_id += by,
            Some(EventType::TimerFired(e)) => e.timer_id += by,
            _ => {}
        }
    }
}

/// Removes differences that carry no meaning: JSON formatting (Python puts spaces after separators), an absent
/// input versus `null` (both decode the same way on either side), and the case of carried-over event names (event
/// names are case-insensitive; Python carries the case-folded name, we keep the original).
pub fn normalize(response: &mut proto::OrchestratorResponse) {
    let canon = |text: &mut Option<String>| {
        if let Some(t) = text.as_mut()
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
        {
            *t = v.to_string();
        }
        if text.as_deref() == Some("null") {
            *text = None;
        }
    };
    for action in &mut response.actions {
        match &mut action.orchestrator_action_type {
            Some(OrchestratorActionType::ScheduleTask(t)) => canon(&mut t.input),
            Some(OrchestratorActionType::SendEntityMessage(m)) => {
                match &mut m.entity_message_type {
                    Some(EntityMessageType::EntityOperationCalled(c)) => {
                        canon(&mut c.input);
                        // We also name the caller's execution; Python leaves it out.
                        c.parent_execution_id = None;
                    }
                    Some(EntityMessageType::EntityOperationSignaled(s)) => canon(&mut s.input),
                    _ => {}
                }
            }
            Some(OrchestratorActionType::CompleteOrchestration(c)) => {
                canon(&mut c.result);
                for e in &mut c.carryover_events {
                    if let Some(EventType::EventRaised(r)) = &mut e.event_type {
                        canon(&mut r.input);
                        r.name = r.name.to_lowercase();
                    }
                }
            }
            _ => {}
        }
    }
}

pub fn run_python(
    python: &PathBuf,
    requests: &[proto::OrchestratorRequest],
) -> Vec<proto::OrchestratorResponse> {
    let mut child = Command::new(python)
        .args(["-c", PYTHON_ORCHESTRATORS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut input = String::new();
    for request in requests {
        let mut shifted = request.clone();
        shift(&mut shifted.past_events, 1);
        shift(&mut shifted.new_events, 1);
        for byte in shifted.encode_to_vec() {
            input.push_str(&format!("{byte:02x}"));
        }
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Python executor failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|hex| {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let mut response = proto::OrchestratorResponse::decode(bytes.as_slice()).unwrap();
            // Actions outside the numbering (a rewind's) are -1 in both.
            for action in response.actions.iter_mut().filter(|a| a.id >= 0) {
                action.id -= 1;
            }
            response
        })
        .collect()
}

/// Runs the scenario turn by turn in Rust, then gives Python the very same turns and compares every decision.
pub fn differential(name: &str, input: Option<&str>, steps: Vec<Step>) {
    differential_in(name, input, steps, Shape::Scheduler);
}

pub fn differential_in(name: &str, input: Option<&str>, steps: Vec<Step>, shape: Shape) {
    let Some(python) = python() else {
        return;
    };
    let r = rust_registry();
    let run = run_incremental(&r, name, input, steps, shape);
    let requests: Vec<_> = run.turns.iter().map(|(req, _)| req.clone()).collect();
    let theirs = run_python(&python, &requests);
    assert_eq!(theirs.len(), run.turns.len());
    for (turn, ((_, ours), theirs)) in run.turns.iter().zip(theirs).enumerate() {
        let (mut ours, mut theirs) = (ours.clone(), theirs);
        normalize(&mut ours);
        normalize(&mut theirs);
        assert_eq!(
            summary(&ours),
            summary(&theirs),
            "{name}: turn {turn} differs from the Python SDK"
        );
    }
}

/// Fails the instance with `steps`, then gives both engines the same rewind request and the replay after it: the
/// rewritten histories must be the same (but for the new execution id, random in Python) and so must the decisions
/// taken from them, which are returned (`None`: skipped).
pub fn rewind_differential(
    name: &str,
    input: Option<&str>,
    steps: Vec<Step>,
) -> Option<Vec<String>> {
    let python = python()?;
    let r = rust_registry();
    let failed = run_incremental(&r, name, input, steps, Shape::Scheduler);
    assert!(summary(failed.last())[0].contains("Complete Failed"));
    let rewind = proto::OrchestratorRequest {
        instance_id: INSTANCE.into(),
        past_events: failed.history.clone(),
        new_events: vec![
            ev::orchestrator_started(at(100)),
            crate::execution_rewound(at(100), "try again", None),
        ],
        ..Default::default()
    };
    let ours = rewound_history(&r.execute_orchestrator(&rewind));
    let theirs = run_python(&python, std::slice::from_ref(&rewind));
    let mut theirs = rewound_history(&theirs[0]);
    shift(&mut theirs, -1);
    let without_execution_id = |history: &[proto::HistoryEvent]| {
        let mut history = history.to_vec();
        for event in &mut history {
            if let Some(EventType::ExecutionStarted(s)) = &mut event.event_type
                && let Some(instance) = s.orchestration_instance.as_mut()
            {
                instance.execution_id = None;
            }
        }
        history
    };
    assert_eq!(
        without_execution_id(&ours),
        without_execution_id(&theirs),
        "{name}: the rewritten history differs from the Python SDK's"
    );

    let replay = proto::OrchestratorRequest {
        instance_id: INSTANCE.into(),
        past_events: ours,
        new_events: vec![ev::orchestrator_started(at(101))],
        ..Default::default()
    };
    let mut ours = r.execute_orchestrator(&replay);
    let mut theirs = run_python(&python, std::slice::from_ref(&replay)).remove(0);
    normalize(&mut ours);
    normalize(&mut theirs);
    assert_eq!(
        summary(&ours),
        summary(&theirs),
        "{name}: the replay after the rewind differs from the Python SDK"
    );
    Some(summary(&ours))
}
