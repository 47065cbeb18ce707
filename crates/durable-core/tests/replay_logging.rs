//! Replay-aware logging: `ctx.log_*` emits each line once, in the turn where the code runs live.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use durable_core::{OrchestrationContext, OrchestrationError, Registry};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Collects the messages of events that carry an `instance_id` field.
#[derive(Default, Clone)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Fields {
    message: String,
    has_instance: bool,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "instance_id" => self.has_instance = true,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "instance_id" => self.has_instance = true,
            _ => {}
        }
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields {
            message: String::new(),
            has_instance: false,
        };
        event.record(&mut fields);
        if fields.has_instance && fields.message.starts_with("step") {
            self.0.lock().unwrap().push(fields.message);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn log_lines_are_emitted_once_across_turns() {
    let mut r = Registry::new();
    r.add_orchestrator("chatty", |ctx: OrchestrationContext, (): ()| async move {
        ctx.log_info("step 1");
        ctx.create_timer_after(Duration::from_secs(1)).await?;
        ctx.log_warn("step 2");
        ctx.create_timer_after(Duration::from_secs(1)).await?;
        ctx.log_error("step 3");
        Ok::<_, OrchestrationError>(())
    });
    let collect = Collect::default();
    let run = tracing::subscriber::with_default(collect.clone(), || {
        run_incremental(
            &r,
            "chatty",
            None,
            vec![
                step(1, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
                step(2, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            ],
            Shape::Scheduler,
        )
    });
    assert_eq!(summary(run.last()), ["2 Complete Completed null"]);
    assert_eq!(*collect.0.lock().unwrap(), ["step 1", "step 2", "step 3"]);
}
