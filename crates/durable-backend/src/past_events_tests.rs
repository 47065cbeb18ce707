use durable_proto::history_event::EventType;
use durable_proto::{
    EventRaisedEvent, HistoryEvent, OrchestratorCompletedEvent, OrchestratorRequest,
    TaskScheduledEvent,
};
use prost::Message;

use super::{EncodedPastEvents, MalformedRow};
use crate::codec::{decode_history_row, encode, encode_turn, event};

/// An `EventRaised` event with an input of `input` bytes (the work-item encoder's tests use it too).
pub(crate) fn raised(id: i32, input: usize) -> HistoryEvent {
    event(
        id,
        1_700_000_000_000 + i64::from(id),
        EventType::EventRaised(EventRaisedEvent {
            name: format!("e{id}"),
            input: Some("x".repeat(input)),
        }),
    )
}

fn completed() -> HistoryEvent {
    event(
        -1,
        1_700_000_000_000,
        EventType::OrchestratorCompleted(OrchestratorCompletedEvent {}),
    )
}

/// Rows as a store of any schema may hold them: (bytes, turn).
fn rows() -> Vec<(Vec<u8>, bool)> {
    let scheduled = event(
        0,
        1_700_000_000_001,
        EventType::TaskScheduled(TaskScheduledEvent {
            name: "a".into(),
            ..TaskScheduledEvent::default()
        }),
    );
    vec![
        // Rows of versions before schema 9: one event each, with an OrchestratorCompleted after a turn.
        (encode(&raised(1, 3)), false),
        (encode(&completed()), false),
        // Turn rows: small, with lengths of one, two and three bytes, and one an OrchestratorCompleted in it.
        (encode_turn(&[raised(2, 0), scheduled, raised(3, 10)]), true),
        (
            encode_turn(&[raised(4, 200), completed(), raised(5, 20_000)]),
            true,
        ),
        (encode_turn(&[]), true),
        (encode_turn(&[raised(6, 1)]), true),
    ]
}

#[test]
fn rows_become_the_encoding_of_the_events_decoding_them_gives() {
    let mut encoded = EncodedPastEvents::default();
    let mut decoded = Vec::new();
    for (row, turn) in rows() {
        encoded.push_row(&row, turn).unwrap();
        decode_history_row(&row, turn, &mut decoded).unwrap();
    }
    assert_eq!(
        decoded.len(),
        7,
        "the OrchestratorCompleted events are skipped"
    );
    let expected = OrchestratorRequest {
        past_events: decoded.clone(),
        ..OrchestratorRequest::default()
    }
    .encode_to_vec();
    assert_eq!(encoded.as_bytes(), expected.as_slice());
    assert_eq!(encoded.decode().unwrap(), decoded);
    assert_eq!(
        encoded.events_len(),
        decoded.iter().map(Message::encoded_len).sum::<usize>()
    );
    assert!(!encoded.is_empty());
    assert!(EncodedPastEvents::default().decode().unwrap().is_empty());
}

#[test]
fn a_row_that_is_not_an_encoding_is_an_error() {
    let good = encode_turn(&[raised(1, 300)]);
    for cut in [1, 2, 10, good.len() - 1] {
        let mut events = EncodedPastEvents::default();
        assert!(events.push_row(&good[..cut], true).is_err(), "cut at {cut}");
    }
    let mut events = EncodedPastEvents::default();
    assert_eq!(
        events.push_row(
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ],
            true
        ),
        Err(MalformedRow("bad varint"))
    );
    // A group (wire type 3) inside an event.
    assert!(events.push_row(&[0x0b], false).is_err());
    assert!(events.is_empty());
}
