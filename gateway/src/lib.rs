//! The gateway: JSON/HTTP in front of the gRPC services. It holds no
//! business logic.
//!
//! - [`config`]: listen address and where each backend is.
//! - `backends`: one lazily connected HTTP/2 channel per service.
//! - `health`: `/healthz` (process up) and `/readyz` (every backend SERVING).
//! - `error`: the AIP-193 JSON error body.
//!
//! Tests call [`serve`] on a `127.0.0.1:0` listener.

#![forbid(unsafe_code)]

mod backends;
pub mod config;
mod error;
mod health;

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub use config::{ADDR_VAR, Config};

/// Serves HTTP on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), kit::StartupError> {
    let backends = backends::Backends::connect_lazy(&config)
        .map_err(|e| kit::StartupError::Other(format!("gateway backends: {e}")))?;
    let app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(error::no_route)
        .with_state(backends);
    let addr = listener
        .local_addr()
        .map_err(|e| kit::StartupError::Other(e.to_string()))?;
    tracing::info!(service = "gateway", %addr, "serving HTTP");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| kit::StartupError::Other(format!("gateway: {e}")))?;
    tracing::info!(service = "gateway", "stopped");
    Ok(())
}
