//! order-svc over real gRPC on 127.0.0.1:0, with a real user-svc and
//! product-svc: on SQLite and on MariaDB.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

mod failures;
mod helpers;
mod placing;
mod queries;
