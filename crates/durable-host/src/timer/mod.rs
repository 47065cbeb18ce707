//! Timer triggers: each function fires on its schedule (and once at start with `runOnStartup`), invoked in the
//! host format with a `TimerInfo` object as the trigger value.

mod cron;

use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{FunctionKind, FunctionMeta};
use crate::error::{HostError, Result};
use crate::invoke::Invoker;

pub(crate) use cron::Schedule;

/// The running timers.
#[derive(Debug)]
pub(crate) struct Timers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Parses every timer schedule, so that a bad one stops the host before anything is started.
pub(crate) fn check_schedules(functions: &[FunctionMeta]) -> Result<()> {
    for f in functions {
        if let FunctionKind::Timer { schedule, .. } = &f.kind {
            Schedule::parse(schedule).map_err(|message| HostError::Config {
                path: format!("{}/function.json", f.name).into(),
                message,
            })?;
        }
    }
    Ok(())
}

impl Timers {
    /// Starts a task per timer function (none when `enabled` is false).
    pub(crate) fn start(functions: &[FunctionMeta], invoker: &Invoker, enabled: bool) -> Timers {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for f in functions {
            let FunctionKind::Timer {
                schedule,
                run_on_startup,
            } = &f.kind
            else {
                continue;
            };
            // `check_schedules` rejected bad schedules before the host started anything.
            let (true, Ok(parsed)) = (enabled, Schedule::parse(schedule)) else {
                continue;
            };
            tasks.spawn(run(
                f.name.clone(),
                f.trigger_binding.clone(),
                parsed,
                *run_on_startup,
                invoker.clone(),
                stopped.clone(),
            ));
        }
        Timers { stop, tasks }
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

fn iso(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The `TimerInfo` the host binds: schedule, the last and next occurrences, and whether this run is late.
fn timer_info(last: Option<time::OffsetDateTime>, next: Option<time::OffsetDateTime>) -> Value {
    let status = match (last, next) {
        (Some(last), Some(next)) => json!({
            "Last": iso(last),
            "Next": iso(next),
            "LastUpdated": iso(time::OffsetDateTime::now_utc()),
        }),
        _ => Value::Null,
    };
    json!({
        "Schedule": { "AdjustForDST": true },
        "ScheduleStatus": status,
        "IsPastDue": false,
    })
}

async fn run(
    function: String,
    binding: String,
    schedule: Schedule,
    run_on_startup: bool,
    invoker: Invoker,
    mut stop: watch::Receiver<bool>,
) {
    let mut last: Option<time::OffsetDateTime> = None;
    if run_on_startup {
        let now = time::OffsetDateTime::now_utc();
        fire(
            &invoker,
            &function,
            &binding,
            None,
            schedule.next_after(now),
        )
        .await;
        last = Some(now);
    }
    loop {
        let now = time::OffsetDateTime::now_utc();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(target: "host", "[{function}] the schedule has no future occurrence; the timer stops");
            return;
        };
        let wait = (next - now).try_into().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
        let following = schedule.next_after(next);
        fire(&invoker, &function, &binding, last, following).await;
        last = Some(next);
    }
}

async fn fire(
    invoker: &Invoker,
    function: &str,
    binding: &str,
    last: Option<time::OffsetDateTime>,
    next: Option<time::OffsetDateTime>,
) {
    let mut data = Map::new();
    data.insert(binding.to_owned(), timer_info(last, next));
    let reason = format!("Timer fired at {}", iso(time::OffsetDateTime::now_utc()));
    // The host logs a failed timer invocation and waits for the next occurrence; so do we.
    let _ = invoker.invoke(function, &reason, data, Map::new()).await;
}
