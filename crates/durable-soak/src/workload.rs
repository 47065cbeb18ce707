//! Orchestrations, activities and the `tally` entity of the soak run, and what each input must produce.
//!
//! Every orchestration, sub-orchestrations included, ends by adding its own instance id to one of the
//! `tally@done-<n>` entities. An entity applies an operation once, so the tallies count completions exactly; an
//! activity, which may run again after a crash, could not.
//!
//! Entity operations are made reliable the way an app would make them: as in the Durable extension, an entity batch
//! whose handler dies mid-invocation fails (its calls get the failure, its signals are dropped) and applies
//! nothing. So a failed call is made again, and a signal is followed by a call that asks whether it was applied
//! (an entity's queue is first in, first out) and is sent again when it was not. Both are keyed by the operation's
//! id, so an operation applied twice would show in the tally as a duplicate rather than be hidden. How often that
//! happened is in each instance's custom status (`{"redone": n}`).

use std::collections::BTreeSet;
use std::time::Duration;

use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, OrchestrationContext,
    OrchestrationError, Registry, when_all,
};
use serde::{Deserialize, Serialize};

/// The entity every operation of the run goes to.
pub const TALLY: &str = "tally";
/// Completion tallies (`tally@done-<n>`).
pub const DONE_SHARDS: u64 = 16;
/// Tallies the `Entities` orchestrations call and signal (`tally@e-<n>`).
pub const ENTITY_KEYS: u32 = 16;
/// The event an `Approval` waits for.
pub const APPROVAL_EVENT: &str = "Approve";
/// Attempts at one entity operation before the orchestration gives up.
const ATTEMPTS: u32 = 20;

/// One instance's input; the orchestration is named after the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Spec {
    /// `steps` activities in sequence, each feeding the next.
    Chain {
        /// The first activity's input.
        seed: u64,
        /// How many activities.
        steps: u32,
    },
    /// `width` activities at once, summed.
    FanOut {
        /// The first activity's input; the others follow it.
        seed: u64,
        /// How many activities.
        width: u32,
    },
    /// A durable timer.
    Sleep {
        /// How long.
        millis: u64,
    },
    /// Waits for the `Approve` event, at most `timeout_millis` (a durable timer).
    Approval {
        /// The timeout.
        timeout_millis: u64,
        /// What the driver will raise, if anything.
        approval: Option<String>,
    },
    /// Calls and signals `tally@e-*` entities with operations named after the instance.
    Entities {
        /// The first entity key.
        key: u32,
        /// Operations called (the orchestration waits for each result).
        calls: u32,
        /// Operations signalled (one-way).
        signals: u32,
        /// The first operation's amount; each next one adds one.
        amount: i64,
    },
    /// `Chain` sub-orchestrations at once, one per seed, summed.
    Parent {
        /// One child per seed.
        seeds: Vec<u64>,
        /// Steps of each child.
        steps: u32,
    },
}

