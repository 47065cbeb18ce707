//! The replay state shared by the executor and every `OrchestrationContext` clone of one execution.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use time::OffsetDateTime;

use crate::entity_id::EntityId;
use crate::errors::{FailureDetails, TaskError};
use crate::proto;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::time_util;

/// Index of a completion cell: the rendezvous between the executor (which fills it from history) and the future
/// the orchestrator code awaits.
pub(crate) type Handle = usize;

/// How a durable task ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Success with the JSON result text, if any.
    Value(Option<String>),
    /// Failure, surfaced to the orchestrator as this error.
    Failed(TaskError),
    /// An entity lock was granted.
    Locked,
}

#[derive(Debug, Default)]
pub(crate) struct Cell {
    pub(crate) outcome: Option<Outcome>,
    /// Set once an outcome was delivered; stays set after the awaiting future takes the outcome.
    pub(crate) settled: bool,
    /// Position of the completing event in history order; lets `when_any` pick the earliest winner.
    pub(crate) order: u64,
    /// The waker of the future waiting on this cell, so combinators only re-poll the children that progressed.
    pub(crate) waker: Option<std::task::Waker>,
}

/// An open task, keyed by the sequence number of the action that started it.
#[derive(Debug)]
pub(crate) enum OpenTask {
    Activity {
        handle: Handle,
        name: String,
    },
    SubOrchestration {
        handle: Handle,
        name: String,
    },
    Timer {
        handle: Handle,
        final_fire_at: OffsetDateTime,
        /// Set when the timer is the timeout of an external-event wait.
        waiter: Option<(Handle, String)>,
    },
    EntityCall {
        handle: Handle,
        entity: EntityId,
        operation: String,
    },
    Lock {
        handle: Handle,
    },
}

/// A buffered external event, waiting for a `wait_for_external_event`.
#[derive(Debug, Clone)]
pub(crate) struct BufferedEvent {
    pub(crate) arrival: u64,
    pub(crate) name: String,
    pub(crate) input: Option<String>,
}

#[derive(Debug)]
pub(crate) struct CriticalSection {
    pub(crate) id: String,
    pub(crate) locks: Vec<EntityId>,
    /// Locked entities with no call in flight (a call borrows the lock until its response).
    pub(crate) available: Vec<EntityId>,
    pub(crate) acquired: bool,
}

#[derive(Debug)]
pub(crate) struct ContinueAsNew {
    pub(crate) input: Option<String>,
    pub(crate) keep_unprocessed_events: bool,
    pub(crate) version: Option<String>,
}

/// Information about the parent of a sub-orchestration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParentInfo {
    /// The parent's instance id.
    pub instance_id: String,
    /// The parent's execution id, when known.
    pub execution_id: Option<String>,
    /// The parent orchestrator's name, when known.
    pub name: Option<String>,
    /// The parent orchestrator's version, when known.
    pub version: Option<String>,
    /// The sequence number of the parent's action that created this instance.
    pub task_scheduled_id: i32,
}

#[derive(Debug)]
pub(crate) struct OrchState {
    pub(crate) instance_id: String,
    pub(crate) execution_id: Option<String>,
    pub(crate) name: String,
    pub(crate) version: Option<String>,
    /// The version of sub-orchestrations started without one.
    pub(crate) default_version: Option<String>,
    /// How long durable HTTP waits between polls when the answer does not say.
    pub(crate) http_poll_interval: Duration,
    pub(crate) input: Option<String>,
    pub(crate) parent: Option<ParentInfo>,
    pub(crate) now: OffsetDateTime,
    pub(crate) is_replaying: bool,
    pub(crate) max_timer_interval: Option<Duration>,

    sequence: i32,
    guid_counter: u64,
    completion_order: u64,
    arrival: u64,

    /// Actions decided by the code and not yet confirmed by history, by sequence number.
    pub(crate) actions: BTreeMap<i32, proto::OrchestratorAction>,
    pub(crate) open: HashMap<i32, OpenTask>,
    pub(crate) cells: Vec<Cell>,
    /// Entity request id -> sequence number of the call.
    pub(crate) entity_requests: HashMap<String, i32>,
    /// Critical section id -> sequence number of the lock request.
    pub(crate) lock_requests: HashMap<String, i32>,
    /// Buffered events by case-folded name.
    pub(crate) buffered: HashMap<String, VecDeque<BufferedEvent>>,
    /// Waiting `wait_for_external_event` calls by case-folded name, oldest first.
    pub(crate) waiters: HashMap<String, VecDeque<Handle>>,
    pub(crate) critical_section: Option<CriticalSection>,
    /// Critical sections whose lock future was dropped before the grant; each is released when its grant arrives.
    pub(crate) abandoned_sections: Vec<CriticalSection>,
    pub(crate) custom_status: Option<String>,
    pub(crate) continue_as_new: Option<ContinueAsNew>,
    /// Set once the execution is over: user code is no longer polled.
    pub(crate) completed: bool,
    /// Sequence number of the completion action, once there is one.
    pub(crate) completion_id: Option<i32>,
    pub(crate) completion_status: Option<proto::OrchestrationStatus>,
    /// The engine already failed this execution; later errors add nothing.
    replay_failed: bool,
    /// Set while the executor tears down; drop-time side effects (lock guards) must not add actions.
    pub(crate) closed: bool,
    /// Something completed since the code was last polled.
    pub(crate) dirty: bool,
}

