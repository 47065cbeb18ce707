//! An orchestrator turn's past events in their wire form. A history row holds its events as the elements of a
//! `HistoryChunk` (field 1); on the wire they are the elements of `OrchestratorRequest.pastEvents` (field 3).
//! Each element is (key, length, event bytes), so a row becomes wire bytes by rewriting the key of each element:
//! the events are neither decoded nor encoded again on their way from the store to the worker.

use durable_proto::{HistoryEvent, OrchestratorRequest, WorkItem, work_item};
use prost::Message;

/// The key of a length-delimited field: its number and wire type 2.
const fn len_key(field: u8) -> u8 {
    field << 3 | 2
}

/// `HistoryChunk.events`: the elements of a turn row.
const CHUNK_EVENTS: u64 = 1;
/// `OrchestratorRequest.pastEvents`.
const PAST_EVENTS_KEY: u8 = len_key(3);
/// `HistoryEvent.orchestratorCompleted`: versions before schema 9 stored one after every turn; readers skip it.
const ORCHESTRATOR_COMPLETED: u64 = 15;

/// The past events of an orchestrator work item as the `pastEvents` field of an `OrchestratorRequest` encodes
/// them: the bytes are a valid `OrchestratorRequest` holding only those events, and what prost writes for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedPastEvents {
    bytes: Vec<u8>,
    events_len: usize,
}

/// A history row that is not the encoding it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("corrupt stored history row: {0}")]
pub(crate) struct MalformedRow(&'static str);

impl EncodedPastEvents {
    /// The events as the `pastEvents` elements of an `OrchestratorRequest` encoding, in history order.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The events' own encoded sizes added up (without their keys and lengths): what the history-streaming
    /// threshold is compared with.
    pub fn events_len(&self) -> usize {
        self.events_len
    }

    /// The events, decoded.
    pub fn decode(&self) -> Result<Vec<HistoryEvent>, prost::DecodeError> {
        Ok(OrchestratorRequest::decode(self.bytes.as_slice())?.past_events)
    }

    /// Puts the events, decoded, into `item`'s orchestrator request, ahead of any it holds.
    pub(crate) fn decode_into(&self, item: &mut WorkItem) -> Result<(), prost::DecodeError> {
        if let Some(work_item::Request::OrchestratorRequest(request)) = &mut item.request
            && !self.is_empty()
        {
            let mut events = self.decode()?;
            events.append(&mut request.past_events);
            request.past_events = events;
        }
        Ok(())
    }

    /// Appends the events of one history row: a turn row (`turn`) holds a turn's events as a `HistoryChunk`, a
    /// row written before schema 9 holds one event. `OrchestratorCompleted` events are left out, as
    /// `codec::decode_history_row` leaves them out.
    pub(crate) fn push_row(&mut self, row: &[u8], turn: bool) -> Result<(), MalformedRow> {
        if !turn {
            return self.push_event(row);
        }
        let mut rest = row;
        while !rest.is_empty() {
            let field = Field::read(&mut rest)?;
            // Other fields of a chunk would be unknown ones, which decoding skips too.
            if field.number == CHUNK_EVENTS && field.wire_type == 2 {
                self.push_event(field.value)?;
            }
        }
        Ok(())
    }

    fn push_event(&mut self, event: &[u8]) -> Result<(), MalformedRow> {
        if is_orchestrator_completed(event)? {
            return Ok(());
        }
        self.bytes.reserve(event.len() + 6);
        self.bytes.push(PAST_EVENTS_KEY);
        // Writing to a Vec cannot run out of room.
        let _ = prost::encode_length_delimiter(event.len(), &mut self.bytes);
        self.bytes.extend_from_slice(event);
        self.events_len += event.len();
        Ok(())
    }
}

/// Whether an encoded `HistoryEvent` is an `OrchestratorCompleted`, from its top-level fields alone.
fn is_orchestrator_completed(mut event: &[u8]) -> Result<bool, MalformedRow> {
    let mut completed = false;
    while !event.is_empty() {
        let field = Field::read(&mut event)?;
        // The event type is a oneof of fields 3 and up: the last one read is the one decoding keeps.
        if field.number >= 3 {
            completed = field.number == ORCHESTRATOR_COMPLETED;
        }
    }
    Ok(completed)
}

/// One field of a protobuf encoding.
#[derive(Debug)]
struct Field<'a> {
    number: u64,
    wire_type: u8,
    /// The contents of a length-delimited field (empty for the other wire types).
    value: &'a [u8],
}

impl<'a> Field<'a> {
    /// Reads the field at the start of `buf` and moves `buf` past it.
    fn read(buf: &mut &'a [u8]) -> Result<Self, MalformedRow> {
        let key = varint(buf)?;
        let number = key >> 3;
        let wire_type = (key & 7) as u8;
        let mut value: &[u8] = &[];
        match wire_type {
            0 => {
                varint(buf)?;
            }
            1 => skip(buf, 8)?,
            2 => {
                let len = usize::try_from(varint(buf)?).map_err(|_| MalformedRow("length"))?;
                let rest: &'a [u8] = buf;
                value = rest.get(..len).ok_or(MalformedRow("truncated field"))?;
                *buf = &rest[len..];
            }
            5 => skip(buf, 4)?,
            _ => return Err(MalformedRow("unsupported wire type")),
        }
        if number == 0 {
            return Err(MalformedRow("field number 0"));
        }
        Ok(Field {
            number,
            wire_type,
            value,
        })
    }
}

fn skip(buf: &mut &[u8], n: usize) -> Result<(), MalformedRow> {
    *buf = buf.get(n..).ok_or(MalformedRow("truncated field"))?;
    Ok(())
}

fn varint(buf: &mut &[u8]) -> Result<u64, MalformedRow> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err(MalformedRow("bad varint"))
}

impl From<MalformedRow> for crate::error::StoreError {
    fn from(error: MalformedRow) -> Self {
        crate::error::StoreError::Internal(error.to_string())
    }
}

#[cfg(test)]
#[path = "past_events_tests.rs"]
pub(crate) mod tests;
