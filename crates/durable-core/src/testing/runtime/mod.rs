//! The in-process runtime: a backend in memory, driving the registry's real orchestrators, activities and
//! entities, with a virtual clock.

mod entities;
mod instance;
mod join;
mod orchestrations;

pub use instance::InstanceState;

use instance::begin_generation;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::history::{self, to_json};
use super::{RuntimeStatus, TestingError, default_start_time};
use crate::entity_id::EntityId;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::registry::Registry;
use crate::time_util;
use crate::typed::{EntityOperation, EntityType, Orchestrator};

#[derive(Debug, Clone)]
enum TimerTarget {
    Orchestration {
        instance_id: String,
        generation: u32,
        timer_id: i32,
    },
    Signal {
        entity: String,
        operation: proto::OperationRequest,
    },
}

#[derive(Debug, Clone)]
struct Timer {
    fire_at: OffsetDateTime,
    seq: u64,
    target: TimerTarget,
}

#[derive(Debug, Clone)]
struct PendingActivity {
    instance_id: String,
    generation: u32,
    request: proto::ActivityRequest,
}

/// Runs orchestrations with their real activities, sub-orchestrations and entities, all in memory: what a backend
/// and a worker do together, minus the network and the database. Time is virtual and only moves when the test
/// moves it ([`advance`](Self::advance)) or when nothing but a timer can happen
/// ([`run_to_completion`](Self::run_to_completion) skips to it).
///
/// Orchestrations and entities run one at a time, in a fixed order; the activities scheduled by a round of turns
/// run concurrently on the caller's executor, and their results are delivered in the order they were scheduled.
/// Runs are therefore reproducible. Entity locks, signals (also scheduled ones), events between instances,
/// continue-as-new and termination behave as on a backend.
///
/// See the [module docs](super) for an example, and [`OrchestrationHarness`](super::OrchestrationHarness) to
/// script results instead of running activities.
#[derive(Debug)]
pub struct InProcessRuntime {
    registry: Registry,
    start_time: OffsetDateTime,
    now: OffsetDateTime,
    max_steps: usize,
    steps: usize,
    next_instance: u64,
    instances: BTreeMap<String, InstanceState>,
    timers: Vec<Timer>,
    next_timer: u64,
    activities: Vec<PendingActivity>,
    entities: entities::Entities,
}

impl InProcessRuntime {
    /// A runtime for `registry`, its clock at 2026-01-01T00:00:00Z.
    pub fn new(registry: &Registry) -> Self {
        Self {
            registry: registry.clone(),
            start_time: default_start_time(),
            now: default_start_time(),
            max_steps: 100_000,
            steps: 0,
            next_instance: 0,
            instances: BTreeMap::new(),
            timers: Vec::new(),
            next_timer: 0,
            activities: Vec::new(),
            entities: entities::Entities::default(),
        }
    }

    /// Sets the starting clock (before anything runs).
    pub fn with_start_time(mut self, at: OffsetDateTime) -> Self {
        self.start_time = at;
        self.now = at;
        self
    }

    /// The most orchestrator turns, entity batches and activity rounds one call may run (default 100,000), so
    /// that an eternal orchestration ends a test with [`TestingError::TooManySteps`] instead of hanging it.
    pub fn max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// The clock the runtime started at.
    pub fn start_time(&self) -> OffsetDateTime {
        self.start_time
    }

    /// The virtual clock.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Starts the orchestrator declared by `O` under a new instance id (`instance-1`, `instance-2`, ...). It runs
    /// at the next `run_*` or `advance`.
    pub fn start<O: Orchestrator>(
        &mut self,
        orchestrator: O,
        input: impl Borrow<O::Input>,
    ) -> Result<String, TestingError> {
        let _ = orchestrator;
        self.start_named(O::NAME, None, input.borrow())
    }

    /// Starts the orchestrator declared by `O` under `instance_id`.
    pub fn start_with_id<O: Orchestrator>(
        &mut self,
        orchestrator: O,
        instance_id: &str,
        input: impl Borrow<O::Input>,
    ) -> Result<String, TestingError> {
        let _ = orchestrator;
        self.start_named(O::NAME, Some(instance_id), input.borrow())
    }

