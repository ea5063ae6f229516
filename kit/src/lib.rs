//! The OMS service runtime: everything the three services and the gateway
//! share, and nothing any one of them owns.
//!
//! - [`auth`] verifies access tokens and says who is calling.
//! - [`config`] reads environment variables once, into typed values, with one
//!   error that names the bad variable.
//! - [`telemetry`] sets up `tracing` (human or JSON logs).
//! - [`metrics`] holds the process's Prometheus recorder and `/metrics`.
//! - [`observe`] gives every gRPC call a span, a log event and metrics.
//! - [`error`] is the single mapping from a service's errors to
//!   `tonic::Status` with `google.rpc` details.
//! - [`server`] binds listeners and runs a gRPC server with reflection
//!   (v1 and v1alpha), `grpc.health.v1` and graceful shutdown, within the
//!   bounds of [`connections`] and [`call_limits`], whose refusals
//!   [`refusals`] counts and logs.
//! - [`healthcheck`] is every binary's `healthcheck` subcommand.
//! - [`shutdown`] turns SIGTERM / Ctrl-C into a future.
//! - [`startup`] wraps a binary: runtime, logs, one-line fatal errors.
//! - [`service`] is the shape every service binary shares (its commands,
//!   `--help`), on [`cli`], the command-line parser of every binary.
//! - [`background`] runs sweepers and recovery loops, stopped with their
//!   service.
//! - [`db`] connects to SQLite or MySQL/MariaDB and runs migrations;
//!   [`batch`] sends a transaction's statements to SQLite as one command.
//! - [`fields`] parses a request's fields all at once, keeping every
//!   violation.
//! - [`lines`] parses and hashes line items (product + quantity).
//! - [`money`] checks currencies and amounts (minor units, never floats).
//! - [`paging`] reads page sizes and opaque keyset page tokens.
//! - [`text`] says which characters free text may not hold.
//! - [`time`] converts database times to protobuf Timestamps.
//! - [`kv`] is a small key-value store with TTLs: Redis in production, in
//!   process for the embedded default.
//! - `test_support` (feature `test-support`) gives each integration test a
//!   fresh database and Redis prefix.

#![forbid(unsafe_code)]

pub mod auth;
pub mod background;
pub mod batch;
pub mod call_limits;
pub mod cli;
pub mod config;
pub mod connections;
pub mod db;
pub mod digest;
pub mod error;
pub mod fields;
pub mod healthcheck;
mod json_log;
pub mod kv;
pub mod lines;
mod log_writer;
pub mod metrics;
pub mod money;
pub mod observe;
pub mod paging;
pub mod process_stats;
pub mod refusals;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod text;
pub mod time;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use error::{ApiError, FieldViolation, Rejection};
pub use startup::StartupError;
