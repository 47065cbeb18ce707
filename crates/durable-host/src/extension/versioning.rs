//! host.json's versioning settings, applied as the extension applies a worker's versioning: before the handler
//! is invoked for a turn.
//!
//! `extensions.durableTask.defaultVersion` is the app's version (and the version of instances and
//! sub-orchestrations started without one), `versionMatchStrategy` (`None`, `Strict`, `CurrentOrOlder`; default
//! `None`) how an orchestration's version must relate to it and `versionFailureStrategy` (`Reject`, `Fail`;
//! default `Reject`) what happens when it does not: the work item is abandoned for another worker, or the
//! orchestration fails with `VersionMismatch` without the handler being invoked. The rules are
//! `durable_core::versioning`'s.

use durable_core::{VersionFailureStrategy, VersionMatchStrategy, Versioning};
use durable_proto as proto;
use proto::history_event::EventType;
use proto::orchestrator_action::OrchestratorActionType;
use serde_json::Value;

fn get<'a>(durable_task: &'a Value, key: &str) -> Option<&'a Value> {
    durable_task
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// The versioning the `durableTask` section asks for; `None` when it asks for no matching.
pub(crate) fn versioning_settings(durable_task: &Value) -> Result<Option<Versioning>, String> {
    let prefix = "extensions.durableTask";
    let text = |key: &str| -> Result<Option<&str>, String> {
        get(durable_task, key)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| format!("{prefix}.{key} must be a string"))
            })
            .transpose()
    };
    let match_strategy = match text("versionMatchStrategy")? {
        Some(s) => s
            .parse::<VersionMatchStrategy>()
            .map_err(|e| format!("{prefix}.versionMatchStrategy: {e}"))?,
        None => VersionMatchStrategy::None,
    };
    let failure_strategy = match text("versionFailureStrategy")? {
        Some(s) => s
            .parse::<VersionFailureStrategy>()
            .map_err(|e| format!("{prefix}.versionFailureStrategy: {e}"))?,
        None => VersionFailureStrategy::Reject,
    };
    if match_strategy == VersionMatchStrategy::None {
        return Ok(None);
    }
    let version = text("defaultVersion")?.unwrap_or_default();
    Ok(Some(
        Versioning::new(version)
            .default_version((!version.is_empty()).then(|| version.to_owned()))
            .match_strategy(match_strategy)
            .failure_strategy(failure_strategy),
    ))
}

/// `Err(reason)` to abandon the turn, `Ok(Some(answer))` to fail the orchestration, `Ok(None)` to run it.
pub(crate) fn check(
    versioning: &Versioning,
    request: &proto::OrchestratorRequest,
) -> Result<Option<proto::OrchestratorResponse>, String> {
    let Some(version) = request
        .past_events
        .iter()
        .chain(&request.new_events)
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => Some(s.version.as_deref()),
            _ => None,
        })
    else {
        return Ok(None);
    };
    let Some(details) = versioning.evaluate(version) else {
        return Ok(None);
    };
    if versioning.failure_strategy == VersionFailureStrategy::Reject {
        return Err(format!("rejected by versioning: {details}"));
    }
    Ok(Some(proto::OrchestratorResponse {
        instance_id: request.instance_id.clone(),
        actions: vec![proto::OrchestratorAction {
            id: -1,
            orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
                proto::CompleteOrchestrationAction {
                    orchestration_status: proto::OrchestrationStatus::Failed as i32,
                    failure_details: Some(details.to_proto()),
                    ..Default::default()
                },
            )),
        }],
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_are_read_and_bad_ones_named() {
        let v = versioning_settings(&json!({
            "defaultVersion": "2.0", "versionMatchStrategy": "CurrentOrOlder", "versionFailureStrategy": "fail"
        }))
        .unwrap()
        .unwrap();
        assert_eq!(v.version.as_deref(), Some("2.0"));
        assert_eq!(v.match_strategy, VersionMatchStrategy::CurrentOrOlder);
        assert_eq!(v.failure_strategy, VersionFailureStrategy::Fail);
        assert_eq!(
            versioning_settings(&json!({"defaultVersion": "1"})),
            Ok(None)
        );
        let error = versioning_settings(&json!({"versionMatchStrategy": "Loose"})).unwrap_err();
        assert!(error.contains("versionMatchStrategy"), "{error}");
        assert!(versioning_settings(&json!({"versionFailureStrategy": 1})).is_err());
    }
}
