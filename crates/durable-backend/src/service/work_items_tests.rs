use std::collections::HashMap;

use durable_proto::history_event::EventType;
use durable_proto::{
    ActivityRequest, HealthPing, HistoryEvent, OrchestrationTraceContext,
    OrchestratorEntityParameters, OrchestratorRequest, OrchestratorStartedEvent, WorkItem,
    work_item,
};
use prost::Message;
use tonic::server::NamedService;

use super::{GET_WORK_ITEMS, Routes, WireWorkItem};
use crate::codec::{encode_turn, event};
use crate::past_events::EncodedPastEvents;
use crate::past_events::tests::raised;

/// An orchestrator work item with every field of the request set, and `past` as its past events.
fn work_item(instance_id: &str, past: Vec<HistoryEvent>) -> WorkItem {
    WorkItem {
        request: Some(work_item::Request::OrchestratorRequest(
            OrchestratorRequest {
                instance_id: instance_id.to_owned(),
                execution_id: Some("exec".into()),
                past_events: past,
                new_events: vec![
                    event(
                        -1,
                        1_700_000_000_500,
                        EventType::OrchestratorStarted(OrchestratorStartedEvent {}),
                    ),
                    raised(-1, 40),
                ],
                entity_parameters: Some(OrchestratorEntityParameters {
                    entity_message_reorder_window: Some(prost_types::Duration {
                        seconds: 30,
                        nanos: 0,
                    }),
                }),
                requires_history_streaming: false,
                // One entry: the encoding of a map of several depends on its iteration order.
                properties: HashMap::from([("k".to_owned(), prost_types::Value::default())]),
                orchestration_trace_context: Some(OrchestrationTraceContext {
                    span_id: Some("span".into()),
                    span_start_time: None,
                }),
            },
        )),
        completion_token: "token~instance".into(),
    }
}

/// The same events as stored: turn rows of `per_row` events each.
fn stored(past: &[HistoryEvent], per_row: usize) -> EncodedPastEvents {
    let mut encoded = EncodedPastEvents::default();
    for row in past.chunks(per_row.max(1)) {
        encoded.push_row(&encode_turn(row), true).unwrap();
    }
    encoded
}

fn without_past_events(mut item: WorkItem) -> WorkItem {
    if let Some(work_item::Request::OrchestratorRequest(r)) = &mut item.request {
        r.past_events.clear();
    }
    item
}

fn wire_bytes(item: WireWorkItem) -> Vec<u8> {
    let mut bytes = Vec::new();
    item.encode(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_work_item_with_stored_past_events_is_the_bytes_prost_writes() {
    let several: Vec<_> = (0..5).map(|i| raised(i, 8)).collect();
    let large = vec![
        raised(0, 10),
        raised(1, 200),
        raised(2, 20_000),
        raised(3, 0),
    ];
    let many: Vec<_> = (0..300).map(|i| raised(i, 30)).collect();
    let cases = [
        ("empty history", "i", Vec::new(), 1),
        ("several events, one row", "i", several.clone(), 10),
        ("several events, a row each", "i", several.clone(), 1),
        ("multi-row history", "i", many, 7),
        ("lengths of two and three bytes", "i", large, 2),
        ("no instance id", "", several, 3),
    ];
    for (case, instance_id, past, per_row) in cases {
        let generated = work_item(instance_id, past.clone());
        let wire = WireWorkItem {
            item: without_past_events(generated.clone()),
            past_events: stored(&past, per_row),
        };
        let bytes = wire_bytes(wire);
        assert_eq!(bytes, generated.encode_to_vec(), "{case}");
        assert_eq!(
            WorkItem::decode(bytes.as_slice()).unwrap(),
            generated,
            "{case}"
        );
    }
}

#[test]
fn other_work_items_are_encoded_as_generated() {
    let items = [
        WorkItem {
            request: Some(work_item::Request::HealthPing(HealthPing {})),
            completion_token: String::new(),
        },
        WorkItem {
            request: Some(work_item::Request::ActivityRequest(ActivityRequest {
                name: "a".into(),
                ..ActivityRequest::default()
            })),
            completion_token: "t".into(),
        },
        work_item("i", vec![raised(0, 1)]),
    ];
    for item in items {
        assert_eq!(
            wire_bytes(WireWorkItem::from(item.clone())),
            item.encode_to_vec()
        );
        assert_eq!(
            WireWorkItem::from(item.clone()).into_generated().unwrap(),
            item
        );
    }
}

#[test]
fn stored_events_go_before_those_the_item_holds() {
    let stored_part: Vec<_> = (0..3).map(|i| raised(i, 5)).collect();
    let held = vec![raised(10, 5)];
    let wire = WireWorkItem {
        item: work_item("i", held.clone()),
        past_events: stored(&stored_part, 2),
    };
    let expected = work_item("i", [stored_part, held].concat());
    assert_eq!(
        WorkItem::decode(wire_bytes(wire.clone()).as_slice()).unwrap(),
        expected
    );
    assert_eq!(wire.into_generated().unwrap(), expected);
}

#[test]
fn the_route_is_the_generated_one() {
    assert_eq!(GET_WORK_ITEMS, format!("/{}/GetWorkItems", Routes::NAME));
}
