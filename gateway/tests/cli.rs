//! The gateway binary's command line.

#[test]
fn help_version_and_unknown_arguments_answer_like_every_binary() {
    testkit::assert_cli_basics(
        env!("CARGO_BIN_EXE_gateway"),
        "gateway",
        &["serve", "healthcheck", "env-vars"],
        "GATEWAY_CORS_ALLOWED_ORIGINS",
    );
    let (code, out, _) = testkit::run_binary(env!("CARGO_BIN_EXE_gateway"), &["--help"]);
    assert_eq!(code, 0);
    assert!(
        !out.contains("gateway migrate"),
        "the gateway owns no database:\n{out}"
    );
}
