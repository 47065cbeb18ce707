//! The turn-by-turn harness: one orchestration, its history kept as a backend keeps it, every result scripted by
//! the test.

mod results;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::entity_id::EntityId;
use crate::errors::FailureDetails;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::proto::send_entity_message_action::EntityMessageType;
use crate::registry::Registry;
use crate::testing::action::Action;
use crate::testing::history::{self, to_json};
use crate::testing::{RuntimeStatus, TestingError, default_start_time, output_of};
use crate::time_util;
use crate::typed::Orchestrator;

/// A task the orchestration started and the test has not answered yet.
#[derive(Debug, Clone)]
enum Open {
    Activity {
        name: String,
    },
    SubOrchestration {
        name: String,
    },
    Timer {
        fire_at: OffsetDateTime,
    },
    EntityCall {
        entity: EntityId,
        operation: String,
        request_id: String,
    },
    Lock {
        section_id: String,
    },
}

/// What one turn decided.
#[derive(Debug, Clone)]
pub struct Turn {
    at: OffsetDateTime,
    actions: Vec<Action>,
    response: proto::OrchestratorResponse,
}

impl Turn {
    /// The decisions, in sequence-number order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The orchestration time of the turn.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// The engine's response, as a transport would send it.
    pub fn response(&self) -> &proto::OrchestratorResponse {
        &self.response
    }
}

/// Runs one orchestrator turn by turn against results the test scripts: activity, sub-orchestration and entity
/// results, external events, and timers fired by moving a virtual clock. Every turn goes through
/// [`Registry::execute_orchestrator`], the same replay a worker runs, with the history a backend would have written,
/// and (unless turned off with [`check_replay`](Self::check_replay)) is replayed a second time from history alone,
/// so code that decides differently on replay (system time, randomness, hash-map order) fails the test with
/// [`TestingError::NonDeterministic`].
///
/// Scripted results are queued and delivered together by the next [`turn`](Self::turn), as a backend delivers what
/// arrived while the orchestration was not running.
///
/// ```
/// use std::time::Duration;
/// use durable_core::testing::{Action, OrchestrationHarness, RuntimeStatus};
/// use durable_core::{OrchestrationContext, OrchestrationError, Registry};
///
/// durable_core::activity! { pub Charge: u32 => String; }
/// durable_core::orchestrator! { pub Checkout: u32 => String; }
///
/// async fn checkout(ctx: OrchestrationContext, cents: u32) -> Result<String, OrchestrationError> {
///     match ctx.wait_for_external_event_with_timeout::<bool>("Confirm", Duration::from_secs(60)).await {
///         Ok(true) => Ok(ctx.call(Charge, cents).await?),
///         _ => Ok("cancelled".to_string()),
///     }
/// }
///
/// # fn main() -> Result<(), durable_core::testing::TestingError> {
/// let mut registry = Registry::new();
/// registry.register_orchestrator(Checkout, checkout);
///
/// let mut harness = OrchestrationHarness::new(&registry);
/// let start = harness.start(Checkout, 250)?.at();
/// assert_eq!(harness.actions(), [Action::CreateTimer { fire_at: start + Duration::from_secs(60) }]);
///
/// harness.raise_event("Confirm", &true)?.turn()?;
/// assert_eq!(harness.actions(), [Action::activity(Charge, 250)]);
///
/// harness.complete(Charge, "receipt-1".to_string())?.turn()?;
/// assert_eq!(harness.status(), RuntimeStatus::Completed);
/// assert_eq!(harness.output_of(Checkout)?, "receipt-1");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OrchestrationHarness {
    registry: Registry,
    instance_id: String,
    /// The version of the current generation (set by `version`, or by a continue-as-new).
    version: Option<String>,
    now: OffsetDateTime,
    check_replay: bool,
    generation: u32,
    history: Vec<proto::HistoryEvent>,
    queued: Vec<proto::HistoryEvent>,
    open: BTreeMap<i32, Open>,
    status: Option<RuntimeStatus>,
    output: Option<String>,
    failure: Option<FailureDetails>,
    custom_status: Option<String>,
    turns: Vec<Turn>,
}

impl OrchestrationHarness {
    /// A harness for an orchestrator of `registry`, instance id `test-instance`, clock at 2026-01-01T00:00:00Z.
    pub fn new(registry: &Registry) -> Self {
        Self {
            registry: registry.clone(),
            instance_id: "test-instance".to_string(),
            version: None,
            now: default_start_time(),
            check_replay: true,
            generation: 0,
            history: Vec::new(),
            queued: Vec::new(),
            open: BTreeMap::new(),
            status: None,
            output: None,
            failure: None,
            custom_status: None,
            turns: Vec::new(),
        }
    }

