//! OTLP over gRPC to an `https` collector whose certificate authority `OTEL_EXPORTER_OTLP_CERTIFICATE` names.

// The exporter reads its configuration from the process environment, which the test sets first.
#![allow(unsafe_code)]

#[path = "sink/spans.rs"]
mod common;
mod sink;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

#[test]
fn spans_reach_a_collector_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "durable-telemetry test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();

    // Only the test's server needs a process-wide provider; the exporter names its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, mut received) = runtime.block_on(sink::grpc_tls(&cert.pem(), &key.serialize_pem()));
    // SAFETY of the process environment: this test binary has this one test, and sets it before any thread reads it.
    unsafe {
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://localhost:{}", addr.port()),
        );
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        std::env::set_var("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca_path);
        std::env::set_var("OTEL_SERVICE_NAME", "tls-test");
    }
    let telemetry = runtime
        .block_on(async {
            durable_telemetry::init(durable_telemetry::TelemetryOptions::new("unused"))
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
        .unwrap_or_else(|| panic!("nothing arrived over TLS: {spans:#?}"));
    assert_eq!(server.service, "tls-test");
    assert_eq!(server.span_id, orchestration);
}
