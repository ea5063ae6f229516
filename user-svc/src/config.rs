//! user-svc configuration, read once from the environment.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use oms_config::{ConfigError, Env, RedisConfig, SecretString, ServiceBase, ServiceVars};

use crate::clients::ServiceClient;

/// The variable holding user-svc's listen address (and where others find it).
pub const ADDR_VAR: &str = "USER_SVC_ADDR";

/// The variable holding the address of the `/metrics` listener (off unless set).
pub const METRICS_ADDR_VAR: &str = "USER_SVC_METRICS_ADDR";

/// The variable holding the OpenID Connect clients.
pub const OAUTH_CLIENTS_VAR: &str = "OMS_OAUTH_CLIENTS";

/// user-svc's listen, metrics and database variables.
const VARS: ServiceVars = ServiceVars {
    addr: ADDR_VAR,
    default_addr: "127.0.0.1:50051",
    metrics_addr: METRICS_ADDR_VAR,
    sqlite_file: "users.db",
};

/// Everything user-svc needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen addresses, the users database, the `iss` of every token
    /// signed here.
    pub base: ServiceBase,
    /// Redis for refresh tokens and throttling (in process when unset).
    pub redis: RedisConfig,
    /// Where the signing keys come from.
    pub signing_keys: KeySource,
    /// Life of an access token (at most 15 minutes).
    pub access_token_ttl: Duration,
    /// Life of a refresh token since its last rotation.
    pub refresh_token_ttl: Duration,
    /// The admin to create or update at start-up.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// OAuth2 clients allowed to get service tokens.
    pub service_clients: Vec<ServiceClient>,
    /// OpenID Connect clients that may sign users in
    /// (`OMS_OAUTH_CLIENTS`).
    pub oauth_clients: Vec<crate::oauth_clients::OAuthClient>,
    /// The OpenID Provider's issuer and lifetimes.
    pub oidc: OidcConfig,
    /// Login throttling.
    pub throttle: ThrottleConfig,
    /// Peers whose `x-forwarded-for` is believed (the gateway): addresses,
    /// or networks where the gateway's address is not fixed (a pod network).
    pub trusted_proxies: Vec<IpNet>,
    /// When set, a trusted proxy's `x-forwarded-for` is believed only
    /// with this secret beside it (`OMS_PROXY_SECRET`).
    pub proxy_secret: Option<oms_config::SecretString>,
}

/// The OpenID Provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// `OMS_OIDC_ISSUER`: the public URL of the gateway, which serves the
    /// provider's endpoints; every ID token's `iss` and the discovery
    /// document's `issuer` (default `http://localhost:8080`).
    pub issuer: String,
    /// `OMS_OIDC_SESSION_TTL_SECS`: life of a browser sign-in session
    /// (default one hour).
    pub session_ttl: Duration,
    /// `OMS_OIDC_CODE_TTL_SECS`: life of an authorization code (default
    /// and at most 60 s).
    pub code_ttl: Duration,
}

/// The variable holding the issuer URL.
pub const OIDC_ISSUER_VAR: &str = "OMS_OIDC_ISSUER";

impl OidcConfig {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let issuer = match env.get(OIDC_ISSUER_VAR)? {
            Some(raw) => {
                let raw = raw.trim().to_owned();
                issuer_url(&raw)
                    .map_err(|why| ConfigError::new(OIDC_ISSUER_VAR, format!("{raw:?} {why}")))?;
                raw
            }
            None => "http://localhost:8080".to_owned(),
        };
        Ok(Self {
            issuer,
            session_ttl: env.seconds("OMS_OIDC_SESSION_TTL_SECS", 3_600, 60..=86_400)?,
            code_ttl: env.seconds("OMS_OIDC_CODE_TTL_SECS", 60, 1..=60)?,
        })
    }
}

/// An issuer identifier (OIDC Discovery §3): an http(s) URL with no query,
/// fragment or trailing slash.
pub fn issuer_url(raw: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "is not an absolute URL")?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an https (or http) URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment");
    }
    if raw.ends_with('/') {
        return Err("must not end with '/'");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must have no user info");
    }
    Ok(())
}

