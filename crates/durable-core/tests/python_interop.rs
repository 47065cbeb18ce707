//! Cross-checks with the Python SDK (durabletask 1.12.0): deterministic GUIDs must be identical, since entity
//! request ids and critical-section ids are derived from them and both SDKs may replay the same history.

use std::path::PathBuf;
use std::process::Command;

use durable_core::proto::{
    self, history_event::EventType, orchestrator_action::OrchestratorActionType,
};
use durable_core::{OrchestrationContext, OrchestrationError, Registry};

fn python() -> Option<PathBuf> {
    durable_testkit::python()
}

const CASES: &[(&str, i64, u32)] = &[
    ("inst-1", 1_767_225_605, 250_000_000),
    ("Order:42/αβ", 1_700_000_000, 999_999_999),
    ("x", 0, 0),
];

fn python_guids(python: &PathBuf) -> Vec<String> {
    let script = r#"
import sys
from datetime import datetime, timezone
from durabletask.worker import _RuntimeOrchestrationContext
for line in sys.stdin.read().splitlines():
    instance, secs, nanos = line.split("\t")
    ctx = _RuntimeOrchestrationContext(instance, None, None)
    at = datetime.fromtimestamp(int(secs), tz=timezone.utc).replace(tzinfo=None)
    ctx.current_utc_datetime = at.replace(microsecond=int(nanos) // 1000)
    print(ctx.new_uuid())
    print(ctx.new_uuid())
"#;
    let input: String = CASES
        .iter()
        .map(|(i, s, n)| format!("{i}\t{s}\t{n}\n"))
        .collect();
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn rust_guids() -> Vec<String> {
    let mut r = Registry::new();
    r.add_orchestrator("guids", |ctx: OrchestrationContext, (): ()| async move {
        Ok::<_, OrchestrationError>(vec![ctx.new_guid().to_string(), ctx.new_guid().to_string()])
    });
    let mut all = Vec::new();
    for (instance, secs, nanos) in CASES {
        let event = |event_type| proto::HistoryEvent {
            event_id: -1,
            timestamp: Some(proto::prost_types::Timestamp {
                seconds: *secs,
                nanos: *nanos as i32,
            }),
            event_type: Some(event_type),
        };
        let response = r.execute_orchestrator(&proto::OrchestratorRequest {
            instance_id: instance.to_string(),
            new_events: vec![
                event(EventType::OrchestratorStarted(Default::default())),
                event(EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                    name: "guids".into(),
                    ..Default::default()
                })),
            ],
            ..Default::default()
        });
        let Some(OrchestratorActionType::CompleteOrchestration(c)) =
            &response.actions[0].orchestrator_action_type
        else {
            panic!("unexpected {response:?}");
        };
        let guids: Vec<String> = serde_json::from_str(c.result.as_deref().unwrap()).unwrap();
        all.extend(guids);
    }
    all
}

#[test]
fn deterministic_guids_match_the_python_sdk() {
    let Some(python) = python() else {
        return;
    };
    let expected = python_guids(&python);
    assert_eq!(expected.len(), CASES.len() * 2);
    assert_eq!(rust_guids(), expected);
}
