//! Dev-only helpers shared by the tests and `oms-bench`: what every test
//! that runs the mesh needs and no production binary does.
//!
//! - [`process`] starts a binary on port 0 and reads the address it got
//!   from its `oms::listen` log line (no port chosen by probing).
//! - [`clients`] writes `OMS_SERVICE_CLIENTS` entries with serde.

#![forbid(unsafe_code)]

pub mod clients;
pub mod process;
