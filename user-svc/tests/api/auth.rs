//! AuthService: sign-up, sign-in, tokens, throttling, forged tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oms_proto::user::v1::{self as pb};
use oms_runtime::auth::AccessClaims;
use testkit::{TestDb, assert_grpc_basics, bearer, error_reason as reason, violated_fields};
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

use crate::helpers::*;

testkit::test_on_each_db!(
    starts_migrated_with_health_and_reflection,
    a_schema_older_than_the_build_is_refused_unless_it_may_migrate,
    register_login_and_read_your_own_account,
    register_reports_every_bad_field_and_taken_emails,
    unknown_email_and_wrong_password_get_the_same_answer,
    refresh_rotates_and_a_reused_token_revokes_its_family,
    logout_revokes_the_sign_in,
    login_is_throttled_per_account_with_retry_info,
    login_is_throttled_per_client_address,
    nobody_can_lock_the_owner_out,
    a_burst_of_guesses_reaches_argon2_at_most_the_limit,
    look_alike_emails_are_one_account_and_invisible_characters_are_refused,
    registration_is_throttled_per_client_address,
    a_direct_caller_on_a_trusted_address_without_the_proxy_secret_is_its_own_address,
    a_clients_own_forwarded_for_is_not_believed_by_default,
    a_trusted_proxy_may_be_a_network,
    service_tokens_follow_client_credentials_rules,
    forged_and_misused_tokens_are_refused,
);

async fn starts_migrated_with_health_and_reflection(db: TestDb) {
    let svc = start(&db, &[]).await;
    assert_grpc_basics(svc.channel(), user_svc::SERVICE_INFO).await;
    svc.stop().await.expect("clean shutdown");
    testkit::assert_tables(db.url(), &["users"]).await;
}

async fn a_schema_older_than_the_build_is_refused_unless_it_may_migrate(db: TestDb) {
    // A fresh database, and a service told that the migrate Job does the
    // migrating: it names what is missing and how to apply it.
    let refused = start(&db, &[("OMS_MIGRATE_ON_START", "false")])
        .await
        .exited()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("lacks") && refused.contains("m20") && refused.contains("migrate"),
        "{refused}"
    );
    // After `user-svc migrate` (the Job), it serves.
    oms_store::db::connect_and_migrate::<user_svc::migration::Migrator>(
        db.url(),
        Default::default(),
    )
    .await
    .unwrap();
    let svc = start(&db, &[("OMS_MIGRATE_ON_START", "false")]).await;
    let wrong = login(&svc, "nobody@example.com", "a wrong password").await;
    assert_eq!(wrong.unwrap_err().code(), Code::Unauthenticated);
}

