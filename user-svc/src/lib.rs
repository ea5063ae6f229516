//! user-svc: accounts, sign-in, and the tokens every other service trusts.
//!
//! - [`config`]: what the service reads from the environment.
//! - `api`: the gRPC layer (`oms.user.v1` AuthService and UserService).
//! - [`model`]: what an account is.
//! - [`accounts`]: the account rules, free of wire types.
//! - [`input`]: request fields parsed into types that hold only valid values.
//! - [`passwords`]: argon2id hashing on threads of its own.
//! - [`keys`] and [`tokens`]: Ed25519 keys, JWKS, signed access tokens.
//! - [`sessions`]: rotating refresh tokens with reuse detection.
//! - [`throttle`]: sliding-window login limits.
//! - [`clients`]: OAuth2 service clients and scopes; [`oauth_clients`]:
//!   the OpenID Connect clients that may sign users in; [`oidc`]: the
//!   OpenID Provider's rules (codes, sign-in sessions, ID tokens).
//! - `operator`: the `keygen` and `client-secret` commands.
//! - [`store`]: the users table; [`migration`]: its schema.
//! - [`error`]: every failure and its one mapping to the wire.
//!
//! [`App`] is the service built (listeners bound, keys loaded) and then run
//! until stopped; `oms`, the binary and the tests build it alike (tests on
//! a `127.0.0.1:0` listener of their own).

#![forbid(unsafe_code)]

pub mod accounts;
mod api;
pub mod clients;
pub mod config;
pub mod error;
pub mod input;
pub mod keys;
pub mod migration;
pub mod model;
pub mod oauth_clients;
pub mod oidc;
mod operator;
pub mod passwords;
#[cfg(test)]
mod properties;
mod revocations;
pub mod sessions;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;

use oms_runtime::StartupError;
use tokio::net::TcpListener;

pub use config::{ADDR_VAR, Config};

/// The `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "user.oms";

/// What reflection and health advertise for this service.
pub const SERVICE_INFO: oms_runtime::server::ServiceInfo = oms_runtime::server::ServiceInfo {
    name: "user-svc",
    grpc_services: &[
        oms_proto::service_names::AUTH,
        oms_proto::service_names::USER,
        oms_proto::service_names::OAUTH,
    ],
    descriptors: oms_proto::FILE_DESCRIPTOR_SET,
    polled: &["/oms.user.v1.AuthService/ListTokenRevocations"],
};

/// user-svc as a binary: its commands and configuration, in the runtime's service shape
/// (`user-svc --help`).
#[derive(Debug)]
pub struct Binary;

impl oms_runtime::service::Service for Binary {
    const NAME: &'static str = SERVICE_INFO.name;
    const SUMMARY: &'static str =
        "accounts, sign-in, access tokens and JWKS, refresh and service tokens (gRPC oms.user.v1)";
    const PROBE: oms_runtime::healthcheck::Probe = oms_runtime::healthcheck::Probe::Grpc;
    type Config = Config;
    type App = App;

    const MIGRATE: Option<fn(Config) -> oms_runtime::service::Work> =
        Some(oms_runtime::service::migrate::<Self>);

    fn config(env: &oms_config::Env) -> Result<Config, oms_config::ConfigError> {
        Config::from_env(env, "DATABASE_URL")
    }

    fn extra_commands() -> Vec<oms_runtime::cli::Command<'static>> {
        operator::commands()
    }
}

/// user-svc, built: its database open (and migrated), the token store and
/// signing keys loaded, the bootstrap admin in place, its listeners bound.
pub type App = oms_runtime::app::GrpcApp<Binary>;

impl oms_runtime::app::GrpcService for Binary {
    type Config = Config;
    type Migrator = migration::Migrator;
    const INFO: oms_runtime::server::ServiceInfo = SERVICE_INFO;
    const ADDR_VAR: &'static str = ADDR_VAR;

    fn base(config: &Config) -> &oms_config::ServiceBase {
        &config.base
    }

    async fn build(
        config: Config,
        listener: TcpListener,
    ) -> Result<oms_runtime::app::GrpcParts, StartupError> {
        build_parts(config, listener).await
    }
}

