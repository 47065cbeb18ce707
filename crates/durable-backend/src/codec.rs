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
    fn timestamps_round_trip_in_milliseconds() {
        for value in [0, 1, 999, 1_000, 1_700_000_000_123, -1_500] {
            assert_eq!(ms(&ts(value)), value);
        }
    }
}
