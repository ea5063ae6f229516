//! order-svc over real gRPC on 127.0.0.1:0, with a real user-svc and
//! product-svc: on SQLite and on MariaDB.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

mod event_flow;
mod failures;
mod helpers;
mod placing;
mod queries;
mod quotes;
mod revocation;

#[test]
fn help_version_and_unknown_arguments_answer_like_every_binary() {
    testkit::assert_cli_basics(
        env!("CARGO_BIN_EXE_order-svc"),
        "order-svc",
        &["serve", "migrate", "healthcheck", "env-vars"],
        "OMS_ORDER_SVC_CLIENT_SECRET",
    );
}