impl OrchState {
    pub(crate) fn new(instance_id: String, max_timer_interval: Option<Duration>) -> Self {
        Self {
            instance_id,
            execution_id: None,
            name: String::new(),
            version: None,
            default_version: None,
            http_poll_interval: crate::http::DEFAULT_POLL_INTERVAL,
            input: None,
            parent: None,
            now: time_util::clock_sentinel(),
            is_replaying: true,
            max_timer_interval,
            sequence: 0,
            guid_counter: 0,
            completion_order: 0,
            arrival: 0,
            actions: BTreeMap::new(),
            open: HashMap::new(),
            cells: Vec::new(),
            entity_requests: HashMap::new(),
            lock_requests: HashMap::new(),
            buffered: HashMap::new(),
            waiters: HashMap::new(),
            critical_section: None,
            abandoned_sections: Vec::new(),
            custom_status: None,
            continue_as_new: None,
            completed: false,
            completion_id: None,
            completion_status: None,
            replay_failed: false,
            closed: false,
            dirty: false,
        }
    }

    pub(crate) fn next_sequence(&mut self) -> i32 {
        let id = self.sequence;
        self.sequence += 1;
        id
    }

    pub(crate) fn next_guid_counter(&mut self) -> u64 {
        let n = self.guid_counter;
        self.guid_counter += 1;
        n
    }

    pub(crate) fn next_arrival(&mut self) -> u64 {
        self.arrival += 1;
        self.arrival
    }

    pub(crate) fn new_cell(&mut self) -> Handle {
        self.cells.push(Cell::default());
        self.cells.len() - 1
    }

    /// A cell that is already resolved (e.g. a buffered event consumed at call time).
    pub(crate) fn resolved_cell(&mut self, outcome: Outcome) -> Handle {
        let handle = self.new_cell();
        self.resolve(handle, outcome);
        handle
    }

    pub(crate) fn resolve(&mut self, handle: Handle, outcome: Outcome) {
        self.completion_order += 1;
        if let Some(cell) = self.cells.get_mut(handle) {
            cell.outcome = Some(outcome);
            cell.settled = true;
            cell.order = self.completion_order;
            // Waking only records which child progressed (see `futures.rs`); it never re-enters this state.
            if let Some(waker) = cell.waker.take() {
                waker.wake();
            }
        }
        self.dirty = true;
    }

    pub(crate) fn is_resolved(&self, handle: Handle) -> bool {
        self.cells.get(handle).is_some_and(|cell| cell.settled)
    }

    /// Records a new action and returns its sequence number.
    pub(crate) fn push_action(&mut self, action_type: OrchestratorActionType) -> i32 {
        let id = self.next_sequence();
        self.actions.insert(
            id,
            proto::OrchestratorAction {
                id,
                orchestrator_action_type: Some(action_type),
            },
        );
        id
    }

    /// Schedules a timer action for `final_fire_at`, splitting it at the maximum timer interval.
    pub(crate) fn push_timer(
        &mut self,
        handle: Handle,
        final_fire_at: OffsetDateTime,
        waiter: Option<(Handle, String)>,
    ) -> i32 {
        let fire_at = self.next_timer_fire_at(self.now, final_fire_at);
        let id = self.push_action(OrchestratorActionType::CreateTimer(
            proto::CreateTimerAction {
                fire_at: Some(time_util::to_timestamp(fire_at)),
            },
        ));
        self.open.insert(
            id,
            OpenTask::Timer {
                handle,
                final_fire_at,
                waiter,
            },
        );
        id
    }

    pub(crate) fn next_timer_fire_at(
        &self,
        from: OffsetDateTime,
        final_fire_at: OffsetDateTime,
    ) -> OffsetDateTime {
        match self.max_timer_interval {
            Some(max) if !max.is_zero() => {
                let step = time_util::add(from, max);
                if step < final_fire_at {
                    step
                } else {
                    final_fire_at
                }
            }
            _ => final_fire_at,
        }
    }

    /// Emits one unlock per locked entity and leaves the critical section.
    pub(crate) fn exit_critical_section(&mut self) {
        if let Some(section) = self.critical_section.take() {
            self.send_unlocks(section);
        }
    }