/// Where the Ed25519 signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `OMS_JWT_SIGNING_KEYS`: one or more keys (PKCS#8 PEM, or base64 of
    /// PKCS#8 DER or of a 32-byte seed), comma-separated; the first signs,
    /// the others are only published, for rotation.
    Env(Vec<SecretString>),
    /// A key file generated on first start (the embedded default).
    File(PathBuf),
}

/// The first admin, from configuration.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    /// `OMS_BOOTSTRAP_ADMIN_EMAIL`.
    pub email: String,
    /// `OMS_BOOTSTRAP_ADMIN_PASSWORD`; never shown by `Debug`.
    pub password: SecretString,
}

/// Login throttling: sliding windows per account (failures) and per client
/// address (attempts).
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failed logins allowed per account from one client address per
    /// window.
    pub account_failures: u64,
    /// Failed logins per account from all addresses together per window,
    /// past which an address that has failed for it is refused (one that
    /// has not is still let in: nobody can lock the owner out).
    pub account_wide_failures: u64,
    /// The account window.
    pub account_window: Duration,
    /// Login attempts allowed per client address per window.
    pub peer_attempts: u64,
    /// The client-address window.
    pub peer_window: Duration,
    /// Registrations allowed per client address per hour.
    pub registrations_per_peer: u64,
}

impl Config {
    /// Reads the configuration; `database_var` is `DATABASE_URL` for the
    /// standalone binary and `USER_SVC_DATABASE_URL` inside `oms`.
    pub fn from_env(env: &Env, database_var: &str) -> Result<Self, ConfigError> {
        let access_token_ttl = env.seconds(
            "OMS_ACCESS_TOKEN_TTL_SECS",
            900,
            30..=oms_runtime::auth::USER_TOKEN_MAX_TTL_SECS,
        )?;
        // Up to a year: longer is no session, it is a password.
        let refresh_token_ttl = env.seconds(
            "OMS_REFRESH_TOKEN_TTL_SECS",
            14 * 24 * 3600,
            60..=366 * 24 * 3600,
        )?;
        let signing_keys = match env.get("OMS_JWT_SIGNING_KEYS")? {
            Some(raw) => KeySource::Env(
                raw.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(SecretString::from)
                    .collect(),
            ),
            None => KeySource::File(env.data_dir()?.join("jwt-signing-key.pem")),
        };
        let bootstrap_admin = match (
            env.get("OMS_BOOTSTRAP_ADMIN_EMAIL")?,
            env.secret("OMS_BOOTSTRAP_ADMIN_PASSWORD")?,
        ) {
            (None, None) => None,
            (Some(email), Some(password)) => Some(BootstrapAdmin { email, password }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "OMS_BOOTSTRAP_ADMIN_PASSWORD",
                    "must be set with OMS_BOOTSTRAP_ADMIN_EMAIL",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "OMS_BOOTSTRAP_ADMIN_EMAIL",
                    "must be set with OMS_BOOTSTRAP_ADMIN_PASSWORD",
                ));
            }
        };
        let service_clients = match env.get("OMS_SERVICE_CLIENTS")? {
            Some(raw) => crate::clients::parse(&raw)
                .map_err(|reason| ConfigError::new("OMS_SERVICE_CLIENTS", reason))?,
            None => Vec::new(),
        };
        let oauth_clients = match env.get(OAUTH_CLIENTS_VAR)? {
            Some(raw) => crate::oauth_clients::parse(&raw)
                .map_err(|reason| ConfigError::new(OAUTH_CLIENTS_VAR, reason))?,
            None => Vec::new(),
        };
        // None by default: a client's own x-forwarded-for is never
        // believed unless the operator names the proxy it came through.
        let trusted_proxies = match env.get("OMS_TRUSTED_PROXIES")? {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(|item| parse_proxy(item.trim()))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    ConfigError::new(
                        "OMS_TRUSTED_PROXIES",
                        format!(
                            "{raw:?}: expected comma-separated IP addresses or networks (10.0.0.0/8)"
                        ),
                    )
                })?,
        };
        Ok(Self {
            base: ServiceBase::from_env(env, VARS, database_var)?,
            redis: RedisConfig::from_env(env, "user:")?,
            signing_keys,
            access_token_ttl,
            refresh_token_ttl,
            bootstrap_admin,
            service_clients,
            oauth_clients,
            oidc: OidcConfig::from_env(env)?,
            throttle: ThrottleConfig {
                account_failures: env.parse_or("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)?,
                account_wide_failures: env
                    .parse_or("OMS_LOGIN_MAX_FAILURES_PER_ACCOUNT_WIDE", 100)?,
                account_window: Duration::from_secs(15 * 60),
                peer_attempts: env.parse_or("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", 30)?,
                peer_window: Duration::from_secs(60),
                registrations_per_peer: env.bounded(
                    "OMS_REGISTER_MAX_PER_PEER",
                    10,
                    1..=1_000_000,
                )?,
            },
            trusted_proxies,
            proxy_secret: env.proxy_secret()?,
        })
    }
}

