//! The host's invocation envelope and the layered encodings of its values.
//!
//! The host serialises every .NET `string` binding value with `JsonConvert.SerializeObject` before putting it in the
//! body, so a durable payload arrives as a JSON string whose *content* is another JSON string literal. The decoders
//! here peel exactly the layers the host adds and say which one was wrong when a value does not fit.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::error::InvocationError;

/// `{"Data": {...}, "Metadata": {...}}` as the host posts it.
#[derive(Debug, Clone, Default)]
pub(crate) struct InvocationRequest {
    pub(crate) data: Map<String, Value>,
    pub(crate) metadata: Map<String, Value>,
}

/// Newtonsoft matches property names case-insensitively, so a sender may vary the case; so do we.
fn take_ci(object: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let found = object.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone();
    object.remove(&found)
}

pub(crate) fn parse_envelope(body: &[u8]) -> Result<InvocationRequest, InvocationError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| InvocationError::Envelope(format!("the body is not JSON ({e})")))?;
    let Value::Object(mut object) = value else {
        return Err(InvocationError::Envelope(
            "the body must be a JSON object with \"Data\" and \"Metadata\"".into(),
        ));
    };
    let data = match take_ci(&mut object, "Data") {
        Some(Value::Object(data)) => data,
        Some(Value::Null) | None => {
            return Err(InvocationError::Envelope(
                "the body has no \"Data\" object (the trigger value travels in it)".into(),
            ));
        }
        Some(_) => {
            return Err(InvocationError::Envelope(
                "\"Data\" must be a JSON object keyed by binding name".into(),
            ));
        }
    };
    let metadata = match take_ci(&mut object, "Metadata") {
        Some(Value::Object(metadata)) => metadata,
        Some(Value::Null) | None => Map::new(),
        Some(_) => {
            return Err(InvocationError::Envelope(
                "\"Metadata\" must be a JSON object".into(),
            ));
        }
    };
    Ok(InvocationRequest { data, metadata })
}

impl InvocationRequest {
    /// The value of an input binding; a function with a single input also finds it under another name, because
    /// hand-written `function.json` files do not always use our binding names.
    pub(crate) fn binding(&self, name: &str, only_input: bool) -> Option<&Value> {
        if let Some((_, v)) = self.data.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Some(v);
        }
        if only_input && self.data.len() == 1 {
            return self.data.values().next();
        }
        None
    }

    /// [`InvocationRequest::binding`], taken out of the request: a large value (an HTTP body) is then moved
    /// into what the function gets instead of copied.
    pub(crate) fn take_binding(&mut self, name: &str, only_input: bool) -> Option<Value> {
        let key = match self.data.keys().find(|k| k.eq_ignore_ascii_case(name)) {
            Some(key) => key.clone(),
            None if only_input && self.data.len() == 1 => self.data.keys().next()?.clone(),
            None => return None,
        };
        self.data.remove(&key)
    }

    pub(crate) fn metadata_value(&self, key: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// `Metadata.sys.MethodName`: the function the host meant to call.
    pub(crate) fn method_name(&self) -> Option<&str> {
        let Value::Object(sys) = self.metadata_value("sys")? else {
            return None;
        };
        sys.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("MethodName"))
            .and_then(|(_, v)| v.as_str())
    }
}

/// Layers 1-2 of a durable payload: the body holds a JSON string, and that string is a JSON string literal.
/// Returns `None` when the inner literal is `null`. The usual payload (a quoted base64 text, or JSON text without
/// quotes or escapes inside) has no escapes, so its inner layer is a slice of the outer one.
pub(crate) fn double_encoded_string<'v>(
    binding: &str,
    value: &'v Value,
) -> Result<Option<Cow<'v, str>>, InvocationError> {
    if let Value::String(outer) = value
        && let Some(inner) = plain_literal(outer)
    {
        return Ok(Some(Cow::Borrowed(inner)));
    }
    let Value::String(outer) = value else {
        return Err(InvocationError::binding(
            binding,
            format!(
                "expected a JSON string (the host serialises durable payloads as strings), found {}",
                kind(value)
            ),
        ));
    };
    match serde_json::from_str::<Value>(outer) {
        Ok(Value::String(inner)) => Ok(Some(Cow::Owned(inner))),
        Ok(Value::Null) => Ok(None),
        Ok(other) => Err(InvocationError::binding(
            binding,
            format!(
                "the string must hold a JSON string literal (the host double-encodes it), found {}",
                kind(&other)
            ),
        )),
        Err(_) => Err(InvocationError::binding(
            binding,
            "the string is not a JSON string literal (the host double-encodes durable payloads)",
        )),
    }
}

