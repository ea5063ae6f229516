//! order-svc: orders, placed through a saga that reserves and commits stock
//! in product-svc with a service token from user-svc.
//!
//! - [`config`]: what the service reads from the environment.
//! - `api`: the gRPC layer (`oms.order.v1` OrderService).
//! - [`orders`]: the order rules and the CreateOrder saga.
//! - [`recovery`]: finishes what a crash or failed call left half-done.
//! - [`clients`]: service tokens and InventoryService calls with deadlines
//!   and retries.
//! - [`input`]: request fields parsed into valid values.
//! - [`store`]: sea-orm entities and queries; [`migration`]: the schema.
//! - [`error`]: every failure and its one mapping to the wire.
//!
//! Tests call [`serve`] on a `127.0.0.1:0` listener with their own database
//! and shutdown future.

#![forbid(unsafe_code)]

mod api;
pub mod clients;
pub mod config;
pub mod error;
pub mod input;
pub mod migration;
pub mod orders;
pub mod recovery;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use kit::StartupError;
use kit::config::ConfigError;
use tokio::net::TcpListener;

pub use config::{ADDR_VAR, CLIENT_SECRET_VAR, Config};

/// The `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "order.oms";

/// What reflection and health advertise for this service.
pub const SERVICE_INFO: kit::server::ServiceInfo = kit::server::ServiceInfo {
    name: "order-svc",
    grpc_services: &[oms_proto::service_names::ORDER],
    descriptors: oms_proto::FILE_DESCRIPTOR_SET,
};

/// Opens the database (migrating it), starts recovery, then serves gRPC on
/// `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let secret = config.client_secret.clone().ok_or_else(|| {
        ConfigError::new(
            CLIENT_SECRET_VAR,
            "must be set: order-svc's OAuth2 client secret at user-svc",
        )
    })?;
    let metrics_listener =
        kit::server::bind_optional(config.metrics_addr, config::METRICS_ADDR_VAR).await?;
    let db = kit::db::connect_and_migrate::<migration::Migrator>(
        &config.database_url,
        Default::default(),
    )
    .await?;
    let _pool_gauges = kit::db::sample_pool(SERVICE_INFO.name, &db);
    let dependency =
        |e: tonic::transport::Error| StartupError::Other(format!("order-svc dependencies: {e}"));
    let tokens = clients::ServiceTokens::new(
        &config.user_svc_addr,
        config.client_id.clone(),
        secret,
        config.call_timeout,
    )
    .map_err(dependency)?;
    let inventory = clients::Inventory::new(&config.product_svc_addr, tokens, config.call_timeout)
        .map_err(dependency)?;
    let orders = orders::Orders {
        db,
        inventory: Arc::new(inventory),
        faults: config.faults.clone(),
    };
    let recovering = tokio::spawn(recover_forever(
        orders.clone(),
        config.recovery_interval,
        config.recovery_age,
    ));

    let routes = api::routes(api::State { orders });
    let auth = kit::auth::layer_for(&config.user_svc_addr, &config.jwt_issuer, None)?;
    let served = kit::server::serve_grpc(
        SERVICE_INFO,
        routes,
        auth,
        listener,
        metrics_listener,
        shutdown,
    )
    .await;
    // Each recovery step is its own conditional update: stopping between
    // two is safe, and the next start picks up.
    recovering.abort();
    served?;
    Ok(())
}

/// Runs recovery now and then every `interval`.
async fn recover_forever(
    orders: orders::Orders,
    interval: std::time::Duration,
    age: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match recovery::recover(&orders, age).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(resolved = n, "recovery resolved unfinished orders"),
            Err(e) => tracing::warn!(error = %e, "recovery round failed; retrying next round"),
        }
    }
}
