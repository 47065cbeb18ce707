//! Spans through an OpenTelemetry SDK pipeline: the engine's spans keep the IDs history gives them (a root trace
//! included), each entity operation runs in its own span under the context it carries, and `orchestration_turn`
//! runs a turn in its span and emits its finished spans to an OpenTelemetry layer or the `durabletask::span` debug
//! log, computing and emitting nothing for a subscriber that takes neither.

use std::sync::{Arc, Mutex, OnceLock};

use durable_core::proto;
use durable_core::proto::history_event::EventType;
use durable_core::testing::history;
use durable_core::{Entity, EntityError, OrchestrationContext, OrchestrationError, Registry};
use opentelemetry::trace::{SpanKind, Status, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

/// One provider for the test binary (the global tracer is process-wide); each test looks at its own trace.
fn pipeline() -> &'static (SdkTracerProvider, InMemorySpanExporter) {
    static PIPELINE: OnceLock<(SdkTracerProvider, InMemorySpanExporter)> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(durable_telemetry::HistoryIdGenerator::default())
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        (provider, exporter)
    })
}

fn spans_of(trace_id: TraceId) -> Vec<SpanData> {
    let (provider, exporter) = pipeline();
    provider.force_flush().unwrap();
    exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .collect()
}

/// A subscriber that hands the `durabletask` spans to the test binary's OpenTelemetry pipeline.
fn exporting() -> impl tracing::Subscriber + Send + Sync {
    let (provider, _) = pipeline();
    tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("test"))
            .with_filter(Targets::new().with_target("durabletask", tracing::Level::INFO)),
    )
}

