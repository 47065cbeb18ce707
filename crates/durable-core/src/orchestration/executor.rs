//! The replay loop: past events, then new events, one at a time, polling the orchestrator code whenever an event
//! completed something it may be waiting for.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::context::OrchestrationContext;
use super::events::apply;
use super::state::OrchState;
use crate::errors::{FailureDetails, OrchestrationError, ReplayError, panic_message};
use crate::proto;
use crate::proto::history_event::EventType;
use crate::registry::{OrchestratorFuture, Registry};

pub(crate) struct Executor<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) state: Rc<RefCell<OrchState>>,
    pub(crate) root: Option<OrchestratorFuture>,
    pub(crate) started: bool,
    pub(crate) suspended: bool,
    pub(crate) suspended_events: Vec<&'a proto::HistoryEvent>,
    /// The first error replay itself ran into (kept for the replay check, which reports it structurally).
    pub(crate) replay_error: Option<ReplayError>,
}

/// Replays `request` and returns the response. Never panics: user panics fail the orchestration, and an engine
/// bug is reported as a FAILED completion rather than crashing the worker.
pub(crate) fn execute(
    registry: &Registry,
    request: &proto::OrchestratorRequest,
) -> proto::OrchestratorResponse {
    match catch_unwind(AssertUnwindSafe(|| run(registry, request))) {
        Ok(mut response) => {
            crate::trace::annotate_response(request, &mut response);
            response
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            tracing::error!(instance_id = %request.instance_id, "replay engine failure: {message}");
            let details =
                FailureDetails::new("InternalError", format!("replay engine failure: {message}"));
            proto::OrchestratorResponse {
                instance_id: request.instance_id.clone(),
                actions: vec![proto::OrchestratorAction {
                    id: -1,
                    orchestrator_action_type: Some(
                        proto::orchestrator_action::OrchestratorActionType::CompleteOrchestration(
                            proto::CompleteOrchestrationAction {
                                orchestration_status: proto::OrchestrationStatus::Failed as i32,
                                failure_details: Some(details.to_proto()),
                                ..Default::default()
                            },
                        ),
                    ),
                }],
                ..Default::default()
            }
        }
    }
}

