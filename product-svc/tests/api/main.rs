//! product-svc over real gRPC on 127.0.0.1:0, with a real user-svc issuing
//! the tokens: on SQLite with the in-process cache, and on MariaDB with
//! Redis.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

mod catalogue;
mod helpers;
mod inventory;
mod quotes;

#[test]
fn help_version_and_unknown_arguments_answer_like_every_binary() {
    kit::test_support::assert_cli_basics(
        env!("CARGO_BIN_EXE_product-svc"),
        "product-svc",
        &["serve", "migrate", "healthcheck", "env-vars"],
        "OMS_RESERVATION_TTL_SECS",
    );
}
