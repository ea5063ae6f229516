//! order-svc configuration, read once from the environment.

use std::time::Duration;

use oms_config::{ConfigError, Env, PeerAddr, ServiceBase, ServiceVars};

/// The variable holding order-svc's listen address (and where others find it).
pub const ADDR_VAR: &str = "ORDER_SVC_ADDR";

/// The variable holding the address of the `/metrics` listener (off unless set).
pub const METRICS_ADDR_VAR: &str = "ORDER_SVC_METRICS_ADDR";

/// order-svc's listen, metrics and database variables.
const VARS: ServiceVars = ServiceVars {
    addr: ADDR_VAR,
    default_addr: "127.0.0.1:50053",
    metrics_addr: METRICS_ADDR_VAR,
    sqlite_file: "orders.db",
};

/// The variable holding order-svc's OAuth2 client secret at user-svc.
pub const CLIENT_SECRET_VAR: &str = "OMS_ORDER_SVC_CLIENT_SECRET";

/// Everything order-svc needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen addresses, the orders database, the token issuer.
    pub base: ServiceBase,
    /// Where user-svc listens (service tokens, JWKS).
    pub user_svc_addr: PeerAddr,
    /// Where product-svc listens (reservations).
    pub product_svc_addr: PeerAddr,
    /// order-svc's OAuth2 client ID at user-svc.
    pub client_id: String,
    /// Its secret; required (the `oms` binary generates one).
    pub client_secret: Option<ClientSecret>,
    /// Longest wait for one call to product-svc or user-svc.
    pub call_timeout: Duration,
    /// How often PENDING orders are looked at by recovery.
    pub recovery_interval: Duration,
    /// How old a PENDING order must be before recovery resolves it: longer
    /// than any live CreateOrder can take.
    pub recovery_age: Duration,
    /// Where order events go: Kafka (`OMS_KAFKA_BROKERS`) or in process.
    pub broker: events::Broker,
    /// WatchOrder streams one user may hold on this instance.
    pub watches_per_user: usize,
}

/// A client secret that never shows in logs or debug output.
pub type ClientSecret = oms_config::SecretString;

impl Config {
    /// Reads the configuration; `database_var` is `DATABASE_URL` for the
    /// standalone binary and `ORDER_SVC_DATABASE_URL` inside `oms`.
    pub fn from_env(env: &Env, database_var: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            base: ServiceBase::from_env(env, VARS, database_var)?,
            user_svc_addr: env.peer_addr("USER_SVC_ADDR", "127.0.0.1:50051")?,
            product_svc_addr: env.peer_addr("PRODUCT_SVC_ADDR", "127.0.0.1:50052")?,
            client_id: env
                .get("OMS_ORDER_SVC_CLIENT_ID")?
                .unwrap_or_else(|| "order-svc".to_owned()),
            client_secret: env.secret(CLIENT_SECRET_VAR)?,
            call_timeout: env.millis("OMS_ORDER_CALL_TIMEOUT_MS", 2_000, 50..=60_000)?,
            recovery_interval: env.seconds("OMS_ORDER_RECOVERY_SECS", 10, 1..=3_600)?,
            recovery_age: env.seconds("OMS_ORDER_RECOVERY_AGE_SECS", 30, 1..=86_400)?,
            broker: events::Broker::from_env(env)?,
            watches_per_user: env.bounded("OMS_WATCH_MAX_PER_USER", 50, 1..=1_000)?,
        })
    }
}