    /// Sets the instance id (before starting).
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = instance_id.into();
        self
    }

    /// Sets the orchestration's version (before starting), as a client's start would: what
    /// [`OrchestrationContext::version`](crate::OrchestrationContext::version) returns, and what the registry's
    /// [`Versioning`](crate::Versioning) judges. A continue-as-new without a new version keeps it.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the clock of the first turn (before starting).
    pub fn start_time(mut self, at: OffsetDateTime) -> Self {
        self.now = at;
        self
    }

    /// Whether every turn is replayed a second time from history to catch non-deterministic code (default: on).
    pub fn check_replay(mut self, on: bool) -> Self {
        self.check_replay = on;
        self
    }

    /// Starts the orchestrator declared by `O` and runs the first turn.
    pub fn start<O: Orchestrator>(
        &mut self,
        orchestrator: O,
        input: impl Borrow<O::Input>,
    ) -> Result<&Turn, TestingError> {
        let _ = orchestrator;
        self.start_named(O::NAME, input.borrow())
    }

    /// Starts an orchestrator by name and runs the first turn.
    pub fn start_named<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        input: &T,
    ) -> Result<&Turn, TestingError> {
        if self.status.is_some() {
            return Err(TestingError::AlreadyStarted(self.instance_id.clone()));
        }
        let input = to_json("the orchestration input", input)?;
        let version = self.version.clone();
        self.begin_generation(name.to_string(), Some(input), version, Vec::new());
        self.turn()
    }

    fn begin_generation(
        &mut self,
        name: String,
        input: Option<String>,
        version: Option<String>,
        carryover: Vec<proto::HistoryEvent>,
    ) {
        self.generation += 1;
        self.version.clone_from(&version);
        self.history.clear();
        self.open.clear();
        self.queued.clear();
        self.queued.push(history::event(
            -1,
            EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name,
                version,
                input,
                orchestration_instance: Some(proto::OrchestrationInstance {
                    instance_id: self.instance_id.clone(),
                    execution_id: Some(format!(
                        "{}-execution-{}",
                        self.instance_id, self.generation
                    )),
                }),
                ..Default::default()
            }),
        ));
        self.queued.extend(carryover);
        self.status = Some(RuntimeStatus::Running);
    }

    /// Runs one turn with everything queued since the last one, and returns what it decided.
    pub fn turn(&mut self) -> Result<&Turn, TestingError> {
        match self.status {
            None => return Err(TestingError::NotStarted),
            Some(RuntimeStatus::Running) => {}
            Some(status) => {
                return Err(TestingError::Finished {
                    instance_id: self.instance_id.clone(),
                    status,
                });
            }
        }
        let mut new_events = vec![history::orchestrator_started(self.now)];
        new_events.append(&mut self.queued);
        let request = proto::OrchestratorRequest {
            instance_id: self.instance_id.clone(),
            past_events: self.history.clone(),
            new_events: new_events.clone(),
            ..Default::default()
        };
        let response = self.registry.execute_orchestrator(&request);
        if self.check_replay {
            let mut past = self.history.clone();
            past.extend(new_events.iter().cloned());
            let replayed = self
                .registry
                .execute_orchestrator(&proto::OrchestratorRequest {
                    instance_id: self.instance_id.clone(),
                    past_events: past,
                    ..Default::default()
                });
            if replayed.actions != response.actions
                || replayed.custom_status != response.custom_status
            {
                return Err(TestingError::NonDeterministic {
                    turn: self.turns.len() + 1,
                    decided: response.actions.iter().map(Action::from_proto).collect(),
                    replayed: replayed.actions.iter().map(Action::from_proto).collect(),
                });
            }
        }
        self.history.extend(new_events);
        self.custom_status.clone_from(&response.custom_status);
        let mut next_generation = None;
        for action in &response.actions {
            if let Some(event) = history::confirmation(action) {
                self.history.push(event);
            }
            next_generation = next_generation.or(self.record(action));
        }
        self.history.push(history::orchestrator_completed());
        self.turns.push(Turn {
            at: self.now,
            actions: response.actions.iter().map(Action::from_proto).collect(),
            response,
        });
        if let Some((name, input, version, carryover)) = next_generation {
            self.begin_generation(name, input, version, carryover);
        }
        Ok(&self.turns[self.turns.len() - 1])
    }

    /// Notes what an action opened or ended; returns the next generation's start for a continue-as-new.
    #[allow(clippy::type_complexity)]
    fn record(
        &mut self,
        action: &proto::OrchestratorAction,
    ) -> Option<(
        String,
        Option<String>,
        Option<String>,
        Vec<proto::HistoryEvent>,
    )> {
        let id = action.id;
        let open = match action.orchestrator_action_type.as_ref()? {
            OrchestratorActionType::ScheduleTask(t) => Open::Activity {
                name: t.name.clone(),
            },
            OrchestratorActionType::CreateSubOrchestration(s) => Open::SubOrchestration {
                name: s.name.clone(),
            },
            OrchestratorActionType::CreateTimer(t) => Open::Timer {
                fire_at: history::timestamp(t.fire_at.as_ref())?,
            },
            OrchestratorActionType::SendEntityMessage(m) => match m.entity_message_type.as_ref()? {
                EntityMessageType::EntityOperationCalled(c) => Open::EntityCall {
                    entity: c.target_instance_id.as_deref()?.parse().ok()?,
                    operation: c.operation.clone(),
                    request_id: c.request_id.clone(),
                },
                EntityMessageType::EntityLockRequested(l) => Open::Lock {
                    section_id: l.critical_section_id.clone(),
                },
                _ => return None,
            },
            OrchestratorActionType::CompleteOrchestration(c) => {
                let status = proto::OrchestrationStatus::try_from(c.orchestration_status).ok()?;
                self.output.clone_from(&c.result);
                self.failure = c.failure_details.as_ref().map(FailureDetails::from);
                self.status = Some(match status {
                    proto::OrchestrationStatus::Completed => RuntimeStatus::Completed,
                    proto::OrchestrationStatus::Failed => RuntimeStatus::Failed,
                    proto::OrchestrationStatus::Terminated => RuntimeStatus::Terminated,
                    proto::OrchestrationStatus::ContinuedAsNew => {
                        let name = self.name();
                        return Some((
                            name,
                            c.result.clone(),
                            // As a backend does: no new version keeps the current one.
                            c.new_version.clone().or_else(|| self.version.clone()),
                            c.carryover_events.clone(),
                        ));
                    }
                    _ => RuntimeStatus::Running,
                });
                return None;
            }
            _ => return None,
        };
        self.open.insert(id, open);
        None
    }

    fn name(&self) -> String {
        self.history
            .iter()
            .find_map(|e| match &e.event_type {
                Some(EventType::ExecutionStarted(s)) => Some(s.name.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The decisions of the latest turn.
    pub fn actions(&self) -> &[Action] {
        self.turns.last().map(Turn::actions).unwrap_or_default()
    }

    /// Every turn so far, oldest first (a continue-as-new starts no new list).
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// The history of the current generation, as a backend would have committed it.
    pub fn history(&self) -> &[proto::HistoryEvent] {
        &self.history
    }

    /// The virtual clock: the time the next turn runs at.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// The fire time of the earliest open timer.
    pub fn next_timer(&self) -> Option<OffsetDateTime> {
        self.open
            .values()
            .filter_map(|o| match o {
                Open::Timer { fire_at } => Some(*fire_at),
                _ => None,
            })
            .min()
    }

    /// Moves the clock forward; every open timer due by then fires (in fire-time order) in the next turn. A long
    /// timer fires slice by slice: each slice is a new timer, decided by the turn that the previous one woke.
    pub fn advance(&mut self, by: Duration) -> &mut Self {
        self.now = time_util::add(self.now, by);
        let mut due: Vec<(OffsetDateTime, i32)> = self
            .open
            .iter()
            .filter_map(|(id, o)| match o {
                Open::Timer { fire_at } if *fire_at <= self.now => Some((*fire_at, *id)),
                _ => None,
            })
            .collect();
        due.sort();
        for (fire_at, id) in due {
            self.open.remove(&id);
            self.queued.push(history::timer_fired(id, fire_at));
        }
        self
    }

    /// Queues an external event.
    pub fn raise_event<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        data: &T,
    ) -> Result<&mut Self, TestingError> {
        let input = to_json("the event data", data)?;
        self.queued.push(history::event_raised(name, Some(&input)));
        Ok(self)
    }

    /// The status: `Running` until a turn completes, fails or terminates the orchestration (a continue-as-new
    /// starts the next generation and stays `Running`).
    pub fn status(&self) -> RuntimeStatus {
        self.status.unwrap_or(RuntimeStatus::Pending)
    }

    /// The output, once completed.
    pub fn output<T: DeserializeOwned>(&self) -> Result<T, TestingError> {
        output_of(
            &self.instance_id,
            self.status(),
            self.output.as_deref(),
            self.failure.as_ref(),
        )
    }

    /// The output of the orchestrator declared by `O`, once completed.
    pub fn output_of<O: Orchestrator>(&self, orchestrator: O) -> Result<O::Output, TestingError> {
        let _ = orchestrator;
        self.output()
    }

    /// Why the orchestration failed.
    pub fn failure(&self) -> Option<&FailureDetails> {
        self.failure.as_ref()
    }

    /// The custom status set by the latest turn.
    pub fn custom_status<T: DeserializeOwned>(&self) -> Result<Option<T>, TestingError> {
        self.custom_status
            .as_deref()
            .map(|text| {
                serde_json::from_str(text).map_err(|e| TestingError::Json {
                    what: "the custom status".into(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }
}
