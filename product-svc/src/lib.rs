//! product-svc: the catalogue, prices over time, stock, and the
//! reservations order-svc holds stock with.
//!
//! - [`config`]: what the service reads from the environment.
//! - `api`: the gRPC layer (`oms.product.v1` ProductService and
//!   InventoryService).
//! - [`catalogue`]: products, price history, stock adjustments.
//! - [`inventory`]: reservations, all or nothing, and their expiry.
//! - [`cache`]: the read-through GetProduct cache.
//! - [`input`]: request fields parsed into types that hold only valid values.
//! - [`store`]: sea-orm entities and queries; [`migration`]: the schema.
//! - [`error`]: every failure and its one mapping to the wire.
//!
//! Tests call [`serve`] on a `127.0.0.1:0` listener with their own database
//! and shutdown future.

#![forbid(unsafe_code)]

mod api;
pub mod cache;
pub mod catalogue;
pub mod config;
pub mod error;
pub mod input;
pub mod inventory;
pub mod migration;
pub mod store;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::{ADDR_VAR, Config};

/// The `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "product.oms";

/// The audience of service tokens for this service.
pub const AUDIENCE: &str = "product-svc";

/// Reservations expired per sweep round; the rest wait for the next round.
const SWEEP_BATCH: u64 = 200;

/// What reflection and health advertise for this service.
pub const SERVICE_INFO: kit::server::ServiceInfo = kit::server::ServiceInfo {
    name: "product-svc",
    grpc_services: &[
        oms_proto::service_names::PRODUCT,
        oms_proto::service_names::INVENTORY,
    ],
    descriptors: oms_proto::FILE_DESCRIPTOR_SET,
};

/// Opens the database (migrating it) and the product cache, starts the
/// reservation sweeper, then serves gRPC on `listener` until `shutdown`
/// resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), kit::StartupError> {
    let metrics_listener =
        kit::server::bind_optional(config.metrics_addr, config::METRICS_ADDR_VAR).await?;
    let db = kit::db::connect_and_migrate::<migration::Migrator>(
        &config.database_url,
        Default::default(),
    )
    .await?;
    let kv = kit::kv::open(config.redis_url.as_ref(), &config.redis_key_prefix).await?;
    let _pool_gauges = (
        kit::db::sample_pool(SERVICE_INFO.name, &db),
        kit::kv::sample_pool(SERVICE_INFO.name, &kv),
    );
    let cache = cache::ProductCache::new(kv, config.cache_ttl);
    let catalogue = catalogue::Catalogue {
        db: db.clone(),
        cache: cache.clone(),
    };
    let inventory = inventory::Inventory {
        db,
        cache,
        ttl: config.reservation_ttl,
    };
    let sweeper = tokio::spawn(sweep_forever(inventory.clone(), config.sweep_interval));

    let auth = kit::auth::layer_for(&config.user_svc_addr, &config.jwt_issuer, Some(AUDIENCE))?;
    let routes = api::routes(api::State {
        catalogue,
        inventory,
    });
    let served = kit::server::serve_grpc(
        SERVICE_INFO,
        routes,
        auth,
        listener,
        metrics_listener,
        shutdown,
    )
    .await;
    // Each expiry is its own transaction: stopping between two is safe.
    sweeper.abort();
    served?;
    Ok(())
}

/// Releases expired reservations every `interval`, from their state in the
/// database, so it picks up after a restart and is safe on every replica.
async fn sweep_forever(inventory: inventory::Inventory, interval: std::time::Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match inventory.sweep(SWEEP_BATCH).await {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("oms_reservations_swept_total")
                    .increment(u64::try_from(n).unwrap_or(u64::MAX));
                tracing::info!(expired = n, "swept expired reservations");
            }
            Err(e) => tracing::warn!(error = %e, "reservation sweep failed; retrying next round"),
        }
    }
}
