//! product-svc configuration, read once from the environment.

use std::time::Duration;

use oms_config::{ConfigError, Env, PeerAddr, RedisConfig, ServiceBase, ServiceVars};

/// The variable holding product-svc's listen address (and where others find it).
pub const ADDR_VAR: &str = "PRODUCT_SVC_ADDR";

/// The variable holding the address of the `/metrics` listener (off unless set).
pub const METRICS_ADDR_VAR: &str = "PRODUCT_SVC_METRICS_ADDR";

/// How long a reservation holds stock unless committed, in seconds, when
/// `OMS_RESERVATION_TTL_SECS` is not set.
pub const DEFAULT_RESERVATION_TTL_SECS: u64 = 600;

/// How long the GetProduct cache keeps an entry, in seconds, when
/// `OMS_PRODUCT_CACHE_TTL_SECS` is not set.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 30;

/// product-svc's listen, metrics and database variables.
const VARS: ServiceVars = ServiceVars {
    addr: ADDR_VAR,
    default_addr: "127.0.0.1:50052",
    metrics_addr: METRICS_ADDR_VAR,
    sqlite_file: "products.db",
};

const DAY: u64 = 86_400;

/// The variable holding product-svc's OAuth2 client secret at user-svc.
pub const CLIENT_SECRET_VAR: &str = "OMS_PRODUCT_SVC_CLIENT_SECRET";

/// Everything product-svc needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen addresses, the products database, the token issuer.
    pub base: ServiceBase,
    /// Redis for the product cache (in process when unset).
    pub redis: RedisConfig,
    /// Where user-svc listens (its JWKS verifies access tokens).
    pub user_svc_addr: PeerAddr,
    /// How long a reservation holds stock unless committed.
    pub reservation_ttl: Duration,
    /// How often expired reservations are swept.
    pub sweep_interval: Duration,
    /// How long GetProduct answers stay cached.
    pub cache_ttl: Duration,
    /// How long a new quote holds its prices (`OMS_QUOTE_TTL`).
    pub quote_ttl: Duration,
    /// How long a quote that expired unused is kept before pruning
    /// (`OMS_QUOTE_RETENTION`).
    pub quote_retention: Duration,
    /// product-svc's OAuth2 client ID at user-svc (`OMS_PRODUCT_SVC_CLIENT_ID`).
    pub client_id: String,
    /// Its secret (`OMS_PRODUCT_SVC_CLIENT_SECRET`): it reads the
    /// revocation list with it. Required (the `oms` binary makes one up).
    pub client_secret: Option<oms_config::SecretString>,
    /// How long an applied order event's inbox entry is kept: longer than
    /// the broker may redeliver it (`OMS_INBOX_RETENTION`).
    pub inbox_retention: Duration,
    /// Where image bytes are stored (`OMS_BLOB_URL`, the AWS variables).
    pub blob: crate::blobs::BlobConfig,
    /// Largest image upload (`OMS_IMAGE_MAX_BYTES`).
    pub image_max_bytes: u64,
    /// How old a stored blob no row points to must be before the sweeper
    /// deletes it (`OMS_BLOB_ORPHAN_GRACE`).
    pub blob_orphan_grace: Duration,
    /// Where product events go and order events come from: Kafka
    /// (`OMS_KAFKA_BROKERS`) or in process.
    pub broker: events::Broker,
}

impl Config {
    /// Reads the configuration; `database_var` is `DATABASE_URL` for the
    /// standalone binary and `PRODUCT_SVC_DATABASE_URL` inside `oms`.
    pub fn from_env(env: &Env, database_var: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            base: ServiceBase::from_env(env, VARS, database_var)?,
            redis: RedisConfig::from_env(env, "product:")?,
            user_svc_addr: env.peer_addr("USER_SVC_ADDR", "127.0.0.1:50051")?,
            reservation_ttl: env.seconds(
                "OMS_RESERVATION_TTL_SECS",
                DEFAULT_RESERVATION_TTL_SECS,
                1..=86_400,
            )?,
            sweep_interval: env.seconds("OMS_RESERVATION_SWEEP_SECS", 5, 1..=3_600)?,
            cache_ttl: env.seconds(
                "OMS_PRODUCT_CACHE_TTL_SECS",
                DEFAULT_CACHE_TTL_SECS,
                1..=3_600,
            )?,
            quote_ttl: env.duration(
                "OMS_QUOTE_TTL",
                Duration::from_secs(15 * 60),
                Duration::from_secs(1)..=Duration::from_secs(7 * DAY),
            )?,
            quote_retention: env.duration(
                "OMS_QUOTE_RETENTION",
                Duration::from_secs(30 * DAY),
                Duration::from_secs(3_600)..=Duration::from_secs(3_650 * DAY),
            )?,
            client_id: env
                .get("OMS_PRODUCT_SVC_CLIENT_ID")?
                .unwrap_or_else(|| "product-svc".to_owned()),
            client_secret: env.secret(CLIENT_SECRET_VAR)?,
            inbox_retention: env.duration(
                "OMS_INBOX_RETENTION",
                Duration::from_secs(14 * DAY),
                Duration::from_secs(3_600)..=Duration::from_secs(3_650 * DAY),
            )?,
            blob: crate::blobs::BlobConfig::from_env(env)?,
            image_max_bytes: env.bounded(
                "OMS_IMAGE_MAX_BYTES",
                oms_core::uploads::DEFAULT_UPLOAD as u64,
                1_024..=oms_core::uploads::MAX_UPLOAD as u64,
            )?,
            blob_orphan_grace: env.duration(
                "OMS_BLOB_ORPHAN_GRACE",
                Duration::from_secs(3_600),
                Duration::from_secs(1)..=Duration::from_secs(7 * DAY),
            )?,
            broker: events::Broker::from_env(env)?,
        })
    }
}