async fn register_login_and_read_your_own_account(db: TestDb) {
    let svc = start(&db, &[]).await;
    let user = register(&svc, "  Ada@Example.COM ", "correct horse battery").await;
    assert_eq!(user.email, "ada@example.com");
    assert_eq!(user.role(), pb::Role::Customer);
    assert!(uuid::Uuid::parse_str(&user.id).is_ok());
    assert!(user.create_time.is_some());

    let tokens = login(&svc, "ada@example.com", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    assert_eq!(
        tokens.user.as_ref().map(|u| u.id.as_str()),
        Some(user.id.as_str())
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&tokens.refresh_token).unwrap().len(),
        32,
        "256-bit refresh token"
    );

    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwks = auth(&svc)
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        jwks.keys
            .iter()
            .any(|k| Some(&k.kid) == header.kid.as_ref() && k.kty == "OKP" && k.crv == "Ed25519")
    );

    assert_eq!(me(&svc, &tokens.access_token).await.unwrap().id, user.id);
    let fetched = users(&svc)
        .get_user(bearer(
            pb::GetUserRequest {
                user_id: user.id.clone(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.user.unwrap().email, "ada@example.com");
    let anonymous = users(&svc)
        .get_current_user(pb::GetCurrentUserRequest {})
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

async fn register_reports_every_bad_field_and_taken_emails(db: TestDb) {
    let svc = start(&db, &[]).await;
    let bad = auth(&svc)
        .register(pb::RegisterRequest {
            email: "not-an-email".into(),
            password: "short".into(),
            display_name: "  ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), ["email", "password", "display_name"]);

    register(&svc, "grace@example.com", "a long enough password").await;
    let taken = auth(&svc)
        .register(pb::RegisterRequest {
            email: "GRACE@example.com".into(),
            password: "another long password".into(),
            display_name: "Grace".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(reason(&taken), "EMAIL_TAKEN");
}

async fn unknown_email_and_wrong_password_get_the_same_answer(db: TestDb) {
    let svc = start(&db, &[]).await;
    register(&svc, "alan@example.com", "the right password").await;
    let wrong = login(&svc, "alan@example.com", "the wrong password")
        .await
        .unwrap_err();
    let unknown = login(&svc, "nobody@example.com", "the right password")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(
        (wrong.code(), wrong.message(), reason(&wrong)),
        (unknown.code(), unknown.message(), reason(&unknown))
    );
    let empty = login(&svc, "", "").await.unwrap_err();
    assert_eq!(violated_fields(&empty), ["email", "password"]);
}

async fn refresh_rotates_and_a_reused_token_revokes_its_family(db: TestDb) {
    let svc = start(&db, &[]).await;
    let user = register(&svc, "rot@example.com", "rotate me please").await;
    let first = login(&svc, "rot@example.com", "rotate me please")
        .await
        .unwrap();
    let second = refresh(&svc, &first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(me(&svc, &second.access_token).await.unwrap().id, user.id);

    // The first token was rotated: presenting it again is theft or a bug,
    // and everything of this sign-in dies (RFC 9700).
    let reused = refresh(&svc, &first.refresh_token).await.unwrap_err();
    assert_eq!(
        (reused.code(), reason(&reused).as_str()),
        (Code::Unauthenticated, "REFRESH_TOKEN_REUSED")
    );
    let after = refresh(&svc, &second.refresh_token).await.unwrap_err();
    assert_eq!(
        (after.code(), reason(&after).as_str()),
        (Code::Unauthenticated, "INVALID_REFRESH_TOKEN")
    );

    // Another sign-in is a separate family and is unaffected.
    let other = login(&svc, "rot@example.com", "rotate me please")
        .await
        .unwrap();
    assert!(refresh(&svc, &other.refresh_token).await.is_ok());
    let garbage = refresh(&svc, "not-a-token").await.unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
}

async fn logout_revokes_the_sign_in(db: TestDb) {
    let svc = start(&db, &[]).await;
    register(&svc, "bye@example.com", "see you later").await;
    let tokens = login(&svc, "bye@example.com", "see you later")
        .await
        .unwrap();
    let rotated = refresh(&svc, &tokens.refresh_token).await.unwrap();
    auth(&svc)
        .logout(pb::LogoutRequest {
            refresh_token: rotated.refresh_token.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        refresh(&svc, &rotated.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // Logging out twice, or with an unknown token, is not an error (RFC 7009).
    auth(&svc)
        .logout(pb::LogoutRequest {
            refresh_token: rotated.refresh_token,
        })
        .await
        .unwrap();
}

async fn login_is_throttled_per_account_with_retry_info(db: TestDb) {
    let svc = start(&db, &[("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    register(&svc, "slow@example.com", "the real password").await;
    for _ in 0..3 {
        let e = login(&svc, "slow@example.com", "guess guess guess")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    // Even the right password waits now: the account is under attack.
    let throttled = login(&svc, "slow@example.com", "the real password")
        .await
        .unwrap_err();
    assert_eq!(
        (throttled.code(), reason(&throttled).as_str()),
        (Code::ResourceExhausted, "LOGIN_THROTTLED")
    );
    // Counted for the throttling alert (this test process runs one
    // user-svc, so the counter is this test's).
    assert_eq!(testkit::counter("oms_logins_throttled_total", ""), 1);
    let retry = throttled
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay);
    // The account window is 15 minutes: the wait is within it.
    assert!(
        retry.is_some_and(|d| d.as_secs() > 0 && d.as_secs() <= 15 * 60),
        "{retry:?}"
    );
    // Other accounts are unaffected.
    register(&svc, "fast@example.com", "another password").await;
    assert!(
        login(&svc, "fast@example.com", "another password")
            .await
            .is_ok()
    );
}

async fn login_is_throttled_per_client_address(db: TestDb) {
    let svc = start(
        &db,
        &[
            ("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "4"),
            ("OMS_TRUSTED_PROXIES", "192.0.2.1"),
        ],
    )
    .await;
    for i in 0..4 {
        let e = login(&svc, &format!("spray{i}@example.com"), "password spraying")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let throttled = login(&svc, "spray9@example.com", "password spraying")
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted);
}

/// Login as `email` from `address`, as the trusted proxy (the test's own
/// 127.0.0.1, when configured) reports it in `x-forwarded-for`.
async fn login_from(
    svc: &testkit::Spawned,
    address: &str,
    email: &str,
    password: &str,
) -> Result<pb::LoginResponse, tonic::Status> {
    let mut request = Request::new(pb::LoginRequest {
        email: email.into(),
        password: password.into(),
    });
    request
        .metadata_mut()
        .insert("x-forwarded-for", address.parse().unwrap());
    auth(svc)
        .login(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn nobody_can_lock_the_owner_out(db: TestDb) {
    let svc = start(
        &db,
        &[
            ("OMS_TRUSTED_PROXIES", "127.0.0.1,::1"),
            ("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT", "5"),
            ("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT_WIDE", "8"),
        ],
    )
    .await;
    register(&svc, "owner@example.com", "the owner's password").await;
    // One attacker: five failures lock (account, their address) only.
    for _ in 0..5 {
        let e = login_from(
            &svc,
            "198.51.100.7",
            "owner@example.com",
            "guess guess guess",
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let attacker = login_from(
        &svc,
        "198.51.100.7",
        "owner@example.com",
        "the owner's password",
    )
    .await
    .unwrap_err();
    assert_eq!(attacker.code(), Code::ResourceExhausted, "{attacker:?}");
    login_from(
        &svc,
        "203.0.113.9",
        "owner@example.com",
        "the owner's password",
    )
    .await
    .expect("the owner, from an address of their own");

    // Many attackers, one failure each: the account is failing from
    // everywhere; an address that failed is refused, a clean one is not.
    for i in 1..=4 {
        let e = login_from(
            &svc,
            &format!("192.0.2.{i}"),
            "owner@example.com",
            "guess guess guess",
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let failed_before = login_from(
        &svc,
        "192.0.2.1",
        "owner@example.com",
        "the owner's password",
    )
    .await
    .unwrap_err();
    assert_eq!(
        failed_before.code(),
        Code::ResourceExhausted,
        "{failed_before:?}"
    );
    login_from(
        &svc,
        "203.0.113.10",
        "owner@example.com",
        "the owner's password",
    )
    .await
    .expect("the owner, from an address that never failed");
}

async fn a_clients_own_forwarded_for_is_not_believed_by_default(db: TestDb) {
    // No trusted proxy configured: every attempt counts for 127.0.0.1,
    // whatever x-forwarded-for the client writes.
    let svc = start(&db, &[("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "3")]).await;
    for i in 0..3 {
        let e = login_from(
            &svc,
            &format!("192.0.2.{i}"),
            "nobody@example.com",
            "password spraying",
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let spoofed = login_from(
        &svc,
        "192.0.2.99",
        "nobody@example.com",
        "password spraying",
    )
    .await
    .unwrap_err();
    assert_eq!(spoofed.code(), Code::ResourceExhausted, "{spoofed:?}");
}

async fn a_trusted_proxy_may_be_a_network(db: TestDb) {
    // The gateway's pods have no fixed address: their network is trusted,
    // so each client behind them has its own limit.
    let svc = start(
        &db,
        &[
            ("OMS_TRUSTED_PROXIES", "127.0.0.0/8,::1/128"),
            ("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "3"),
        ],
    )
    .await;
    for _ in 0..3 {
        let e = login_from(&svc, "198.51.100.7", "nobody@example.com", "spraying")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let throttled = login_from(&svc, "198.51.100.7", "nobody@example.com", "spraying")
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted, "{throttled:?}");
    let other = login_from(&svc, "198.51.100.8", "nobody@example.com", "spraying")
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::Unauthenticated, "{other:?}");
}

async fn service_tokens_follow_client_credentials_rules(db: TestDb) {
    let svc = start(&db, &[]).await;
    let issue = |id: &str, secret: &str, scopes: &[&str]| pb::IssueServiceTokenRequest {
        client_id: id.into(),
        client_secret: secret.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    };
    let granted = auth(&svc)
        .issue_service_token(issue("order-svc", CLIENT_SECRET, &["inventory:write"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(granted.scopes, ["inventory:write"]);
    assert!(granted.expires_in > 0 && granted.expires_in <= 300);
    let claims: AccessClaims = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(granted.access_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (claims.aud.as_str(), claims.scope.as_deref(), claims.role),
        ("product-svc", Some("inventory:write"), None)
    );

    // None asked: all the client's scopes, when they are for one service;
    // a client whose scopes are for several must name the ones it wants.
    let all = auth(&svc)
        .issue_service_token(issue(
            "product-svc",
            testkit::users::PRODUCT_SVC_SECRET,
            &[],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.scopes, ["revocations:read"]);
    let several = auth(&svc)
        .issue_service_token(issue("order-svc", CLIENT_SECRET, &[]))
        .await
        .unwrap_err();
    assert_eq!(several.code(), Code::InvalidArgument);

    let wrong = auth(&svc)
        .issue_service_token(issue("order-svc", "not the secret", &[]))
        .await
        .unwrap_err();
    let unknown = auth(&svc)
        .issue_service_token(issue("mallory", CLIENT_SECRET, &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.code(), reason(&wrong)),
        (Code::Unauthenticated, "INVALID_CLIENT".to_owned())
    );
    assert_eq!(
        (unknown.code(), reason(&unknown)),
        (wrong.code(), reason(&wrong))
    );
    let scope = auth(&svc)
        .issue_service_token(issue("order-svc", CLIENT_SECRET, &["users:admin"]))
        .await
        .unwrap_err();
    assert_eq!(
        (scope.code(), reason(&scope).as_str()),
        (Code::PermissionDenied, "SCOPE_NOT_ALLOWED")
    );

    // A service token is never a user token.
    let used_as_user = me(&svc, &granted.access_token).await.unwrap_err();
    assert_eq!(used_as_user.code(), Code::Unauthenticated);
}

fn sign(claims: &AccessClaims, kid: Option<&str>, typ: Option<&str>) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap()
}

async fn forged_and_misused_tokens_are_refused(db: TestDb) {
    let svc = start(&db, &[]).await;
    let user = register(&svc, "eve@example.com", "eve's password").await;
    let genuine = login(&svc, "eve@example.com", "eve's password")
        .await
        .unwrap()
        .access_token;
    let kid = jsonwebtoken::decode_header(&genuine).unwrap().kid.unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = AccessClaims {
        iss: "oms-user-svc".into(),
        sub: user.id.clone(),
        aud: "oms-api".into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "j".into(),
        role: Some("customer".into()),
        scope: None,
        client_id: None,
        ver: 0,
    };
    // The test's own signer is accepted, so each refusal below is about the
    // one thing that differs.
    assert_eq!(
        me(&svc, &sign(&claims, Some(&kid), Some("at+jwt")))
            .await
            .unwrap()
            .id,
        user.id
    );

    let [header, payload, signature]: [&str; 3] =
        genuine.split('.').collect::<Vec<_>>().try_into().unwrap();
    let mut forged: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    forged["role"] = "admin".into();
    let changed_payload = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(forged.to_string())
    );
    let none_header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    let alg_none = format!("{none_header}.{payload}.");
    let public = ed25519_dalek::SigningKey::from_bytes(&SEED)
        .verifying_key()
        .to_bytes();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    hs_header.typ = Some("at+jwt".into());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    let with = |change: &dyn Fn(&mut AccessClaims)| {
        let mut c = claims.clone();
        change(&mut c);
        sign(&c, Some(&kid), Some("at+jwt"))
    };
    let cases = [
        ("changed payload", changed_payload),
        ("alg none", alg_none),
        ("HS256 with the public key", hs256),
        ("wrong audience", with(&|c| c.aud = "product-svc".into())),
        ("wrong issuer", with(&|c| c.iss = "evil".into())),
        (
            "expired",
            with(&|c| {
                c.iat = now - 1000;
                c.nbf = now - 1000;
                c.exp = now - 100;
            }),
        ),
        ("lives too long", with(&|c| c.exp = now + 24 * 3600)),
        (
            "unknown kid",
            sign(&claims, Some("no-such-key"), Some("at+jwt")),
        ),
        ("no typ", sign(&claims, Some(&kid), None)),
        ("an ID token typ", sign(&claims, Some(&kid), Some("JWT"))),
        (
            "role and scope",
            with(&|c| c.scope = Some("inventory:write".into())),
        ),
        ("not a JWT", "garbage".into()),
    ];
    for (what, token) in cases {
        let refused = me(&svc, &token).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{what}: {refused:?}");
    }
    let mut basic = Request::new(pb::GetCurrentUserRequest {});
    basic
        .metadata_mut()
        .insert("authorization", "Basic Zm9vOmJhcg==".parse().unwrap());
    assert_eq!(
        users(&svc)
            .get_current_user(basic)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}

/// What product-svc and order-svc do: fetch the JWKS from user-svc over
/// gRPC and verify a login token with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_services_verify_login_tokens_with_the_jwks_over_grpc() {
    let db = TestDb::sqlite();
    let svc = start(&db, &[]).await;
    let user = register(&svc, "remote@example.com", "remote password").await;
    let token = login(&svc, "remote@example.com", "remote password")
        .await
        .unwrap()
        .access_token;
    let verifier = oms_runtime::auth::Verifier::new(
        oms_runtime::auth::VerifierConfig::new("oms-user-svc", Some("product-svc")),
        std::sync::Arc::new(
            oms_runtime::auth::GrpcJwks::new(&svc.addr.into(), &Default::default()).unwrap(),
        ),
    );
    assert_eq!(
        verifier.verify(&token).await.unwrap(),
        oms_runtime::auth::Caller::User {
            id: user.id,
            role: oms_runtime::auth::Role::Customer,
            scopes: vec![],
        }
    );
    let service = auth(&svc)
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: "order-svc".into(),
            client_secret: CLIENT_SECRET.into(),
            scopes: vec!["inventory:write".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        verifier.verify(&service.access_token).await.unwrap(),
        oms_runtime::auth::Caller::Service { client_id, scopes } if client_id == "order-svc" && scopes == ["inventory:write"]
    ));
}

/// Passwords compared so far in this test's process (one user-svc).
fn password_checks() -> u64 {
    testkit::counter("oms_password_checks_total", "")
}

/// Fires `n` logins at once as `email` from `address` and counts how many
/// were answered UNAUTHENTICATED, RESOURCE_EXHAUSTED and OK.
async fn burst(
    svc: &testkit::Spawned,
    n: usize,
    address: &str,
    email: &str,
    password: &str,
) -> (usize, usize, usize) {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let mut client = auth(svc);
        let mut request = Request::new(pb::LoginRequest {
            email: email.into(),
            password: password.into(),
        });
        request
            .metadata_mut()
            .insert("x-forwarded-for", address.parse().unwrap());
        calls.spawn(async move { client.login(request).await.map(|_| ()) });
    }
    let (mut unauthenticated, mut throttled, mut ok) = (0, 0, 0);
    for answer in calls.join_all().await {
        match answer {
            Ok(()) => ok += 1,
            Err(e) if e.code() == Code::Unauthenticated => unauthenticated += 1,
            Err(e) if e.code() == Code::ResourceExhausted => throttled += 1,
            Err(e) => panic!("unexpected answer {e:?}"),
        }
    }
    (unauthenticated, throttled, ok)
}

async fn a_burst_of_guesses_reaches_argon2_at_most_the_limit(db: TestDb) {
    let svc = start(
        &db,
        &[
            ("OMS_TRUSTED_PROXIES", "127.0.0.1,::1"),
            ("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "1000"),
            ("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT", "5"),
            ("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT_WIDE", "8"),
        ],
    )
    .await;
    register(&svc, "burst@example.com", "the real password").await;

    // 50 wrong passwords at once from one address: five are compared.
    let before = password_checks();
    let answers = burst(&svc, 50, "198.51.100.7", "burst@example.com", "guess guess").await;
    assert_eq!(answers, (5, 45, 0));
    assert_eq!(password_checks() - before, 5, "compared with argon2");

    // The right password in a burst from the same address: nothing left.
    let before = password_checks();
    let answers = burst(
        &svc,
        30,
        "198.51.100.7",
        "burst@example.com",
        "the real password",
    )
    .await;
    assert_eq!(answers, (0, 30, 0));
    assert_eq!(password_checks() - before, 0);

    // Push the account over its account-wide limit (8) from a second
    // address; then a burst from a fresh address gets one comparison.
    burst(&svc, 5, "198.51.100.8", "burst@example.com", "guess guess").await;
    let before = password_checks();
    let answers = burst(&svc, 30, "198.51.100.9", "burst@example.com", "guess guess").await;
    assert_eq!(answers, (1, 29, 0));
    assert_eq!(password_checks() - before, 1);

    // The owner, from an address that never tried, is still heard.
    login_from(
        &svc,
        "203.0.113.1",
        "burst@example.com",
        "the real password",
    )
    .await
    .expect("the owner signs in");
}

async fn look_alike_emails_are_one_account_and_invisible_characters_are_refused(db: TestDb) {
    let svc = start(&db, &[]).await;
    let alice = register(&svc, "alice@example.com", "alice's password").await;
    // Fullwidth letters are the same letters (NFKC), in any case.
    for look_alike in ["ａｌｉｃｅ@example.com", "ＡＬＩＣＥ@ｅｘａｍｐｌｅ.com"] {
        let taken = auth(&svc)
            .register(pb::RegisterRequest {
                email: look_alike.into(),
                password: "another long password".into(),
                display_name: "Not Alice".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (taken.code(), reason(&taken).as_str()),
            (Code::AlreadyExists, "EMAIL_TAKEN"),
            "{look_alike}"
        );
        let signed_in = login(&svc, look_alike, "alice's password").await.unwrap();
        assert_eq!(signed_in.user.unwrap().id, alice.id, "{look_alike}");
    }
    // Characters that show nothing are refused, in the address and the name.
    for (email, name) in [
        ("al\u{200B}ice@example.com", "Zero Width"),
        ("alice@exa\u{202E}elpmaxe.com", "Bidi Override"),
        ("\u{2066}alice@example.com", "Bidi Isolate"),
        ("bob@example.com", "Bob\u{200D}"),
        ("bob@example.com", "Bob\u{0}"),
    ] {
        let refused = auth(&svc)
            .register(pb::RegisterRequest {
                email: email.into(),
                password: "a long enough password".into(),
                display_name: name.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{email:?} {name:?}");
        let field = if name.is_ascii() && !name.contains('\0') {
            "email"
        } else {
            "display_name"
        };
        assert_eq!(violated_fields(&refused), [field], "{email:?} {name:?}");
    }
}

async fn registration_is_throttled_per_client_address(db: TestDb) {
    let svc = start(
        &db,
        &[
            ("OMS_REGISTER_MAX_PER_PEER", "3"),
            ("OMS_TRUSTED_PROXIES", "127.0.0.1,::1"),
        ],
    )
    .await;
    let sign_up = |address: &'static str, email: String| {
        let mut client = auth(&svc);
        async move {
            let mut request = Request::new(pb::RegisterRequest {
                email,
                password: "a long enough password".into(),
                display_name: "Sign Up".into(),
            });
            request
                .metadata_mut()
                .insert("x-forwarded-for", address.parse().unwrap());
            client.register(request).await.map(|_| ())
        }
    };
    sign_up("198.51.100.1", "one@example.com".into())
        .await
        .unwrap();
    // A taken address counts too: it is what enumerating costs.
    let taken = sign_up("198.51.100.1", "one@example.com".into())
        .await
        .unwrap_err();
    assert_eq!(reason(&taken), "EMAIL_TAKEN");
    sign_up("198.51.100.1", "two@example.com".into())
        .await
        .unwrap();
    let throttled = sign_up("198.51.100.1", "three@example.com".into())
        .await
        .unwrap_err();
    assert_eq!(
        (throttled.code(), reason(&throttled).as_str()),
        (Code::ResourceExhausted, "REGISTRATION_THROTTLED")
    );
    let retry = throttled
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay);
    assert!(
        retry.is_some_and(|d| d.as_secs() > 0 && d.as_secs() <= 3_600),
        "{retry:?}"
    );
    // Another address is not affected.
    sign_up("198.51.100.2", "three@example.com".into())
        .await
        .unwrap();
}

async fn a_direct_caller_on_a_trusted_address_without_the_proxy_secret_is_its_own_address(
    db: TestDb,
) {
    let secret = "a proxy secret of at least thirty-two characters";
    let svc = start(
        &db,
        &[
            ("OMS_TRUSTED_PROXIES", "127.0.0.1,::1"),
            ("OMS_PROXY_SECRET", secret),
            ("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "3"),
        ],
    )
    .await;
    let attempt = |address: String, proof: Option<&'static str>| {
        let mut client = auth(&svc);
        async move {
            let mut request = Request::new(pb::LoginRequest {
                email: "nobody@example.com".into(),
                password: "wrong password".into(),
            });
            request
                .metadata_mut()
                .insert("x-forwarded-for", address.parse().unwrap());
            if let Some(proof) = proof {
                request
                    .metadata_mut()
                    .insert("x-oms-proxy-secret", proof.parse().unwrap());
            }
            client.login(request).await.unwrap_err().code()
        }
    };
    // A new address per call, without the secret (or with a wrong one):
    // every call is the caller's own, 127.0.0.1, and the fourth is refused.
    for i in 0..3 {
        let proof = (i == 1).then_some("a wrong secret of at least thirty-two chars");
        assert_eq!(
            attempt(format!("203.0.113.{i}"), proof).await,
            Code::Unauthenticated
        );
    }
    assert_eq!(
        attempt("203.0.113.9".into(), None).await,
        Code::ResourceExhausted
    );
    // With the secret, the proxy names the client: a fresh address is heard.
    let proven: &'static str = secret;
    assert_eq!(
        attempt("203.0.113.10".into(), Some(proven)).await,
        Code::Unauthenticated
    );
}

/// Two replicas on one database and one Redis (N replicas give an attacker
/// no more guesses than one): the login limits are counted in Redis, so a
/// burst split between them still reaches argon2 at most the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mariadb_and_redis_two_replicas_share_the_login_limits() {
    oms_telemetry::init_for_tests();
    let Some((db, prefix)) = testkit::backends::shared_by_twins().await else {
        return;
    };
    let shared = [
        ("OMS_TRUSTED_PROXIES", "127.0.0.1,::1"),
        ("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "1000"),
        ("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT", "5"),
        ("OMS_REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    let first = start(&db, &shared).await;
    let second = start(&db, &shared).await;
    register(&first, "twins@example.com", "the real password").await;

    let before = password_checks();
    let (a, b) = tokio::join!(
        burst(
            &first,
            25,
            "198.51.100.20",
            "twins@example.com",
            "guess guess"
        ),
        burst(
            &second,
            25,
            "198.51.100.20",
            "twins@example.com",
            "guess guess"
        ),
    );
    assert_eq!(a.0 + b.0, 5, "wrong passwords answered: {a:?} {b:?}");
    assert_eq!(a.1 + b.1, 45, "throttled: {a:?} {b:?}");
    assert_eq!(password_checks() - before, 5, "compared with argon2");
}
