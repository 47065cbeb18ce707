//! One scenario suite, written once, run against every server (see `scenarios_*.rs`).
//!
//! Each scenario gets a fresh server and a worker running [`registry`]; instance IDs are unique per scenario.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext,
    OrchestrationError, Registry, RetryPolicy, when_all,
};
use durable_grpc::{
    DurableClient, EntityQuery, Error, InstanceQuery, OrchestrationStatus, PurgeFilter,
    StartOptions,
};
use futures::TryStreamExt;

pub const WAIT: Duration = Duration::from_secs(60);

/// How many times each key of the "flaky" activity has been called (process-wide: keys are unique per test).
static FLAKY_CALLS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

async fn hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {name}!"))
}

/// Fails twice per key, then succeeds with the attempt number.
async fn flaky(_ctx: ActivityContext, key: String) -> Result<u32, ActivityError> {
    let attempt = {
        let mut calls = FLAKY_CALLS.lock().unwrap();
        let n = calls
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_insert(0);
        *n += 1;
        *n
    };
    if attempt < 3 {
        return Err(ActivityError::msg(format!("attempt {attempt} failed")));
    }
    Ok(attempt)
}

/// Fails on the first call per key, succeeds afterwards (for rewind: the rerun must reach it again).
async fn fails_once(_ctx: ActivityContext, key: String) -> Result<String, ActivityError> {
    let first = {
        let mut calls = FLAKY_CALLS.lock().unwrap();
        let n = calls
            .get_or_insert_with(HashMap::new)
            .entry(format!("once-{key}"))
            .or_insert(0);
        *n += 1;
        *n == 1
    };
    if first {
        return Err(ActivityError::msg("first call fails"));
    }
    Ok(format!("{key} ok"))
}

async fn rewindable(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity::<_, String>("fails_once", key).await?)
}

async fn always_fails(_ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
    Err(ActivityError::new("Boom", "this activity always fails"))
}

async fn sequence(
    ctx: OrchestrationContext,
    cities: Vec<String>,
) -> Result<Vec<String>, OrchestrationError> {
    let mut out = Vec::new();
    for city in cities {
        out.push(ctx.call_activity::<_, String>("hello", city).await?);
    }
    Ok(out)
}

async fn with_retry(ctx: OrchestrationContext, key: String) -> Result<u32, OrchestrationError> {
    let policy = RetryPolicy::new(5, Duration::from_millis(100));
    Ok(ctx
        .call_activity_with_retry::<_, u32>("flaky", key, policy)
        .await?)
}

async fn failing(ctx: OrchestrationContext, _: ()) -> Result<(), OrchestrationError> {
    ctx.call_activity::<_, ()>("always_fails", ()).await?;
    Ok(())
}

async fn timer(ctx: OrchestrationContext, millis: u64) -> Result<String, OrchestrationError> {
    let start = ctx.current_utc_datetime();
    ctx.create_timer_after(Duration::from_millis(millis))
        .await?;
    let elapsed = ctx.current_utc_datetime() - start;
    Ok(if elapsed.whole_milliseconds() >= i128::from(millis) {
        "fired"
    } else {
        "early"
    }
    .to_owned())
}

async fn approval(
    ctx: OrchestrationContext,
    timeout_ms: u64,
) -> Result<String, OrchestrationError> {
    match ctx
        .wait_for_external_event_with_timeout::<String>(
            "approval",
            Duration::from_millis(timeout_ms),
        )
        .await
    {
        Ok(answer) => Ok(format!("approved by {answer}")),
        Err(e) if e.is_timeout() => Ok("timed out".to_owned()),
        Err(e) => Err(e.into()),
    }
}

async fn parent(
    ctx: OrchestrationContext,
    cities: Vec<String>,
) -> Result<Vec<String>, OrchestrationError> {
    let child_id = format!("{}-child", ctx.instance_id());
    Ok(ctx
        .call_sub_orchestrator::<_, Vec<String>>("sequence", cities, Some(child_id))
        .await?)
}

async fn fan_out(ctx: OrchestrationContext, n: usize) -> Result<Vec<String>, OrchestrationError> {
    let tasks = (0..n).map(|i| ctx.call_activity::<_, String>("hello", format!("#{i}")));
    let results = when_all(tasks).await;
    Ok(results.into_iter().collect::<Result<Vec<_>, _>>()?)
}

