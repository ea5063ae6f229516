//! Accounts for tests: the environment that gives user-svc a bootstrap
//! admin and OAuth2 clients, and gRPC shortcuts to register, sign in and
//! get service tokens.

use oms_proto::user::v1::{self as pb, auth_service_client::AuthServiceClient};
use tonic::Status;
use tonic::transport::Channel;

use crate::clients::{self, ServiceClient};

/// The bootstrap admin every test mesh has.
pub const ADMIN_EMAIL: &str = "admin@oms.test";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin password for tests";
/// order-svc's client secret in test meshes.
pub const ORDER_SVC_SECRET: &str = "order-svc secret for tests";
/// product-svc's client secret in test meshes (it reads the revocation
/// list with it).
pub const PRODUCT_SVC_SECRET: &str = "product-svc secret for tests";
/// The password of every customer [`customer`] makes.
pub const CUSTOMER_PASSWORD: &str = "customer password";

/// user-svc's variables for a standalone test instance: its database, a
/// data directory of its own under the system's temporary directory (its
/// key file), and [`accounts_env`] with product-svc's client besides
/// `clients` (every product-svc reads the revocation list).
pub fn user_svc_env(database_url: &str, clients: &[ServiceClient]) -> Vec<(String, String)> {
    let data_dir = std::env::temp_dir().join(format!("oms_keys_{}", unique_suffix()));
    let mut env = vec![
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("OMS_DATA_DIR".to_owned(), data_dir.display().to_string()),
    ];
    let mut clients = clients.to_vec();
    clients.push(ServiceClient::product_svc(PRODUCT_SVC_SECRET));
    env.extend(accounts_env(&clients));
    env
}

/// The accounts of a test mesh: the bootstrap admin, the OAuth2
/// `clients`, and no per-address login or registration limit (every test
/// signs up and in from 127.0.0.1, many times).
pub fn accounts_env(clients: &[ServiceClient]) -> Vec<(String, String)> {
    [
        ("OMS_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
        ("OMS_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("OMS_SERVICE_CLIENTS", clients::env_value(clients)),
        ("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "1000000".to_owned()),
        ("OMS_REGISTER_MAX_PER_PEER", "1000000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// product-svc's credentials at a test user-svc made by [`user_svc_env`].
pub fn product_svc_env() -> Vec<(String, String)> {
    vec![(
        "OMS_PRODUCT_SVC_CLIENT_SECRET".to_owned(),
        PRODUCT_SVC_SECRET.to_owned(),
    )]
}

/// A suffix no other test of this run has: the process ID and a counter.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Registers an account.
pub async fn register(
    users: Channel,
    email: &str,
    password: &str,
    display_name: &str,
) -> Result<pb::User, Status> {
    let reply = AuthServiceClient::new(users)
        .register(pb::RegisterRequest {
            email: email.into(),
            password: password.into(),
            display_name: display_name.into(),
        })
        .await?
        .into_inner();
    reply
        .user
        .ok_or_else(|| Status::internal("Register answered without a user"))
}

/// Signs in.
pub async fn login(
    users: Channel,
    email: &str,
    password: &str,
) -> Result<pb::LoginResponse, Status> {
    AuthServiceClient::new(users)
        .login(pb::LoginRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A signed-in account: its access token and user ID.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// The user's ID.
    pub user_id: String,
}

/// Signs in as `email`, returning the token and the user's ID.
pub async fn session(users: Channel, email: &str, password: &str) -> Result<Session, Status> {
    let reply = login(users, email, password).await?;
    Ok(Session {
        token: reply.access_token,
        user_id: reply.user.map(|u| u.id).unwrap_or_default(),
    })
}

/// The bootstrap admin, signed in.
pub async fn admin(users: Channel) -> Result<Session, Status> {
    session(users, ADMIN_EMAIL, ADMIN_PASSWORD).await
}

/// A new customer `name@example.com` with [`CUSTOMER_PASSWORD`], signed in.
pub async fn customer(users: Channel, name: &str) -> Result<Session, Status> {
    let email = format!("{name}@example.com");
    register(users.clone(), &email, CUSTOMER_PASSWORD, name).await?;
    session(users, &email, CUSTOMER_PASSWORD).await
}

/// A service token for `client_id` (every scope it may have when `scopes`
/// is empty).
pub async fn service_token(
    users: Channel,
    client_id: &str,
    secret: &str,
    scopes: &[&str],
) -> Result<String, Status> {
    AuthServiceClient::new(users)
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: client_id.into(),
            client_secret: secret.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        })
        .await
        .map(|r| r.into_inner().access_token)
}