impl Spec {
    /// The orchestrator that runs it.
    pub fn orchestrator(&self) -> &'static str {
        match self {
            Spec::Chain { .. } => "Chain",
            Spec::FanOut { .. } => "FanOut",
            Spec::Sleep { .. } => "Sleep",
            Spec::Approval { .. } => "Approval",
            Spec::Entities { .. } => "Entities",
            Spec::Parent { .. } => "Parent",
        }
    }

    /// The output `instance_id` must complete with.
    pub fn expected_output(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Spec::Chain { seed, steps } => json!(chain(*seed, *steps)),
            Spec::FanOut { seed, width } => json!(fan_out(*seed, *width)),
            Spec::Sleep { .. } => json!("slept"),
            Spec::Approval { approval, .. } => match approval {
                Some(value) => json!(format!("approved:{value}")),
                None => json!("timed out"),
            },
            Spec::Entities { calls, signals, .. } => json!(calls + signals),
            Spec::Parent { seeds, steps } => json!(
                seeds
                    .iter()
                    .fold(0u64, |sum, seed| sum.wrapping_add(chain(*seed, *steps)))
            ),
        }
    }

    /// The instances it makes besides itself (sub-orchestrations), by id.
    pub fn children(&self, instance_id: &str) -> Vec<(String, Spec)> {
        match self {
            Spec::Parent { seeds, steps } => seeds
                .iter()
                .enumerate()
                .map(|(i, seed)| {
                    (
                        child_id(instance_id, i),
                        Spec::Chain {
                            seed: *seed,
                            steps: *steps,
                        },
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The entity operations it performs: `(entity key, operation id, amount)`.
    pub fn operations(&self, instance_id: &str) -> Vec<(String, String, i64)> {
        let Spec::Entities {
            key,
            calls,
            signals,
            amount,
        } = self
        else {
            return Vec::new();
        };
        (0..calls + signals)
            .map(|j| {
                let kind = if j < *calls { 'c' } else { 's' };
                (
                    entity_key(key.wrapping_add(j)),
                    format!("{instance_id}/{kind}{j}"),
                    amount + i64::from(j),
                )
            })
            .collect()
    }
}

/// The sub-orchestration id of a `Parent`'s `index`th child.
pub fn child_id(parent: &str, index: usize) -> String {
    format!("{parent}:c{index}")
}

/// `e-<n>`: the key of an `Entities` tally.
pub fn entity_key(n: u32) -> String {
    format!("e-{}", n % ENTITY_KEYS)
}

/// `done-<n>`: the completion tally an instance signals.
pub fn done_key(instance_id: &str) -> String {
    // FNV-1a: stable across processes and builds, unlike the standard hasher.
    let hash = instance_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("done-{}", hash % DONE_SHARDS)
}

/// The `Step` activity.
pub fn step(x: u64) -> u64 {
    x.wrapping_mul(31).wrapping_add(7) % 1_000_000_007
}

/// The `Square` activity.
pub fn square(x: u64) -> u64 {
    (x % 1_000_003).pow(2) % 1_000_003
}

fn chain(seed: u64, steps: u32) -> u64 {
    (0..steps).fold(seed, |x, _| step(x))
}

fn fan_out(seed: u64, width: u32) -> u64 {
    (0..u64::from(width)).fold(0u64, |sum, i| {
        sum.wrapping_add(square(seed.wrapping_add(i)))
    })
}

/// An operation on a tally: `n` added once per distinct `op`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    /// Names the operation; a second one with the same name is recorded as a duplicate and not added.
    pub op: String,
    /// The amount.
    pub n: i64,
}

/// A tally's state: the sum of what it applied, every operation it applied, and any it received twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// The sum of the amounts of distinct operations.
    pub sum: i64,
    /// The operations applied.
    pub ops: BTreeSet<String>,
    /// Operations received again after they were applied.
    pub duplicates: Vec<String>,
}

fn tally() -> Entity<Tally> {
    Entity::<Tally>::new()
        .operation("add", |tally: &mut Tally, _ctx, op: Op| {
            if tally.ops.insert(op.op.clone()) {
                tally.sum += op.n;
            } else {
                tally.duplicates.push(op.op);
            }
            Ok::<_, EntityError>(tally.sum)
        })
        .operation("has", |tally: &mut Tally, _ctx, op: String| {
            Ok::<_, EntityError>(tally.ops.contains(&op))
        })
        .operation("get", |tally: &mut Tally, _ctx, (): ()| {
            Ok::<_, EntityError>(tally.clone())
        })
}

/// Entity operations of one orchestration, and how many had to be made again.
struct Operations<'a> {
    ctx: &'a OrchestrationContext,
    redone: u32,
}

impl<'a> Operations<'a> {
    fn new(ctx: &'a OrchestrationContext) -> Self {
        Operations { ctx, redone: 0 }
    }

    fn again(&mut self) -> Result<(), OrchestrationError> {
        self.redone += 1;
        self.ctx
            .set_custom_status(&serde_json::json!({ "redone": self.redone }))?;
        Ok(())
    }

    /// Calls `operation` until a batch runs it (see the module documentation).
    async fn call<I, O>(
        &mut self,
        entity: &EntityId,
        operation: &str,
        input: I,
    ) -> Result<O, OrchestrationError>
    where
        I: Serialize + Clone + 'static,
        O: serde::de::DeserializeOwned + 'static,
    {
        let mut attempt = 1;
        loop {
            match self
                .ctx
                .call_entity::<I, O>(entity, operation, input.clone())
                .await
            {
                Ok(result) => return Ok(result),
                Err(_) if attempt < ATTEMPTS => {
                    attempt += 1;
                    self.again()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Signals `add` until the tally has applied it.
    async fn signal(&mut self, entity: &EntityId, op: Op) -> Result<(), OrchestrationError> {
        for _ in 0..ATTEMPTS {
            self.ctx.signal_entity(entity, "add", op.clone())?;
            if self.call::<_, bool>(entity, "has", op.op.clone()).await? {
                return Ok(());
            }
            self.again()?;
        }
        Err(OrchestrationError::new(
            "SignalLost",
            format!("{entity} never applied {}", op.op),
        ))
    }

    /// Records the instance's completion: its last operation before it completes.
    async fn done(&mut self) -> Result<(), OrchestrationError> {
        let id = self.ctx.instance_id();
        let tally = EntityId::new(TALLY, done_key(&id));
        let _: i64 = self.call(&tally, "add", Op { op: id, n: 1 }).await?;
        Ok(())
    }
}

/// Records the instance's completion.
async fn done(ctx: &OrchestrationContext) -> Result<(), OrchestrationError> {
    Operations::new(ctx).done().await
}

async fn chain_orchestration(
    ctx: OrchestrationContext,
    spec: Spec,
) -> Result<u64, OrchestrationError> {
    let Spec::Chain { seed, steps } = spec else {
        return Err(OrchestrationError::new(
            "BadInput",
            "Chain takes a Chain spec",
        ));
    };
    let mut x = seed;
    for _ in 0..steps {
        x = ctx.call_activity("Step", x).await?;
    }
    done(&ctx).await?;
    Ok(x)
}

async fn fan_out_orchestration(
    ctx: OrchestrationContext,
    spec: Spec,
) -> Result<u64, OrchestrationError> {
    let Spec::FanOut { seed, width } = spec else {
        return Err(OrchestrationError::new(
            "BadInput",
            "FanOut takes a FanOut spec",
        ));
    };
    let calls = (0..u64::from(width))
        .map(|i| ctx.call_activity::<_, u64>("Square", seed.wrapping_add(i)))
        .collect::<Vec<_>>();
    let mut sum = 0u64;
    for result in when_all(calls).await {
        sum = sum.wrapping_add(result?);
    }
    done(&ctx).await?;
    Ok(sum)
}

async fn sleep_orchestration(
    ctx: OrchestrationContext,
    spec: Spec,
) -> Result<String, OrchestrationError> {
    let Spec::Sleep { millis } = spec else {
        return Err(OrchestrationError::new(
            "BadInput",
            "Sleep takes a Sleep spec",
        ));
    };
    ctx.create_timer_after(Duration::from_millis(millis))
        .await?;
    done(&ctx).await?;
    Ok("slept".to_owned())
}

async fn approval_orchestration(
    ctx: OrchestrationContext,
    spec: Spec,
) -> Result<String, OrchestrationError> {
    let Spec::Approval { timeout_millis, .. } = spec else {
        return Err(OrchestrationError::new(
            "BadInput",
            "Approval takes an Approval spec",
        ));
    };
    let answer = match ctx
        .wait_for_external_event_with_timeout::<String>(
            APPROVAL_EVENT,
            Duration::from_millis(timeout_millis),
        )
        .await
    {
        Ok(value) => format!("approved:{value}"),
        Err(e) if e.is_timeout() => "timed out".to_owned(),
        Err(e) => return Err(e.into()),
    };
    done(&ctx).await?;
    Ok(answer)
}

async fn entities_orchestration(
    ctx: OrchestrationContext,
    spec: Spec,
) -> Result<u32, OrchestrationError> {
    let Spec::Entities { calls, .. } = spec else {
        return Err(OrchestrationError::new(
            "BadInput",
            "Entities takes an Entities spec",
        ));
    };
    let id = ctx.instance_id();
    let operations = spec.operations(&id);
    let mut entities = Operations::new(&ctx);
    for (j, (key, op, n)) in operations.iter().enumerate() {
        let entity = EntityId::new(TALLY, key);
        let op = Op {
            op: op.clone(),
            n: *n,
        };
        if j < calls as usize {
            let _sum: i64 = entities.call(&entity, "add", op).await?;
        } else {
            entities.signal(&entity, op).await?;
        }
    }
    entities.done().await?;
    Ok(u32::try_from(operations.len()).unwrap_or(u32::MAX))
}

async fn parent_orchestration(
    ctx: OrchestrationContext,
    spec: Spec,
) -> Result<u64, OrchestrationError> {
    let id = ctx.instance_id();
    let children = spec
        .children(&id)
        .into_iter()
        .map(|(child, input)| ctx.call_sub_orchestrator::<_, u64>("Chain", input, Some(child)))
        .collect::<Vec<_>>();
    let mut sum = 0u64;
    for result in when_all(children).await {
        sum = sum.wrapping_add(result?);
    }
    done(&ctx).await?;
    Ok(sum)
}

/// Every function of the run.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Chain", chain_orchestration)
        .add_orchestrator("FanOut", fan_out_orchestration)
        .add_orchestrator("Sleep", sleep_orchestration)
        .add_orchestrator("Approval", approval_orchestration)
        .add_orchestrator("Entities", entities_orchestration)
        .add_orchestrator("Parent", parent_orchestration)
        .add_activity("Step", |_ctx: ActivityContext, x: u64| async move {
            Ok::<_, ActivityError>(step(x))
        })
        .add_activity("Square", |_ctx: ActivityContext, x: u64| async move {
            Ok::<_, ActivityError>(square(x))
        })
        .add_entity(TALLY, tally());
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_outputs_follow_from_the_inputs() {
        assert_eq!(
            Spec::Chain { seed: 1, steps: 2 }.expected_output(),
            serde_json::json!((31 + 7) * 31 + 7)
        );
        assert_eq!(
            Spec::FanOut { seed: 2, width: 3 }.expected_output(),
            serde_json::json!(4 + 9 + 16)
        );
        let parent = Spec::Parent {
            seeds: vec![1, 2],
            steps: 1,
        };
        assert_eq!(parent.expected_output(), serde_json::json!(38 + 69));
        assert_eq!(
            parent.children("p"),
            [
                ("p:c0".to_owned(), Spec::Chain { seed: 1, steps: 1 }),
                ("p:c1".to_owned(), Spec::Chain { seed: 2, steps: 1 })
            ]
        );
        let entities = Spec::Entities {
            key: 15,
            calls: 1,
            signals: 1,
            amount: 5,
        };
        assert_eq!(
            entities.operations("x"),
            [
                ("e-15".to_owned(), "x/c0".to_owned(), 5),
                ("e-0".to_owned(), "x/s1".to_owned(), 6)
            ]
        );
    }

    #[test]
    fn completion_shards_are_stable() {
        assert_eq!(done_key("soak-1"), done_key("soak-1"));
        let shards: BTreeSet<String> = (0..200).map(|i| done_key(&format!("soak-{i}"))).collect();
        assert_eq!(shards.len(), DONE_SHARDS as usize);
    }
}
