//! Entities from orchestrations: calls, signals and critical sections (locks), encoded as `SendEntityMessage`
//! actions.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::context::{OrchestrationContext, encode_input};
use super::futures::{DurableFuture, poll_cell};
use super::state::{CriticalSection, Handle, OpenTask, OrchState, Outcome};
use crate::entity_id::EntityId;
use crate::errors::{TaskError, TaskKind};
use crate::proto;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::proto::send_entity_message_action::EntityMessageType;
use crate::time_util;

fn entity_action(message: EntityMessageType) -> OrchestratorActionType {
    OrchestratorActionType::SendEntityMessage(proto::SendEntityMessageAction {
        entity_message_type: Some(message),
    })
}

impl OrchestrationContext {
    /// Calls an entity operation and waits for its result. Inside a critical section only locked entities may be
    /// called, one call per entity at a time.
    pub fn call_entity<I, O>(
        &self,
        entity: &EntityId,
        operation: impl Into<String>,
        input: I,
    ) -> DurableFuture<O>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let operation = operation.into();
        let name = format!("{operation} on {entity}");
        let input = match encode_input(&name, &input) {
            Ok(text) => text,
            Err(e) => return DurableFuture::ready(Err(e)),
        };
        if let Err(e) = self.borrow_lock_for_call(entity) {
            return DurableFuture::ready(Err(e));
        }
        let request_id = self.new_guid().to_string();
        let mut st = self.state.borrow_mut();
        let handle = st.new_cell();
        let parent_execution_id = st.execution_id.clone();
        let parent_instance_id = Some(st.instance_id.clone());
        let id = st.push_action(entity_action(EntityMessageType::EntityOperationCalled(
            proto::EntityOperationCalledEvent {
                request_id: request_id.clone(),
                operation: operation.clone(),
                scheduled_time: None,
                input: Some(input),
                parent_instance_id,
                parent_execution_id,
                target_instance_id: Some(entity.to_string()),
            },
        )));
        st.open.insert(
            id,
            OpenTask::EntityCall {
                handle,
                entity: entity.clone(),
                operation,
            },
        );
        st.entity_requests.insert(request_id, id);
        drop(st);
        DurableFuture::from_cell(self.state.clone(), handle, TaskKind::Entity, name)
    }

    fn borrow_lock_for_call(&self, entity: &EntityId) -> Result<(), TaskError> {
        let mut st = self.state.borrow_mut();
        let Some(section) = st.critical_section.as_mut() else {
            return Ok(());
        };
        if let Some(pos) = section.available.iter().position(|e| e == entity) {
            section.available.swap_remove(pos);
            return Ok(());
        }
        let reason = if !section.acquired {
            "await the lock before calling entities in a critical section".to_string()
        } else if section.locks.contains(entity) {
            format!("a call to {entity} is already in flight in this critical section")
        } else {
            format!("{entity} is not one of the entities locked by this critical section")
        };
        Err(TaskError::InvalidOperation(reason))
    }

    /// Signals an entity operation (fire and forget).
    pub fn signal_entity<I: Serialize>(
        &self,
        entity: &EntityId,
        operation: impl Into<String>,
        input: I,
    ) -> Result<(), TaskError> {
        self.signal(entity, operation.into(), input, None)
    }

    /// Signals an entity operation to be delivered at `at`.
    pub fn signal_entity_at<I: Serialize>(
        &self,
        entity: &EntityId,
        operation: impl Into<String>,
        input: I,
        at: OffsetDateTime,
    ) -> Result<(), TaskError> {
        self.signal(entity, operation.into(), input, Some(at))
    }

    fn signal<I: Serialize>(
        &self,
        entity: &EntityId,
        operation: String,
        input: I,
        at: Option<OffsetDateTime>,
    ) -> Result<(), TaskError> {
        let input = encode_input(&format!("{operation} on {entity}"), &input)?;
        if let Some(section) = &self.state.borrow().critical_section
            && section.locks.contains(entity)
        {
            return Err(TaskError::InvalidOperation(format!(
                "{entity} is locked by this critical section and cannot be signaled from it"
            )));
        }
        let request_id = self.new_guid().to_string();
        let mut st = self.state.borrow_mut();
        st.push_action(entity_action(EntityMessageType::EntityOperationSignaled(
            proto::EntityOperationSignaledEvent {
                request_id,
                operation,
                scheduled_time: at.map(time_util::to_timestamp),
                input: Some(input),
                target_instance_id: Some(entity.to_string()),
            },
        )));
        Ok(())
    }

    /// Enters a critical section: locks all `entities` (sorted and de-duplicated, one lock request). The returned
    /// guard releases the locks when dropped or [released](EntityLock::release); locks still held are also released
    /// when the orchestration completes or continues as new.
    ///
    /// Dropping the returned future before it yields the guard (e.g. the losing side of a `when_any` with a timeout)
    /// gives up the critical section: the code may call entities and lock again at once, and the locks are released
    /// as soon as the grant arrives.
    pub fn lock_entities(&self, entities: &[EntityId]) -> LockFuture {
        let mut st = self.state.borrow_mut();
        if st.critical_section.is_some() {
            return LockFuture::failed(TaskError::InvalidOperation(
                "a critical section cannot be entered from within another".into(),
            ));
        }
        if entities.is_empty() {
            return LockFuture::failed(TaskError::InvalidOperation(
                "lock_entities needs at least one entity".into(),
            ));
        }
        drop(st);
        let mut locks = entities.to_vec();
        locks.sort();
        locks.dedup();
        let section_id = self.new_guid().to_string();
        st = self.state.borrow_mut();
        let handle = st.new_cell();
        let parent_instance_id = Some(st.instance_id.clone());
        let id = st.push_action(entity_action(EntityMessageType::EntityLockRequested(
            proto::EntityLockRequestedEvent {
                critical_section_id: section_id.clone(),
                lock_set: locks.iter().map(ToString::to_string).collect(),
                position: 0,
                parent_instance_id,
            },
        )));
        st.open.insert(id, OpenTask::Lock { handle });
        st.lock_requests.insert(section_id.clone(), id);
        st.critical_section = Some(CriticalSection {
            id: section_id.clone(),
            locks,
            available: Vec::new(),
            acquired: false,
        });
        drop(st);
        LockFuture {
            inner: Some(LockSource::Cell {
                state: self.state.clone(),
                handle,
                section_id,
            }),
        }
    }

    /// Whether the code is inside a critical section (a lock was requested and not yet released).
    pub fn is_in_critical_section(&self) -> bool {
        self.state.borrow().critical_section.is_some()
    }

    /// The entities locked by the current critical section.
    pub fn locked_entities(&self) -> Vec<EntityId> {
        self.state
            .borrow()
            .critical_section
            .as_ref()
            .map(|s| s.locks.clone())
            .unwrap_or_default()
    }
}

