//! Entities in the in-process runtime: state, queued operations, locks, and what operations send on.

use std::collections::{BTreeMap, VecDeque};

use super::{InProcessRuntime, TimerTarget};
use crate::entity_id::EntityId;
use crate::errors::FailureDetails;
use crate::proto;
use crate::proto::send_entity_message_action::EntityMessageType;
use crate::testing::history;

/// An operation waiting for its entity.
#[derive(Debug, Clone)]
pub(super) struct Message {
    operation: proto::OperationRequest,
    /// The orchestration that sent it, if one did: the only sender whose operations pass the entity's lock, if it
    /// holds it.
    caller: Option<String>,
    /// Whether the caller waits for the result (a call, not a signal).
    respond: bool,
}

#[derive(Debug, Clone)]
struct LockRequest {
    section_id: String,
    entities: Vec<String>,
    owner: String,
}

#[derive(Debug, Default)]
pub(super) struct Entities {
    states: BTreeMap<String, String>,
    queues: BTreeMap<String, VecDeque<Message>>,
    /// Locked entity -> (critical section, owning orchestration).
    locks: BTreeMap<String, (String, String)>,
    waiting_locks: VecDeque<LockRequest>,
    next_request: u64,
}

pub(super) fn operation(
    name: &str,
    request_id: String,
    input: Option<String>,
) -> proto::OperationRequest {
    proto::OperationRequest {
        operation: name.to_string(),
        request_id,
        input,
        trace_context: None,
    }
}

/// `@name@key` with the name lower-cased, whatever form the sender used.
fn canonical(entity: &str) -> String {
    entity
        .parse::<EntityId>()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| entity.to_string())
}

impl Entities {
    pub(super) fn next_request_id(&mut self) -> String {
        self.next_request += 1;
        format!("test-request-{}", self.next_request)
    }

    pub(super) fn state(&self, entity: &str) -> Option<&str> {
        self.states.get(&canonical(entity)).map(String::as_str)
    }

    pub(super) fn enqueue(
        &mut self,
        entity: String,
        operation: proto::OperationRequest,
        caller: Option<(String, bool)>,
    ) {
        let (caller, respond) = match caller {
            Some((instance_id, respond)) => (Some(instance_id), respond),
            None => (None, false),
        };
        self.queues
            .entry(canonical(&entity))
            .or_default()
            .push_back(Message {
                operation,
                caller,
                respond,
            });
    }

    /// The next entity with operations that may run now, and those operations (in arrival order); operations from
    /// others than the holder of the entity's lock stay queued.
    pub(super) fn next_batch(&mut self) -> Option<(String, Vec<Message>)> {
        let locks = &self.locks;
        for (entity, queue) in &mut self.queues {
            let holder = locks.get(entity).map(|(_, owner)| owner);
            let (ready, waiting): (VecDeque<Message>, VecDeque<Message>) = std::mem::take(queue)
                .into_iter()
                .partition(|m| holder.is_none() || m.caller.as_ref() == holder);
            *queue = waiting;
            if !ready.is_empty() {
                return Some((entity.clone(), ready.into()));
            }
        }
        None
    }

    /// Grants every waiting lock request whose entities are all free, oldest first; returns the grants as (owner,
    /// critical section).
    fn grant(&mut self) -> Vec<(String, String)> {
        let mut granted = Vec::new();
        let mut still_waiting = VecDeque::new();
        for request in std::mem::take(&mut self.waiting_locks) {
            if request.entities.iter().all(|e| !self.locks.contains_key(e)) {
                for entity in &request.entities {
                    self.locks.insert(
                        entity.clone(),
                        (request.section_id.clone(), request.owner.clone()),
                    );
                }
                granted.push((request.owner, request.section_id));
            } else {
                still_waiting.push_back(request);
            }
        }
        self.waiting_locks = still_waiting;
        granted
    }
}