/// The request's instance ID; some backends only put it in `ExecutionStarted`, and the response must still name
/// the instance.
pub(crate) fn instance_id_of(request: &proto::OrchestratorRequest) -> String {
    if !request.instance_id.is_empty() {
        return request.instance_id.clone();
    }
    request
        .past_events
        .iter()
        .chain(&request.new_events)
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => s
                .orchestration_instance
                .as_ref()
                .map(|i| i.instance_id.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn run(registry: &Registry, request: &proto::OrchestratorRequest) -> proto::OrchestratorResponse {
    let instance_id = instance_id_of(request);
    if crate::registry::state_left_out(&request.properties) {
        return proto::OrchestratorResponse {
            instance_id,
            requires_history: true,
            ..Default::default()
        };
    }
    if let Some(response) = super::rewind::respond(&instance_id, request) {
        return response;
    }
    let state = Rc::new(RefCell::new(OrchState::new(
        instance_id.clone(),
        registry.replay_options().maximum_timer_interval,
    )));
    state.borrow_mut().execution_id = request.execution_id.clone();
    state.borrow_mut().default_version = crate::versioning::default_version(registry, request);
    state.borrow_mut().http_poll_interval = crate::http::poll_interval(request);
    let span = tracing::debug_span!("replay", instance_id = %instance_id);
    let _guard = span.enter();

    let mut executor = Executor {
        registry,
        state: state.clone(),
        root: None,
        started: false,
        suspended: false,
        suspended_events: Vec::new(),
        replay_error: None,
    };
    for event in &request.past_events {
        executor.process(event);
    }
    state.borrow_mut().is_replaying = false;
    for event in &request.new_events {
        executor.process(event);
    }
    // A start that is only buffered behind a suspension is not missing: the instance waits for its resumption.
    let start_is_suspended = executor
        .suspended_events
        .iter()
        .any(|e| matches!(e.event_type, Some(EventType::ExecutionStarted(_))));
    if !executor.started && !start_is_suspended {
        state.borrow_mut().fail_replay(
            ReplayError::InvalidHistory("the request has no ExecutionStarted event".into())
                .to_failure_details(),
        );
    }

    {
        // Awaiting something that is not a durable task (a runtime timer, a channel) can never make progress here,
        // since nothing but history wakes the code. Say so instead of leaving the instance silently stuck.
        let st = state.borrow();
        let waiting_on_nothing = st.open.is_empty() && st.waiters.values().all(|q| q.is_empty());
        if executor.root.is_some() && !st.completed && !executor.suspended && waiting_on_nothing {
            tracing::warn!(
                orchestration = %st.name,
                "the orchestrator is waiting, but not on any durable task, so it can never resume; await only \
                 futures created by OrchestrationContext"
            );
        }
    }

    // Tear down: from here on, drop-time side effects of user code must not add decisions.
    state.borrow_mut().closed = true;
    if let Some(root) = executor.root.take()
        && catch_unwind(AssertUnwindSafe(move || drop(root))).is_err()
    {
        tracing::warn!("orchestrator code panicked while being dropped");
    }
    let suspended = executor.suspended;
    drop(executor);

    let mut st = state.borrow_mut();
    st.finalize_continue_as_new();
    let actions = if suspended && !st.completed {
        Vec::new()
    } else {
        std::mem::take(&mut st.actions).into_values().collect()
    };
    proto::OrchestratorResponse {
        instance_id,
        actions,
        custom_status: st.custom_status.clone(),
        ..Default::default()
    }
}

fn is_suspendable(event: &proto::HistoryEvent) -> bool {
    !matches!(
        event.event_type,
        Some(EventType::ExecutionResumed(_)) | Some(EventType::ExecutionTerminated(_))
    )
}

impl<'a> Executor<'a> {
    pub(crate) fn process(&mut self, event: &'a proto::HistoryEvent) {
        if self.suspended && is_suspendable(event) {
            self.suspended_events.push(event);
            return;
        }
        if let Some(EventType::ExecutionResumed(_)) = &event.event_type {
            if self.suspended {
                self.suspended = false;
                let buffered = std::mem::take(&mut self.suspended_events);
                for event in buffered {
                    self.process(event);
                }
            }
            return;
        }
        if let Err(error) = apply(self, event) {
            let replaying = self.state.borrow().is_replaying;
            if !replaying {
                tracing::warn!("{error}");
            }
            self.state
                .borrow_mut()
                .fail_replay(error.to_failure_details());
            self.replay_error.get_or_insert(error);
            return;
        }
        self.poll_if_dirty();
    }

    pub(crate) fn start(&mut self, input: Option<&str>, name: &str) -> Result<(), ReplayError> {
        let factory = self
            .registry
            .orchestrator(name)
            .ok_or_else(|| ReplayError::OrchestratorNotFound(name.to_string()))?;
        let ctx = OrchestrationContext::new(self.state.clone());
        let created = catch_unwind(AssertUnwindSafe(|| factory(ctx, input)))
            .map_err(|payload| ReplayError::Panic(panic_message(payload.as_ref())))?;
        self.root = Some(created?);
        self.state.borrow_mut().dirty = true;
        Ok(())
    }

    fn poll_if_dirty(&mut self) {
        {
            let mut st = self.state.borrow_mut();
            if st.completed || self.root.is_none() || !st.dirty {
                return;
            }
            st.dirty = false;
        }
        let Some(root) = self.root.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let polled = catch_unwind(AssertUnwindSafe(|| root.as_mut().poll(&mut cx)));
        let finished = !matches!(polled, Ok(Poll::Pending));
        if finished {
            // A finished future holds nothing that matters; drop it before deciding the outcome.
            let root = self.root.take();
            if catch_unwind(AssertUnwindSafe(move || drop(root))).is_err() {
                tracing::warn!("orchestrator code panicked while being dropped");
            }
        }
        let mut st = self.state.borrow_mut();
        if let Some(can) = st.continue_as_new.as_ref() {
            let input = can.input.clone();
            st.complete(proto::OrchestrationStatus::ContinuedAsNew, input, None);
            return;
        }
        match polled {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(Ok(output))) => {
                st.complete(proto::OrchestrationStatus::Completed, output, None)
            }
            Ok(Poll::Ready(Err(error))) => st.complete(
                proto::OrchestrationStatus::Failed,
                None,
                Some(OrchestrationError::into_details(error)),
            ),
            Err(payload) => {
                let error = ReplayError::Panic(panic_message(payload.as_ref()));
                st.complete(
                    proto::OrchestrationStatus::Failed,
                    None,
                    Some(error.to_failure_details()),
                );
            }
        }
    }
}
