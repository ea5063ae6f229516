//! Dev-only helpers shared by the tests and `oms-bench`: what every test
//! that runs the mesh needs and no production binary does.
//!
//! - [`process`] starts a binary on port 0 and reads the address it got
//!   from its `oms::listen` log line (no port chosen by probing).
//! - [`clients`] writes `OMS_SERVICE_CLIENTS` entries with serde.
//! - [`users`] gives user-svc its test admin and clients, and registers,
//!   signs in and gets service tokens over gRPC.
//! - [`http`] is one small HTTP/1.1 client for the gateway's tests.
//! - [`properties`] (feature `properties`) generates any message of the
//!   contract for property tests.
//!
//! Fresh databases, in-process services and relays are in
//! `kit::test_support`, beside the runtime they start.

#![forbid(unsafe_code)]

pub mod clients;
pub mod http;
pub mod process;
#[cfg(feature = "properties")]
pub mod properties;
pub mod users;
