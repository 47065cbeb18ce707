//! `replay-check` and `export-histories` against a real embedded backend: histories recorded by the first version
//! of an app are checked with a changed version (reported, with the sequence number) and an unchanged one (clean),
//! fetched from the backend and from an export file.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use azure_durable_functions::engine::replay_check::{
    InstanceOutcome, MismatchKind, ReplayCheckOptions, check_histories,
};
use azure_durable_functions::replay::{HistorySelection, fetch_histories};
use azure_durable_functions::{
    ActivityContext, ActivityError, ConnectionOptions, DurableClient, Entity, EntityError,
    EntityId, Error, FunctionApp, OrchestrationContext, OrchestrationError, Registry, RunError,
    StartOptions, Worker, run_with_args, when_all,
};

async fn echo(_ctx: ActivityContext, s: String) -> Result<String, ActivityError> {
    Ok(s)
}

/// Version 1: "A" then "B"; the waiting flow calls "A", then waits for "go" before "B".
fn v1() -> Registry {
    let mut r = Registry::new();
    r.add_orchestrator("Flow", |ctx: OrchestrationContext, x: String| async move {
        let a: String = ctx.call_activity("A", &x).await?;
        let b: String = ctx.call_activity("B", &x).await?;
        Ok::<_, OrchestrationError>(format!("{a}{b}"))
    })
    .add_orchestrator(
        "Waiting",
        |ctx: OrchestrationContext, x: String| async move {
            let a: String = ctx.call_activity("A", &x).await?;
            ctx.set_custom_status("waiting")?;
            ctx.wait_for_external_event::<()>("go").await?;
            let b: String = ctx.call_activity("B", &x).await?;
            Ok::<_, OrchestrationError>(format!("{a}{b}"))
        },
    )
    .add_orchestrator("Rich", |ctx: OrchestrationContext, (): ()| async move {
        // Timers, fan-out, a critical section, a signal, an event and a sub-orchestration: none may be reported
        // when the code has not changed.
        ctx.create_timer_after(Duration::from_millis(200)).await?;
        let both = when_all(["p", "q"].map(|s| ctx.call_activity::<_, String>("A", s))).await;
        let counter = EntityId::new("Counter", "rich");
        let lock = ctx.lock_entities(std::slice::from_ref(&counter)).await?;
        let total: i64 = ctx.call_entity(&counter, "add", 2).await?;
        lock.release();
        ctx.signal_entity(&counter, "add", 1)?;
        let child: String = ctx.call_sub_orchestrator("Child", "c", None).await?;
        let go = ctx
            .wait_for_external_event_with_timeout::<i64>("go", Duration::from_secs(600))
            .await?;
        Ok::<_, OrchestrationError>(format!("{}{total}{child}{go}", both.len()))
    })
    .add_orchestrator("Child", |ctx: OrchestrationContext, x: String| async move {
        Ok::<_, OrchestrationError>(ctx.call_activity::<_, String>("B", x).await?)
    })
    .add_entity(
        "Counter",
        Entity::<i64>::new().operation("add", |total: &mut i64, _ctx, n: i64| {
            *total += n;
            Ok::<_, EntityError>(*total)
        }),
    )
    .add_activity("A", echo)
    .add_activity("B", echo)
    .add_activity("C", echo);
    r
}

/// Version 2: "Flow" calls "C" where it called "B"; "Waiting" is unchanged.
fn v2() -> Registry {
    let mut r = v1();
    r.add_orchestrator("Flow", |ctx: OrchestrationContext, x: String| async move {
        let a: String = ctx.call_activity("A", &x).await?;
        let c: String = ctx.call_activity("C", &x).await?;
        Ok::<_, OrchestrationError>(format!("{a}{c}"))
    });
    r
}

fn app(registry: Registry) -> FunctionApp {
    FunctionApp::new(registry)
}

async fn command(registry: Registry, args: &[&str]) -> Result<(), RunError> {
    let mut argv = vec!["app"];
    argv.extend_from_slice(args);
    run_with_args(app(registry), argv).await
}

