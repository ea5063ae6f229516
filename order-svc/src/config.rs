//! order-svc configuration, read once from the environment.

use std::net::SocketAddr;

use kit::config::{ConfigError, DatabaseUrl, Env};

/// The variable holding order-svc's listen address (and where others find it).
pub const ADDR_VAR: &str = "ORDER_SVC_ADDR";

/// Everything order-svc needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for gRPC.
    pub addr: SocketAddr,
    /// The orders database.
    pub database_url: DatabaseUrl,
    /// Where user-svc listens (service tokens, JWKS).
    pub user_svc_addr: SocketAddr,
    /// Where product-svc listens (reservations).
    pub product_svc_addr: SocketAddr,
    /// The `iss` access tokens must carry.
    pub jwt_issuer: String,
}

impl Config {
    /// Reads the configuration; `database_var` is `DATABASE_URL` for the
    /// standalone binary and `ORDER_SVC_DATABASE_URL` inside `oms`.
    pub fn from_env(env: &Env, database_var: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env.socket_addr(ADDR_VAR, "127.0.0.1:50053")?,
            database_url: env.database_url(database_var, "orders.db")?,
            user_svc_addr: env.socket_addr("USER_SVC_ADDR", "127.0.0.1:50051")?,
            product_svc_addr: env.socket_addr("PRODUCT_SVC_ADDR", "127.0.0.1:50052")?,
            jwt_issuer: env.jwt_issuer()?,
        })
    }
}
