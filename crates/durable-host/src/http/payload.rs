//! The management API's payloads: `StatusResponsePayload` and `HttpManagementPayload`, with the host's field names
//! and its `yyyy-MM-ddTHH:mm:ssZ` times.

use std::time::SystemTime;

use durable_grpc::{OrchestrationMetadata, OrchestrationStatus};
use serde_json::{Map, Value, json};

use super::percent_encode;

/// `yyyy-MM-ddTHH:mm:ssZ`.
pub(crate) fn format_time(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses the times the API accepts in filters (`2026-11-25T17:00:00Z`, with or without fractions or offset).
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    let parsed =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some(parsed.into())
}

/// The name the API uses for a status.
pub(crate) fn status_name(status: OrchestrationStatus) -> &'static str {
    match status {
        OrchestrationStatus::Running => "Running",
        OrchestrationStatus::Completed => "Completed",
        OrchestrationStatus::ContinuedAsNew => "ContinuedAsNew",
        OrchestrationStatus::Failed => "Failed",
        OrchestrationStatus::Canceled => "Canceled",
        OrchestrationStatus::Terminated => "Terminated",
        OrchestrationStatus::Pending => "Pending",
        OrchestrationStatus::Suspended => "Suspended",
        _ => "Unknown",
    }
}

/// The status a `runtimeStatus` filter names (case-insensitive).
pub(crate) fn parse_status(name: &str) -> Option<OrchestrationStatus> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "running" => OrchestrationStatus::Running,
        "completed" => OrchestrationStatus::Completed,
        "continuedasnew" => OrchestrationStatus::ContinuedAsNew,
        "failed" => OrchestrationStatus::Failed,
        "canceled" => OrchestrationStatus::Canceled,
        "terminated" => OrchestrationStatus::Terminated,
        "pending" => OrchestrationStatus::Pending,
        "suspended" => OrchestrationStatus::Suspended,
        _ => return None,
    })
}

/// A stored JSON text as a JSON value (text that is not JSON is shown as a string).
pub(crate) fn json_text(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())),
    }
}

/// `StatusResponsePayload`.
pub(crate) fn status_payload(
    meta: &OrchestrationMetadata,
    show_input: bool,
    history: Option<Value>,
) -> Value {
    let output = match (&meta.serialized_output, &meta.failure_details) {
        (Some(out), _) => json_text(Some(out)),
        // A failed instance shows its error as the output, as the extension does.
        (None, Some(failure)) if meta.status == OrchestrationStatus::Failed => {
            Value::String(failure.message.clone())
        }
        _ => Value::Null,
    };
    let mut object = Map::new();
    object.insert("name".into(), Value::String(meta.name.clone()));
    object.insert("instanceId".into(), Value::String(meta.instance_id.clone()));
    object.insert(
        "runtimeStatus".into(),
        Value::String(status_name(meta.status).into()),
    );
    object.insert(
        "input".into(),
        if show_input {
            json_text(meta.serialized_input.as_deref())
        } else {
            Value::Null
        },
    );
    object.insert(
        "customStatus".into(),
        json_text(meta.serialized_custom_status.as_deref()),
    );
    object.insert("output".into(), output);
    object.insert(
        "createdTime".into(),
        meta.created_at
            .map(format_time)
            .map_or(Value::Null, Value::String),
    );
    object.insert(
        "lastUpdatedTime".into(),
        meta.last_updated_at
            .map(format_time)
            .map_or(Value::Null, Value::String),
    );
    if let Some(history) = history {
        object.insert("historyEvents".into(), history);
    }
    Value::Object(object)
}

/// `HttpManagementPayload`: the check-status links for an instance.
pub(crate) fn management_payload(base: &str, instance_id: &str, query: &str) -> Value {
    let instance = format!(
        "{base}/runtime/webhooks/durabletask/instances/{}",
        percent_encode(instance_id)
    );
    json!({
        "id": instance_id,
        "purgeHistoryDeleteUri": format!("{instance}?{query}"),
        "sendEventPostUri": format!("{instance}/raiseEvent/{{eventName}}?{query}"),
        "statusQueryGetUri": format!("{instance}?{query}"),
        "terminatePostUri": format!("{instance}/terminate?reason={{text}}&{query}"),
        "rewindPostUri": format!("{instance}/rewind?reason={{text}}&{query}"),
        "restartPostUri": format!("{instance}/restart?{query}"),
        "suspendPostUri": format!("{instance}/suspend?reason={{text}}&{query}"),
        "resumePostUri": format!("{instance}/resume?reason={{text}}&{query}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_and_links_have_the_host_shape() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_628_481_123);
        assert_eq!(format_time(t), "2026-11-25T17:41:21Z");
        let back = parse_time("2026-11-25T17:41:21Z").unwrap();
        assert_eq!(format_time(back), "2026-11-25T17:41:21Z");
        let p = management_payload(
            "http://localhost:7071",
            "a b",
            "taskHub=default&connection=Storage",
        );
        assert_eq!(
            p["statusQueryGetUri"],
            "http://localhost:7071/runtime/webhooks/durabletask/instances/a%20b?taskHub=default&connection=Storage"
        );
        assert_eq!(
            p["terminatePostUri"],
            "http://localhost:7071/runtime/webhooks/durabletask/instances/a%20b/terminate?reason={text}&taskHub=default&connection=Storage"
        );
        assert_eq!(
            parse_status("completed"),
            Some(OrchestrationStatus::Completed)
        );
        assert_eq!(json_text(Some("[1]")), json!([1]));
    }

    proptest::proptest! {
        #[test]
        fn any_filter_text_is_a_time_a_status_or_nothing(text in ".{0,40}") {
            if let Some(t) = parse_time(&text) {
                let _ = format_time(t);
            }
            let _ = parse_status(&text);
            let _ = json_text(Some(&text));
            let _ = management_payload("http://localhost:7071", &text, "taskHub=x");
        }

        #[test]
        fn any_query_string_is_read(query in ".{0,60}") {
            for (k, v) in crate::http::form_urlencoded_pairs(&query) {
                let _ = crate::http::percent_encode(&k);
                let _ = crate::http::percent_encode(&v);
            }
        }
    }
}
