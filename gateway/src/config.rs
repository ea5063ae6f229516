//! Gateway configuration, read once from the environment.

use std::net::SocketAddr;

use oms_config::{ConfigError, Env, PeerAddr};

/// The variable holding the gateway's listen address.
pub const ADDR_VAR: &str = "GATEWAY_ADDR";

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for HTTP.
    pub addr: SocketAddr,
    /// Where user-svc listens.
    pub user_svc_addr: PeerAddr,
    /// Where product-svc listens.
    pub product_svc_addr: PeerAddr,
    /// Where order-svc listens.
    pub order_svc_addr: PeerAddr,
    /// Browser origins allowed by CORS (`GATEWAY_CORS_ALLOWED_ORIGINS`,
    /// comma-separated, or `*`); empty turns CORS off, the default.
    pub cors_allowed_origins: Vec<String>,
    /// Sent with `x-forwarded-for` so user-svc believes it
    /// (`OMS_PROXY_SECRET`).
    pub proxy_secret: Option<oms_config::SecretString>,
    /// What clients' connections may hold.
    pub connections: crate::transport::ConnectionLimits,
    /// How the backends' replicas are found.
    pub resolve: oms_config::ResolveConfig,
    /// TLS towards the backends (`OMS_TLS_CA`, and `OMS_TLS_CERT`/`KEY`
    /// presented as the gateway's client certificate).
    pub mesh_tls: oms_config::MeshTls,
    /// HTTPS on the public listener (`GATEWAY_TLS_CERT`/`KEY`).
    pub public_tls: Option<oms_config::PublicTls>,
}

impl Config {
    /// Reads the configuration.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env.socket_addr(ADDR_VAR, "127.0.0.1:8080")?,
            user_svc_addr: env.peer_addr("USER_SVC_ADDR", "127.0.0.1:50051")?,
            product_svc_addr: env.peer_addr("PRODUCT_SVC_ADDR", "127.0.0.1:50052")?,
            order_svc_addr: env.peer_addr("ORDER_SVC_ADDR", "127.0.0.1:50053")?,
            cors_allowed_origins: cors_origins(env)?,
            proxy_secret: env.proxy_secret()?,
            connections: connection_limits(env)?,
            resolve: oms_config::ResolveConfig::from_env(env)?,
            mesh_tls: oms_config::MeshTls::from_env(env)?,
            public_tls: oms_config::PublicTls::from_env(env)?,
        })
    }
}

fn connection_limits(env: &Env) -> Result<crate::transport::ConnectionLimits, ConfigError> {
    use std::time::Duration;
    let default = crate::transport::ConnectionLimits::default();
    let secs = Duration::from_secs;
    Ok(crate::transport::ConnectionLimits {
        max_connections: env.bounded(
            "GATEWAY_MAX_CONNECTIONS",
            default.max_connections,
            16..=1_000_000,
        )?,
        header_read: env.duration(
            "GATEWAY_HEADER_READ_TIMEOUT",
            default.header_read,
            secs(1)..=secs(300),
        )?,
        idle: env.duration("GATEWAY_IDLE_TIMEOUT", default.idle, secs(1)..=secs(3_600))?,
        stall: env.duration("GATEWAY_STALL_TIMEOUT", default.stall, secs(1)..=secs(600))?,
        max_streams: default.max_streams,
    })
}

fn cors_origins(env: &Env) -> Result<Vec<String>, ConfigError> {
    let var = "GATEWAY_CORS_ALLOWED_ORIGINS";
    let Some(raw) = env.get(var)? else {
        return Ok(Vec::new());
    };
    let origins: Vec<String> = raw
        .split(',')
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    for origin in &origins {
        let valid = origin == "*"
            || ((origin.starts_with("http://") || origin.starts_with("https://"))
                && origin.parse::<axum::http::HeaderValue>().is_ok()
                && !origin.ends_with('/'));
        if !valid {
            return Err(ConfigError::new(
                var,
                format!(
                    "{origin:?} is not an origin (expected e.g. https://shop.example.com, or *)"
                ),
            ));
        }
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_checked_and_name_their_variable() {
        let ok = Env::from_pairs([(
            "GATEWAY_CORS_ALLOWED_ORIGINS",
            "https://a.example, http://localhost:3000",
        )]);
        assert_eq!(Config::from_env(&ok).unwrap().cors_allowed_origins.len(), 2);
        let bad = Env::from_pairs([("GATEWAY_CORS_ALLOWED_ORIGINS", "a.example/")]);
        assert_eq!(
            Config::from_env(&bad).unwrap_err().var,
            "GATEWAY_CORS_ALLOWED_ORIGINS"
        );
        let off = Env::from_pairs(Vec::<(String, String)>::new());
        assert!(
            Config::from_env(&off)
                .unwrap()
                .cors_allowed_origins
                .is_empty()
        );
    }
}