async fn build_parts(
    config: Config,
    listener: TcpListener,
) -> Result<oms_runtime::app::GrpcParts, StartupError> {
    let mut owned = oms_runtime::app::Owned::default();
    let metrics_listener =
        oms_runtime::server::bind_optional(config.base.metrics_addr, config::METRICS_ADDR_VAR)
            .await?;
    let db = oms_store::db::open::<migration::Migrator>(
        &config.base.database_url,
        Default::default(),
        config.base.migrate_on_start,
    )
    .await?;
    let kv = oms_store::kv::open(config.redis.url.as_ref(), &config.redis.key_prefix).await?;
    owned.hold(oms_store::db::sample_pool(SERVICE_INFO.name, &db));
    owned.hold(oms_store::kv::sample_pool(SERVICE_INFO.name, &kv));
    oms_telemetry::metrics::zero("oms_logins_throttled_total", &[]);
    oms_telemetry::metrics::zero("oms_password_checks_total", &[]);
    oms_telemetry::metrics::zero("oms_registrations_throttled_total", &[]);
    let keys = keys::SigningKeys::load(&config.signing_keys)
        .map_err(|e| StartupError::setup("signing keys", e))?;
    let passwords =
        passwords::Passwords::new().map_err(|e| StartupError::setup("password hashing", e))?;
    let accounts = accounts::Accounts {
        db,
        passwords,
        tokens: tokens::TokenIssuer::new(
            keys.clone(),
            config.base.jwt_issuer.clone(),
            config.access_token_ttl,
        ),
        sessions: sessions::Sessions::new(kv.clone(), config.refresh_token_ttl),
        account_failures: throttle::SlidingWindow::new(
            kv.clone(),
            "login-account-peer",
            config.throttle.account_failures,
            config.throttle.account_window,
        ),
        account_wide_failures: throttle::SlidingWindow::new(
            kv.clone(),
            "login-account",
            config.throttle.account_wide_failures,
            config.throttle.account_window,
        ),
        peer_attempts: throttle::SlidingWindow::new(
            kv.clone(),
            "login-peer",
            config.throttle.peer_attempts,
            config.throttle.peer_window,
        ),
        peer_registrations: throttle::SlidingWindow::new(
            kv.clone(),
            "register-peer",
            config.throttle.registrations_per_peer,
            std::time::Duration::from_secs(3_600),
        ),
        clients: config.service_clients.clone(),
    };

    if let Some(admin) = &config.bootstrap_admin {
        let email = input::Email::parse("OMS_BOOTSTRAP_ADMIN_EMAIL", &admin.email)
            .map_err(|v| oms_config::ConfigError::new(v.field, v.description))?;
        let password = input::Password::parse(
            "OMS_BOOTSTRAP_ADMIN_PASSWORD",
            oms_config::ExposeSecret::expose_secret(&admin.password),
        )
        .map_err(|v| oms_config::ConfigError::new(v.field, v.description))?;
        accounts
            .bootstrap_admin(email, password)
            .await
            .map_err(|e| StartupError::setup("bootstrap admin", e))?;
    }

    // user-svc verifies its own tokens with its own published keys and its
    // own revocation list.
    let verifier = oms_runtime::auth::Verifier::new(
        // Service tokens for user-svc itself: the revocation list's readers.
        oms_runtime::auth::VerifierConfig::new(
            config.base.jwt_issuer.clone(),
            Some(SERVICE_INFO.name),
        ),
        Arc::new(keys.jwks().to_vec()),
    )
    .following(Arc::new(revocations::StoredRevocations(accounts.clone())));
    for reason in oidc::REFUSAL_REASONS {
        oms_telemetry::metrics::zero("oms_oauth_refusals_total", &[("reason", reason)]);
    }
    let provider = oidc::Provider {
        clients: Arc::new(config.oauth_clients.clone()),
        issuer: config.oidc.issuer.clone(),
        sign_ins: oidc::sign_in::SignInSessions::new(
            kv.clone(),
            accounts.tokens.clone(),
            config.oidc.issuer.clone(),
            accounts.sessions.clone(),
            config.oidc.session_ttl,
        ),
        codes: oidc::codes::Codes::new(kv.clone(), config.oidc.code_ttl),
        pending: throttle::SlidingWindow::new(
            kv,
            "oidc-codes",
            oidc::MAX_PENDING_CODES,
            std::time::Duration::from_secs(60),
        ),
        accounts: accounts.clone(),
    };
    let routes = api::routes(api::State {
        provider,
        accounts,
        proxies: api::TrustedProxies {
            peers: config.trusted_proxies.clone(),
            secret: config.proxy_secret.clone(),
        },
    });
    let auth = oms_runtime::auth::AuthLayer::new(Arc::new(verifier));
    // user-svc dials no peer: its TLS is only its listener's.
    let tls = oms_runtime::tls::Tls::mesh(SERVICE_INFO.name, &config.base.tls)?;
    Ok(oms_runtime::app::GrpcParts {
        routes,
        auth,
        listener,
        tls,
        metrics_listener,
        owned,
    })
}
