//! What every OMS process tells its operators, and nothing about how it
//! serves: log lines, metrics and trace context.
//!
//! - [`logs`] sets up `tracing` (human or JSON lines, written in batches
//!   by `log_writer`, JSON by `json_log`) and OTLP export when configured.
//! - [`metrics`] holds the process's Prometheus recorder and samplers.
//! - [`process_stats`] reads the process's own CPU, memory and threads.
//! - [`trace`] carries one request's W3C trace context from process to
//!   process.

#![forbid(unsafe_code)]

mod json_log;
mod log_writer;
pub mod logs;
pub mod metrics;
pub mod process_stats;
pub mod trace;

pub use logs::{Telemetry, TelemetryConfig, TelemetryError, init, init_for_tests};
