//! W3C `traceparent` values and the deterministic identifiers the engine derives from history.

use std::fmt;

use uuid::Uuid;

use crate::proto;

/// One W3C trace context: a trace ID, the ID of the span that is the parent of whatever carries it, and the trace
/// flags (bit 0: sampled). `tracestate` travels beside it, untouched.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The 16-byte trace ID; never all zero.
    pub trace_id: [u8; 16],
    /// The 8-byte span ID; never all zero.
    pub span_id: [u8; 8],
    /// The trace flags byte (`01`: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// The flags of a trace the engine starts itself: sampled.
    pub const SAMPLED: u8 = 1;

    /// Parses a `traceparent` header value as W3C Trace Context level 1 reads it: version `00` must be exactly
    /// four dash-separated fields; a later version may add fields after the fourth; version `ff`, upper-case hex,
    /// wrong lengths and all-zero IDs are rejected.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        let version = hex_bytes::<1>(version)?[0];
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        let trace_id = hex_bytes::<16>(trace)?;
        let span_id = hex_bytes::<8>(span)?;
        let flags = hex_bytes::<1>(flags)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The context a protocol `TraceContext` carries, when its `traceParent` is valid.
    pub fn from_proto(context: &proto::TraceContext) -> Option<Self> {
        Self::parse(&context.trace_parent)
    }

    /// The same trace and flags with another parent span.
    pub fn with_span_id(self, span_id: [u8; 8]) -> Self {
        Self { span_id, ..self }
    }

    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & Self::SAMPLED != 0
    }

    /// The trace ID as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span ID as 16 lower-case hex digits.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// The protocol message, as Microsoft's SDKs fill it: `traceParent`, the (deprecated) `spanID` beside it, and
    /// `traceState` when there is one.
    // The Python SDK still fills the deprecated `spanID`; readers that predate `traceParent` look there.
    #[allow(deprecated)]
    pub fn to_proto(&self, trace_state: Option<&str>) -> proto::TraceContext {
        proto::TraceContext {
            trace_parent: self.header().as_str().to_owned(),
            span_id: self.span_id_hex(),
            trace_state: trace_state.filter(|s| !s.is_empty()).map(str::to_string),
        }
    }
}

/// A version-00 `traceparent` value, formatted on the stack: every turn and traced invocation writes a few of
/// them, and formatting byte by byte through `fmt` cost more than the rest of the trace bookkeeping.
pub(crate) struct Header([u8; HEADER_LEN]);

const HEADER_LEN: usize = 2 + 1 + 32 + 1 + 16 + 1 + 2;

impl Header {
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TraceParent {
    pub(crate) fn header(&self) -> Header {
        let mut out = [b'-'; HEADER_LEN];
        out[..2].copy_from_slice(b"00");
        write_hex(&self.trace_id, &mut out[3..35]);
        write_hex(&self.span_id, &mut out[36..52]);
        write_hex(&[self.flags], &mut out[53..55]);
        Header(out)
    }
}

/// Formats as a version-00 `traceparent` header value.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header().as_str())
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    write_hex(bytes, &mut out);
    // Only ASCII hex digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Lower-case hex of `bytes` into `out`, which holds exactly two digits per byte.
fn write_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// Parses 16 lower-case hex digits as a span ID (how `OrchestrationTraceContext.spanID` and
/// `ExecutionStarted.orchestrationSpanID` carry one).
pub(crate) fn parse_span_id(text: &str) -> Option<[u8; 8]> {
    hex_bytes::<8>(text.trim()).filter(|id| *id != [0; 8])
}

/// What a derived identifier stands for; part of the hashed name, so that the kinds never collide.
#[derive(Clone, Copy)]
pub(crate) enum Derived {
    /// The trace of an orchestration that was started without a parent context.
    Trace,
    /// The orchestration's own span, kept over every turn of one execution.
    Orchestration,
    /// The CLIENT span of the activity or sub-orchestration scheduled with this sequence number.
    Task(i32),
    /// The INTERNAL span of the timer created with this sequence number.
    Timer(i32),
}

/// Identifiers that are a function of the instance, the execution and what they stand for, so that every replay
/// and every worker computes the same ones without storing anything: name-based UUIDs (SHA-1, RFC 9562 v5).
pub(crate) fn derive(instance_id: &str, execution_id: &str, what: Derived) -> [u8; 16] {
    let name = match what {
        Derived::Trace => format!("trace\n{instance_id}\n{execution_id}"),
        Derived::Orchestration => format!("orchestration\n{instance_id}\n{execution_id}"),
        Derived::Task(seq) => format!("task\n{instance_id}\n{execution_id}\n{seq}"),
        Derived::Timer(seq) => format!("timer\n{instance_id}\n{execution_id}\n{seq}"),
    };
    let mut bytes = *Uuid::new_v5(&namespace(), name.as_bytes()).as_bytes();
    // The version and variant bits are fixed in a UUID; scatter them so every bit of an ID can vary. An all-zero
    // ID is invalid in W3C terms; one bit keeps it from ever being one.
    bytes[6] ^= bytes[15];
    bytes[8] ^= bytes[14];
    bytes[7] |= 1;
    bytes
}

pub(crate) fn derive_span(instance_id: &str, execution_id: &str, what: Derived) -> [u8; 8] {
    let full = derive(instance_id, execution_id, what);
    let mut span = [0u8; 8];
    span.copy_from_slice(&full[..8]);
    span
}

fn namespace() -> Uuid {
    // A fixed, arbitrary namespace of our own: changing it would change every derived ID.
    Uuid::from_u128(0x6d1c_4a7e_2b95_4f03_9c1e_7a0d_5b3f_8e21)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_the_w3c_example() {
        let text = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let parsed = TraceParent::parse(text).unwrap();
        assert_eq!(parsed.to_string(), text);
        assert!(parsed.is_sampled());
        assert_eq!(parsed.span_id_hex(), "b7ad6b7169203331");
    }

    #[test]
    fn formats_as_the_fmt_machinery_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&next().to_le_bytes());
            trace_id[8..].copy_from_slice(&next().to_le_bytes());
            let parent = TraceParent {
                trace_id,
                span_id: next().to_le_bytes(),
                flags: next() as u8,
            };
            let slow = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let expected = format!(
                "00-{}-{}-{:02x}",
                slow(&parent.trace_id),
                slow(&parent.span_id),
                parent.flags
            );
            assert_eq!(parent.to_string(), expected);
            assert_eq!(parent.to_proto(None).trace_parent, expected);
            assert_eq!(parent.span_id_hex(), slow(&parent.span_id));
            assert_eq!(parent.trace_id_hex(), slow(&parent.trace_id));
        }
    }

    #[test]
    fn rejects_what_the_spec_rejects() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            TraceParent::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-xyz")
                .is_some()
        );
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derive_span("i", "e", Derived::Task(1));
        assert_eq!(a, derive_span("i", "e", Derived::Task(1)));
        assert_ne!(a, derive_span("i", "e", Derived::Task(2)));
        assert_ne!(a, derive_span("i", "e", Derived::Timer(1)));
        assert_ne!(a, derive_span("i", "e2", Derived::Task(1)));
        assert_ne!(a, [0; 8]);
    }
}
