//! How an OMS service runs: its command line, start-up, the gRPC server
//! and the bounds it keeps, who is calling, and the one mapping of errors
//! to gRPC statuses. Below it: `oms-store`, `oms-telemetry`, `oms-config`
//! and `oms-core`.
//!
//! - [`app`]: a service is built (listeners bound, background work
//!   held), then run until stopped.
//! - [`service`] is the shape every service binary shares (its commands,
//!   `--help`), on [`cli`], the command-line parser of every binary.
//! - [`startup`] wraps a binary: runtime, logs, one-line fatal errors.
//! - [`server`] runs a gRPC server with reflection (v1 and v1alpha),
//!   `grpc.health.v1` and graceful shutdown, within the bounds of
//!   [`connections`] and [`call_limits`], whose refusals [`refusals`]
//!   counts and logs; [`listen`] opens its listeners, [`info`] is what a
//!   service tells it about itself, [`admin`] serves `/metrics`.
//! - [`channel`] makes every gRPC client channel: a peer's name resolved
//!   to all its addresses, again and again, calls spread over them.
//! - [`tls`] encrypts listeners and channels, following its certificate
//!   files as they are renewed.
//! - [`observe`] gives every gRPC call a span, an access line and metrics.
//! - [`auth`] verifies access tokens and says who is calling.
//! - [`error`] is the single mapping from a service's errors to
//!   `tonic::Status` with `google.rpc` details.
//! - [`background`] runs sweepers and recovery loops, stopped with their
//!   service.
//! - [`healthcheck`] is every binary's `healthcheck` subcommand.
//! - [`shutdown`] turns SIGTERM / Ctrl-C into a future.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod background;
pub mod call_limits;
pub mod channel;
pub mod cli;
pub mod connections;
pub mod error;
pub mod healthcheck;
pub mod info;
pub mod listen;
pub mod observe;
pub mod refusals;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod startup;
pub mod tls;

pub use error::{ApiError, FieldViolation, Rejection};
pub use startup::StartupError;

/// The allocator of every OMS binary, declared in each `main.rs` as
/// `#[global_allocator]` (a library does not choose it for the tests that
/// link it). Each request allocates many small buffers across hyper, h2,
/// tonic and the JSON writers, and glibc's malloc and free took a quarter
/// of the gateway's CPU under load; mimalloc's thread-local free lists
/// make them cheap (BENCHMARKS.md, 2026-12-07).
pub use mimalloc::MiMalloc as Allocator;
