//! user-svc configuration, read once from the environment.

use std::net::SocketAddr;

use kit::config::{ConfigError, DatabaseUrl, Env, RedisUrl};

/// The variable holding user-svc's listen address (and where others find it).
pub const ADDR_VAR: &str = "USER_SVC_ADDR";

/// Everything user-svc needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for gRPC.
    pub addr: SocketAddr,
    /// The users database.
    pub database_url: DatabaseUrl,
    /// Redis for refresh tokens and throttling; `None` keeps them in process.
    pub redis_url: Option<RedisUrl>,
}

impl Config {
    /// Reads the configuration; `database_var` is `DATABASE_URL` for the
    /// standalone binary and `USER_SVC_DATABASE_URL` inside `oms`.
    pub fn from_env(env: &Env, database_var: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env.socket_addr(ADDR_VAR, "127.0.0.1:50051")?,
            database_url: env.database_url(database_var, "users.db")?,
            redis_url: env.redis_url("REDIS_URL")?,
        })
    }
}
