//! The JSON shapes the pages read. Times are milliseconds since the Unix epoch (the pages format them in the
//! viewer's time zone); payloads are passed on as the JSON text the backend holds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use durable_grpc::{EntityMetadata, FailureDetails, OrchestrationMetadata, OrchestrationStatus};
use serde_json::{Value, json};

use crate::error::ApiError;

/// Every status, in the order the pages list them.
pub(crate) const STATUSES: [OrchestrationStatus; 8] = [
    OrchestrationStatus::Running,
    OrchestrationStatus::Pending,
    OrchestrationStatus::Suspended,
    OrchestrationStatus::Completed,
    OrchestrationStatus::Failed,
    OrchestrationStatus::Terminated,
    OrchestrationStatus::ContinuedAsNew,
    OrchestrationStatus::Canceled,
];

/// `Running,failed` to statuses; names as the SDKs print them, any case.
pub(crate) fn parse_statuses(text: &str) -> Result<Vec<OrchestrationStatus>, ApiError> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let status = STATUSES
            .iter()
            .find(|s| s.to_string().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown status {name:?}; use {}",
                    STATUSES.map(|s| s.to_string()).join(", ")
                ))
            })?;
        if !out.contains(status) {
            out.push(*status);
        }
    }
    Ok(out)
}

pub(crate) fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn opt_millis(time: Option<SystemTime>) -> Value {
    time.map_or(Value::Null, |t| json!(millis(t)))
}

/// A time filter: milliseconds since the epoch, or an RFC 3339 date-time.
pub(crate) fn parse_time(what: &str, text: &str) -> Result<SystemTime, ApiError> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        let magnitude = Duration::from_millis(ms.unsigned_abs());
        let time = if ms >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        };
        return time.ok_or_else(|| ApiError::BadRequest(format!("{what} is out of range")));
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{what} {text:?} is not a time (use milliseconds since 1970 or RFC 3339)"
            ))
        })
}

pub(crate) fn failure(details: &FailureDetails) -> Value {
    json!({
        "type": details.error_type,
        "message": details.message,
        "stackTrace": details.stack_trace,
        "nonRetriable": details.is_non_retriable,
        "inner": details.inner.as_deref().map(failure),
    })
}

pub(crate) fn failure_from_proto(details: &durable_grpc::proto::TaskFailureDetails) -> Value {
    json!({
        "type": details.error_type,
        "message": details.error_message,
        "stackTrace": details.stack_trace,
        "nonRetriable": details.is_non_retriable,
        "inner": details.inner_failure.as_deref().map(failure_from_proto),
    })
}

/// One row of the instance list.
pub(crate) fn instance_row(m: &OrchestrationMetadata) -> Value {
    json!({
        "instanceId": m.instance_id,
        "name": m.name,
        "version": m.version,
        "status": m.status.to_string(),
        "createdAt": opt_millis(m.created_at),
        "lastUpdatedAt": opt_millis(m.last_updated_at),
        "completedAt": opt_millis(m.completed_at),
        "parentInstanceId": m.parent_instance_id,
    })
}

/// Everything about one instance.
pub(crate) fn instance_detail(m: &OrchestrationMetadata) -> Value {
    let mut tags: Vec<(&String, &String)> = m.tags.iter().collect();
    tags.sort();
    json!({
        "instanceId": m.instance_id,
        "name": m.name,
        "version": m.version,
        "executionId": m.execution_id,
        "status": m.status.to_string(),
        "terminal": m.status.is_terminal(),
        "createdAt": opt_millis(m.created_at),
        "lastUpdatedAt": opt_millis(m.last_updated_at),
        "completedAt": opt_millis(m.completed_at),
        "scheduledStartAt": opt_millis(m.scheduled_start_at),
        "input": m.serialized_input,
        "output": m.serialized_output,
        "customStatus": m.serialized_custom_status,
        "failure": m.failure_details.as_ref().map(failure),
        "parentInstanceId": m.parent_instance_id,
        "tags": tags.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
    })
}

/// `@name@key` split for display; anything else is shown whole as the key.
pub(crate) fn entity_parts(id: &str) -> (&str, &str) {
    id.strip_prefix('@')
        .and_then(|rest| rest.split_once('@'))
        .unwrap_or(("", id))
}

/// A payload cut to `limit` characters (`None`: whole), and whether it was cut.
pub(crate) fn cut(text: Option<&str>, limit: Option<usize>) -> (Option<String>, bool) {
    match (text, limit) {
        (Some(text), Some(limit)) if text.chars().count() > limit => {
            (Some(text.chars().take(limit).collect()), true)
        }
        (text, _) => (text.map(str::to_owned), false),
    }
}

/// An entity, with its state cut to `state_limit` characters for lists (`None`: whole).
pub(crate) fn entity(e: &EntityMetadata, state_limit: Option<usize>) -> Value {
    let (name, key) = entity_parts(&e.instance_id);
    let (state, truncated) = cut(e.serialized_state.as_deref(), state_limit);
    json!({
        "entityId": e.instance_id,
        "name": name,
        "key": key,
        "lastModifiedAt": opt_millis(e.last_modified),
        "backlog": e.backlog_queue_size,
        "lockedBy": e.locked_by,
        "state": state,
        "stateTruncated": truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_in_any_case_once_each() {
        assert_eq!(
            parse_statuses("running, FAILED,,Running").unwrap(),
            [OrchestrationStatus::Running, OrchestrationStatus::Failed]
        );
        assert!(parse_statuses("").unwrap().is_empty());
        let error = parse_statuses("Done").unwrap_err().to_string();
        assert!(error.contains("unknown status \"Done\""), "{error}");
    }

    #[test]
    fn times_parse_as_millis_or_rfc3339() {
        assert_eq!(
            parse_time("from", "1700000000123").unwrap(),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        assert_eq!(
            millis(parse_time("from", "2024-01-02T03:04:05.5Z").unwrap()),
            1_704_164_645_500
        );
        assert_eq!(millis(parse_time("from", "-1000").unwrap()), -1000);
        assert!(parse_time("from", "yesterday").is_err());
    }

    #[test]
    fn entity_ids_split_and_payloads_are_cut_by_characters() {
        assert_eq!(entity_parts("@counter@a@b"), ("counter", "a@b"));
        assert_eq!(entity_parts("plain"), ("", "plain"));
        let state = "\"é".repeat(3);
        assert_eq!(
            cut(Some(&state), Some(4)),
            (Some("\"é\"é".to_owned()), true)
        );
        assert_eq!(cut(Some(&state), Some(6)), (Some(state.clone()), false));
        assert_eq!(cut(Some(&state), None), (Some(state.clone()), false));
        assert_eq!(cut(None, Some(1)), (None, false));
    }
}
