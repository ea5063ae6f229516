//! The service under test, clients, and sign-in shortcuts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oms_config::Env;
use oms_proto::user::v1::{
    self as pb, auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
};
use testkit::clients::ServiceClient;
use testkit::{Spawned, TestDb, bearer, spawn, unique_name};
use tonic::Status;
use tonic::transport::Channel;

pub(crate) use testkit::users::{ADMIN_EMAIL, ADMIN_PASSWORD, ORDER_SVC_SECRET as CLIENT_SECRET};
pub(crate) const SEED: [u8; 32] = [7; 32];

pub(crate) async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Spawned {
    let mut pairs = testkit::users::user_svc_env(
        db.url().expose(),
        &[ServiceClient::order_svc(CLIENT_SECRET)],
    );
    // The per-address login limit as in production: its tests set it.
    pairs.retain(|(k, _)| k != "OMS_LOGIN_MAX_ATTEMPTS_PER_PEER");
    pairs.extend([
        ("OMS_JWT_SIGNING_KEYS".into(), STANDARD.encode(SEED)),
        (
            "OMS_REDIS_KEY_PREFIX".into(),
            format!("{}:", unique_name("oms_test")),
        ),
    ]);
    // SQLite runs with the in-process store, MariaDB with Redis: both stores
    // are exercised by every test.
    if !db.url().is_sqlite()
        && let Some(redis) = testkit::redis_url()
    {
        pairs.push(("REDIS_URL".into(), redis.expose().to_owned()));
    }
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = user_svc::Config::from_env(&Env::from_pairs(pairs), "DATABASE_URL").unwrap();
    spawn::<user_svc::App>(config).await
}

pub(crate) fn auth(svc: &Spawned) -> AuthServiceClient<Channel> {
    AuthServiceClient::new(svc.channel())
}

pub(crate) fn users(svc: &Spawned) -> UserServiceClient<Channel> {
    UserServiceClient::new(svc.channel())
}

pub(crate) async fn register(svc: &Spawned, email: &str, password: &str) -> pb::User {
    testkit::users::register(svc.channel(), email, password, "Test User")
        .await
        .unwrap()
}

pub(crate) async fn login(
    svc: &Spawned,
    email: &str,
    password: &str,
) -> Result<pb::LoginResponse, Status> {
    testkit::users::login(svc.channel(), email, password).await
}

pub(crate) async fn refresh(
    svc: &Spawned,
    token: &str,
) -> Result<pb::RefreshTokenResponse, Status> {
    auth(svc)
        .refresh_token(pb::RefreshTokenRequest {
            refresh_token: token.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn admin_token(svc: &Spawned) -> String {
    login(svc, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .unwrap()
        .access_token
}

pub(crate) async fn me(svc: &Spawned, token: &str) -> Result<pb::User, Status> {
    users(svc)
        .get_current_user(bearer(pb::GetCurrentUserRequest {}, token))
        .await
        .map(|r| r.into_inner().user.unwrap())
}
