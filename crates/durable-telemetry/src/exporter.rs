//! The OTLP span exporter the `OTEL_*` variables describe. `opentelemetry-otlp` reads almost all of them itself;
//! what it leaves to the application is whom an `https` gRPC endpoint may trust.

use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
use opentelemetry_otlp::{SpanExporter, WithTonicConfig};

use crate::init::Error;

/// Builds the exporter: OTLP/HTTP (protobuf) unless the protocol variables say `grpc`.
pub(crate) fn span_exporter(var: &impl Fn(&str) -> Option<String>) -> Result<SpanExporter, Error> {
    let set = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let protocol =
        set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let built = if protocol.is_some_and(|p| p.eq_ignore_ascii_case("grpc")) {
        let mut builder = SpanExporter::builder().with_tonic();
        if let Some(tls) = grpc_tls(&set)? {
            builder = builder.with_tls_config(tls);
        }
        builder.build()
    } else {
        // HTTP: the blocking reqwest client verifies `https` endpoints against the system's trust store.
        SpanExporter::builder().build()
    };
    built.map_err(|e| Error::Exporter(e.to_string()))
}

/// The TLS settings of a gRPC export: `None` for a plaintext endpoint. `opentelemetry-otlp` would connect to an
/// `https` endpoint trusting no certificate authority at all; this trusts the system's (which honours
/// `SSL_CERT_FILE`) and the PEM file `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` names, as the specification asks.
fn grpc_tls(set: &impl Fn(&str) -> Option<String>) -> Result<Option<ClientTlsConfig>, Error> {
    let endpoint =
        set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let insecure = set("OTEL_EXPORTER_OTLP_TRACES_INSECURE")
        .or_else(|| set("OTEL_EXPORTER_OTLP_INSECURE"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let https = match endpoint.as_deref().map(|e| e.split_once("://")) {
        // The default endpoint is http://localhost:4317.
        None => false,
        Some(Some((scheme, _))) => scheme.eq_ignore_ascii_case("https"),
        // Without a scheme, the endpoint is secure unless the INSECURE variables say otherwise.
        Some(None) => !insecure,
    };
    if !https {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if let Some(path) = set("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")
        .or_else(|| set("OTEL_EXPORTER_OTLP_CERTIFICATE"))
    {
        let pem = std::fs::read(&path).map_err(|e| {
            Error::Exporter(format!(
                "cannot read the certificate file {path:?} (OTEL_EXPORTER_OTLP_CERTIFICATE): {e}"
            ))
        })?;
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::grpc_tls;

    fn tls(vars: &[(&str, &str)]) -> Result<bool, String> {
        let set = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        grpc_tls(&set)
            .map(|t| t.is_some())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tls_follows_the_endpoint_scheme_and_the_insecure_variables() {
        assert_eq!(tls(&[]), Ok(false));
        assert_eq!(
            tls(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]),
            Ok(false)
        );
        assert_eq!(
            tls(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "HTTPS://c:4317")]),
            Ok(true)
        );
        assert_eq!(tls(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317")]), Ok(true));
        assert_eq!(
            tls(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "true")
            ]),
            Ok(false)
        );
        // The signal's own endpoint wins.
        assert_eq!(
            tls(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")
            ]),
            Ok(false)
        );
        let missing = tls(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ]);
        assert!(missing.unwrap_err().contains("/nonexistent/ca.pem"));
    }
}
