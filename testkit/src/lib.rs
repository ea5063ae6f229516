//! Everything OMS tests (and `oms-bench`) share, in one place: the
//! backends a test runs against, services started in process or as
//! processes, and clients that do what honest ones won't. Nothing here is
//! in a production binary.
//!
//! - [`backends`] gives each test a fresh database (SQLite, and MariaDB
//!   when configured), a Redis key prefix and an S3 bucket, and the one
//!   rule for backend variables ([`require_backend`]).
//! - [`grpc`] builds and runs a service in process on port 0 (the
//!   one way: [`spawn`]) and checks what every
//!   gRPC server must answer; [`process`] starts a binary on port 0 and
//!   reads the address it got from its `oms::listen` line; [`cli`] runs a
//!   binary's commands.
//! - [`users`] gives user-svc its test admin and clients, and registers,
//!   signs in and gets service tokens; [`clients`] writes
//!   `OMS_SERVICE_CLIENTS` entries.
//! - [`dns`] runs a real DNS server (dnsmasq) answering the test's names.
//! - [`relay`] is a TCP relay a test can cut, to restart a service behind
//!   a fixed address; [`ports`] holds a port that refuses connections.
//! - [`raw`] calls any gRPC method with raw bytes; [`raw_h2`] is an
//!   HTTP/2 client that breaks the rules; [`http`] is one small HTTP/1.1
//!   client for the gateway's tests.
//! - [`tables`] reads and writes a service's tables directly.
//! - [`metrics`] reads this process's counters.
//! - [`scratch`] names per-test resources; [`wait`] polls with a deadline.
//! - [`properties`] (feature `properties`) generates any message of the
//!   contract; [`proptest_settings`] is how every property test runs.

#![forbid(unsafe_code)]

pub mod backends;
pub mod cli;
pub mod clients;
pub mod dns;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod process;
#[cfg(feature = "properties")]
pub mod properties;
pub mod proptest_settings;
pub mod raw;
pub mod raw_h2;
pub mod relay;
pub mod scratch;
pub mod servers;
pub mod tables;
pub mod tls;
pub mod users;
pub mod wait;

pub use backends::{
    KAFKA_VAR, KvBackend, MYSQL_VAR, REDIS_VAR, S3_VAR, TANSU_VAR, TestDb, kv_store, redis_url,
    require_backend, s3_test_bucket,
};
pub use cli::{assert_cli_basics, run_binary};
pub use dns::Dnsmasq;
pub use grpc::{
    Spawned, assert_grpc_basics, bearer, error_metadata, error_reason, health_status,
    reflected_services, reflection_knows_symbol, spawn, spawn_with, violated_fields,
};
pub use metrics::counter;
pub use ports::ClosedPort;
pub use proptest_settings::proptest_config;
pub use raw::{RawCodec, call_raw};
pub use raw_h2::{RawH2, listener_refusals, memory};
pub use relay::Relay;
pub use scratch::{TempDir, unique_name};
pub use tables::{assert_row_count, assert_tables, count_rows, execute, outbox_drained};
pub use tls::{Issued, TestCa};
pub use wait::eventually;

/// Logs for a test process, only when `TEST_LOG` is set (the macros'
/// way to reach `oms-telemetry`).
pub fn init_telemetry_for_tests() {
    oms_telemetry::init_for_tests();
}
