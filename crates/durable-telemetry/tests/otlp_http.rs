//! OTLP over HTTP/protobuf, switched on by `OTEL_EXPORTER_OTLP_ENDPOINT` alone, to a collector on a loopback port,
//! gzip-compressed as `OTEL_EXPORTER_OTLP_COMPRESSION` asks.

// The exporter reads its configuration from the process environment, which the test sets first.
#![allow(unsafe_code)]

#[path = "sink/spans.rs"]
mod common;
mod sink;

#[test]
fn spans_reach_an_otlp_http_collector() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, mut received) = runtime.block_on(sink::http());
    // SAFETY of the process environment: this test binary has this one test, and sets it before any thread reads it.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"));
        std::env::set_var("OTEL_SERVICE_NAME", "export-test");
        std::env::set_var("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
        std::env::remove_var("OTEL_EXPORTER_OTLP_PROTOCOL");
    }
    let telemetry =
        durable_telemetry::init(durable_telemetry::TelemetryOptions::new("unused")).unwrap();
    assert!(telemetry.is_exporting());
    let orchestration = common::produce_spans();
    telemetry.shutdown();

    let mut spans = Vec::new();
    while let Ok(batch) = received.try_recv() {
        spans.extend(batch);
    }
    let server = spans
        .iter()
        .find(|s| s.name == "orchestration:Export")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(server.service, "export-test");
    assert!(server.gzipped);
    assert_eq!(server.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(server.span_id, orchestration);
    assert_eq!(server.parent_span_id, "00f067aa0ba902b7");
    assert_eq!(server.kind, 2, "SERVER");
    assert!(
        server
            .attributes
            .contains(&("durabletask.task.instance_id".into(), "export-1".into()))
    );
    let activity = spans
        .iter()
        .find(|s| s.name == "activity:Work")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(activity.trace_id, server.trace_id);
    assert_eq!(activity.parent_span_id, orchestration);
    assert!(
        activity
            .attributes
            .contains(&("durabletask.task.task_id".into(), "7".into()))
    );
}
