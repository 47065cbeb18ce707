//! Small conversions shared by the store and the service: clock, timestamps, event construction, blobs.

use std::time::{SystemTime, UNIX_EPOCH};

use durable_proto::history_event::EventType;
use durable_proto::{HistoryEvent, OrchestrationStatus};
use prost::Message;
use prost_types::Timestamp;

/// Milliseconds since the Unix epoch. All times in the store are kept in this unit.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub(crate) fn ms(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

/// A history event with the scheduler's conventions: messages that do not confirm an action carry eventId -1.
pub(crate) fn event(event_id: i32, at_ms: i64, event_type: EventType) -> HistoryEvent {
    HistoryEvent {
        event_id,
        timestamp: Some(ts(at_ms)),
        event_type: Some(event_type),
    }
}

pub(crate) fn encode<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

pub(crate) fn decode_event(bytes: &[u8]) -> Result<HistoryEvent, prost::DecodeError> {
    HistoryEvent::decode(bytes)
}

/// A turn's events as one history row: each event as field 1 of a `HistoryChunk`, the protocol's own list of
/// events, so the row decodes as one.
pub(crate) fn encode_turn(events: &[HistoryEvent]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(events.iter().map(|e| e.encoded_len() + 6).sum());
    for e in events {
        // Field 1, length-delimited.
        bytes.push(0x0a);
        // Writing to a Vec cannot run out of room.
        let _ = e.encode_length_delimited(&mut bytes);
    }
    bytes
}

/// Appends the events of one history row: a turn row (`turn`) holds a turn's events, a row written by versions
/// before schema 9 holds one. `OrchestratorCompleted` rows of earlier versions are skipped, as readers always did.
pub(crate) fn decode_history_row(
    bytes: &[u8],
    turn: bool,
    out: &mut Vec<HistoryEvent>,
) -> Result<(), prost::DecodeError> {
    let keep = |e: &HistoryEvent| {
        !matches!(
            e.event_type,
            Some(durable_proto::history_event::EventType::OrchestratorCompleted(_))
        )
    };
    if turn {
        let chunk = durable_proto::HistoryChunk::decode(bytes)?;
        out.extend(chunk.events.into_iter().filter(keep));
    } else {
        let event = decode_event(bytes)?;
        if keep(&event) {
            out.push(event);
        }
    }
    Ok(())
}

pub(crate) fn status_from_i32(value: i32) -> OrchestrationStatus {
    OrchestrationStatus::try_from(value).unwrap_or(OrchestrationStatus::Running)
}

pub(crate) fn is_terminal(value: i32) -> bool {
    status_from_i32(value).is_terminal()
}

/// A fresh opaque identifier (execution ids, lease tokens, generated instance ids).
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_row_decodes_to_its_events_in_order() {
        let events: Vec<HistoryEvent> = (0..300)
            .map(|i| {
                event(
                    i,
                    1_700_000_000_000 + i64::from(i),
                    EventType::TimerCreated(durable_proto::TimerCreatedEvent {
                        fire_at: Some(ts(i64::from(i) * 1000)),
                    }),
                )
            })
            .collect();
        let bytes = encode_turn(&events);
        assert_eq!(
            durable_proto::HistoryChunk::decode(bytes.as_slice())
                .unwrap()
                .events,
            events
        );
        let mut out = Vec::new();
        decode_history_row(&bytes, true, &mut out).unwrap();
        decode_history_row(&encode(&events[7]), false, &mut out).unwrap();
        let completed = event(
            -1,
            0,
            EventType::OrchestratorCompleted(durable_proto::OrchestratorCompletedEvent {}),
        );
        decode_history_row(&encode(&completed), false, &mut out).unwrap();
        decode_history_row(
            &encode_turn(&[completed.clone(), events[1].clone()]),
            true,
            &mut out,
        )
        .unwrap();
        let mut expected = events.clone();
        expected.push(events[7].clone());
        expected.push(events[1].clone());
        assert_eq!(out, expected);
        assert!(encode_turn(&[]).is_empty());
    }

    #[test]
    fn timestamps_round_trip_in_milliseconds() {
        for value in [0, 1, 999, 1_000, 1_700_000_000_123, -1_500] {
            assert_eq!(ms(&ts(value)), value);
        }
    }
}
