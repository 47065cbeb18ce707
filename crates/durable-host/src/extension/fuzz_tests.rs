//! The extension's readers of what a handler answers, fed random replies: every one is accepted or refused
//! with the extension's exception, never a panic.

use super::*;
use crate::extension::entity_messages::RequestMessage;
use proptest::prelude::*;
use proto::orchestrator_action::OrchestratorActionType as A;

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        ".{0,12}",
        Just("@counter@k".to_owned()),
        Just("00000000-0000-0000-0000-000000000001".to_owned()),
        Just(r#"{"op":"add","signal":true,"id":"00000000-0000-0000-0000-000000000001","input":"1"}"#.to_owned()),
        Just(r#"{"id":"x","lockset":[{"name":"counter","key":"k"},{"name":1}],"pos":99999999999,"due":"2026-11-25T17:00:00"}"#.to_owned()),
    ]
    .boxed()
}

fn time() -> BoxedStrategy<Option<prost_types::Timestamp>> {
    proptest::option::of(
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
    .boxed()
}

fn entity_event() -> BoxedStrategy<proto::send_entity_message_action::EntityMessageType> {
    use proto::send_entity_message_action::EntityMessageType as M;
    prop_oneof![
        (text(), text(), time(), proptest::option::of(text())).prop_map(
            |(request_id, operation, scheduled_time, target)| {
                M::EntityOperationSignaled(proto::EntityOperationSignaledEvent {
                    request_id,
                    operation,
                    scheduled_time,
                    input: None,
                    target_instance_id: target,
                })
            }
        ),
        (text(), text(), proptest::option::of(text())).prop_map(
            |(request_id, operation, target)| {
                M::EntityOperationCalled(proto::EntityOperationCalledEvent {
                    request_id,
                    operation,
                    target_instance_id: target,
                    ..Default::default()
                })
            }
        ),
        (
            text(),
            proptest::collection::vec(text(), 0..3),
            any::<i32>()
        )
            .prop_map(|(critical_section_id, lock_set, position)| {
                M::EntityLockRequested(proto::EntityLockRequestedEvent {
                    critical_section_id,
                    lock_set,
                    position,
                    parent_instance_id: None,
                })
            }),
        (text(), proptest::option::of(text())).prop_map(|(critical_section_id, target)| {
            M::EntityUnlockSent(proto::EntityUnlockSentEvent {
                critical_section_id,
                parent_instance_id: None,
                target_instance_id: target,
            })
        }),
    ]
    .boxed()
}

fn action() -> BoxedStrategy<Option<A>> {
    proptest::option::of(prop_oneof![
        (text(), proptest::option::of(text())).prop_map(|(name, input)| A::ScheduleTask(
            proto::ScheduleTaskAction {
                name,
                input,
                ..Default::default()
            }
        )),
        (text(), text()).prop_map(|(instance_id, name)| A::CreateSubOrchestration(
            proto::CreateSubOrchestrationAction {
                instance_id,
                name,
                ..Default::default()
            }
        )),
        time().prop_map(|fire_at| A::CreateTimer(proto::CreateTimerAction { fire_at })),
        (text(), text(), proptest::option::of(text())).prop_map(|(instance_id, name, data)| {
            A::SendEvent(proto::SendEventAction {
                instance: Some(proto::OrchestrationInstance {
                    instance_id,
                    execution_id: None,
                }),
                name,
                data,
            })
        }),
        (any::<i32>(), proptest::option::of(text())).prop_map(|(status, result)| {
            A::CompleteOrchestration(proto::CompleteOrchestrationAction {
                orchestration_status: status,
                result,
                ..Default::default()
            })
        }),
        proptest::option::of(entity_event()).prop_map(|entity_message_type| A::SendEntityMessage(
            proto::SendEntityMessageAction {
                entity_message_type
            }
        )),
        Just(A::TerminateOrchestration(
            proto::TerminateOrchestrationAction::default()
        )),
    ])
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_orchestrator_reply_is_accepted_or_refused(
        actions in proptest::collection::vec((any::<i32>(), action()), 0..6),
        status in proptest::option::of(".{0,40}"),
    ) {
        let response = proto::OrchestratorResponse {
            actions: actions.into_iter().map(|(id, kind)| proto::OrchestratorAction { id, orchestrator_action_type: kind }).collect(),
            custom_status: status,
            ..Default::default()
        };
        let encoded = Value::String(BASE64.encode(response.encode_to_vec()));
        if let Ok(decoded) = decode_return_value::<proto::OrchestratorResponse>(encoded, NULL_ORCHESTRATOR_RESPONSE) {
            let _ = actions::accept(decoded);
        }
    }

    #[test]
    fn any_entity_reply_is_accepted_or_refused(
        results in proptest::collection::vec(proptest::option::of(any::<bool>()), 0..4),
        signals in proptest::collection::vec((text(), time(), any::<bool>()), 0..3),
    ) {
        use proto::operation_action::OperationActionType as O;
        use proto::operation_result::ResultType as R;
        let result = proto::EntityBatchResult {
            results: results.into_iter().map(|r| proto::OperationResult {
                result_type: r.map(|ok| if ok { R::Success(Default::default()) } else { R::Failure(Default::default()) }),
            }).collect(),
            actions: signals.into_iter().enumerate().map(|(i, (instance_id, scheduled_time, start))| proto::OperationAction {
                id: i as i32,
                operation_action_type: Some(if start {
                    O::StartNewOrchestration(proto::StartNewOrchestrationAction { instance_id, scheduled_time, ..Default::default() })
                } else {
                    O::SendSignal(proto::SendSignalAction { instance_id, scheduled_time, ..Default::default() })
                }),
            }).collect(),
            ..Default::default()
        };
        let encoded = Value::String(BASE64.encode(result.encode_to_vec()));
        if let Ok(decoded) = decode_return_value::<proto::EntityBatchResult>(encoded, NULL_ENTITY_RESPONSE) {
            let _ = accept_entity_result(decoded, Some("1.0"));
        }
    }

    #[test]
    fn any_return_value_is_decoded_or_refused(bytes in any::<Vec<u8>>(), text in ".{0,40}") {
        let _ = decode_return_value::<proto::OrchestratorResponse>(Value::String(BASE64.encode(&bytes)), NULL_ORCHESTRATOR_RESPONSE)
            .map(actions::accept);
        let _ = decode_return_value::<proto::EntityBatchResult>(Value::String(BASE64.encode(&bytes)), NULL_ENTITY_RESPONSE)
            .map(|r| accept_entity_result(r, None));
        let _ = decode_return_value::<proto::OrchestratorResponse>(Value::String(text.clone()), NULL_ORCHESTRATOR_RESPONSE);
        if let Some(message) = RequestMessage::from_json(&text) {
            let _ = message.to_json();
        }
    }

    #[test]
    fn any_request_message_is_read_or_ignored(
        op in proptest::option::of(text()), id in text(), due in proptest::option::of(".{0,30}"),
        pos in any::<i64>(), signal in any::<bool>(),
    ) {
        let json = serde_json::json!({ "op": op, "id": id, "due": due, "pos": pos, "signal": signal, "lockset": [{"name": "counter", "key": "k"}] });
        if let Some(message) = RequestMessage::from_json(&json.to_string()) {
            let _ = message.to_json();
        }
    }

    #[test]
    fn any_timestamp_is_formatted(seconds in any::<i64>(), nanos in any::<i32>()) {
        let ts = prost_types::Timestamp { seconds, nanos };
        let _ = dotnet::round_trip(&ts);
        let _ = dotnet::newtonsoft_date(&ts);
        let _ = entity_messages::request_event_name(Some(&ts));
    }
}