fn mismatches(result: Result<(), RunError>) -> Result<(usize, usize)> {
    match result {
        Err(RunError::Failed(Error::ReplayMismatches {
            mismatched,
            checked,
        })) => Ok((mismatched, checked)),
        other => bail!("expected reported mismatches, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_recorded_by_v1_are_checked_against_v2() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = azure_durable_functions::backend::start(
        azure_durable_functions::backend::Options::new()
            .with_db_path(dir.path().join("hub.db"))
            .with_bind("127.0.0.1:0".parse()?),
    )
    .await?;
    let connection_string = format!(
        "Endpoint={};TaskHub=default;Authentication=None",
        backend.endpoint()
    );
    let connection = ConnectionOptions::from_connection_string(&connection_string)?;
    let worker = Worker::builder()
        .connection(connection.clone())
        .registry(v1())
        .build()?
        .start();
    let client = DurableClient::new(&connection)?;

    let options = |id: &str| StartOptions::new().with_instance_id(id);
    client
        .schedule_new_orchestration("Flow", "x", options("done-1"))
        .await?;
    client
        .schedule_new_orchestration("Waiting", "y", options("waiting-1"))
        .await?;
    let done = client
        .wait_for_completion("done-1", true, Duration::from_secs(30))
        .await?;
    assert_eq!(done.output::<String>()?.as_deref(), Some("xx"));
    client
        .schedule_new_orchestration("Rich", &(), options("rich"))
        .await?;
    client.raise_event("rich", "go", &5).await?;
    let rich = client
        .wait_for_completion("rich", true, Duration::from_secs(30))
        .await?;
    assert_eq!(
        rich.output::<String>()?.as_deref(),
        Some("22c5"),
        "{rich:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .get_instance("waiting-1", true)
            .await?
            .context("waiting-1 exists")?
            .custom_status::<String>()?;
        if status.as_deref() == Some("waiting") {
            break;
        }
        if Instant::now() > deadline {
            bail!("waiting-1 never reached its wait");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await?;

    // The library call over the fetched histories: the changed flow is reported where "B" was scheduled.
    let histories = fetch_histories(&client, &HistorySelection::new()).await?;
    // done-1, waiting-1, rich and its child (entities are not orchestration instances).
    assert_eq!(histories.len(), 4, "{histories:?}");
    let report = check_histories(&v2(), &histories, &ReplayCheckOptions::new());
    let found: Vec<_> = report.mismatches().collect();
    assert_eq!(found.len(), 1, "{report}");
    let (instance, mismatch) = found[0];
    assert_eq!(instance.instance_id, "done-1");
    assert_eq!(mismatch.kind, MismatchKind::NonDeterminism);
    assert_eq!(mismatch.sequence_number, Some(1));
    assert_eq!(mismatch.expected, "TaskScheduled 'B'");
    assert_eq!(mismatch.found, "ScheduleTask 'C'");
    let waiting = report
        .instances
        .iter()
        .find(|i| i.instance_id == "waiting-1")
        .context("waiting-1 checked")?;
    assert_eq!(waiting.outcome, InstanceOutcome::Matches);
    assert!(check_histories(&v1(), &histories, &ReplayCheckOptions::new()).is_clean());

    // The command, against the backend.
    command(
        v1(),
        &["replay-check", "--connection-string", &connection_string],
    )
    .await?;
    let result = command(
        v2(),
        &["replay-check", "--connection-string", &connection_string],
    )
    .await;
    assert_eq!(mismatches(result)?, (1, 4));
    // Only what is still running: the changed flow has ended, so nothing there breaks.
    command(
        v2(),
        &[
            "replay-check",
            "--connection-string",
            &connection_string,
            "--running-only",
        ],
    )
    .await?;

    // Exported, then checked from the file alone, with the backend gone.
    let file = dir.path().join("histories.ndjson");
    let file_arg = file.to_str().context("utf-8 path")?;
    command(
        v1(),
        &[
            "export-histories",
            "--connection-string",
            &connection_string,
            "--out",
            file_arg,
        ],
    )
    .await?;
    backend.shutdown().await?;
    let text = std::fs::read_to_string(&file)?;
    assert_eq!(text.lines().count(), 4);
    assert_eq!(
        azure_durable_functions::engine::replay_check::read_export(&text)?,
        histories
    );
    command(v1(), &["replay-check", "--from", file_arg]).await?;
    let result = command(v2(), &["replay-check", "--from", file_arg]).await;
    assert_eq!(mismatches(result)?, (1, 4));
    Ok(())
}

#[tokio::test]
async fn replay_check_without_histories_says_what_it_needs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("none.ndjson");
    let result = command(
        v1(),
        &["replay-check", "--from", missing.to_str().context("path")?],
    )
    .await;
    assert!(
        matches!(result, Err(RunError::Failed(Error::Io { .. }))),
        "{result:?}"
    );
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"format\":\"durable-history/1\"}\n")?;
    let result = command(
        v1(),
        &["replay-check", "--from", bad.to_str().context("path")?],
    )
    .await;
    match result {
        Err(RunError::Failed(Error::HistoryFile { source, .. })) => assert_eq!(source.line, 1),
        other => bail!("expected a history file error, got {other:?}"),
    }
    Ok(())
}