impl InProcessRuntime {
    /// An entity message an orchestration sent.
    pub(super) fn entity_message(&mut self, instance_id: &str, message: EntityMessageType) {
        match message {
            EntityMessageType::EntityOperationCalled(c) => {
                let target = c.target_instance_id.unwrap_or_default();
                let op = operation(&c.operation, c.request_id, c.input);
                self.entities
                    .enqueue(target, op, Some((instance_id.to_string(), true)));
            }
            EntityMessageType::EntityOperationSignaled(s) => {
                let target = s.target_instance_id.unwrap_or_default();
                let op = operation(&s.operation, s.request_id, s.input);
                match history::timestamp(s.scheduled_time.as_ref()) {
                    Some(at) if at > self.now => self.add_timer(
                        at,
                        TimerTarget::Signal {
                            entity: target,
                            operation: op,
                        },
                    ),
                    _ => self
                        .entities
                        .enqueue(target, op, Some((instance_id.to_string(), false))),
                }
            }
            EntityMessageType::EntityLockRequested(l) => {
                let mut entities: Vec<String> = l.lock_set.iter().map(|e| canonical(e)).collect();
                entities.sort();
                entities.dedup();
                self.entities.waiting_locks.push_back(LockRequest {
                    section_id: l.critical_section_id,
                    entities,
                    owner: instance_id.to_string(),
                });
                self.grant_locks();
            }
            EntityMessageType::EntityUnlockSent(u) => {
                let target = canonical(&u.target_instance_id.unwrap_or_default());
                if self
                    .entities
                    .locks
                    .get(&target)
                    .is_some_and(|(section, _)| *section == u.critical_section_id)
                {
                    self.entities.locks.remove(&target);
                }
                self.grant_locks();
            }
        }
    }

    fn grant_locks(&mut self) {
        for (owner, section_id) in self.entities.grant() {
            if let Some(instance) = self.instances.get_mut(&owner)
                && !instance.status.is_terminal()
            {
                instance.inbox.push(history::lock_granted(&section_id));
            }
        }
    }

    /// Runs one batch of operations on `entity` and delivers what they produced.
    pub(super) fn run_entity_batch(&mut self, entity: String, messages: Vec<Message>) {
        let request = proto::EntityBatchRequest {
            instance_id: entity.clone(),
            entity_state: self.entities.states.get(&entity).cloned(),
            operations: messages.iter().map(|m| m.operation.clone()).collect(),
            properties: Default::default(),
        };
        let now = self.now;
        let result = self
            .registry
            .execute_entity_batch_with_clock(&request, &|| now);
        match result.entity_state {
            Some(state) => self.entities.states.insert(entity.clone(), state),
            None => self.entities.states.remove(&entity),
        };
        for (message, outcome) in messages.iter().zip(result.results) {
            let (Some(caller), true) = (&message.caller, message.respond) else {
                continue;
            };
            let request_id = &message.operation.request_id;
            let event = match outcome.result_type {
                Some(proto::operation_result::ResultType::Success(s)) => {
                    history::entity_completed(request_id, s.result.as_deref())
                }
                Some(proto::operation_result::ResultType::Failure(f)) => history::entity_failed(
                    request_id,
                    &FailureDetails::from(&f.failure_details.unwrap_or_default()),
                ),
                None => history::entity_completed(request_id, None),
            };
            if let Some(instance) = self.instances.get_mut(caller)
                && !instance.status.is_terminal()
            {
                instance.inbox.push(event);
            }
        }
        for action in result.actions {
            match action.operation_action_type {
                Some(proto::operation_action::OperationActionType::SendSignal(s)) => {
                    let request_id = self.entities.next_request_id();
                    let op = operation(&s.name, request_id, s.input);
                    match history::timestamp(s.scheduled_time.as_ref()) {
                        Some(at) if at > self.now => self.add_timer(
                            at,
                            TimerTarget::Signal {
                                entity: s.instance_id,
                                operation: op,
                            },
                        ),
                        _ => self.entities.enqueue(s.instance_id, op, None),
                    }
                }
                Some(proto::operation_action::OperationActionType::StartNewOrchestration(s)) => {
                    // An id already in use is what a backend would refuse too; the operation itself succeeded.
                    let _ = self.create_instance(&s.instance_id, &s.name, s.input, s.version, None);
                }
                None => {}
            }
        }
    }
}
