//! Where OMS services keep their data, behind types that say nothing of
//! gRPC or HTTP.
//!
//! - [`db`] connects to SQLite or MySQL/MariaDB, runs migrations, and says
//!   which failures are worth a retry.
//! - [`batch`] sends a transaction's statements to SQLite as one command.
//! - [`kv`] is a small key-value store with TTLs: Redis in production, in
//!   process for the embedded default.

#![forbid(unsafe_code)]

pub mod batch;
pub mod db;
pub mod kv;
