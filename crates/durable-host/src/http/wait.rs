//! The create-and-wait parameters of the management API (`timeout`, `pollingInterval`), checked before anything
//! is scheduled.
//!
//! The extension reads both as a number of seconds (`double.TryParse`, then `TimeSpan.FromSeconds`;
//! Azure/azure-functions-durable-extension `src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`). It ignores a
//! value that does not parse and fails with a 500 after the instance was already started when one does not fit a
//! `TimeSpan`; here any such value is a 400 that names the parameter, and nothing is started.

use std::time::Duration;

use super::Incoming;

/// The longest a request waits for an instance, whatever its `timeout`: past it the answer is the usual 202, as
/// when any timeout runs out. A client that wants to wait longer polls the status URL.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60 * 60);

/// .NET's `TimeSpan.MaxValue` in seconds: the largest duration the extension can represent.
const TIMESPAN_MAX_SECONDS: f64 = 922_337_203_685.477;

/// How long a start or restart should wait for the instance to finish; `None` when it should not wait.
///
/// `pollingInterval` is checked but not used otherwise: the wait happens in the backend, which needs no polling
/// (the extension ignores the interval too for storage providers that wait without polling).
pub(super) fn wait_for(req: &Incoming) -> Result<Option<Duration>, String> {
    let timeout = seconds(req.query_value("timeout"), "timeout")?;
    seconds(req.query_value("pollingInterval"), "pollingInterval")?;
    Ok(timeout.map(|t| t.min(MAX_WAIT)))
}

/// A non-negative, finite number of seconds that fits a `TimeSpan`; fractions allowed.
pub(crate) fn seconds(text: Option<String>, name: &str) -> Result<Option<Duration>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let refused = || {
        format!(
            "'{name}' must be a number of seconds from 0 to {}.",
            TIMESPAN_MAX_SECONDS.trunc()
        )
    };
    let value: f64 = text.trim().parse().map_err(|_| refused())?;
    if !(0.0..=TIMESPAN_MAX_SECONDS).contains(&value) {
        // Also NaN, which no range contains.
        return Err(refused());
    }
    Duration::try_from_secs_f64(value)
        .map(Some)
        .map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Option<Duration>, String> {
        seconds(Some(text.to_owned()), "timeout")
    }

    #[test]
    fn seconds_as_the_extension_reads_them() {
        assert_eq!(parse("60").unwrap(), Some(Duration::from_secs(60)));
        assert_eq!(parse(" 0.25 ").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(parse("0").unwrap(), Some(Duration::ZERO));
        assert_eq!(seconds(None, "timeout").unwrap(), None);
        for bad in [
            "",
            "x",
            "-1",
            "NaN",
            "inf",
            "-inf",
            "1e300",
            "922337203686",
            "0x10",
            "1,5",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("'timeout'"), "{bad}: {e}");
        }
        assert!(parse("922337203685").is_ok());
    }

    proptest! {
        #[test]
        fn any_text_is_a_duration_or_a_clear_refusal(text in ".{0,40}") {
            match parse(&text) {
                Ok(Some(d)) => prop_assert!(d.as_secs_f64() <= TIMESPAN_MAX_SECONDS),
                Ok(None) => prop_assert!(false, "a present value is never absent"),
                Err(e) => prop_assert!(e.contains("'timeout'")),
            }
        }

        #[test]
        fn any_number_is_a_duration_or_a_clear_refusal(value in any::<f64>()) {
            let _ = parse(&value.to_string());
            let _ = parse(&format!("{value:e}"));
        }
    }
}
