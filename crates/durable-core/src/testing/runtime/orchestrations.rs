//! Orchestrator turns in the in-process runtime, and what their decisions set off.

use super::instance::begin_generation;
use super::join;
use super::{InProcessRuntime, PendingActivity, TimerTarget};
use crate::errors::FailureDetails;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::testing::RuntimeStatus;
use crate::testing::history;

impl InProcessRuntime {
    pub(super) fn run_turn(&mut self, instance_id: &str) {
        let now = self.now;
        let Some(instance) = self.instances.get_mut(instance_id) else {
            return;
        };
        let mut new_events = vec![history::orchestrator_started(now)];
        new_events.append(&mut instance.inbox);
        let request = proto::OrchestratorRequest {
            instance_id: instance_id.to_string(),
            execution_id: Some(instance.execution_id()),
            past_events: instance.history.clone(),
            new_events: new_events.clone(),
            ..Default::default()
        };
        let response = self.registry.execute_orchestrator(&request);
        instance.history.extend(new_events);
        instance.custom_status.clone_from(&response.custom_status);
        for action in &response.actions {
            if let Some(event) = history::confirmation(action) {
                instance.history.push(event);
            }
        }
        instance.history.push(history::orchestrator_completed());
        for action in response.actions {
            self.apply(instance_id, action);
        }
    }

    /// Carries out one decision of `instance_id`, as a backend does.
    fn apply(&mut self, instance_id: &str, action: proto::OrchestratorAction) {
        let Some(kind) = action.orchestrator_action_type else {
            return;
        };
        let Some(instance) = self.instances.get(instance_id) else {
            return;
        };
        let generation = instance.generation;
        match kind {
            OrchestratorActionType::ScheduleTask(t) => self.activities.push(PendingActivity {
                instance_id: instance_id.to_string(),
                generation,
                request: proto::ActivityRequest {
                    name: t.name,
                    version: t.version,
                    input: t.input,
                    orchestration_instance: Some(proto::OrchestrationInstance {
                        instance_id: instance_id.to_string(),
                        execution_id: Some(instance.execution_id()),
                    }),
                    task_id: action.id,
                    parent_trace_context: None,
                    tags: t.tags,
                },
            }),
            OrchestratorActionType::CreateSubOrchestration(s) => {
                let parent = Some((instance_id.to_string(), action.id, instance.name.clone()));
                if let Err(error) =
                    self.create_instance(&s.instance_id, &s.name, s.input, s.version, parent)
                {
                    let details = FailureDetails::new("InstanceExists", error.to_string());
                    self.deliver(
                        instance_id,
                        generation,
                        history::sub_orchestration_failed(action.id, &details),
                    );
                }
            }
            OrchestratorActionType::CreateTimer(t) => {
                let fire_at = history::timestamp(t.fire_at.as_ref()).unwrap_or(self.now);
                let target = TimerTarget::Orchestration {
                    instance_id: instance_id.to_string(),
                    generation,
                    timer_id: action.id,
                };
                self.add_timer(fire_at, target);
            }
            OrchestratorActionType::SendEvent(e) => {
                let target = e.instance.map(|i| i.instance_id).unwrap_or_default();
                if let Some(target) = self.instances.get_mut(&target)
                    && !target.status.is_terminal()
                {
                    target
                        .inbox
                        .push(history::event_raised(&e.name, e.data.as_deref()));
                }
            }
            OrchestratorActionType::SendEntityMessage(m) => {
                if let Some(message) = m.entity_message_type {
                    self.entity_message(instance_id, message);
                }
            }
            OrchestratorActionType::CompleteOrchestration(c) => self.complete(instance_id, c),
            OrchestratorActionType::TerminateOrchestration(t) => {
                let _ = self.terminate(&t.instance_id, &t.reason);
            }
            OrchestratorActionType::RewindOrchestration(_) => {}
        }
    }

    fn deliver(&mut self, instance_id: &str, generation: u32, event: proto::HistoryEvent) {
        if let Some(instance) = self.instances.get_mut(instance_id)
            && instance.generation == generation
            && !instance.status.is_terminal()
        {
            instance.inbox.push(event);
        }
    }

    fn complete(&mut self, instance_id: &str, completion: proto::CompleteOrchestrationAction) {
        let Some(instance) = self.instances.get_mut(instance_id) else {
            return;
        };
        let status = proto::OrchestrationStatus::try_from(completion.orchestration_status);
        let failure = completion
            .failure_details
            .as_ref()
            .map(FailureDetails::from);
        if status == Ok(proto::OrchestrationStatus::ContinuedAsNew) {
            if completion.new_version.is_some() {
                instance.version = completion.new_version;
            }
            let parent = instance.history.iter().find_map(|e| match &e.event_type {
                Some(EventType::ExecutionStarted(s)) => s.parent_instance.clone(),
                _ => None,
            });
            begin_generation(
                instance,
                completion.result,
                parent,
                completion.carryover_events,
            );
            return;
        }
        instance.status = match status {
            Ok(proto::OrchestrationStatus::Completed) => RuntimeStatus::Completed,
            Ok(proto::OrchestrationStatus::Terminated) => RuntimeStatus::Terminated,
            _ => RuntimeStatus::Failed,
        };
        instance.output = completion.result.clone();
        instance.failure.clone_from(&failure);
        instance.inbox.clear();
        let Some((parent_id, task_id)) = instance.parent.clone() else {
            return;
        };
        let event = match instance.status {
            RuntimeStatus::Completed => {
                history::sub_orchestration_completed(task_id, completion.result.as_deref())
            }
            _ => history::sub_orchestration_failed(
                task_id,
                &failure.unwrap_or_else(|| {
                    FailureDetails::new("TerminatedError", "the sub-orchestration was terminated")
                }),
            ),
        };
        if let Some(parent) = self.instances.get_mut(&parent_id)
            && !parent.status.is_terminal()
        {
            parent.inbox.push(event);
        }
    }

    pub(super) async fn run_activities(&mut self) {
        let batch = std::mem::take(&mut self.activities);
        let futures = batch
            .iter()
            .map(|a| self.registry.execute_activity(a.request.clone()))
            .collect();
        let responses = join::JoinAll::new(futures).await;
        for (activity, response) in batch.into_iter().zip(responses) {
            let event = match response.failure_details {
                Some(details) => {
                    history::task_failed(response.task_id, &FailureDetails::from(&details))
                }
                None => history::task_completed(response.task_id, response.result.as_deref()),
            };
            self.deliver(&activity.instance_id, activity.generation, event);
        }
    }
}
