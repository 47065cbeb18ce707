//! Entity messages in DurableTask.Core's own format.
//!
//! Under the Functions host, an orchestration's entity calls travel as ordinary events: the extension turns each
//! `SendEntityMessage` action into a `SendEvent` to `@name@key` whose data is a JSON `RequestMessage`
//! (`Azure/azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/ProtobufUtils.cs`,
//! `ToOrchestratorAction`), and the entity answers with an event named by the request ID whose data is a JSON
//! `ResponseMessage` (`Azure/durabletask src/DurableTask.Core/Entities/EventFormat/`). The history the handler
//! sees therefore has `EventSent` / `EventRaised` where the Durable Task Scheduler records `Entity*` events. The
//! embedded backend speaks the scheduler's form, so this module converts between the two, byte for byte as
//! Newtonsoft writes the .NET types.

use durable_proto as proto;
use prost_types::Timestamp;
use serde_json::Value;

use super::dotnet::{newtonsoft_date, round_trip};

/// Event name of a request (`EntityMessageEventNames.RequestMessageEventName`).
pub(crate) const REQUEST_EVENT: &str = "op";
/// Event name of a lock release (`EntityMessageEventNames.ReleaseMessageEventName`).
pub(crate) const RELEASE_EVENT: &str = "release";
/// What the entity answers a granted lock with (`ResponseMessage.LockAcquisitionCompletion`).
pub(crate) const LOCK_ACQUISITION_COMPLETED: &str = "Lock Acquisition Completed";
/// `exceptionType` of the answers to calls whose whole batch failed (DurableTask.Core `TaskEntityDispatcher`).
pub(crate) const BATCH_FAILED: &str = "entity dispatch failed";

/// `DateTime.MinValue` as Newtonsoft writes it: the request's `Timestamp` and `Predecessor`, which the extension
/// never sets.
const MIN_DATE: &str = "0001-01-01T00:00:00";

/// The fields of a `RequestMessage`. Serialized in the declaration order of the .NET type, with the members
/// marked `EmitDefaultValue = false` left out when they hold their default.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RequestMessage {
    pub(crate) operation: Option<String>,
    pub(crate) is_signal: bool,
    pub(crate) input: Option<String>,
    pub(crate) id: String,
    pub(crate) parent_instance_id: Option<String>,
    pub(crate) parent_execution_id: Option<String>,
    pub(crate) scheduled_time: Option<Timestamp>,
    /// `@name@key` entity IDs.
    pub(crate) lock_set: Option<Vec<String>>,
    pub(crate) position: i32,
}

impl RequestMessage {
    pub(crate) fn to_json(&self) -> String {
        let mut fields = vec![("op", opt_text(&self.operation))];
        if self.is_signal {
            fields.push(("signal", "true".into()));
        }
        if let Some(input) = &self.input {
            fields.push(("input", text(input)));
        }
        fields.push(("id", text(&self.id)));
        if let Some(parent) = &self.parent_instance_id {
            fields.push(("parent", text(parent)));
        }
        if let Some(execution) = &self.parent_execution_id {
            fields.push(("parentExecution", text(execution)));
        }
        if let Some(due) = &self.scheduled_time {
            fields.push(("due", text(&newtonsoft_date(due))));
        }
        fields.push(("Timestamp", text(MIN_DATE)));
        fields.push(("Predecessor", text(MIN_DATE)));
        if let Some(locks) = &self.lock_set {
            let locks: Vec<String> = locks
                .iter()
                .map(|id| {
                    let (name, key) = split_entity_id(id);
                    object(&[("name", text(name)), ("key", text(key))])
                })
                .collect();
            fields.push(("lockset", format!("[{}]", locks.join(","))));
        }
        if self.position != 0 {
            fields.push(("pos", self.position.to_string()));
        }
        fields.push(("IsLockRequest", self.lock_set.is_some().to_string()));
        fields.push(("createTrace", "false".into()));
        object(&fields)
    }

    /// Reads a request written by any Durable Task SDK (property names as the .NET type declares them).
    pub(crate) fn from_json(text: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(text).ok()?;
        let object = value.as_object()?;
        let text_of = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let id = text_of("id")?;
        let lock_set = object
            .get("lockset")
            .and_then(Value::as_array)
            .map(|locks| {
                locks
                    .iter()
                    .filter_map(|l| {
                        let name = l.get("name")?.as_str()?;
                        let key = l.get("key")?.as_str()?;
                        Some(format!("@{}@{key}", name.to_lowercase()))
                    })
                    .collect()
            });
        let scheduled_time = text_of("due").and_then(|t| parse_date(&t));
        Some(RequestMessage {
            operation: text_of("op"),
            is_signal: object
                .get("signal")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            input: text_of("input"),
            id,
            parent_instance_id: text_of("parent"),
            parent_execution_id: text_of("parentExecution"),
            scheduled_time,
            lock_set,
            position: object
                .get("pos")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0),
        })
    }
}

/// The event name of a request: `op`, or `op@<due time in round-trip format>` for a scheduled one.
pub(crate) fn request_event_name(scheduled_time: Option<&Timestamp>) -> String {
    match scheduled_time {
        Some(at) => format!("{REQUEST_EVENT}@{}", round_trip(at)),
        None => REQUEST_EVENT.to_owned(),
    }
}

/// `@name@key` to (`name`, `key`).
pub(crate) fn split_entity_id(id: &str) -> (&str, &str) {
    let rest = id.strip_prefix('@').unwrap_or(id);
    rest.split_once('@').unwrap_or((rest, ""))
}

