//! Texts as .NET writes them: the host and the Durable extension are .NET programs, and what they put into
//! histories and failures (exception descriptions, dates inside JSON, event names) reaches the handler verbatim.

use durable_proto as proto;
use prost_types::Timestamp;

/// An exception as the extension sees it: a type name, a message and an optional inner exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exception {
    pub(crate) type_name: String,
    pub(crate) message: String,
    pub(crate) inner: Option<Box<Exception>>,
}

/// The exception type the WebJobs executor wraps every failed invocation in.
pub(crate) const FUNCTION_INVOCATION_EXCEPTION: &str =
    "Microsoft.Azure.WebJobs.Host.FunctionInvocationException";

impl Exception {
    pub(crate) fn new(type_name: &str, message: impl Into<String>) -> Self {
        Exception {
            type_name: type_name.to_owned(),
            message: message.into(),
            inner: None,
        }
    }

    /// What the WebJobs executor throws for a function that failed: `Exception while executing function:
    /// Functions.<name>` around the real cause (Azure/azure-webjobs-sdk `Executors/FunctionExecutor.cs`).
    pub(crate) fn invocation_failed(function: &str, cause: Exception) -> Self {
        Exception {
            type_name: FUNCTION_INVOCATION_EXCEPTION.to_owned(),
            message: format!("Exception while executing function: Functions.{function}"),
            inner: Some(Box::new(cause)),
        }
    }

    /// `Exception.ToString()` without the stack traces (which only exist in a .NET process): `Type: message`,
    /// then ` ---> ` and the inner exception, then the end-of-inner marker.
    pub(crate) fn to_dotnet_string(&self) -> String {
        let mut text = format!("{}: {}", self.type_name, self.message);
        if let Some(inner) = &self.inner {
            text.push_str("\n ---> ");
            text.push_str(&inner.to_dotnet_string());
            text.push_str("\n   --- End of inner exception stack trace ---");
        }
        text
    }

    /// `new FailureDetails(exception)` of DurableTask.Core: type, message and the inner chain, retriable.
    pub(crate) fn to_failure_details(&self) -> proto::TaskFailureDetails {
        proto::TaskFailureDetails {
            error_type: self.type_name.clone(),
            error_message: self.message.clone(),
            inner_failure: self
                .inner
                .as_ref()
                .map(|inner| Box::new(inner.to_failure_details())),
            ..Default::default()
        }
    }
}

/// The text of the `HttpRequestException` that `HttpResponseMessage.EnsureSuccessStatusCode` throws.
pub(crate) fn status_code_message(status: u16) -> String {
    match http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => {
            format!("Response status code does not indicate success: {status} ({reason}).")
        }
        None => format!("Response status code does not indicate success: {status}."),
    }
}

/// 100-nanosecond ticks past the second, which is all the precision a .NET `DateTime` has.
fn ticks(ts: &Timestamp) -> u32 {
    (ts.nanos.clamp(0, 999_999_999) / 100) as u32
}

fn civil(ts: &Timestamp) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(ts.seconds).ok()
}

fn date_time_prefix(at: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A UTC `DateTime` formatted with the round-trip specifier `o`: always seven fraction digits, then `Z`.
pub(crate) fn round_trip(ts: &Timestamp) -> String {
    match civil(ts) {
        Some(at) => format!("{}.{:07}Z", date_time_prefix(at), ticks(ts)),
        None => String::new(),
    }
}

/// A UTC `DateTime` as Newtonsoft writes it in JSON (ISO 8601, trailing zeros of the fraction dropped, `Z`).
pub(crate) fn newtonsoft_date(ts: &Timestamp) -> String {
    let Some(at) = civil(ts) else {
        return String::new();
    };
    let fraction = format!("{:07}", ticks(ts));
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}Z", date_time_prefix(at))
    } else {
        format!("{}.{fraction}Z", date_time_prefix(at))
    }
}

/// Parses a GUID the way `Guid.Parse` accepts the usual forms (32 digits, hyphenated, braced, parenthesized).
pub(crate) fn parse_guid(text: &str) -> Result<uuid::Uuid, String> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(trimmed);
    uuid::Uuid::try_parse(inner).map_err(|_| {
        "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_print_like_dotnet() {
        let e = Exception::invocation_failed(
            "Hello",
            Exception::new(
                "System.Net.Http.HttpRequestException",
                status_code_message(500),
            ),
        );
        assert_eq!(
            e.to_dotnet_string(),
            "Microsoft.Azure.WebJobs.Host.FunctionInvocationException: Exception while executing function: \
             Functions.Hello\n ---> System.Net.Http.HttpRequestException: Response status code does not indicate \
             success: 500 (Internal Server Error).\n   --- End of inner exception stack trace ---"
        );
        let details = e.to_failure_details();
        assert_eq!(details.error_type, FUNCTION_INVOCATION_EXCEPTION);
        assert_eq!(
            details.inner_failure.unwrap().error_message,
            "Response status code does not indicate success: 500 (Internal Server Error)."
        );
        assert_eq!(
            status_code_message(599),
            "Response status code does not indicate success: 599."
        );
    }

    #[test]
    fn dates_print_like_dotnet() {
        let whole = Timestamp {
            seconds: 1_748_779_200,
            nanos: 0,
        };
        assert_eq!(round_trip(&whole), "2025-06-01T12:00:00.0000000Z");
        assert_eq!(newtonsoft_date(&whole), "2025-06-01T12:00:00Z");
        let fraction = Timestamp {
            seconds: 1_748_779_200,
            nanos: 120_000_099,
        };
        assert_eq!(round_trip(&fraction), "2025-06-01T12:00:00.1200000Z");
        assert_eq!(newtonsoft_date(&fraction), "2025-06-01T12:00:00.12Z");
    }

    #[test]
    fn guids_parse_in_the_usual_forms() {
        let id = "4f0b8c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f";
        assert!(parse_guid(id).is_ok());
        assert!(parse_guid("4f0b8c1e2a3b4c5d8e9f0a1b2c3d4e5f").is_ok());
        assert!(parse_guid(&format!("{{{id}}}")).is_ok());
        assert!(parse_guid(&format!("({id})")).is_ok());
        assert!(parse_guid("not-a-guid").is_err());
    }
}