    /// Starts an orchestrator by name, under `instance_id` or a new one.
    pub fn start_named<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        instance_id: Option<&str>,
        input: &T,
    ) -> Result<String, TestingError> {
        let input = to_json("the orchestration input", input)?;
        let instance_id = match instance_id {
            Some(id) => id.to_string(),
            None => loop {
                self.next_instance += 1;
                let id = format!("instance-{}", self.next_instance);
                if !self.instances.contains_key(&id) {
                    break id;
                }
            },
        };
        self.create_instance(&instance_id, name, Some(input), None, None)?;
        Ok(instance_id)
    }

    fn create_instance(
        &mut self,
        instance_id: &str,
        name: &str,
        input: Option<String>,
        version: Option<String>,
        parent: Option<(String, i32, String)>,
    ) -> Result<(), TestingError> {
        if self
            .instances
            .get(instance_id)
            .is_some_and(|i| !i.status.is_terminal())
        {
            return Err(TestingError::InstanceExists(instance_id.to_string()));
        }
        let mut state = InstanceState {
            instance_id: instance_id.to_string(),
            name: name.to_string(),
            version,
            generation: 0,
            status: RuntimeStatus::Running,
            output: None,
            failure: None,
            custom_status: None,
            history: Vec::new(),
            inbox: Vec::new(),
            parent: None,
        };
        let parent_info = parent.map(|(parent_id, task_id, parent_name)| {
            let execution_id = self
                .instances
                .get(&parent_id)
                .map(InstanceState::execution_id);
            state.parent = Some((parent_id.clone(), task_id));
            proto::ParentInstanceInfo {
                task_scheduled_id: task_id,
                name: Some(parent_name),
                version: None,
                orchestration_instance: Some(proto::OrchestrationInstance {
                    instance_id: parent_id,
                    execution_id,
                }),
            }
        });
        begin_generation(&mut state, input, parent_info, Vec::new());
        self.instances.insert(instance_id.to_string(), state);
        Ok(())
    }

    /// The instance, if it exists.
    pub fn instance(&self, instance_id: &str) -> Option<&InstanceState> {
        self.instances.get(instance_id)
    }

    /// The output of a completed instance of the orchestrator declared by `O`.
    pub fn output_of<O: Orchestrator>(
        &self,
        orchestrator: O,
        instance_id: &str,
    ) -> Result<O::Output, TestingError> {
        let _ = orchestrator;
        self.instances
            .get(instance_id)
            .ok_or_else(|| TestingError::NoSuchInstance(instance_id.to_string()))?
            .output()
    }

    fn running(&mut self, instance_id: &str) -> Result<&mut InstanceState, TestingError> {
        match self.instances.get_mut(instance_id) {
            None => Err(TestingError::NoSuchInstance(instance_id.to_string())),
            Some(i) if i.status.is_terminal() => Err(TestingError::Finished {
                instance_id: instance_id.to_string(),
                status: i.status,
            }),
            Some(i) => Ok(i),
        }
    }

    /// Raises an external event on a running instance; it is delivered by the next `run_*` or `advance`.
    pub fn raise_event<T: Serialize + ?Sized>(
        &mut self,
        instance_id: &str,
        name: &str,
        data: &T,
    ) -> Result<(), TestingError> {
        let data = to_json("the event data", data)?;
        self.running(instance_id)?
            .inbox
            .push(history::event_raised(name, Some(&data)));
        Ok(())
    }

    /// Terminates a running instance; it ends at the next `run_*` or `advance`.
    pub fn terminate<T: Serialize + ?Sized>(
        &mut self,
        instance_id: &str,
        reason: &T,
    ) -> Result<(), TestingError> {
        let reason = to_json("the termination reason", reason)?;
        self.running(instance_id)?.inbox.push(history::event(
            -1,
            EventType::ExecutionTerminated(proto::ExecutionTerminatedEvent {
                input: Some(reason),
                recurse: false,
            }),
        ));
        Ok(())
    }

    /// Signals an entity operation from outside, as a client does; it runs at the next `run_*` or `advance`.
    pub fn signal_entity<T: Serialize + ?Sized>(
        &mut self,
        entity: &EntityId,
        operation: &str,
        input: &T,
    ) -> Result<(), TestingError> {
        let input = to_json("the operation input", input)?;
        let request_id = self.entities.next_request_id();
        self.entities.enqueue(
            entity.to_string(),
            entities::operation(operation, request_id, Some(input)),
            None,
        );
        Ok(())
    }

    /// Signals an entity operation declared by type to the entity with `key`.
    pub fn signal<Op: EntityOperation>(
        &mut self,
        key: impl Into<String>,
        operation: Op,
        input: impl Borrow<Op::Input>,
    ) -> Result<(), TestingError> {
        let _ = operation;
        self.signal_entity(&Op::Entity::id(key), Op::NAME, input.borrow())
    }

    /// An entity's state, or `None` if it has none (never used, or deleted).
    pub fn entity_state<T: DeserializeOwned>(
        &self,
        entity: &EntityId,
    ) -> Result<Option<T>, TestingError> {
        self.entities
            .state(&entity.to_string())
            .map(|text| {
                serde_json::from_str(text).map_err(|e| TestingError::Json {
                    what: format!("the state of {entity}"),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// The state of the entity of type `E` with `key`.
    pub fn state_of<E: EntityType>(
        &self,
        entity: E,
        key: impl Into<String>,
    ) -> Result<Option<E::State>, TestingError> {
        let _ = entity;
        self.entity_state(&E::id(key))
    }

    fn step(&mut self) -> Result<(), TestingError> {
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(TestingError::TooManySteps(self.max_steps));
        }
        Ok(())
    }

    /// Runs everything that can run without the clock moving: orchestrator turns, entity operations, activities,
    /// until nothing is left but timers, events the test has not raised, and finished instances.
    pub async fn run_until_idle(&mut self) -> Result<(), TestingError> {
        self.steps = 0;
        self.run_idle().await
    }

    async fn run_idle(&mut self) -> Result<(), TestingError> {
        loop {
            let ready = self
                .instances
                .values()
                .find(|i| !i.inbox.is_empty() && !i.status.is_terminal())
                .map(|i| i.instance_id.clone());
            if let Some(instance_id) = ready {
                self.step()?;
                self.run_turn(&instance_id);
                continue;
            }
            if let Some((entity, messages)) = self.entities.next_batch() {
                self.step()?;
                self.run_entity_batch(entity, messages);
                continue;
            }
            if !self.activities.is_empty() {
                self.step()?;
                self.run_activities().await;
                continue;
            }
            return Ok(());
        }
    }

    /// Moves the clock forward by `by`, firing every timer due on the way at its own time (each followed by all the
    /// work it causes), and runs until idle.
    pub async fn advance(&mut self, by: Duration) -> Result<(), TestingError> {
        self.steps = 0;
        let until = time_util::add(self.now, by);
        self.run_idle().await?;
        while self.fire_next_timer(Some(until)) {
            self.run_idle().await?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Runs until the instance finishes, skipping the clock to the next timer whenever nothing else can happen.
    /// Fails with [`TestingError::Stuck`] when the instance waits for something no timer brings (an external
    /// event the test has not raised, say).
    pub async fn run_to_completion(
        &mut self,
        instance_id: &str,
    ) -> Result<&InstanceState, TestingError> {
        self.steps = 0;
        if !self.instances.contains_key(instance_id) {
            return Err(TestingError::NoSuchInstance(instance_id.to_string()));
        }
        loop {
            self.run_idle().await?;
            if self.instances[instance_id].status.is_terminal() {
                return Ok(&self.instances[instance_id]);
            }
            if !self.fire_next_timer(None) {
                return Err(TestingError::Stuck {
                    instance_id: instance_id.to_string(),
                });
            }
        }
    }

    /// Fires the earliest timer (due by `until`, if given), moving the clock to it.
    fn fire_next_timer(&mut self, until: Option<OffsetDateTime>) -> bool {
        let Some(index) =
            (0..self.timers.len()).min_by_key(|&i| (self.timers[i].fire_at, self.timers[i].seq))
        else {
            return false;
        };
        if until.is_some_and(|until| self.timers[index].fire_at > until) {
            return false;
        }
        let timer = self.timers.swap_remove(index);
        self.now = self.now.max(timer.fire_at);
        match timer.target {
            TimerTarget::Orchestration {
                instance_id,
                generation,
                timer_id,
            } => {
                if let Some(instance) = self.instances.get_mut(&instance_id)
                    && instance.generation == generation
                    && !instance.status.is_terminal()
                {
                    instance
                        .inbox
                        .push(history::timer_fired(timer_id, timer.fire_at));
                }
            }
            TimerTarget::Signal { entity, operation } => {
                self.entities.enqueue(entity, operation, None)
            }
        }
        true
    }

    fn add_timer(&mut self, fire_at: OffsetDateTime, target: TimerTarget) {
        self.next_timer += 1;
        self.timers.push(Timer {
            fire_at,
            seq: self.next_timer,
            target,
        });
    }
}