/// A base64 protobuf message carried double-encoded (orchestrator and entity triggers).
pub(crate) fn decode_proto_trigger<M: prost::Message + Default>(
    binding: &str,
    value: &Value,
) -> Result<M, InvocationError> {
    let text = double_encoded_string(binding, value)?
        .ok_or_else(|| InvocationError::binding(binding, "the trigger value is null"))?;
    if text.trim().is_empty() {
        return Err(InvocationError::binding(
            binding,
            "the trigger value is empty",
        ));
    }
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| InvocationError::binding(binding, format!("not valid base64 ({e})")))?;
    M::decode(bytes.as_slice()).map_err(|e| {
        InvocationError::binding(
            binding,
            format!(
                "not a valid {} protobuf message ({e})",
                std::any::type_name::<M>().rsplit("::").next().unwrap_or("")
            ),
        )
    })
}

/// The content of a JSON string literal that has no escapes and no control characters (so its content is its text
/// between the quotes), or `None` for anything else, which the full parser then reads or refuses.
fn plain_literal(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    inner
        .bytes()
        .all(|b| b != b'"' && b != b'\\' && b >= 0x20)
        .then_some(inner)
}

/// The activity input's JSON text (`None` for no input), from `Data.<binding>` or else `Metadata.data`.
pub(crate) fn activity_input(
    binding: &str,
    request: &InvocationRequest,
) -> Result<Option<String>, InvocationError> {
    match request.binding(binding, true) {
        Some(Value::Null) | None => {}
        Some(value) => {
            let Some(text) = double_encoded_string(binding, value)? else {
                return Ok(None);
            };
            ensure_json_text(binding, &text)?;
            return Ok(Some(text.into_owned()));
        }
    }
    // The trigger's binding data repeats the input as `data`: a JSON-quoted string holding the input's JSON text
    // when the host could not turn it into an object, or the parsed value itself when it could.
    match request.metadata_value("data") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            ensure_json_text("Metadata.data", text)?;
            Ok(Some(text.clone()))
        }
        Some(other) => Ok(Some(other.to_string())),
    }
}

fn ensure_json_text(binding: &str, text: &str) -> Result<(), InvocationError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| {
            InvocationError::binding(
                binding,
                format!("the activity input is not JSON text ({e})"),
            )
        })
}

/// A metadata string the host may have JSON-quoted (`"\"abc\""`); returns the plain text either way.
pub(crate) fn metadata_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(inner)) => Some(inner),
            _ => Some(s.clone()),
        },
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Peels JSON-string layers until something that is not a JSON-encoded string is left; returns every layer,
/// outermost first, so a caller can pick the first one that deserialises into its type.
pub(crate) fn string_layers(value: Value) -> Vec<Value> {
    let mut layers = vec![value];
    // Three layers is the most the host adds; more would only be a string that happens to look like JSON.
    while layers.len() < 4 {
        let Some(Value::String(s)) = layers.last() else {
            break;
        };
        match serde_json::from_str::<Value>(s) {
            Ok(inner) => layers.push(inner),
            Err(_) => break,
        }
    }
    layers
}

/// Deserialises an ordinary trigger's value, innermost layer first (a queue message that is JSON text is meant as
/// that JSON), falling back outwards (a message that merely looks like a number is still a string for `String`).
pub(crate) fn decode_layered<T: serde::de::DeserializeOwned>(
    binding: &str,
    value: &Value,
) -> Result<T, InvocationError> {
    decode_layered_owned(binding, value.clone())
}