async fn counter_loop(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    if n < 5 {
        ctx.continue_as_new(&(n + 1), false)?;
        return Ok(0);
    }
    Ok(n)
}

async fn status_steps(ctx: OrchestrationContext, _: ()) -> Result<String, OrchestrationError> {
    ctx.set_custom_status(&"waiting for go")?;
    let word: String = ctx.wait_for_external_event("go").await?;
    ctx.set_custom_status(&format!("got {word}"))?;
    Ok(word)
}

async fn waiter(ctx: OrchestrationContext, _: ()) -> Result<String, OrchestrationError> {
    Ok(ctx.wait_for_external_event::<String>("go").await?)
}

async fn transfer(
    ctx: OrchestrationContext,
    amount: i64,
) -> Result<(i64, i64), OrchestrationError> {
    let from = EntityId::new("account", format!("{}-from", ctx.instance_id()));
    let to = EntityId::new("account", format!("{}-to", ctx.instance_id()));
    let lock = ctx.lock_entities(&[from.clone(), to.clone()]).await?;
    let a: i64 = ctx.call_entity(&from, "add", -amount).await?;
    let b: i64 = ctx.call_entity(&to, "add", amount).await?;
    lock.release();
    ctx.signal_entity(&to, "add", 1)?;
    Ok((a, b))
}

/// Everything the scenarios run.
pub fn registry() -> Registry {
    let account = Entity::<i64>::new()
        .operation("add", |balance: &mut i64, _ctx, amount: i64| {
            *balance += amount;
            Ok::<_, EntityError>(*balance)
        })
        .operation("get", |balance: &mut i64, _ctx, _: ()| {
            Ok::<_, EntityError>(*balance)
        });
    let mut registry = Registry::new();
    registry
        .add_activity("hello", hello)
        .add_activity("flaky", flaky)
        .add_activity("always_fails", always_fails)
        .add_activity("fails_once", fails_once)
        .add_orchestrator("rewindable", rewindable)
        .add_orchestrator("sequence", sequence)
        .add_orchestrator("with_retry", with_retry)
        .add_orchestrator("failing", failing)
        .add_orchestrator("timer", timer)
        .add_orchestrator("approval", approval)
        .add_orchestrator("parent", parent)
        .add_orchestrator("fan_out", fan_out)
        .add_orchestrator("counter_loop", counter_loop)
        .add_orchestrator("custom_status", status_steps)
        .add_orchestrator("waiter", waiter)
        .add_orchestrator("transfer", transfer)
        .add_entity("account", account);
    registry
}

fn start(id: &str) -> StartOptions {
    StartOptions::new().with_instance_id(id)
}

