//! Conversions between protobuf timestamps and `time` values.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// `%Y-%m-%dT%H:%M:%S.%fZ`, the format the deterministic GUID name uses.
const GUID_TIME_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// The orchestration clock before any `OrchestratorStarted` event: the same sentinel the Python SDK uses
/// (1000-01-01), so GUIDs derived before the first timestamp still agree.
pub(crate) fn clock_sentinel() -> OffsetDateTime {
    time::macros::datetime!(1000-01-01 0:00 UTC)
}

pub(crate) fn from_timestamp(ts: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

pub(crate) fn to_timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    let nanos = at.unix_timestamp_nanos();
    let seconds = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000);
    prost_types::Timestamp {
        seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
        nanos: i32::try_from(sub).unwrap_or(0),
    }
}

pub(crate) fn format_for_guid(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(GUID_TIME_FORMAT)
        .unwrap_or_default()
}

/// RFC 3339 in UTC, as trace attributes carry times.
pub(crate) fn format_rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `at + d`, saturating at the largest representable time instead of overflowing.
pub(crate) fn add(at: OffsetDateTime, d: Duration) -> OffsetDateTime {
    at.checked_add(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_roundtrip_and_format() {
        let ts = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_789,
        };
        let at = from_timestamp(&ts).unwrap();
        assert_eq!(to_timestamp(at), ts);
        assert_eq!(format_for_guid(at), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            format_for_guid(clock_sentinel()),
            "1000-01-01T00:00:00.000000Z"
        );
    }
}
