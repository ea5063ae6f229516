//! product-svc configuration, read once from the environment.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use kit::config::{ConfigError, DatabaseUrl, Env, PeerAddr, RedisUrl};

/// The variable holding product-svc's listen address (and where others find it).
pub const ADDR_VAR: &str = "PRODUCT_SVC_ADDR";

/// The variable holding the address of the `/metrics` listener (off unless set).
pub const METRICS_ADDR_VAR: &str = "PRODUCT_SVC_METRICS_ADDR";

/// Everything product-svc needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for gRPC.
    pub addr: SocketAddr,
    /// Where to serve Prometheus `/metrics`; `None` serves none.
    pub metrics_addr: Option<SocketAddr>,
    /// The products database.
    pub database_url: DatabaseUrl,
    /// Redis for the product cache; `None` caches in process.
    pub redis_url: Option<RedisUrl>,
    /// Prefix of every key this service stores in Redis.
    pub redis_key_prefix: String,
    /// Where user-svc listens (its JWKS verifies access tokens).
    pub user_svc_addr: PeerAddr,
    /// The `iss` access tokens must carry.
    pub jwt_issuer: String,
    /// How long a reservation holds stock unless committed.
    pub reservation_ttl: Duration,
    /// How often expired reservations are swept.
    pub sweep_interval: Duration,
    /// How long GetProduct answers stay cached.
    pub cache_ttl: Duration,
}

impl Config {
    /// Reads the configuration; `database_var` is `DATABASE_URL` for the
    /// standalone binary and `PRODUCT_SVC_DATABASE_URL` inside `oms`.
    pub fn from_env(env: &Env, database_var: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env.socket_addr(ADDR_VAR, "127.0.0.1:50052")?,
            metrics_addr: env.optional_socket_addr(METRICS_ADDR_VAR)?,
            database_url: env.database_url(database_var, "products.db")?,
            redis_url: env.redis_url("REDIS_URL")?,
            redis_key_prefix: format!("{}product:", env.redis_key_prefix()?),
            user_svc_addr: env.peer_addr("USER_SVC_ADDR", "127.0.0.1:50051")?,
            jwt_issuer: env.jwt_issuer()?,
            reservation_ttl: seconds(env, "OMS_RESERVATION_TTL_SECS", 600, 1..=86_400)?,
            sweep_interval: seconds(env, "OMS_RESERVATION_SWEEP_SECS", 5, 1..=3_600)?,
            cache_ttl: seconds(env, "OMS_PRODUCT_CACHE_TTL_SECS", 30, 1..=3_600)?,
        })
    }
}

fn seconds(
    env: &Env,
    var: &str,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let secs = env.parse_or(var, default)?;
    if !range.contains(&secs) {
        return Err(ConfigError::new(
            var,
            format!("must be {} to {} seconds", range.start(), range.end()),
        ));
    }
    Ok(Duration::from_secs(secs))
}
