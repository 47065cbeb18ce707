//! Scripted results: what the test answers for the tasks the orchestration opened.

use std::borrow::Borrow;

use serde::Serialize;

use super::{Open, OrchestrationHarness};
use crate::entity_id::EntityId;
use crate::errors::{FailureDetails, TaskKind};
use crate::testing::TestingError;
use crate::testing::history::{self, to_json};
use crate::typed::{CallKind, Callable, EntityOperation, EntityType};

impl OrchestrationHarness {
    fn take_open(
        &mut self,
        what: &str,
        matches: impl Fn(&Open) -> bool,
    ) -> Result<(i32, Open), TestingError> {
        let id = self
            .open
            .iter()
            .find(|(_, o)| matches(o))
            .map(|(id, _)| *id);
        match id.and_then(|id| self.open.remove(&id).map(|o| (id, o))) {
            Some(found) => Ok(found),
            None => Err(TestingError::NoOpenTask {
                what: what.to_string(),
                open: self.open.values().map(|o| format!("{o:?}")).collect(),
            }),
        }
    }

    fn take_task(&mut self, kind: TaskKind, name: &str) -> Result<i32, TestingError> {
        let what = format!("{kind} '{name}'");
        let (id, _) = self.take_open(&what, |o| match o {
            Open::Activity { name: n } => {
                kind == TaskKind::Activity && n.eq_ignore_ascii_case(name)
            }
            Open::SubOrchestration { name: n } => {
                kind == TaskKind::SubOrchestration && n.eq_ignore_ascii_case(name)
            }
            _ => false,
        })?;
        Ok(id)
    }

    /// Queues the result of the oldest open call of an activity, or of an orchestrator called as a
    /// sub-orchestration, declared by type.
    pub fn complete<K: CallKind, F: Callable<K>>(
        &mut self,
        function: F,
        output: impl Borrow<F::Output>,
    ) -> Result<&mut Self, TestingError> {
        let _ = function;
        let output = to_json(F::NAME, output.borrow())?;
        let id = self.take_task(K::TASK, F::NAME)?;
        self.queued.push(match K::TASK {
            TaskKind::Activity => history::task_completed(id, Some(&output)),
            _ => history::sub_orchestration_completed(id, Some(&output)),
        });
        Ok(self)
    }

    /// Queues the failure of the oldest open call of an activity or sub-orchestration declared by type.
    pub fn fail<K: CallKind, F: Callable<K>>(
        &mut self,
        function: F,
        details: FailureDetails,
    ) -> Result<&mut Self, TestingError> {
        let _ = function;
        let id = self.take_task(K::TASK, F::NAME)?;
        self.queued.push(match K::TASK {
            TaskKind::Activity => history::task_failed(id, &details),
            _ => history::sub_orchestration_failed(id, &details),
        });
        Ok(self)
    }

    /// Queues the result of the oldest open call of the activity `name`.
    pub fn complete_activity<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        output: &T,
    ) -> Result<&mut Self, TestingError> {
        let output = to_json(name, output)?;
        let id = self.take_task(TaskKind::Activity, name)?;
        self.queued.push(history::task_completed(id, Some(&output)));
        Ok(self)
    }

    /// Queues the failure of the oldest open call of the activity `name`.
    pub fn fail_activity(
        &mut self,
        name: &str,
        details: FailureDetails,
    ) -> Result<&mut Self, TestingError> {
        let id = self.take_task(TaskKind::Activity, name)?;
        self.queued.push(history::task_failed(id, &details));
        Ok(self)
    }

    /// Queues the output of the oldest open sub-orchestration of the orchestrator `name`.
    pub fn complete_sub_orchestration<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        output: &T,
    ) -> Result<&mut Self, TestingError> {
        let output = to_json(name, output)?;
        let id = self.take_task(TaskKind::SubOrchestration, name)?;
        self.queued
            .push(history::sub_orchestration_completed(id, Some(&output)));
        Ok(self)
    }

    /// Queues the failure of the oldest open sub-orchestration of the orchestrator `name`.
    pub fn fail_sub_orchestration(
        &mut self,
        name: &str,
        details: FailureDetails,
    ) -> Result<&mut Self, TestingError> {
        let id = self.take_task(TaskKind::SubOrchestration, name)?;
        self.queued
            .push(history::sub_orchestration_failed(id, &details));
        Ok(self)
    }

    fn take_entity_call(
        &mut self,
        entity: &EntityId,
        operation: &str,
    ) -> Result<String, TestingError> {
        let what = format!("call of '{operation}' on {entity}");
        match self.take_open(&what, |o| {
            matches!(o, Open::EntityCall { entity: e, operation: op, .. } if e == entity && op.eq_ignore_ascii_case(operation))
        })? {
            (_, Open::EntityCall { request_id, .. }) => Ok(request_id),
            _ => Err(TestingError::NoOpenTask { what, open: Vec::new() }),
        }
    }

    /// Queues the result of the oldest open call of `operation` on `entity`.
    pub fn complete_entity_call<T: Serialize + ?Sized>(
        &mut self,
        entity: &EntityId,
        operation: &str,
        output: &T,
    ) -> Result<&mut Self, TestingError> {
        let output = to_json(operation, output)?;
        let request_id = self.take_entity_call(entity, operation)?;
        self.queued
            .push(history::entity_completed(&request_id, Some(&output)));
        Ok(self)
    }

    /// Queues the result of the oldest open call of an entity operation declared by type, on the entity with `key`.
    pub fn complete_entity_operation<Op: EntityOperation>(
        &mut self,
        key: impl Into<String>,
        operation: Op,
        output: impl Borrow<Op::Output>,
    ) -> Result<&mut Self, TestingError> {
        let _ = operation;
        self.complete_entity_call(&Op::Entity::id(key), Op::NAME, output.borrow())
    }

    /// Queues the failure of the oldest open call of `operation` on `entity`.
    pub fn fail_entity_call(
        &mut self,
        entity: &EntityId,
        operation: &str,
        details: FailureDetails,
    ) -> Result<&mut Self, TestingError> {
        let request_id = self.take_entity_call(entity, operation)?;
        self.queued
            .push(history::entity_failed(&request_id, &details));
        Ok(self)
    }

    /// Queues the grant of the open lock request (the critical section of `lock_entities`).
    pub fn grant_lock(&mut self) -> Result<&mut Self, TestingError> {
        if let (_, Open::Lock { section_id }) =
            self.take_open("lock request", |o| matches!(o, Open::Lock { .. }))?
        {
            self.queued.push(history::lock_granted(&section_id));
        }
        Ok(self)
    }
}