/// [`decode_layered`] of a value the caller gives up, which is moved rather than copied.
pub(crate) fn decode_layered_owned<T: serde::de::DeserializeOwned>(
    binding: &str,
    value: Value,
) -> Result<T, InvocationError> {
    let layers = string_layers(value);
    let mut first_error = None;
    for layer in layers.into_iter().rev() {
        match serde_json::from_value::<T>(layer) {
            Ok(v) => return Ok(v),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(InvocationError::binding(
        binding,
        format!(
            "the value does not match the function's input type ({})",
            first_error.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn host_string(text: &str) -> Value {
        Value::String(serde_json::to_string(text).unwrap())
    }

    #[test]
    fn activity_input_three_layers() {
        let request = InvocationRequest {
            data: json!({"input": host_string("\"Tokyo\"")})
                .as_object()
                .unwrap()
                .clone(),
            metadata: Map::new(),
        };
        assert_eq!(
            activity_input("input", &request).unwrap().as_deref(),
            Some("\"Tokyo\"")
        );
    }

    #[test]
    fn activity_input_falls_back_to_metadata_data() {
        let request = InvocationRequest {
            data: Map::new(),
            metadata: json!({"data": "{\"n\":1}"}).as_object().unwrap().clone(),
        };
        assert_eq!(
            activity_input("input", &request).unwrap().as_deref(),
            Some("{\"n\":1}")
        );
    }

    #[test]
    fn single_encoded_base64_is_refused() {
        let err = decode_proto_trigger::<durable_proto::OrchestratorRequest>(
            "context",
            &json!("CgNhYmM="),
        )
        .unwrap_err();
        assert!(err.to_string().contains("double-encodes"), "{err}");
    }

    proptest! {
        #[test]
        fn proto_decoder_never_panics(s in ".*") {
            let _ = decode_proto_trigger::<durable_proto::OrchestratorRequest>("context", &Value::String(s.clone()));
            let _ = decode_proto_trigger::<durable_proto::EntityBatchRequest>("context", &host_string(&s));
        }

        #[test]
        fn proto_decoder_round_trips(id in "[a-zA-Z0-9@-]{1,40}") {
            let request = durable_proto::OrchestratorRequest { instance_id: id.clone(), ..Default::default() };
            let b64 = BASE64.encode(prost::Message::encode_to_vec(&request));
            let decoded: durable_proto::OrchestratorRequest = decode_proto_trigger("context", &host_string(&b64)).unwrap();
            prop_assert_eq!(decoded.instance_id, id);
        }

        #[test]
        fn plain_literals_read_as_the_parser_reads_them(s in ".*") {
            let quoted = format!("\"{s}\"");
            for text in [quoted.as_str(), s.as_str()] {
                if let Some(inner) = plain_literal(text) {
                    prop_assert_eq!(serde_json::from_str::<String>(text).unwrap(), inner);
                }
            }
        }

        #[test]
        fn proto_decoder_refuses_random_bytes_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let b64 = BASE64.encode(&bytes);
            let _ = decode_proto_trigger::<durable_proto::OrchestratorRequest>("context", &host_string(&b64));
        }

        #[test]
        fn activity_input_round_trips(input in any::<Option<i64>>(), text in ".*") {
            let json_text = serde_json::to_string(&(input, &text)).unwrap();
            let request = InvocationRequest {
                data: [("input".to_owned(), host_string(&json_text))].into_iter().collect(),
                metadata: Map::new(),
            };
            prop_assert_eq!(activity_input("input", &request).unwrap(), Some(json_text));
        }

        #[test]
        fn activity_decoder_never_panics(v in arb_json()) {
            let request = InvocationRequest {
                data: [("input".to_owned(), v.clone())].into_iter().collect(),
                metadata: [("data".to_owned(), v)].into_iter().collect(),
            };
            let _ = activity_input("input", &request);
        }

        #[test]
        fn envelope_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_envelope(&bytes);
        }

        #[test]
        fn layered_decoding_finds_strings_and_numbers(n in any::<i32>(), s in "[a-z ]{0,20}") {
            let number_text = serde_json::to_string(&n).unwrap();
            prop_assert_eq!(decode_layered::<i32>("m", &host_string(&number_text)).unwrap(), n);
            prop_assert_eq!(decode_layered::<String>("m", &host_string(&s)).unwrap(), s.clone());
            prop_assert_eq!(decode_layered::<String>("m", &Value::String(s.clone())).unwrap(), s);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".*".prop_map(Value::String),
            ".*".prop_map(|s| host_string(&s)),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
