//! Durable timers, judged from what the backend recorded rather than from the test's own clock.
//!
//! Every turn of an orchestration begins with `OrchestratorStarted`, stamped with the time the turn was dispatched,
//! followed by the events delivered to it. A `TimerFired` event therefore fired no earlier than its fire time
//! exactly when the `OrchestratorStarted` of its turn is at or after the `fireAt` it carries; and the timer it
//! fires must be one the orchestration created, with the same fire time, and fire once.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use durable_proto::HistoryEvent;
use durable_proto::history_event::EventType;

/// One durable timer that fired, as the history recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredTimer {
    /// The id of the `CreateTimer` action (`timerId` of the `TimerFired` event).
    pub id: i32,
    /// When the timer was due.
    pub fire_at: SystemTime,
    /// When the turn that delivered it was dispatched.
    pub delivered_at: SystemTime,
}

impl FiredTimer {
    /// How long after its fire time the timer was delivered.
    pub fn lateness(&self) -> Duration {
        self.delivered_at
            .duration_since(self.fire_at)
            .unwrap_or_default()
    }
}

/// The timers that fired in `history`, each checked: created by the orchestration with the same fire time,
/// fired once, and delivered in a turn dispatched at or after its fire time. `Err` says which check failed.
///
/// Histories in either shape are accepted: with or without `OrchestratorCompleted` after each turn.
pub fn fired_timers(history: &[HistoryEvent]) -> Result<Vec<FiredTimer>, String> {
    let mut created: HashMap<i32, SystemTime> = HashMap::new();
    let mut fired = Vec::new();
    let mut turn_started: Option<SystemTime> = None;
    for (position, event) in history.iter().enumerate() {
        match &event.event_type {
            Some(EventType::OrchestratorStarted(_)) => {
                turn_started = Some(time(&event.timestamp).ok_or_else(|| {
                    format!("event {position}: OrchestratorStarted without a timestamp")
                })?);
            }
            Some(EventType::TimerCreated(timer)) => {
                let fire_at = time(&timer.fire_at)
                    .ok_or_else(|| format!("event {position}: TimerCreated without fireAt"))?;
                created.insert(event.event_id, fire_at);
            }
            Some(EventType::TimerFired(timer)) => {
                let id = timer.timer_id;
                let fire_at = time(&timer.fire_at)
                    .ok_or_else(|| format!("event {position}: TimerFired {id} without fireAt"))?;
                let Some(asked) = created.get(&id) else {
                    return Err(format!(
                        "event {position}: timer {id} fired but was never created"
                    ));
                };
                if *asked != fire_at {
                    return Err(format!(
                        "event {position}: timer {id} was created for {} but fired for {}",
                        show(*asked),
                        show(fire_at)
                    ));
                }
                if fired.iter().any(|t: &FiredTimer| t.id == id) {
                    return Err(format!("event {position}: timer {id} fired twice"));
                }
                let Some(delivered_at) = turn_started else {
                    return Err(format!(
                        "event {position}: timer {id} fired outside a turn (no OrchestratorStarted before it)"
                    ));
                };
                if delivered_at < fire_at {
                    return Err(format!(
                        "event {position}: timer {id} due at {} was delivered in a turn dispatched at {}, {:?} early",
                        show(fire_at),
                        show(delivered_at),
                        fire_at.duration_since(delivered_at).unwrap_or_default()
                    ));
                }
                fired.push(FiredTimer {
                    id,
                    fire_at,
                    delivered_at,
                });
            }
            _ => {}
        }
    }
    Ok(fired)
}

fn time(timestamp: &Option<prost_types::Timestamp>) -> Option<SystemTime> {
    timestamp.and_then(|t| SystemTime::try_from(t).ok())
}

fn show(at: SystemTime) -> String {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09} s", since.as_secs(), since.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use durable_proto::{
        ExecutionStartedEvent, OrchestratorStartedEvent, TimerCreatedEvent, TimerFiredEvent,
    };

    fn at(millis: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: millis / 1000,
            nanos: i32::try_from((millis % 1000) * 1_000_000).unwrap(),
        })
    }

    fn turn(millis: i64) -> HistoryEvent {
        HistoryEvent {
            event_id: -1,
            timestamp: at(millis),
            event_type: Some(EventType::OrchestratorStarted(OrchestratorStartedEvent {})),
        }
    }

    fn created(id: i32, fire_at: i64) -> HistoryEvent {
        HistoryEvent {
            event_id: id,
            timestamp: at(0),
            event_type: Some(EventType::TimerCreated(TimerCreatedEvent {
                fire_at: at(fire_at),
            })),
        }
    }

    fn fired(id: i32, fire_at: i64) -> HistoryEvent {
        HistoryEvent {
            event_id: -1,
            timestamp: at(fire_at),
            event_type: Some(EventType::TimerFired(TimerFiredEvent {
                fire_at: at(fire_at),
                timer_id: id,
            })),
        }
    }

    fn started() -> HistoryEvent {
        HistoryEvent {
            event_id: -1,
            timestamp: at(0),
            event_type: Some(EventType::ExecutionStarted(ExecutionStartedEvent::default())),
        }
    }

    #[test]
    fn a_timer_delivered_at_or_after_its_time_passes() {
        let history = [
            turn(1_000),
            started(),
            created(0, 2_000),
            turn(2_000),
            fired(0, 2_000),
        ];
        let timers = fired_timers(&history).unwrap();
        assert_eq!(timers.len(), 1);
        assert_eq!(timers[0].lateness(), Duration::ZERO);
    }

    #[test]
    fn a_timer_delivered_early_is_caught() {
        let history = [
            turn(1_000),
            started(),
            created(0, 2_000),
            turn(1_999),
            fired(0, 2_000),
        ];
        let error = fired_timers(&history).unwrap_err();
        assert!(error.contains("1ms early"), "{error}");
    }

    #[test]
    fn timers_never_created_changed_or_fired_twice_are_caught() {
        let never = [turn(1_000), started(), turn(3_000), fired(0, 2_000)];
        assert!(fired_timers(&never).unwrap_err().contains("never created"));
        let changed = [turn(1_000), created(0, 2_000), turn(3_000), fired(0, 2_500)];
        assert!(fired_timers(&changed).unwrap_err().contains("created for"));
        let twice = [
            turn(1_000),
            created(0, 2_000),
            turn(3_000),
            fired(0, 2_000),
            turn(4_000),
            fired(0, 2_000),
        ];
        assert!(fired_timers(&twice).unwrap_err().contains("twice"));
    }
}
