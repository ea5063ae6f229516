//! product-svc over real gRPC on 127.0.0.1:0, with a real user-svc issuing
//! the tokens: on SQLite with the in-process cache, and on MariaDB with
//! Redis.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

mod catalogue;
mod helpers;
mod inventory;
