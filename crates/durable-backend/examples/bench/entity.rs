//! Goal 3d: one entity receiving `senders x per_sender` signals from `senders` orchestrations. Each signal carries
//! its sender and its sequence number; the entity counts what it received and how many arrived out of their
//! sender's order, so the run both times the operations and checks FIFO delivery per sender.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use durable_core::{
    Entity, EntityContext, EntityError, EntityId, OrchestrationContext, OrchestrationError,
    Registry,
};
use durable_grpc::{ConnectionOptions, DurableClient, StartOptions};

/// The entity's state: (operations received, received out of their sender's order, last sequence per sender).
type Log = (u64, u64, Vec<i64>);

/// One signal: (sender, sequence number from 0).
type Signal = (usize, i64);

const ENTITY: &str = "fifolog";

fn record(
    state: &mut Log,
    _ctx: &mut EntityContext,
    (sender, seq): Signal,
) -> Result<(), EntityError> {
    if state.2.len() <= sender {
        state.2.resize(sender + 1, -1);
    }
    if state.2[sender] + 1 != seq {
        state.1 += 1;
    }
    state.2[sender] = seq;
    state.0 += 1;
    Ok(())
}

/// Sends `count` signals to the entity, in order, in one turn.
async fn signaller(
    ctx: OrchestrationContext,
    (sender, count): (usize, i64),
) -> Result<(), OrchestrationError> {
    let target = EntityId::new(ENTITY, "bench");
    for seq in 0..count {
        ctx.signal_entity(&target, "record", (sender, seq))?;
    }
    Ok(())
}

/// Adds the entity and its signalling orchestration to the bench worker's registry.
pub(crate) fn register(registry: &mut Registry) {
    registry
        .add_entity(ENTITY, Entity::<Log>::new().operation("record", record))
        .add_orchestrator("signaller", signaller);
}

/// Starts the senders at once, then polls the entity until it has every operation. Returns (seconds from the
/// first start to the last operation seen, operations, out of order).
pub(crate) async fn drive(
    endpoint: &str,
    senders: usize,
    per_sender: i64,
) -> Result<(f64, u64, u64)> {
    let client = DurableClient::new(&ConnectionOptions::new(endpoint))?;
    let total = senders as u64 * per_sender as u64;
    let prefix = super::unique_prefix();
    let start = Instant::now();
    for sender in 0..senders {
        client
            .schedule_new_orchestration(
                "signaller",
                &(sender, per_sender),
                StartOptions::new().with_instance_id(format!("{prefix}-signaller-{sender}")),
            )
            .await?;
    }
    let id = EntityId::new(ENTITY, "bench");
    let deadline = start + Duration::from_secs(600);
    loop {
        if let Some(meta) = client.get_entity(&id, true).await? {
            let state = meta.serialized_state.context("the entity has no state")?;
            let log: Log = serde_json::from_str(&state)?;
            if log.0 >= total {
                return Ok((start.elapsed().as_secs_f64(), log.0, log.1));
            }
        }
        if Instant::now() > deadline {
            bail!("the entity did not receive {total} operations within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
