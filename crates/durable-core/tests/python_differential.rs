//! Differential tests against the Python SDK's replay engine (durabletask 1.12.0): the same orchestration written
//! in both languages, fed the same turns, must make the same decisions (harness: `differential/mod.rs`).

mod common;
mod differential;

use common::*;
use differential::*;
use durable_core::FailureDetails;

#[test]
fn same_decisions_for_a_sequence() {
    differential(
        "sequence",
        Some("2"),
        vec![
            step(1, |_| vec![ev::task_completed(0, Some(r#""hi c0""#))]),
            step(2, |_| vec![ev::task_completed(1, Some(r#""hi c1""#))]),
        ],
    );
}

#[test]
fn same_decisions_for_fan_out() {
    differential(
        "fan_out",
        Some("3"),
        vec![
            step(1, |_| vec![ev::task_completed(2, Some("4"))]),
            step(2, |_| {
                vec![
                    ev::task_completed(0, Some("0")),
                    ev::task_completed(1, Some("2")),
                ]
            }),
        ],
    );
}

#[test]
fn same_decisions_for_when_any() {
    differential(
        "race",
        None,
        vec![step(1, |_| {
            vec![
                ev::task_completed(1, Some(r#""B""#)),
                ev::task_completed(0, Some(r#""A""#)),
            ]
        })],
    );
}

#[test]
fn same_decisions_for_buffered_events() {
    differential(
        "approval",
        None,
        vec![step(1, |_| {
            vec![
                ev::event_raised("APPROVAL", Some(r#""one""#)),
                ev::event_raised("approval", Some(r#""two""#)),
            ]
        })],
    );
}

/// Only up to the first retry timer: from the second attempt on, Python reschedules the activity under the first
/// attempt's sequence number, while we (like DurableTask.Core) give every attempt a new one.
#[test]
fn same_decisions_for_retries_up_to_the_second_attempt() {
    differential(
        "retry",
        None,
        vec![step(1, |_| {
            vec![ev::task_failed(0, &FailureDetails::new("Io", "again"))]
        })],
    );
}

#[test]
fn same_decisions_for_long_timers() {
    const DAY: i64 = 24 * 60 * 60;
    differential(
        "sleep",
        Some(&(7 * DAY).to_string()),
        vec![
            step(3 * DAY, |r| vec![ev::timer_fired(0, r.fire_at(0))]),
            step(6 * DAY, |r| vec![ev::timer_fired(1, r.fire_at(1))]),
            step(7 * DAY, |r| vec![ev::timer_fired(2, r.fire_at(2))]),
        ],
    );
}

#[test]
fn same_decisions_for_continue_as_new_with_carryover() {
    differential(
        "counter",
        Some("1"),
        vec![step(1, |_| {
            vec![
                ev::event_raised("add", Some("2")),
                ev::event_raised("Add", Some("3")),
                ev::event_raised("other", Some("4")),
            ]
        })],
    );
}

#[test]
fn same_decisions_for_suspend_resume_and_terminate() {
    differential(
        "two_steps",
        None,
        vec![
            step(1, |_| vec![ev::suspended()]),
            step(2, |_| vec![ev::task_completed(0, Some("1"))]),
            step(3, |_| vec![ev::resumed()]),
            step(4, |_| vec![ev::terminated(Some(r#""stop""#))]),
        ],
    );
}

/// Entity request ids and critical-section ids are deterministic GUIDs on both sides, so Python recognises the
/// responses addressed to the ids we generated.
#[test]
fn same_decisions_and_request_ids_for_entities() {
    differential(
        "call",
        None,
        vec![step(1, |r| {
            vec![ev::entity_completed(&r.request_id(1), Some("5"))]
        })],
    );
    differential(
        "transfer",
        None,
        vec![
            step(1, |r| vec![ev::lock_granted(&r.request_id(0))]),
            step(2, |r| {
                vec![ev::entity_completed(&r.request_id(1), Some("-10"))]
            }),
            step(3, |r| {
                vec![ev::entity_completed(&r.request_id(2), Some("10"))]
            }),
        ],
    );
}

/// The Functions host records entity messages as `EventSent` and answers with `EventRaised` named by the request id.
#[test]
fn same_decisions_for_entities_through_the_functions_host() {
    let response = |result: &str| serde_json::json!({ "result": result }).to_string();
    differential_in(
        "transfer",
        None,
        vec![
            step(1, |r| vec![ev::event_raised(&r.request_id(0), None)]),
            step(2, move |r| {
                vec![ev::event_raised(&r.request_id(1), Some(&response("-10")))]
            }),
            step(3, move |r| {
                vec![ev::event_raised(&r.request_id(2), Some(&response("10")))]
            }),
        ],
        Shape::FunctionsHost,
    );
}

#[test]
fn same_decisions_for_continue_as_new_with_a_new_version() {
    differential(
        "upgrade",
        Some("1"),
        vec![step(1, |_| {
            vec![
                ev::event_raised("add", Some("2")),
                ev::event_raised("other", Some("4")),
            ]
        })],
    );
}

#[test]
fn same_rewind_of_a_failed_activity() {
    let replayed = rewind_differential(
        "two_steps",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(0, Some("1"))]),
            step(2, |_| {
                vec![ev::task_failed(1, &FailureDetails::new("Boom", "b failed"))]
            }),
        ],
    );
    if let Some(replayed) = replayed {
        assert_eq!(replayed, ["1 ScheduleTask b -"]);
    }
}

#[test]
fn same_rewind_of_a_failed_fan_out() {
    let replayed = rewind_differential(
        "fan_out",
        Some("3"),
        vec![step(1, |_| {
            vec![
                ev::task_completed(0, Some("0")),
                ev::task_completed(1, Some("2")),
                ev::task_failed(2, &FailureDetails::new("Boom", "two failed")),
            ]
        })],
    );
    if let Some(replayed) = replayed {
        assert_eq!(replayed, ["2 ScheduleTask double 2"]);
    }
}

#[test]
fn same_rewind_of_a_failed_sub_orchestration() {
    let replayed = rewind_differential(
        "parent",
        None,
        vec![
            step(1, |_| vec![ev::task_completed(0, Some("7"))]),
            step(2, |_| {
                vec![ev::sub_orchestration_failed(
                    1,
                    &FailureDetails::new("Boom", "the child failed"),
                )]
            }),
        ],
    );
    // The child is still created: the parent waits for its new outcome.
    if let Some(replayed) = replayed {
        assert_eq!(replayed, Vec::<String>::new());
    }
}