enum LockSource {
    Cell {
        state: Rc<RefCell<OrchState>>,
        handle: Handle,
        section_id: String,
    },
    Failed(TaskError),
}

/// Future of [`OrchestrationContext::lock_entities`].
#[must_use = "the lock is requested either way; await it to enter the critical section"]
pub struct LockFuture {
    inner: Option<LockSource>,
}

impl fmt::Debug for LockFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture").finish_non_exhaustive()
    }
}

impl LockFuture {
    fn failed(error: TaskError) -> Self {
        Self {
            inner: Some(LockSource::Failed(error)),
        }
    }
}

impl Drop for LockFuture {
    fn drop(&mut self) {
        let Some(LockSource::Cell { state, .. }) = &self.inner else {
            return;
        };
        let Ok(mut st) = state.try_borrow_mut() else {
            return;
        };
        // Dropped while the executor tears the code down (end of turn): the request stays open for the next turn.
        if st.closed {
            return;
        }
        // Only one lock request can be open at a time, so the open section is this future's.
        st.abandon_critical_section();
    }
}

impl Future for LockFuture {
    type Output = Result<EntityLock, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.inner.take() {
            None => Poll::Pending,
            Some(LockSource::Failed(error)) => Poll::Ready(Err(error)),
            Some(LockSource::Cell {
                state,
                handle,
                section_id,
            }) => match poll_cell(&state, handle, cx) {
                None => {
                    this.inner = Some(LockSource::Cell {
                        state,
                        handle,
                        section_id,
                    });
                    Poll::Pending
                }
                Some(Outcome::Failed(error)) => Poll::Ready(Err(error)),
                Some(_) => Poll::Ready(Ok(EntityLock {
                    state: Some(state),
                    section_id,
                })),
            },
        }
    }
}

/// A held critical section. Dropping it (or calling [`release`](Self::release)) sends one unlock per entity.
pub struct EntityLock {
    state: Option<Rc<RefCell<OrchState>>>,
    section_id: String,
}

impl fmt::Debug for EntityLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityLock")
            .field("critical_section_id", &self.section_id)
            .finish()
    }
}

impl EntityLock {
    /// The critical section id.
    pub fn critical_section_id(&self) -> &str {
        &self.section_id
    }

    /// Leaves the critical section now.
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        let Ok(mut st) = state.try_borrow_mut() else {
            return;
        };
        // A guard dropped while the executor tears the code down (end of turn) must not decide anything: the
        // critical section continues in the next turn.
        if st.closed {
            return;
        }
        // Only one critical section can be open at a time, and its id may have been renamed by the backend's
        // confirmation, so whichever section is open is this guard's.
        st.exit_critical_section();
    }
}

impl Drop for EntityLock {
    fn drop(&mut self) {
        self.release_inner();
    }
}