pub async fn activities(client: &DurableClient) {
    let cities = vec!["Tokyo", "Seattle", "London"];
    let id = client
        .schedule_new_orchestration("sequence", &cities, start("seq-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.status,
        OrchestrationStatus::Completed,
        "{:?}",
        done.failure_details
    );
    assert_eq!(
        done.output::<Vec<String>>().unwrap().unwrap(),
        ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    );
    assert_eq!(done.input::<Vec<String>>().unwrap().unwrap(), cities);
}

pub async fn retries_and_failures(client: &DurableClient, key: &str) {
    let id = client
        .schedule_new_orchestration("with_retry", key, start("retry-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.status,
        OrchestrationStatus::Completed,
        "{:?}",
        done.failure_details
    );
    assert_eq!(
        done.output::<u32>().unwrap(),
        Some(3),
        "succeeded on the third attempt"
    );
    // The two waits between attempts are durable timers.
    assert_timers_on_time(client, &id, 2).await;

    let id = client
        .schedule_new_orchestration("failing", &(), start("fail-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Failed);
    let failure = done.failure_details.expect("failure details");
    let text = format!("{failure:?}");
    assert!(text.contains("this activity always fails"), "{text}");
}

pub async fn timers(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("timer", &300u64, start("timer-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.output::<String>().unwrap().as_deref(), Some("fired"));
    assert_timers_on_time(client, &id, 1).await;
}

pub async fn events_with_timeout(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("approval", &60_000u64, start("approve-1"))
        .await
        .unwrap();
    client.wait_for_start(&id, false, WAIT).await.unwrap();
    client.raise_event(&id, "approval", "alice").await.unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.output::<String>().unwrap().as_deref(),
        Some("approved by alice")
    );

    let id = client
        .schedule_new_orchestration("approval", &200u64, start("approve-2"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.output::<String>().unwrap().as_deref(),
        Some("timed out")
    );
    assert_timers_on_time(client, &id, 1).await;
}

/// The instance's history shows `expected` durable timers, each delivered no earlier than it was due.
async fn assert_timers_on_time(client: &DurableClient, id: &str, expected: usize) {
    let history = client.get_history(id).await.unwrap();
    let timers = durable_testkit::fired_timers(&history).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(timers.len(), expected, "{id}: {history:?}");
}

pub async fn sub_orchestrations(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("parent", &["Oslo"], start("parent-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.status,
        OrchestrationStatus::Completed,
        "{:?}",
        done.failure_details
    );
    assert_eq!(
        done.output::<Vec<String>>().unwrap().unwrap(),
        ["Hello Oslo!"]
    );
    let child = client
        .get_instance("parent-1-child", true)
        .await
        .unwrap()
        .expect("the child exists");
    assert_eq!(child.status, OrchestrationStatus::Completed);
    assert_eq!(child.name, "sequence");
}

pub async fn fan_out_fan_in(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("fan_out", &20usize, start("fan-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    let out = done.output::<Vec<String>>().unwrap().unwrap();
    assert_eq!(out.len(), 20);
    assert_eq!(out[0], "Hello #0!");
    assert_eq!(out[19], "Hello #19!");
}

pub async fn continue_as_new(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("counter_loop", &0u32, start("can-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.status,
        OrchestrationStatus::Completed,
        "{:?}",
        done.failure_details
    );
    assert_eq!(done.output::<u32>().unwrap(), Some(5));
}

pub async fn custom_status(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("custom_status", &(), start("status-1"))
        .await
        .unwrap();
    client.wait_for_start(&id, false, WAIT).await.unwrap();
    client.raise_event(&id, "go", "now").await.unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.output::<String>().unwrap().as_deref(), Some("now"));
    assert_eq!(
        done.custom_status::<String>().unwrap().as_deref(),
        Some("got now")
    );
}

pub async fn suspend_and_resume(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("waiter", &(), start("suspend-1"))
        .await
        .unwrap();
    client.wait_for_start(&id, false, WAIT).await.unwrap();
    client.suspend(&id, Some("maintenance")).await.unwrap();
    super::common::eventually(WAIT, || async {
        client
            .get_instance(&id, false)
            .await
            .unwrap()
            .unwrap()
            .status
            == OrchestrationStatus::Suspended
    })
    .await;
    client
        .raise_event(&id, "go", "while suspended")
        .await
        .unwrap();
    let still = client
        .wait_for_completion(&id, false, Duration::from_millis(500))
        .await;
    assert!(
        matches!(still, Err(Error::Timeout(_))),
        "a suspended instance does not finish: {still:?}"
    );
    client.resume(&id, None).await.unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed);
    assert_eq!(
        done.output::<String>().unwrap().as_deref(),
        Some("while suspended")
    );
}

pub async fn terminate(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("waiter", &(), start("term-1"))
        .await
        .unwrap();
    client.wait_for_start(&id, false, WAIT).await.unwrap();
    client.terminate(&id, "enough", false).await.unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Terminated);
    assert_eq!(done.output::<String>().unwrap().as_deref(), Some("enough"));
}

pub async fn entities_with_locks(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("transfer", &10i64, start("xfer-1"))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.status,
        OrchestrationStatus::Completed,
        "{:?}",
        done.failure_details
    );
    assert_eq!(done.output::<(i64, i64)>().unwrap(), Some((-10, 10)));
    // The signal after the critical section lands eventually.
    super::common::eventually(WAIT, || async {
        let e = client
            .get_entity(&"@account@xfer-1-to", true)
            .await
            .unwrap();
        e.and_then(|e| e.state::<i64>().unwrap()) == Some(11)
    })
    .await;
    client
        .signal_entity(&"@account@client", "add", &5, None)
        .await
        .unwrap();
    super::common::eventually(WAIT, || async {
        let e = client.get_entity(&"@account@client", true).await.unwrap();
        e.and_then(|e| e.state::<i64>().unwrap()) == Some(5)
    })
    .await;
    let page = client
        .query_entities(
            &EntityQuery::new()
                .with_instance_id_prefix("@account@")
                .with_state(true),
        )
        .await
        .unwrap();
    let mut ids: Vec<_> = page.items.iter().map(|e| e.instance_id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "@account@client",
            "@account@xfer-1-from",
            "@account@xfer-1-to"
        ]
    );
}

pub async fn purge_and_query(client: &DurableClient) {
    for i in 0..3 {
        let id = client
            .schedule_new_orchestration(
                "sequence",
                &["A"],
                start(&format!("pq-{i}")).with_tag("batch", "pq"),
            )
            .await
            .unwrap();
        client.wait_for_completion(&id, false, WAIT).await.unwrap();
    }
    let waiting = client
        .schedule_new_orchestration("waiter", &(), start("pq-running"))
        .await
        .unwrap();
    client.wait_for_start(&waiting, false, WAIT).await.unwrap();

    let completed: Vec<_> = client
        .query_all_instances(
            InstanceQuery::new()
                .with_instance_id_prefix("pq-")
                .with_statuses([OrchestrationStatus::Completed])
                .with_page_size(2),
        )
        .try_collect()
        .await
        .unwrap();
    let mut ids: Vec<_> = completed.iter().map(|m| m.instance_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["pq-0", "pq-1", "pq-2"]);

    let purged = client.purge_instance("pq-0", false).await.unwrap();
    assert_eq!(purged.deleted_instance_count, 1);
    assert!(client.get_instance("pq-0", false).await.unwrap().is_none());
    let purged = client
        .purge_instances(
            PurgeFilter::new().with_statuses([OrchestrationStatus::Completed]),
            false,
        )
        .await
        .unwrap();
    assert!(purged.deleted_instance_count >= 2, "{purged:?}");
    assert!(client.get_instance("pq-1", false).await.unwrap().is_none());
    assert!(
        client
            .get_instance("pq-running", false)
            .await
            .unwrap()
            .is_some(),
        "running instances stay"
    );
    client.terminate(&waiting, &(), false).await.unwrap();
}

pub async fn start_options(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration(
            "sequence",
            &["Lima"],
            start("dup-1").with_tag("owner", "bench"),
        )
        .await
        .unwrap();
    client.wait_for_completion(&id, false, WAIT).await.unwrap();
    // A live instance is never replaced by a policy that only allows replacing completed ones.
    let running = client
        .schedule_new_orchestration("waiter", &(), start("dup-live"))
        .await
        .unwrap();
    client.wait_for_start(&running, false, WAIT).await.unwrap();
    let refused = client
        .schedule_new_orchestration(
            "waiter",
            &(),
            start("dup-live").with_reuse_policy([OrchestrationStatus::Completed]),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::AlreadyExists(_)), "{refused}");
    client.terminate(&running, &(), false).await.unwrap();
    client
        .schedule_new_orchestration(
            "sequence",
            &["Quito"],
            start("dup-1").with_reuse_policy([OrchestrationStatus::Completed]),
        )
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(
        done.output::<Vec<String>>().unwrap().unwrap(),
        ["Hello Quito!"]
    );

    let at = std::time::SystemTime::now() + Duration::from_millis(300);
    let id = client
        .schedule_new_orchestration("sequence", &["Bern"], start("delayed-1").with_start_at(at))
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    // (Whether it waited is the server's business: the Python reference server starts it at once.)
    assert_eq!(done.status, OrchestrationStatus::Completed);
}

pub async fn rewind(client: &DurableClient, key: &str) {
    let id = client
        .schedule_new_orchestration("rewindable", key, start("rewind-1"))
        .await
        .unwrap();
    let failed = client.wait_for_completion(&id, false, WAIT).await.unwrap();
    assert_eq!(failed.status, OrchestrationStatus::Failed);
    client.rewind(&id, Some("try again")).await.unwrap();
    super::common::eventually(WAIT, || async {
        client
            .get_instance(&id, false)
            .await
            .unwrap()
            .unwrap()
            .status
            == OrchestrationStatus::Completed
    })
    .await;
    let done = client.get_instance(&id, true).await.unwrap().unwrap();
    assert_eq!(done.output::<String>().unwrap(), Some(format!("{key} ok")));
    // The failure is gone from history; the rewind itself is recorded, once.
    use durable_grpc::proto::{self, history_event::EventType};
    let history = client.get_history(&id).await.unwrap();
    let rewound: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.event_type {
            Some(EventType::ExecutionRewound(r)) => Some(r.reason.as_deref()),
            _ => None,
        })
        .collect();
    assert_eq!(rewound, [Some("try again")], "{history:?}");
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.event_type, Some(EventType::TaskFailed(_)))),
        "{history:?}"
    );
    let completed = |status: proto::OrchestrationStatus| {
        history
            .iter()
            .filter(|e| {
                matches!(&e.event_type, Some(EventType::ExecutionCompleted(c))
                    if c.orchestration_status == status as i32)
            })
            .count()
    };
    assert_eq!(
        completed(proto::OrchestrationStatus::Failed),
        0,
        "{history:?}"
    );
    assert_eq!(
        completed(proto::OrchestrationStatus::Completed),
        1,
        "{history:?}"
    );
}

