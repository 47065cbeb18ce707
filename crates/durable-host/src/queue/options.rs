//! `extensions.queues` of `host.json`, with the queue extension's defaults and limits (`Azure/azure-sdk-for-net`
//! `sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueuesOptions.cs`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

/// The shortest wait between polls of an empty queue (`QueuePollingIntervals.Minimum`).
pub(crate) const MIN_POLLING_INTERVAL: Duration = Duration::from_millis(100);
/// `maxPollingInterval` when `host.json` sets none. The extension's default is one minute, but it uses two
/// seconds in the development environment (`func start`), and so does the local host.
const DEFAULT_MAX_POLLING_INTERVAL: Duration = Duration::from_secs(2);
/// Storage refuses to hide a message for longer.
const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The service returns at most 32 messages per call.
const MAX_BATCH: u32 = 32;

/// How message text is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Base64 of the message bytes (the extension's default, and what the Functions SDKs write).
    Base64,
    /// The text as it is.
    None,
}

impl Encoding {
    /// Wire text for message bytes. With `None`, bytes that are not UTF-8 are replaced, as `BinaryData.ToString`
    /// does.
    pub(crate) fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Base64 => BASE64.encode(bytes),
            Encoding::None => String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// Message bytes from wire text; `None` when base64 text does not decode.
    pub(crate) fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Base64 => {
                // `Convert.FromBase64String` skips white space.
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                BASE64.decode(compact).ok()
            }
            Encoding::None => Some(text.as_bytes().to_vec()),
        }
    }
}

/// The queue trigger's and the output bindings' settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueuesOptions {
    /// Messages fetched per poll (1 to 32; 16).
    pub(crate) batch_size: u32,
    /// A new batch is fetched once no more than this many messages are in flight (`batchSize / 2` times the
    /// processor count).
    pub(crate) new_batch_threshold: u32,
    /// The longest wait between polls of an empty queue; waits grow from 100 ms up to it.
    pub(crate) max_polling_interval: Duration,
    /// How long a failed message stays invisible before its next attempt (0).
    pub(crate) visibility_timeout: Duration,
    /// Attempts before a message moves to the poison queue (5).
    pub(crate) max_dequeue_count: i64,
    /// How message text is encoded (base64).
    pub(crate) message_encoding: Encoding,
}

impl Default for QueuesOptions {
    fn default() -> Self {
        let batch_size = 16;
        QueuesOptions {
            batch_size,
            new_batch_threshold: default_threshold(batch_size),
            max_polling_interval: DEFAULT_MAX_POLLING_INTERVAL,
            visibility_timeout: Duration::ZERO,
            max_dequeue_count: 5,
            message_encoding: Encoding::Base64,
        }
    }
}

fn default_threshold(batch_size: u32) -> u32 {
    let processors = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1);
    (batch_size / 2).saturating_mul(processors)
}

/// A key of the section, matched case-insensitively as the options binder does.
fn key<'a>(section: &'a Value, name: &str) -> Option<&'a Value> {
    section
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// A whole number, as a JSON number or the text of one (configuration values are text).
fn integer(section: &Value, name: &str) -> Result<Option<i64>, String> {
    let Some(value) = key(section, name) else {
        return Ok(None);
    };
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| format!("extensions.queues.{name} must be a whole number, not {value}"))
}

fn timespan(section: &Value, name: &str) -> Result<Option<Duration>, String> {
    let Some(value) = key(section, name) else {
        return Ok(None);
    };
    value
        .as_str()
        .and_then(crate::config::parse_timespan)
        .filter(|d| *d != Duration::MAX)
        .map(Some)
        .ok_or_else(|| {
            format!("extensions.queues.{name} must be a time span like \"00:00:30\", not {value}")
        })
}

impl QueuesOptions {
    /// Reads `extensions.queues` (`Null` when absent), refusing what the extension refuses.
    pub(crate) fn from_host_json(section: &Value) -> Result<QueuesOptions, String> {
        let mut options = QueuesOptions::default();
        if section.is_null() {
            return Ok(options);
        }
        if !section.is_object() {
            return Err("extensions.queues must be an object".into());
        }
        if let Some(n) = integer(section, "batchSize")? {
            options.batch_size = u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_BATCH).contains(n))
                .ok_or_else(|| {
                    format!("extensions.queues.batchSize is {n}; it must be 1 to {MAX_BATCH}")
                })?;
            options.new_batch_threshold = default_threshold(options.batch_size);
        }
        if let Some(n) = integer(section, "newBatchThreshold")? {
            options.new_batch_threshold = u32::try_from(n).map_err(|_| {
                format!("extensions.queues.newBatchThreshold is {n}; it must be 0 or more")
            })?;
        }
        if let Some(d) = timespan(section, "maxPollingInterval")? {
            if d < MIN_POLLING_INTERVAL {
                return Err(
                    "extensions.queues.maxPollingInterval must not be less than 00:00:00.1".into(),
                );
            }
            options.max_polling_interval = d;
        }
        if let Some(d) = timespan(section, "visibilityTimeout")? {
            if d > MAX_VISIBILITY {
                return Err("extensions.queues.visibilityTimeout must not exceed 7 days".into());
            }
            options.visibility_timeout = d;
        }
        if let Some(n) = integer(section, "maxDequeueCount")? {
            if n < 1 {
                return Err("extensions.queues.maxDequeueCount must not be less than 1".into());
            }
            options.max_dequeue_count = n;
        }
        if let Some(value) = key(section, "messageEncoding") {
            options.message_encoding = match value.as_str().map(str::to_ascii_lowercase).as_deref()
            {
                Some("base64") => Encoding::Base64,
                Some("none") => Encoding::None,
                _ => {
                    return Err(format!(
                        "extensions.queues.messageEncoding is {value}; use \"base64\" or \"none\""
                    ));
                }
            };
        }
        Ok(options)
    }
}

