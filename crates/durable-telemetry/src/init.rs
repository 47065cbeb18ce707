//! Setting up a binary's subscriber: `fmt` logs, and OTLP export when the `OTEL_*` variables ask for it.

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OTLP exporter could not be built from the `OTEL_*` variables.
    #[error("OpenTelemetry export is configured but could not be set up: {0}")]
    Exporter(String),
    /// `OTEL_*` variables ask for export, but this build has no OTLP exporter.
    #[error(
        "OpenTelemetry export is configured ({0}) but this build has no OTLP exporter (the `otlp` feature)"
    )]
    NoExporter(String),
}

/// How [`init`] sets up the subscriber.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TelemetryOptions {
    /// `service.name` when `OTEL_SERVICE_NAME` is not set.
    pub service_name: String,
    /// The log filter when `RUST_LOG` is not set.
    pub default_filter: String,
    /// Whether log lines name their target (module).
    pub show_target: bool,
}

impl TelemetryOptions {
    /// Options for a service of this name, logging at `info`.
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            default_filter: "info".into(),
            show_target: true,
        }
    }

    /// Whether log lines name their target (module); they do by default.
    pub fn show_target(mut self, show: bool) -> Self {
        self.show_target = show;
        self
    }

    /// The log filter when `RUST_LOG` is not set.
    pub fn default_filter(mut self, filter: impl Into<String>) -> Self {
        self.default_filter = filter.into();
        self
    }
}

/// What [`init`] set up; dropping it (or [`shutdown`](Self::shutdown)) exports what is still buffered.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("OpenTelemetry: could not export the last spans: {error}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the environment asks for OTLP export, and why: `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`
/// say no; `OTEL_TRACES_EXPORTER=otlp` or an `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// says yes. Nothing set means no export (rather than the specification's default of sending to localhost), so
/// that a plain run never tries to reach a collector that is not there.
pub(crate) fn export_requested(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    if let Some(exporters) = set("OTEL_TRACES_EXPORTER") {
        let wants = exporters
            .split(',')
            .any(|e| e.trim().eq_ignore_ascii_case("otlp"));
        return wants.then(|| "OTEL_TRACES_EXPORTER=otlp".to_string());
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find(|name| set(name).is_some())
    .map(str::to_string)
}

/// [`init`], printing a failure on stderr and carrying on without export: a telemetry problem never stops a
/// program that would otherwise run.
pub fn init_or_warn(options: TelemetryOptions) -> Telemetry {
    let fallback = options.clone();
    match init(options) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("warning: {error}; spans are not exported");
            let _ = init_with(fallback, |_| None);
            Telemetry::default()
        }
    }
}

/// Installs the global subscriber: `fmt` logs to stderr filtered by `RUST_LOG` (else the default filter), and an
/// OpenTelemetry layer. With the `otlp` feature and the `OTEL_*` variables asking for it (see the crate's README),
/// spans are exported over OTLP: `http/protobuf` by default, `grpc` with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`
/// (which needs a Tokio runtime: call this inside one); endpoint, headers, timeout, compression (`gzip`),
/// `service.name` (`OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`, else `options.service_name`), resource
/// attributes, the sampler and batching come from the standard variables.
///
/// A global subscriber that is already set is left alone (and then nothing is exported).
pub fn init(options: TelemetryOptions) -> Result<Telemetry, Error> {
    init_with(options, |name| std::env::var(name).ok())
}

fn init_with(
    options: TelemetryOptions,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Telemetry, Error> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&options.default_filter));
    // Logs go to stderr, so stdout carries only what a person or script reads (where a server listens); colours
    // only on a terminal, since a Functions host captures and logs the output again.
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(options.show_target)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let provider = match export_requested(&var) {
        Some(reason) => Some(provider(&options, &var, reason)?),
        None => None,
    };
    let registry = tracing_subscriber::registry().with(fmt);
    let installed = match &provider {
        Some(provider) => {
            use opentelemetry::trace::TracerProvider as _;
            let tracer = provider.tracer(crate::TRACER_NAME);
            // Spans follow the log filter's levels, but the engine's and transports' spans are at `info`.
            let otel = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
            registry.with(otel).try_init().is_ok()
        }
        None => registry.try_init().is_ok(),
    };
    if installed && let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    Ok(Telemetry {
        provider: provider.filter(|_| installed),
    })
}

#[cfg(feature = "otlp")]
fn provider(
    options: &TelemetryOptions,
    var: &impl Fn(&str) -> Option<String>,
    _reason: String,
) -> Result<SdkTracerProvider, Error> {
    let exporter = crate::exporter::span_exporter(var)?;
    // The SDK's detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the command's own name is only the
    // fallback for the SDK's `unknown_service`.
    let detected = opentelemetry_sdk::Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let resource = if named {
        detected
    } else {
        opentelemetry_sdk::Resource::builder()
            .with_service_name(options.service_name.clone())
            .build()
    };
    Ok(SdkTracerProvider::builder()
        .with_id_generator(crate::HistoryIdGenerator::default())
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

#[cfg(not(feature = "otlp"))]
fn provider(
    _options: &TelemetryOptions,
    _var: &impl Fn(&str) -> Option<String>,
    reason: String,
) -> Result<SdkTracerProvider, Error> {
    Err(Error::NoExporter(reason))
}

#[cfg(test)]
mod tests {
    use super::export_requested;

    fn with(vars: &[(&str, &str)]) -> Option<String> {
        export_requested(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn export_follows_the_standard_variables() {
        assert_eq!(with(&[]), None);
        assert!(with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")]).is_some());
        assert!(
            with(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )])
            .is_some()
        );
        assert!(with(&[("OTEL_TRACES_EXPORTER", "otlp")]).is_some());
        assert_eq!(
            with(&[
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x")
            ]),
            None
        );
        assert_eq!(
            with(&[
                ("OTEL_SDK_DISABLED", "TRUE"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x")
            ]),
            None
        );
        assert_eq!(with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), None);
    }
}
