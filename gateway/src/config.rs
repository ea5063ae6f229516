//! Gateway configuration, read once from the environment.

use std::net::SocketAddr;

use kit::config::{ConfigError, Env};

/// The variable holding the gateway's listen address.
pub const ADDR_VAR: &str = "GATEWAY_ADDR";

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for HTTP.
    pub addr: SocketAddr,
    /// Where user-svc listens.
    pub user_svc_addr: SocketAddr,
    /// Where product-svc listens.
    pub product_svc_addr: SocketAddr,
    /// Where order-svc listens.
    pub order_svc_addr: SocketAddr,
}

impl Config {
    /// Reads the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env.socket_addr(ADDR_VAR, "127.0.0.1:8080")?,
            user_svc_addr: env.socket_addr("USER_SVC_ADDR", "127.0.0.1:50051")?,
            product_svc_addr: env.socket_addr("PRODUCT_SVC_ADDR", "127.0.0.1:50052")?,
            order_svc_addr: env.socket_addr("ORDER_SVC_ADDR", "127.0.0.1:50053")?,
        })
    }
}
