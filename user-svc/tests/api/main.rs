//! user-svc over real gRPC on 127.0.0.1:0: on SQLite with the in-process
//! token store, and on MariaDB with Redis.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

mod auth;
mod helpers;
mod limits;
mod revocation;
mod users;