/// A JSON object with its members in the given order (Newtonsoft writes members in declaration order, and the
/// texts here must match it byte for byte); each value is already JSON text.
fn object(fields: &[(&str, String)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{value}", text(name)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A JSON string literal.
fn text(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

fn opt_text(value: &Option<String>) -> String {
    value.as_deref().map_or_else(|| "null".to_owned(), text)
}

fn parse_date(text: &str) -> Option<Timestamp> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| {
            // Newtonsoft writes a UTC DateTime without an offset when its kind is unspecified.
            time::OffsetDateTime::parse(
                &format!("{text}Z"),
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
        })?;
    Some(Timestamp {
        seconds: at.unix_timestamp(),
        nanos: at.nanosecond() as i32,
    })
}

/// A `ResponseMessage`: `result` always (null allowed), `exceptionType` and `failureDetails` when set.
pub(crate) fn response_json(
    result: Option<&str>,
    exception_type: Option<&str>,
    failure: Option<&proto::TaskFailureDetails>,
) -> String {
    let mut fields = vec![("result", result.map_or_else(|| "null".to_owned(), text))];
    if let Some(kind) = exception_type {
        fields.push(("exceptionType", text(kind)));
    }
    if let Some(details) = failure {
        fields.push(("failureDetails", core_failure_details(details)));
    }
    object(&fields)
}

/// DurableTask.Core's `FailureDetails` as Newtonsoft writes it: a plain class, so PascalCase property names and
/// nulls written out.
pub(crate) fn core_failure_details(details: &proto::TaskFailureDetails) -> String {
    let properties = if details.properties.is_empty() {
        "null".to_owned()
    } else {
        let members: Vec<(&str, String)> = details
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), proto_value_to_json(v).to_string()))
            .collect();
        object(&members)
    };
    object(&[
        ("ErrorType", text(&details.error_type)),
        ("ErrorMessage", text(&details.error_message)),
        ("StackTrace", opt_text(&details.stack_trace)),
        (
            "InnerFailure",
            details
                .inner_failure
                .as_deref()
                .map_or_else(|| "null".to_owned(), core_failure_details),
        ),
        ("IsNonRetriable", details.is_non_retriable.to_string()),
        ("Properties", properties),
    ])
}

fn proto_value_to_json(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), proto_value_to_json(v)))
                .collect(),
        ),
        Some(Kind::ListValue(l)) => {
            Value::Array(l.values.iter().map(proto_value_to_json).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f0b8c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f";

    #[test]
    fn a_call_is_written_as_newtonsoft_writes_the_request_message() {
        let call = RequestMessage {
            operation: Some("add".into()),
            input: Some("5".into()),
            id: ID.into(),
            parent_instance_id: Some("orch-1".into()),
            parent_execution_id: Some("exec-1".into()),
            ..Default::default()
        };
        assert_eq!(
            call.to_json(),
            format!(
                r#"{{"op":"add","input":"5","id":"{ID}","parent":"orch-1","parentExecution":"exec-1","Timestamp":"0001-01-01T00:00:00","Predecessor":"0001-01-01T00:00:00","IsLockRequest":false,"createTrace":false}}"#
            )
        );
        assert_eq!(RequestMessage::from_json(&call.to_json()), Some(call));
    }

    #[test]
    fn signals_locks_and_releases_have_their_own_fields() {
        let due = Timestamp {
            seconds: 1_748_779_200,
            nanos: 0,
        };
        let signal = RequestMessage {
            operation: Some("reset".into()),
            is_signal: true,
            id: ID.into(),
            scheduled_time: Some(due),
            ..Default::default()
        };
        let text = signal.to_json();
        assert!(
            text.starts_with(r#"{"op":"reset","signal":true,"id":"#),
            "{text}"
        );
        assert!(text.contains(r#""due":"2025-06-01T12:00:00Z""#), "{text}");
        assert_eq!(RequestMessage::from_json(&text), Some(signal));
        assert_eq!(
            request_event_name(Some(&due)),
            "op@2025-06-01T12:00:00.0000000Z"
        );

        let lock = RequestMessage {
            id: ID.into(),
            parent_instance_id: Some("orch-1".into()),
            lock_set: Some(vec!["@a@1".into(), "@b@2".into()]),
            position: 1,
            ..Default::default()
        };
        let text = lock.to_json();
        assert!(text.starts_with(r#"{"op":null,"id":"#), "{text}");
        assert!(
            text.contains(r#""lockset":[{"name":"a","key":"1"},{"name":"b","key":"2"}],"pos":1,"IsLockRequest":true"#),
            "{text}"
        );
        assert_eq!(RequestMessage::from_json(&text), Some(lock));
    }

    #[test]
    fn responses_use_the_core_names() {
        assert_eq!(response_json(Some("42"), None, None), r#"{"result":"42"}"#);
        assert_eq!(response_json(None, None, None), r#"{"result":null}"#);
        let details = proto::TaskFailureDetails {
            error_type: "Boom".into(),
            error_message: "it broke".into(),
            ..Default::default()
        };
        assert_eq!(
            response_json(None, None, Some(&details)),
            r#"{"result":null,"failureDetails":{"ErrorType":"Boom","ErrorMessage":"it broke","StackTrace":null,"InnerFailure":null,"IsNonRetriable":false,"Properties":null}}"#
        );
        let batch = response_json(Some("it broke"), Some(BATCH_FAILED), Some(&details));
        assert!(batch.starts_with(
            r#"{"result":"it broke","exceptionType":"entity dispatch failed","failureDetails":{"#
        ));
    }
}