    fn send_unlocks(&mut self, section: CriticalSection) {
        for entity in section.locks {
            let action = proto::SendEntityMessageAction {
                entity_message_type: Some(
                    proto::send_entity_message_action::EntityMessageType::EntityUnlockSent(
                        proto::EntityUnlockSentEvent {
                            critical_section_id: section.id.clone(),
                            parent_instance_id: Some(self.instance_id.clone()),
                            target_instance_id: Some(entity.to_string()),
                        },
                    ),
                ),
            };
            self.push_action(OrchestratorActionType::SendEntityMessage(action));
        }
    }

    /// The code dropped the future of the open lock request without getting its guard. A granted section is left at
    /// once; a pending one is set aside and released when its grant arrives, so that the code may go on (and lock
    /// again) instead of being stuck in a critical section it can never use.
    pub(crate) fn abandon_critical_section(&mut self) {
        match self.critical_section.take() {
            Some(section) if section.acquired => self.send_unlocks(section),
            Some(section) => self.abandoned_sections.push(section),
            None => {}
        }
    }

    /// A lock was granted: marks the open section as held, or releases it if the code gave up on it.
    pub(crate) fn grant_critical_section(&mut self, section_id: &str) {
        if let Some(section) = self.critical_section.as_mut()
            && section.id == section_id
        {
            section.acquired = true;
            section.available = section.locks.clone();
        } else if let Some(pos) = self
            .abandoned_sections
            .iter()
            .position(|s| s.id == section_id)
        {
            let section = self.abandoned_sections.swap_remove(pos);
            self.send_unlocks(section);
        }
    }

    /// The backend confirmed a lock request under another critical-section id.
    pub(crate) fn rename_critical_section(&mut self, ours: &str, theirs: &str) {
        if theirs.is_empty() {
            return;
        }
        let sections = self
            .critical_section
            .iter_mut()
            .chain(self.abandoned_sections.iter_mut());
        for section in sections {
            if section.id == ours {
                section.id = theirs.to_string();
            }
        }
    }

    /// Ends the execution with a completion action (the next sequence number), unlocking held entities first.
    pub(crate) fn complete(
        &mut self,
        status: proto::OrchestrationStatus,
        result: Option<String>,
        failure: Option<FailureDetails>,
    ) {
        if self.completed {
            return;
        }
        self.exit_critical_section();
        // Sections given up before their grant are released too: nothing may stay locked past the execution.
        for section in std::mem::take(&mut self.abandoned_sections) {
            self.send_unlocks(section);
        }
        self.completed = true;
        self.completion_status = Some(status);
        let action = proto::CompleteOrchestrationAction {
            orchestration_status: status as i32,
            result,
            failure_details: failure.map(|f| f.to_proto()),
            ..Default::default()
        };
        let id = self.push_action(OrchestratorActionType::CompleteOrchestration(action));
        self.completion_id = Some(id);
    }

    /// Fills in the carried-over events and new version of a continue-as-new completion. Runs at the end of the
    /// turn so that events arriving after the `continue_as_new` call in the same batch are carried over too.
    pub(crate) fn finalize_continue_as_new(&mut self) {
        let Some(can) = self.continue_as_new.as_ref() else {
            return;
        };
        let version = can.version.clone();
        let events = if can.keep_unprocessed_events {
            self.carryover_events()
        } else {
            Vec::new()
        };
        let Some(action) = self.completion_id.and_then(|id| self.actions.get_mut(&id)) else {
            return;
        };
        if let Some(OrchestratorActionType::CompleteOrchestration(complete)) =
            &mut action.orchestrator_action_type
            && complete.orchestration_status == proto::OrchestrationStatus::ContinuedAsNew as i32
        {
            complete.carryover_events = events;
            complete.new_version = version;
        }
    }

    fn carryover_events(&self) -> Vec<proto::HistoryEvent> {
        let mut events: Vec<&BufferedEvent> = self.buffered.values().flatten().collect();
        events.sort_by_key(|e| e.arrival);
        events
            .into_iter()
            .map(|e| proto::HistoryEvent {
                event_id: -1,
                timestamp: None,
                event_type: Some(proto::history_event::EventType::EventRaised(
                    proto::EventRaisedEvent {
                        name: e.name.clone(),
                        input: e.input.clone(),
                    },
                )),
            })
            .collect()
    }

    /// Fails the execution because of an engine-level error; the code's other pending decisions are dropped since
    /// they may not correspond to anything real.
    ///
    /// A completion the code already decided is replaced: history that goes on after it proves the code diverged.
    /// A termination stands, since it did not come from the code.
    pub(crate) fn fail_replay(&mut self, details: FailureDetails) {
        if self.completion_status == Some(proto::OrchestrationStatus::Terminated)
            || self.completion_status == Some(proto::OrchestrationStatus::Failed)
                && self.replay_failed
        {
            return;
        }
        self.actions.clear();
        self.completed = false;
        self.replay_failed = true;
        self.complete(proto::OrchestrationStatus::Failed, None, Some(details));
    }
}
