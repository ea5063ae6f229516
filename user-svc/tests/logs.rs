//! What the logs hold: one JSON event per call (method, code, latency,
//! caller, trace id), and no secret: a whole sign-in life cycle, logged
//! at debug level, holds no password and no token.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use oms_config::Env;
use oms_proto::user::v1::{
    self as pb, auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
};
use serde_json::Value;
use testkit::{TestDb, spawn, unique_name};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_life_cycle_logs_each_call_and_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    // nextest runs each test in its own process, so the global subscriber
    // is ours: the lines of LOG_FORMAT=json, at debug.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("debug"))
        .with(oms_telemetry::logs::json_layer(move || writer.clone()))
        .try_init()
        .expect("no other subscriber in this test process");

    let db = TestDb::sqlite();
    let admin_password = "bootstrap admin secret";
    let pairs = [
        ("DATABASE_URL", db.url().expose().to_owned()),
        (
            "OMS_DATA_DIR",
            std::env::temp_dir()
                .join(unique_name("oms_logs"))
                .display()
                .to_string(),
        ),
        ("OMS_BOOTSTRAP_ADMIN_EMAIL", "admin@oms.test".to_owned()),
        ("OMS_BOOTSTRAP_ADMIN_PASSWORD", admin_password.to_owned()),
        (
            "OMS_SERVICE_CLIENTS",
            testkit::clients::env_value(&[testkit::clients::ServiceClient::order_svc(
                "a client secret for the logs test",
            )]),
        ),
        (
            "OMS_JWT_SIGNING_KEYS",
            base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
        ),
    ];
    let config = user_svc::Config::from_env(&Env::from_pairs(pairs), "DATABASE_URL").unwrap();
    let svc = spawn::<user_svc::App>(config).await;
    let mut auth = AuthServiceClient::new(svc.channel());

    let password = "my very secret password";
    auth.register(pb::RegisterRequest {
        email: "quiet@example.com".into(),
        password: password.into(),
        display_name: "Quiet".into(),
    })
    .await
    .unwrap();
    let login = |password: &str| pb::LoginRequest {
        email: "quiet@example.com".into(),
        password: password.into(),
    };
    let wrong_password = "a wrong password typed";
    assert!(auth.login(login(wrong_password)).await.is_err());
    let signed_in = auth.login(login(password)).await.unwrap().into_inner();
    let me = UserServiceClient::new(svc.channel())
        .get_current_user(testkit::bearer(
            pb::GetCurrentUserRequest {},
            &signed_in.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let refreshed = auth
        .refresh_token(pb::RefreshTokenRequest {
            refresh_token: signed_in.refresh_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Reuse of the rotated token: logged as a warning, without the token.
    assert!(
        auth.refresh_token(pb::RefreshTokenRequest {
            refresh_token: signed_in.refresh_token.clone(),
            ..Default::default()
        })
        .await
        .is_err()
    );
    auth.logout(pb::LogoutRequest {
        refresh_token: refreshed.refresh_token.clone(),
    })
    .await
    .unwrap();
    // What every verifier polls each second: not an INFO line each time.
    let reader = testkit::users::service_token(
        svc.channel(),
        "order-svc",
        "a client secret for the logs test",
        &["revocations:read"],
    )
    .await
    .unwrap();
    auth.list_token_revocations(testkit::bearer(
        pb::ListTokenRevocationsRequest::default(),
        &reader,
    ))
    .await
    .unwrap();
    svc.stop().await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("signed in") && logs.contains("family is revoked"),
        "the logs were captured:\n{logs}"
    );
    let calls: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["msg"] == "rpc finished")
        .collect();
    let finished = |rpc: &str| -> Vec<&Value> {
        calls
            .iter()
            .filter(|event| event["rpc"] == format!("oms.user.v1.{rpc}"))
            .collect()
    };
    let codes = |rpc: &str| -> Vec<&str> {
        finished(rpc)
            .iter()
            .map(|event| event["code"].as_str().unwrap_or_default())
            .collect()
    };
    assert_eq!(codes("AuthService/Register"), ["OK"], "{logs}");
    let polled = finished("AuthService/ListTokenRevocations");
    assert_eq!(polled.len(), 1, "{logs}");
    assert_eq!(
        polled[0]["level"], "DEBUG",
        "a successful poll is a debug line"
    );
    assert_eq!(finished("AuthService/Register")[0]["level"], "INFO");
    assert_eq!(codes("AuthService/Login"), ["UNAUTHENTICATED", "OK"]);
    assert_eq!(codes("AuthService/RefreshToken"), ["OK", "UNAUTHENTICATED"]);
    let current = finished("UserService/GetCurrentUser");
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["caller"], format!("user:{}", me.id));
    assert_eq!(finished("AuthService/Login")[0]["caller"], "anonymous");
    let hex = |value: &Value, len: usize| {
        value
            .as_str()
            .is_some_and(|id| id.len() == len && id.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    for event in &calls {
        assert!(event["ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{event}");
        assert!(hex(&event["trace_id"], 32), "{event}");
        assert!(hex(&event["span_id"], 16), "{event}");
        assert!(
            event["peer"]
                .as_str()
                .is_some_and(|peer| peer.starts_with("127.0.0.1:")),
            "{event}"
        );
    }
    // Each call is a span of its own.
    let span_ids: std::collections::HashSet<&str> =
        calls.iter().filter_map(|e| e["span_id"].as_str()).collect();
    assert_eq!(span_ids.len(), calls.len(), "{logs}");
    for secret in [
        password,
        wrong_password,
        admin_password,
        &signed_in.access_token,
        &signed_in.refresh_token,
        &refreshed.access_token,
        &refreshed.refresh_token,
    ] {
        assert!(
            !logs.contains(secret),
            "a secret reached the logs: {secret}"
        );
    }
}
