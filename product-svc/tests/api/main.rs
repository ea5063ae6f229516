//! product-svc over real gRPC on 127.0.0.1:0, with a real user-svc issuing
//! the tokens: on SQLite with the in-process cache, and on MariaDB with
//! Redis.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

mod catalogue;
mod helpers;
mod images;
mod inventory;
mod quotes;

#[test]
fn help_version_and_unknown_arguments_answer_like_every_binary() {
    testkit::assert_cli_basics(
        env!("CARGO_BIN_EXE_product-svc"),
        "product-svc",
        &["serve", "migrate", "healthcheck", "env-vars"],
        "OMS_RESERVATION_TTL_SECS",
    );
}

/// product-svc's stderr when started with `var=value`, which must stop
/// it as a configuration error (exit code 2).
fn configuration_error(var: &str, value: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_product-svc"))
        .env(var, value)
        .env("OMS_DATA_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn a_quote_lifetime_without_a_unit_stops_the_binary_with_the_form() {
    let stderr = configuration_error("OMS_QUOTE_TTL", "15");
    assert!(
        stderr.contains("OMS_QUOTE_TTL") && stderr.contains("like 15m"),
        "{stderr}"
    );
}

#[test]
fn a_worker_thread_count_of_zero_stops_the_binary_naming_the_variable() {
    let stderr = configuration_error("OMS_WORKER_THREADS", "0");
    assert!(
        stderr.contains("OMS_WORKER_THREADS") && stderr.contains("1 to 1024"),
        "{stderr}"
    );
}