pub async fn restart(client: &DurableClient) {
    let id = client
        .schedule_new_orchestration("sequence", &["Rome"], start("restart-1"))
        .await
        .unwrap();
    client.wait_for_completion(&id, false, WAIT).await.unwrap();
    let new_id = client.restart(&id, true).await.unwrap();
    assert_ne!(new_id, id);
    let done = client
        .wait_for_completion(&new_id, true, WAIT)
        .await
        .unwrap();
    assert_eq!(
        done.output::<Vec<String>>().unwrap().unwrap(),
        ["Hello Rome!"]
    );
    let same_id = client.restart(&id, false).await.unwrap();
    assert_eq!(same_id, id);
    let done = client.wait_for_completion(&id, true, WAIT).await.unwrap();
    assert_eq!(done.status, OrchestrationStatus::Completed);
    let err = client.restart("restart-missing", false).await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound(_) | Error::InvalidArgument(_)),
        "{err}"
    );
}

/// Declares one `#[tokio::test]` per scenario; `$setup` is an async fn returning `Option<(Fixture, DurableClient)>`
/// (`None`: skipped), and the fixture is shut down by `$teardown`.
#[macro_export]
macro_rules! scenario_tests {
    ($setup:path, $teardown:path) => {
        $crate::scenario_tests!(@one $setup, $teardown, activities, |c| scenarios::activities(c));
        $crate::scenario_tests!(@one $setup, $teardown, retries_and_failures,
            |c| scenarios::retries_and_failures(c, concat!(module_path!(), "-retry")));
        $crate::scenario_tests!(@one $setup, $teardown, timers, |c| scenarios::timers(c));
        $crate::scenario_tests!(@one $setup, $teardown, events_with_timeout, |c| scenarios::events_with_timeout(c));
        $crate::scenario_tests!(@one $setup, $teardown, sub_orchestrations, |c| scenarios::sub_orchestrations(c));
        $crate::scenario_tests!(@one $setup, $teardown, fan_out_fan_in, |c| scenarios::fan_out_fan_in(c));
        $crate::scenario_tests!(@one $setup, $teardown, continue_as_new, |c| scenarios::continue_as_new(c));
        $crate::scenario_tests!(@one $setup, $teardown, custom_status, |c| scenarios::custom_status(c));
        $crate::scenario_tests!(@one $setup, $teardown, suspend_and_resume, |c| scenarios::suspend_and_resume(c));
        $crate::scenario_tests!(@one $setup, $teardown, terminate, |c| scenarios::terminate(c));
        $crate::scenario_tests!(@one $setup, $teardown, entities_with_locks, |c| scenarios::entities_with_locks(c));
        $crate::scenario_tests!(@one $setup, $teardown, purge_and_query, |c| scenarios::purge_and_query(c));
        $crate::scenario_tests!(@one $setup, $teardown, restart, |c| scenarios::restart(c));
        $crate::scenario_tests!(@one $setup, $teardown, rewind,
            |c| scenarios::rewind(c, concat!(module_path!(), "-rewind")));
        $crate::scenario_tests!(@one $setup, $teardown, start_options, |c| scenarios::start_options(c));
    };
    (@one $setup:path, $teardown:path, $name:ident, |$c:ident| $body:expr) => {
        $crate::scenario_tests!(@make [] $setup, $teardown, $name, |$c| $body);
    };
    (@make [$($extra:tt)*] $setup:path, $teardown:path, $name:ident, |$c:ident| $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($extra)*
        async fn $name() {
            common::init_tracing();
            let Some((fixture, $c)) = $setup().await else { return };
            let $c = &$c;
            $body.await;
            $teardown(fixture).await;
        }
    };
}
