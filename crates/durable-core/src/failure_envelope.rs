//! Activity failures through the Functions host.
//!
//! The host drops the body of a non-2xx reply, so an activity failure would reach the orchestration as a generic
//! HTTP error. Instead the handler replies 200 with this envelope as the activity's return value, and the engine
//! turns a `TaskCompleted` carrying it back into a task failure with the original details.

use serde_json::{Map, Value};

use crate::proto;

/// The single key of the envelope object.
pub const KEY: &str = "$durableTaskFailure";

/// `{"$durableTaskFailure": {errorType, errorMessage, stackTrace?, innerFailure?, isNonRetriable}}`.
pub fn encode(details: &proto::TaskFailureDetails) -> Value {
    let mut outer = Map::new();
    outer.insert(KEY.to_string(), encode_details(details));
    Value::Object(outer)
}

fn encode_details(details: &proto::TaskFailureDetails) -> Value {
    let mut body = Map::new();
    body.insert(
        "errorType".into(),
        Value::String(details.error_type.clone()),
    );
    body.insert(
        "errorMessage".into(),
        Value::String(details.error_message.clone()),
    );
    if let Some(stack) = &details.stack_trace {
        body.insert("stackTrace".into(), Value::String(stack.clone()));
    }
    if let Some(inner) = &details.inner_failure {
        body.insert("innerFailure".into(), encode_details(inner));
    }
    body.insert(
        "isNonRetriable".into(),
        Value::Bool(details.is_non_retriable),
    );
    Value::Object(body)
}

/// The failure carried by an activity result, if the result is exactly the envelope.
pub fn decode(result_json: &str) -> Option<proto::TaskFailureDetails> {
    // Cheap pre-check: most results are not envelopes, and parsing every result twice would be wasteful.
    if !result_json.contains(KEY) {
        return None;
    }
    let value: Value = serde_json::from_str(result_json).ok()?;
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    decode_details(object.get(KEY)?)
}

fn decode_details(value: &Value) -> Option<proto::TaskFailureDetails> {
    let body = value.as_object()?;
    Some(proto::TaskFailureDetails {
        error_type: body.get("errorType")?.as_str()?.to_string(),
        error_message: body.get("errorMessage")?.as_str()?.to_string(),
        stack_trace: body
            .get("stackTrace")
            .and_then(Value::as_str)
            .map(str::to_string),
        inner_failure: body
            .get("innerFailure")
            .and_then(decode_details)
            .map(Box::new),
        is_non_retriable: body
            .get("isNonRetriable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        properties: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let details = proto::TaskFailureDetails {
            error_type: "Boom".into(),
            error_message: "it broke".into(),
            stack_trace: Some("at x".into()),
            inner_failure: Some(Box::new(proto::TaskFailureDetails {
                error_type: "Io".into(),
                error_message: "disk".into(),
                ..Default::default()
            })),
            is_non_retriable: true,
            properties: Default::default(),
        };
        let text = encode(&details).to_string();
        assert_eq!(decode(&text), Some(details));
    }

    #[test]
    fn ordinary_results_are_not_envelopes() {
        assert_eq!(decode("42"), None);
        assert_eq!(decode("\"$durableTaskFailure\""), None);
        assert_eq!(
            decode(r#"{"$durableTaskFailure":{"errorType":"a","errorMessage":"b"},"x":1}"#),
            None
        );
        assert_eq!(decode(r#"{"$durableTaskFailure":{"errorType":"a"}}"#), None);
    }
}
