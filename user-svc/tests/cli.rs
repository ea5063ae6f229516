//! The operator subcommands of the user-svc binary.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use base64::Engine as _;

use oms_config::Env;
use oms_proto::user::v1::{self as pb, auth_service_client::AuthServiceClient};
use testkit::{TestDb, spawn};

fn user_svc(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_user-svc"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_prints_a_key_the_service_signs_with() {
    let (code, pem, _) = user_svc(&["keygen"]);
    assert_eq!(code, 0);
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let (_, other, _) = user_svc(&["keygen"]);
    assert_ne!(pem, other, "every key is new");

    // Two keys configured: the first signs, both are published (rotation).
    let db = TestDb::sqlite();
    let env = Env::from_pairs([
        ("DATABASE_URL", db.url().expose().to_owned()),
        ("OMS_JWT_SIGNING_KEYS", format!("{pem},{other}")),
    ]);
    let config = user_svc::Config::from_env(&env, "DATABASE_URL").unwrap();
    let svc = spawn::<user_svc::App>(config).await;
    let jwks = AuthServiceClient::new(svc.channel())
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(jwks.keys.len(), 2);
    // Tokens carry the first key's kid.
    let user = testkit::users::customer(svc.channel(), "keys")
        .await
        .unwrap();
    let header = user.token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header["kid"],
        jwks.keys[0].kid.as_str(),
        "the first key signs"
    );
    assert_ne!(jwks.keys[0].kid, jwks.keys[1].kid);
    svc.stop().await.unwrap();
}

#[test]
fn client_secret_prints_a_secret_and_a_config_entry_holding_only_its_hash() {
    let (code, out, _) = user_svc(&["client-secret", "order-svc", "inventory:write"]);
    assert_eq!(code, 0);
    let secret = out.lines().next().unwrap().rsplit(' ').next().unwrap();
    let entry = out.lines().nth(1).unwrap().split_once(": ").unwrap().1;
    let clients = user_svc::clients::parse(&format!("[{entry}]")).unwrap();
    assert!(clients[0].secret_matches(secret));
    assert!(!entry.contains(secret));
}

#[test]
fn help_version_and_unknown_arguments_answer_like_every_binary() {
    testkit::assert_cli_basics(
        env!("CARGO_BIN_EXE_user-svc"),
        "user-svc",
        &[
            "serve",
            "migrate",
            "healthcheck",
            "env-vars",
            "keygen",
            "client-secret",
        ],
        "OMS_SERVICE_CLIENTS",
    );
    let (code, _, err) = user_svc(&["client-secret"]);
    assert_eq!(code, 2, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_passes_while_serving_and_fails_once_stopped() {
    let db = TestDb::sqlite();
    let data_dir = testkit::TempDir::new("oms_keys");
    let env = Env::from_pairs([
        ("DATABASE_URL", db.url().expose().to_owned()),
        ("OMS_DATA_DIR", data_dir.path().display().to_string()),
    ]);
    let config = user_svc::Config::from_env(&env, "DATABASE_URL").unwrap();
    let svc = spawn::<user_svc::App>(config).await;
    // Probed through a relay that keeps its port once the service is gone,
    // so no other process can take the address and answer for it.
    let relay = testkit::Relay::start(Some(svc.addr)).await;
    // Listening on all interfaces, as in a container: probed over loopback.
    let addr = format!("0.0.0.0:{}", relay.addr.port());
    let probe = move || {
        let output = Command::new(env!("CARGO_BIN_EXE_user-svc"))
            .arg("healthcheck")
            .env("USER_SVC_ADDR", &addr)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = tokio::task::spawn_blocking(probe.clone()).await.unwrap();
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("healthy"), "{said}");

    relay.point_to(None);
    svc.stop().await.unwrap();
    let (code, said) = tokio::task::spawn_blocking(probe).await.unwrap();
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("unhealthy"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_brings_the_schema_up_to_date_and_exits() {
    let db = TestDb::sqlite();
    let data_dir = testkit::TempDir::new("oms_keys");
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_user-svc"))
            .arg("migrate")
            .env("DATABASE_URL", db.url().expose())
            .env("OMS_DATA_DIR", data_dir.path())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run();
    assert_eq!(code, Some(0), "{stderr}");
    testkit::assert_tables(db.url(), &["users"]).await;
    // Already up to date: a second run changes nothing and succeeds.
    let (code, stderr) = run();
    assert_eq!(code, Some(0), "{stderr}");
}
