//! The reply the host reads, `{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}`, written straight into one
//! buffer of the right size.
//!
//! Every orchestrator turn and entity batch replies with a base64 protobuf message; going through a `Value` tree
//! cost the base64 text as a `String` of its own, a scan of it for characters to escape (base64 has none) and the
//! buffer's regrowth as the reply outgrew a guessed size.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

/// What a function returns to the host.
#[derive(Debug)]
pub(crate) enum ReturnValue {
    /// Any JSON value, written as `serde_json` writes it.
    Json(Value),
    /// An encoded protobuf message, which travels as a JSON string of its base64 text.
    Proto(Vec<u8>),
}

impl Default for ReturnValue {
    fn default() -> Self {
        Self::Json(Value::Null)
    }
}

impl From<Value> for ReturnValue {
    fn from(value: Value) -> Self {
        Self::Json(value)
    }
}

/// The protobuf message as the return value of a durable trigger.
pub(crate) fn proto<M: prost::Message>(message: &M) -> ReturnValue {
    ReturnValue::Proto(message.encode_to_vec())
}

/// The reply's JSON text.
pub(crate) fn write(outputs: &Map<String, Value>, logs: &[String], value: &ReturnValue) -> Vec<u8> {
    const FRAME: &str = r#"{"Outputs":,"Logs":[],"ReturnValue":}"#;
    // Log lines are plain text, so each mostly costs its length, two quotes and a comma.
    let logs_len: usize = logs.iter().map(|line| line.len() + 3).sum();
    let value_len = match value {
        ReturnValue::Proto(bytes) => bytes.len().div_ceil(3) * 4 + 2,
        ReturnValue::Json(_) => 16,
    };
    let outputs_len = if outputs.is_empty() { 2 } else { 64 };
    let mut out = Vec::with_capacity(FRAME.len() + outputs_len + logs_len + value_len);
    out.extend_from_slice(br#"{"Outputs":"#);
    write_json(&mut out, outputs);
    out.extend_from_slice(br#","Logs":"#);
    write_json(&mut out, logs);
    out.extend_from_slice(br#","ReturnValue":"#);
    match value {
        ReturnValue::Json(value) => write_json(&mut out, value),
        ReturnValue::Proto(bytes) => {
            // The base64 alphabet needs no escaping in a JSON string.
            out.push(b'"');
            let start = out.len();
            out.resize(start + bytes.len().div_ceil(3) * 4, 0);
            let written = BASE64
                .encode_slice(bytes, &mut out[start..])
                .unwrap_or_default();
            out.truncate(start + written);
            out.push(b'"');
        }
    }
    out.push(b'}');
    out
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serialising maps with string keys, strings and `Value`s into memory cannot fail; `null` keeps the reply
    // well-formed all the same.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The reply as the handler wrote it before this writer: a derived `Serialize` over `Value`s.
    #[derive(serde::Serialize)]
    struct InvocationResponse<'a> {
        #[serde(rename = "Outputs")]
        outputs: &'a Map<String, Value>,
        #[serde(rename = "Logs")]
        logs: &'a [String],
        #[serde(rename = "ReturnValue")]
        return_value: Value,
    }

    fn through_values(
        outputs: &Map<String, Value>,
        logs: &[String],
        value: &ReturnValue,
    ) -> Vec<u8> {
        let return_value = match value {
            ReturnValue::Json(value) => value.clone(),
            ReturnValue::Proto(bytes) => Value::String(BASE64.encode(bytes)),
        };
        serde_json::to_vec(&InvocationResponse {
            outputs,
            logs,
            return_value,
        })
        .unwrap()
    }

    #[test]
    fn a_turn_reply_reads_as_the_host_reads_it() {
        let response = durable_proto::OrchestratorResponse {
            instance_id: "abc".into(),
            ..Default::default()
        };
        let logs = vec![
            "[debug] orchestrator 'Chain' instance 'abc': 1 past + 2 new events -> 1 actions"
                .to_owned(),
        ];
        let text = write(&Map::new(), &logs, &proto(&response));
        let value: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(value["Logs"][0], logs[0].as_str());
        let b64 = value["ReturnValue"].as_str().unwrap();
        let decoded: durable_proto::OrchestratorResponse =
            prost::Message::decode(BASE64.decode(b64).unwrap().as_slice()).unwrap();
        assert_eq!(decoded, response);
    }

    proptest! {
        #[test]
        fn writes_the_bytes_the_value_tree_wrote(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            logs in proptest::collection::vec(".{0,40}", 0..4),
            keys in proptest::collection::btree_map("[a-zA-Z$]{1,8}", ".{0,20}", 0..3),
            number in any::<i64>(),
            text in ".{0,40}",
        ) {
            let outputs: Map<String, Value> = keys.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            for value in [
                ReturnValue::Proto(bytes.clone()),
                ReturnValue::Json(Value::Null),
                ReturnValue::Json(json!(number)),
                ReturnValue::Json(json!({"text": text.clone(), "list": [1, 2.5, null]})),
            ] {
                for outputs in [&Map::new(), &outputs] {
                    prop_assert_eq!(write(outputs, &logs, &value), through_values(outputs, &logs, &value));
                }
            }
        }
    }
}