/// The randomized exponential back-off of an empty queue (`RandomizedExponentialBackoffStrategy`): after a poll
/// that found messages the wait is the minimum, then each empty poll adds the minimum times 2^(n-1), ±20 %, up to
/// the maximum.
#[derive(Debug)]
pub(crate) struct Backoff {
    max: Duration,
    current: Duration,
    exponent: u32,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Backoff {
        Backoff {
            max,
            current: Duration::ZERO,
            exponent: 0,
        }
    }

    pub(crate) fn next(&mut self, found_messages: bool) -> Duration {
        if found_messages {
            self.current = MIN_POLLING_INTERVAL;
            self.exponent = 1;
        } else if self.current != self.max {
            let mut wait = MIN_POLLING_INTERVAL;
            if self.exponent > 0 {
                let factor = rand::random_range(0.8..1.2)
                    * 2f64.powi(i32::try_from(self.exponent - 1).unwrap_or(30));
                wait += MIN_POLLING_INTERVAL.mul_f64(factor.min(1e6));
            }
            if wait < self.max {
                self.current = wait;
                self.exponent += 1;
            } else {
                self.current = self.max;
            }
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_settings_are_read_like_the_extension() {
        let defaults = QueuesOptions::from_host_json(&Value::Null).unwrap();
        assert_eq!(defaults.batch_size, 16);
        assert_eq!(defaults.max_dequeue_count, 5);
        assert_eq!(defaults.visibility_timeout, Duration::ZERO);
        assert_eq!(defaults.max_polling_interval, Duration::from_secs(2));
        assert_eq!(defaults.message_encoding, Encoding::Base64);
        assert_eq!(defaults.new_batch_threshold % 8, 0);
        let set = QueuesOptions::from_host_json(&json!({
            "BatchSize": "4", "newBatchThreshold": 1, "maxPollingInterval": "00:00:05",
            "visibilityTimeout": "00:00:30", "maxDequeueCount": 2, "messageEncoding": "None"
        }))
        .unwrap();
        assert_eq!(
            set,
            QueuesOptions {
                batch_size: 4,
                new_batch_threshold: 1,
                max_polling_interval: Duration::from_secs(5),
                visibility_timeout: Duration::from_secs(30),
                max_dequeue_count: 2,
                message_encoding: Encoding::None,
            }
        );
        for bad in [
            json!({"batchSize": 33}),
            json!({"batchSize": 0}),
            json!({"newBatchThreshold": -1}),
            json!({"maxPollingInterval": "00:00:00.05"}),
            json!({"maxPollingInterval": 2000}),
            json!({"visibilityTimeout": "8.00:00:00"}),
            json!({"maxDequeueCount": 0}),
            json!({"messageEncoding": "utf8"}),
            json!([]),
        ] {
            assert!(QueuesOptions::from_host_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encodings_round_trip_and_base64_refuses_garbage() {
        assert_eq!(Encoding::Base64.encode(b"hi"), "aGk=");
        assert_eq!(Encoding::Base64.decode(" aG k= ").unwrap(), b"hi");
        assert_eq!(Encoding::Base64.decode("not base64!"), None);
        assert_eq!(
            Encoding::None.decode("not base64!").unwrap(),
            b"not base64!"
        );
        assert_eq!(Encoding::None.encode(&[0x68, 0xff]), "h\u{fffd}");
    }

    #[test]
    fn back_off_grows_to_the_maximum_and_resets_on_messages() {
        let mut backoff = Backoff::new(Duration::from_secs(1));
        let mut last = Duration::ZERO;
        let mut waits = Vec::new();
        for _ in 0..12 {
            let wait = backoff.next(false);
            assert!(
                wait >= last && wait <= Duration::from_secs(1),
                "{waits:?} {wait:?}"
            );
            last = wait;
            waits.push(wait);
        }
        assert_eq!(last, Duration::from_secs(1));
        assert_eq!(waits[0], MIN_POLLING_INTERVAL);
        assert_eq!(backoff.next(true), MIN_POLLING_INTERVAL);
        assert!(backoff.next(false) > MIN_POLLING_INTERVAL);
    }
}
