//! `--fan-out N`: a few orchestrations each schedule N no-op activities at once and wait for all of them, while the
//! usual workload (`--orchestrations`, 0 for none) runs beside them and competes for the same lease calls. While a
//! fan-in's orchestrator holds its lease, the results of its activities queue up in its inbox; the mode shows what
//! that queue costs every other lease call.

use std::time::SystemTime;

use anyhow::{Context, Result};
use durable_core::{ActivityContext, ActivityError, OrchestrationContext, OrchestrationError};
use durable_grpc::{ConnectionOptions, DurableClient, StartOptions};

use super::{completion_span, completion_spans, start_sequences, unique_prefix};

/// Schedules `n` activities at once and returns how many results came back.
pub(crate) async fn fan_out(
    ctx: OrchestrationContext,
    n: usize,
) -> Result<usize, OrchestrationError> {
    let calls = (0..n).map(|i| ctx.call_activity::<_, usize>("echo", i));
    let results = durable_core::when_all(calls).await;
    let mut count = 0;
    for result in results {
        result?;
        count += 1;
    }
    Ok(count)
}

pub(crate) async fn echo(_ctx: ActivityContext, input: usize) -> Result<usize, ActivityError> {
    Ok(input)
}

/// What one fan-out run measured.
pub(crate) struct FanIn {
    /// From the first fan-out's creation to the last one's completion (the server's timestamps).
    pub(crate) fan_out_seconds: f64,
    /// The same for the workload beside it (NaN without one).
    pub(crate) workload_seconds: f64,
}

fn wall(spans: &[(SystemTime, SystemTime)]) -> Result<f64> {
    let Some(first) = spans.iter().map(|s| s.0).min() else {
        return Ok(f64::NAN);
    };
    let last = spans.iter().map(|s| s.1).max().context("no instances")?;
    Ok(last.duration_since(first)?.as_secs_f64())
}

/// Starts `fan_outs` orchestrations of `width` activities each, then `beside` sequences, and waits for all.
pub(crate) async fn drive(
    endpoint: &str,
    width: usize,
    fan_outs: usize,
    beside: usize,
) -> Result<FanIn> {
    let client = DurableClient::new(&ConnectionOptions::new(endpoint))?;
    let prefix = unique_prefix();
    let fans: Vec<String> = (0..fan_outs).map(|i| format!("{prefix}-fan-{i}")).collect();
    for id in &fans {
        client
            .schedule_new_orchestration("fan_out", &width, StartOptions::new().with_instance_id(id))
            .await?;
    }
    let ids: Vec<String> = (0..beside).map(|i| format!("{prefix}-{i:06}")).collect();
    start_sequences(&client, &ids, 0).await?;
    let workload = completion_spans(&client, &ids).await?;
    let mut fan_spans = Vec::with_capacity(fans.len());
    for id in &fans {
        fan_spans.push(completion_span(&client, id).await?);
    }
    Ok(FanIn {
        fan_out_seconds: wall(&fan_spans)?,
        workload_seconds: wall(&workload)?,
    })
}
