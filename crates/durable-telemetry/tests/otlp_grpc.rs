//! OTLP over gRPC, chosen with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`, to a collector on a loopback port.

// The exporter reads its configuration from the process environment, which the test sets first.
#![allow(unsafe_code)]

#[path = "sink/spans.rs"]
mod common;
mod sink;

#[test]
fn spans_reach_an_otlp_grpc_collector() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, mut received) = runtime.block_on(sink::grpc());
    // SAFETY of the process environment: this test binary has this one test, and sets it before any thread reads it.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"));
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        std::env::remove_var("OTEL_SERVICE_NAME");
    }
    // The gRPC exporter is built inside a runtime, as tonic needs.
    let telemetry = runtime
        .block_on(async {
            durable_telemetry::init(durable_telemetry::TelemetryOptions::new("grpc-default"))
        })
        .unwrap();
    let orchestration = common::produce_spans();
    telemetry.shutdown();

    let spans: Vec<_> = std::iter::from_fn(|| received.try_recv().ok())
        .flatten()
        .collect();
    let server = spans
        .iter()
        .find(|s| s.name == "orchestration:Export")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(server.service, "grpc-default");
    assert_eq!(server.span_id, orchestration);
    assert_eq!(server.parent_span_id, "00f067aa0ba902b7");
    let activity = spans
        .iter()
        .find(|s| s.name == "activity:Work")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(activity.parent_span_id, orchestration);
}
