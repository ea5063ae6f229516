//! Tracing set-up: log lines (human, or JSON with `LOG_FORMAT=json`,
//! filtered by `RUST_LOG`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! every span and every log record exported over OTLP/gRPC (a record
//! carries the trace and span it was logged in, so a collector joins logs
//! to traces).
//!
//! Lines are formatted on the thread that logs them and written to stdout
//! in batches by a thread of their own (`log_writer`); JSON lines by
//! `json_log`, which formats span fields once.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use oms_config::{ConfigError, Env, LogFormat};

/// How a process reports: log format, and where spans go if anywhere.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Human or JSON log lines.
    pub log_format: LogFormat,
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans and log records.
    pub service_name: String,
}

impl TelemetryConfig {
    /// Reads `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT` and
    /// `OTEL_SERVICE_NAME` (default `default_name`).
    pub fn from_env(env: &Env, default_name: &str) -> Result<Self, ConfigError> {
        const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
        let otlp_endpoint = match env.get(ENDPOINT)? {
            Some(raw) if raw.starts_with("http://") || raw.starts_with("https://") => Some(raw),
            Some(raw) => {
                return Err(ConfigError::new(
                    ENDPOINT,
                    format!("{raw:?} must be an http:// or https:// URL of an OTLP/gRPC collector"),
                ));
            }
            None => None,
        };
        Ok(Self {
            log_format: env.log_format()?,
            otlp_endpoint,
            service_name: env
                .get("OTEL_SERVICE_NAME")?
                .unwrap_or_else(|| default_name.to_owned()),
        })
    }

    /// Log lines only, in `format`.
    pub fn logs_only(format: LogFormat) -> Self {
        Self {
            log_format: format,
            otlp_endpoint: None,
            service_name: String::new(),
        }
    }
}

/// Keeps the span and log exporters alive; [`Telemetry::shutdown`] sends
/// what is still buffered.
#[derive(Debug, Default)]
#[must_use = "dropping this without shutdown may lose the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    logs: Option<SdkLoggerProvider>,
    /// Writes out the buffered log lines when dropped.
    lines: Option<crate::log_writer::LogFlusher>,
}

impl Telemetry {
    /// Exports every finished span and every log record now (tests wait
    /// on this).
    pub async fn flush(&self) {
        let (spans, logs) = (self.provider.clone(), self.logs.clone());
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(spans) = spans {
                let _ = spans.force_flush();
            }
            if let Some(logs) = logs {
                let _ = logs.force_flush();
            }
        })
        .await;
    }

    /// Sends what is buffered and stops exporting; the log lines still
    /// queued are written out.
    pub async fn shutdown(self) {
        let (spans, logs) = (self.provider, self.logs);
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(spans) = spans {
                let _ = spans.shutdown();
            }
            if let Some(logs) = logs {
                let _ = logs.shutdown();
            }
        })
        .await;
        drop(self.lines);
    }
}

/// Why the span or log exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot export to OTEL_EXPORTER_OTLP_ENDPOINT: {0}")]
pub struct TelemetryError(String);

/// Installs the global subscriber once (later calls — several services in
/// one process, many tests — keep the first). Must run inside the Tokio
/// runtime when spans are exported: the exporter's channel lives on it.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (stdout, lines) = crate::log_writer::batched(std::io::stdout());
    let (human, json) = match config.log_format {
        LogFormat::Human => (
            Some(tracing_subscriber::fmt::layer().with_writer(stdout)),
            None,
        ),
        LogFormat::Json => (None, Some(json_layer(stdout))),
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let (provider, logs) = match &config.otlp_endpoint {
        Some(endpoint) => {
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| TelemetryError(e.to_string()))?;
            let records = opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| TelemetryError(e.to_string()))?;
            (
                Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(spans)
                        .with_resource(resource.clone())
                        .build(),
                ),
                Some(
                    SdkLoggerProvider::builder()
                        .with_batch_exporter(records)
                        .with_resource(resource)
                        .build(),
                ),
            )
        }
        None => (None, None),
    };
    // The span layer goes first: it makes each entered span the current
    // OpenTelemetry context, which is where a log record takes its trace
    // and span ids from.
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("oms")));
    let otel_logs = logs.as_ref().map(|p| {
        OpenTelemetryTracingBridge::new(p).with_filter(tracing_subscriber::filter::filter_fn(
            |metadata| !is_exporter_internal(metadata.target()),
        ))
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(human)
        .with(json)
        .with(otel)
        .with(otel_logs)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        crate::trace::exporting();
    }
    Ok(Telemetry {
        provider: provider.filter(|_| installed),
        logs: logs.filter(|_| installed),
        lines: installed.then_some(lines),
    })
}

/// Events of the crates that carry the export itself: exporting them would
/// feed the exporter its own traffic (a record per batch sent, forever).
fn is_exporter_internal(target: &str) -> bool {
    ["opentelemetry", "tonic", "h2", "hyper", "tower"]
        .iter()
        .any(|krate| {
            target.strip_prefix(krate).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with("::") || rest.starts_with('_')
            })
        })
}

/// The layer that writes `LOG_FORMAT=json` lines (docs/logging.md), here
/// to `writer`: for tests that read the lines an operator would.
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(crate::json_log::JsonSpanFields)
        .event_format(crate::json_log::JsonLines)
        .with_writer(writer)
}

/// For tests: logs only when `TEST_LOG` is set, so test output stays quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some()
        && let Ok(telemetry) = init(&TelemetryConfig::logs_only(LogFormat::Human))
    {
        // The writer thread must outlive every test of the process.
        std::mem::forget(telemetry);
    }
}