/// One trusted proxy: an address (a network of one) or a network.
fn parse_proxy(item: &str) -> Option<IpNet> {
    match item.parse::<IpNet>() {
        Ok(net) => Some(net.trunc()),
        Err(_) => item.parse::<IpAddr>().ok().map(IpNet::from),
    }
}

#[cfg(test)]
mod tests {
    use super::{issuer_url, parse_proxy};

    #[test]
    fn the_issuer_is_a_url_without_query_fragment_or_trailing_slash() {
        for good in [
            "https://oms.example.com",
            "http://localhost:8080",
            "https://a.example/oms",
        ] {
            assert_eq!(issuer_url(good), Ok(()), "{good}");
        }
        for bad in [
            "oms.example.com",
            "https://oms.example.com/",
            "https://oms.example.com?x=1",
            "https://oms.example.com#f",
            "ftp://oms.example.com",
            "https://user@oms.example.com",
        ] {
            assert!(issuer_url(bad).is_err(), "{bad} accepted");
        }
        let env = oms_config::Env::from_pairs([
            ("OMS_DATA_DIR", "/tmp/oms-issuer-test"),
            ("OMS_OIDC_ISSUER", "https://oms.example.com/"),
        ]);
        let refused = super::Config::from_env(&env, "DATABASE_URL").unwrap_err();
        assert_eq!(refused.var, "OMS_OIDC_ISSUER");
        let env = oms_config::Env::from_pairs([
            ("OMS_DATA_DIR", "/tmp/oms-issuer-test"),
            ("OMS_OIDC_CODE_TTL_SECS", "61"),
        ]);
        let refused = super::Config::from_env(&env, "DATABASE_URL").unwrap_err();
        assert_eq!(
            refused.var, "OMS_OIDC_CODE_TTL_SECS",
            "a code lives at most 60 s"
        );
    }

    #[test]
    fn a_trusted_proxy_is_an_address_or_a_network() {
        let one = parse_proxy("192.0.2.1").unwrap();
        assert!(one.contains(&"192.0.2.1".parse::<std::net::IpAddr>().unwrap()));
        assert!(!one.contains(&"192.0.2.2".parse::<std::net::IpAddr>().unwrap()));
        let pods = parse_proxy("10.244.7.9/16").unwrap();
        assert_eq!(pods.to_string(), "10.244.0.0/16");
        assert!(pods.contains(&"10.244.200.3".parse::<std::net::IpAddr>().unwrap()));
        assert!(parse_proxy("::1").is_some() && parse_proxy("fd00::/8").is_some());
        for bad in ["10.0.0.0/33", "gateway", "", "10.0.0.0/"] {
            assert!(parse_proxy(bad).is_none(), "{bad:?} accepted");
        }
    }
}