#[test]
fn an_orchestration_without_a_parent_is_the_root_of_its_derived_trace() {
    pipeline();
    let mut registry = Registry::new();
    registry.add_orchestrator("Root", |_ctx: OrchestrationContext, _: ()| async move {
        Ok::<_, OrchestrationError>(())
    });
    let request = proto::OrchestratorRequest {
        instance_id: "root-1".into(),
        new_events: vec![proto::HistoryEvent {
            event_id: -1,
            timestamp: Some(std::time::SystemTime::now().into()),
            event_type: Some(EventType::ExecutionStarted(proto::ExecutionStartedEvent {
                name: "Root".into(),
                orchestration_instance: Some(proto::OrchestrationInstance {
                    instance_id: "root-1".into(),
                    execution_id: Some("e1".into()),
                }),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    let response = registry.execute_orchestrator(&request);
    let trace = durable_core::trace::turn_trace(&request, &response).unwrap();
    trace.spans.iter().for_each(durable_telemetry::emit);

    // The SDK asks for a trace ID only for a root span, after the span ID: both must be history's.
    let trace_id = TraceId::from_bytes(trace.orchestration.trace_id);
    let spans = spans_of(trace_id);
    let [root] = &spans[..] else {
        panic!("expected the orchestration span in the derived trace, got {spans:#?}")
    };
    assert_eq!(root.name, "orchestration:Root");
    assert_eq!(root.span_kind, SpanKind::Server);
    assert_eq!(
        root.span_context.span_id().to_bytes(),
        trace.orchestration.span_id
    );
    assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[test]
fn each_entity_operation_runs_in_its_own_span_under_its_context() {
    let subscriber = exporting();
    let mut registry = Registry::new();
    registry.add_entity(
        "Counter",
        Entity::<i64>::new().operation("add", |value: &mut i64, _ctx, n: i64| {
            *value += n;
            Ok::<_, EntityError>(*value)
        }),
    );
    let signal = |operation: &str, parent: &str| proto::OperationRequest {
        operation: operation.into(),
        request_id: format!("{operation}-{parent}"),
        input: Some("2".into()),
        trace_context: Some(proto::TraceContext {
            trace_parent: format!("00-5bf92f3577b34da6a3ce929d0e0e4736-{parent}-01"),
            ..Default::default()
        }),
    };
    let request = proto::EntityBatchRequest {
        instance_id: "@counter@mine".into(),
        entity_state: Some("1".into()),
        operations: vec![
            signal("add", "00000000000000a1"),
            signal("nope", "00000000000000a2"),
        ],
        ..Default::default()
    };
    let result = tracing::subscriber::with_default(subscriber, || {
        registry.execute_entity_batch_traced(&request, None, &|op| {
            durable_telemetry::entity_operation_span(&request.instance_id, op)
        })
    });
    assert_eq!(result.entity_state.as_deref(), Some("3"));

    let spans = spans_of(TraceId::from_hex("5bf92f3577b34da6a3ce929d0e0e4736").unwrap());
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} in {spans:#?}"))
    };
    let add = find("entity:counter:add");
    assert_eq!(add.span_kind, SpanKind::Server);
    assert_eq!(add.parent_span_id.to_string(), "00000000000000a1");
    assert_eq!(add.status, Status::Unset);
    assert!(add.attributes.iter().any(|kv| {
        kv.key.as_str() == "durabletask.task.instance_id" && kv.value.as_str() == "@counter@mine"
    }));
    let nope = find("entity:counter:nope");
    assert_eq!(nope.parent_span_id.to_string(), "00000000000000a2");
    assert!(
        matches!(&nope.status, Status::Error { description } if description.contains("nope")),
        "{:?}",
        nope.status
    );
    assert_eq!(spans.len(), 2, "{spans:#?}");
}

/// The first turn of an orchestration that completes at once, and the trace its spans belong to.
fn completing_turn(instance_id: &str) -> (Registry, proto::OrchestratorRequest, TraceId) {
    let mut registry = Registry::new();
    registry.add_orchestrator("Once", |_ctx: OrchestrationContext, _: ()| async move {
        Ok::<_, OrchestrationError>(())
    });
    let now = durable_core::OffsetDateTime::now_utc();
    let mut started = history::execution_started(instance_id, "e1", "Once", Some("null"));
    started.timestamp = Some(std::time::SystemTime::from(now).into());
    let request = proto::OrchestratorRequest {
        instance_id: instance_id.into(),
        new_events: vec![history::orchestrator_started(now), started],
        ..Default::default()
    };
    let context = durable_core::trace::turn_context(&request).expect("the request has a start");
    let trace_id = TraceId::from_bytes(context.orchestration.trace_id);
    (registry, request, trace_id)
}

fn completes(response: &proto::OrchestratorResponse) -> bool {
    response.actions.iter().any(|a| {
        matches!(
            a.orchestrator_action_type,
            Some(proto::orchestrator_action::OrchestratorActionType::CompleteOrchestration(_))
        )
    })
}

#[test]
fn under_an_opentelemetry_layer_the_turn_and_its_finished_spans_are_exported() {
    let subscriber = exporting();
    let (registry, request, trace_id) = completing_turn("turn-otel");

    let response = tracing::subscriber::with_default(subscriber, || {
        durable_telemetry::orchestration_turn(&request, || registry.execute_orchestrator(&request))
    });

    assert!(completes(&response));
    let spans = spans_of(trace_id);
    let server = spans
        .iter()
        .find(|s| s.name == "orchestration:Once")
        .unwrap_or_else(|| panic!("no orchestration span in {spans:#?}"));
    assert_eq!(server.span_kind, SpanKind::Server);
    let turn = spans
        .iter()
        .find(|s| s.name == "orchestration:Once:turn")
        .unwrap_or_else(|| panic!("no turn span in {spans:#?}"));
    assert_eq!(turn.span_kind, SpanKind::Internal);
    assert_eq!(turn.parent_span_id, server.span_context.span_id());
    assert_eq!(spans.len(), 2, "{spans:#?}");
}

#[test]
fn a_rejected_turn_emits_nothing_but_its_own_span() {
    let subscriber = exporting();
    let (registry, request, trace_id) = completing_turn("turn-rejected");

    let outcome = tracing::subscriber::with_default(subscriber, || {
        durable_telemetry::try_orchestration_turn(&request, || {
            // The turn runs, but its answer is not sent: nothing it finished may be reported.
            let _ = registry.execute_orchestrator(&request);
            Err::<proto::OrchestratorResponse, _>("rejected")
        })
    });

    assert_eq!(outcome.unwrap_err(), "rejected");
    let names: Vec<String> = spans_of(trace_id)
        .into_iter()
        .map(|s| s.name.into_owned())
        .collect();
    assert_eq!(names, ["orchestration:Once:turn"]);
}

#[test]
fn without_an_opentelemetry_layer_nothing_is_emitted() {
    pipeline();
    // A logging-only subscriber takes the `durabletask` spans but has no OpenTelemetry layer: the global provider
    // (which `emit` would use) must not see the turn's spans.
    let subscriber =
        tracing_subscriber::registry().with(Events::default().with_filter(LevelFilter::INFO));
    let (registry, request, trace_id) = completing_turn("turn-logs-only");

    let response = tracing::subscriber::with_default(subscriber, || {
        durable_telemetry::orchestration_turn(&request, || registry.execute_orchestrator(&request))
    });

    assert!(completes(&response));
    assert_eq!(spans_of(trace_id), Vec::<SpanData>::new());
}

#[test]
fn the_span_debug_log_gets_each_finished_span() {
    pipeline();
    let events = Events::default();
    let seen = events.0.clone();
    let subscriber = tracing_subscriber::registry().with(
        events.with_filter(Targets::new().with_target("durabletask::span", tracing::Level::DEBUG)),
    );
    let (registry, request, _) = completing_turn("turn-debug-log");

    tracing::subscriber::with_default(subscriber, || {
        durable_telemetry::orchestration_turn(&request, || registry.execute_orchestrator(&request))
    });

    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        ["durabletask::span: orchestration:Once"],
        "one line per finished span"
    );
}

/// Records the target and `name` field of every event it gets.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Name(Option<String>);
        impl tracing::field::Visit for Name {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "name" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut name = Name(None);
        event.record(&mut name);
        self.0.lock().unwrap().push(format!(
            "{}: {}",
            event.metadata().target(),
            name.0.unwrap_or_default()
        ));
    }
}
