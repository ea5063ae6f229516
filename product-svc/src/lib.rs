//! product-svc: the catalogue, prices over time, stock, and the
//! reservations order-svc holds stock with.
//!
//! - [`config`]: what the service reads from the environment.
//! - `api`: the gRPC layer (`oms.product.v1` ProductService,
//!   InventoryService and QuoteService).
//! - [`model`]: what a product, a price entry and a reservation are.
//! - [`catalogue`]: products, price history, stock adjustments.
//! - [`inventory`]: reservations, all or nothing, and their expiry.
//! - [`quotes`]: price quotes, held until they expire, used once.
//! - [`images`]: product images and their thumbnails, in [`blobs`].
//! - [`cache`]: the read-through GetProduct cache.
//! - [`input`]: request fields parsed into types that hold only valid values.
//! - [`store`]: sea-orm entities and queries; [`migration`]: the schema.
//! - [`error`]: every failure and its one mapping to the wire.
//!
//! [`App`] is the service built (listeners bound, background work running)
//! and then run until stopped; `oms`, the binary and the tests build it
//! alike (tests on a `127.0.0.1:0` listener of their own).

#![forbid(unsafe_code)]

mod api;
pub mod blobs;
pub mod cache;
pub mod catalogue;
pub mod config;
pub mod error;
pub mod images;
pub mod input;
pub mod inventory;
pub mod migration;
pub mod model;
pub mod order_events;
pub mod product_events;
#[cfg(test)]
mod properties;
pub mod quotes;
pub mod store;
mod wire;

use tokio::net::TcpListener;

pub use config::{ADDR_VAR, Config};

/// The `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "product.oms";

/// The audience of service tokens for this service.
pub const AUDIENCE: &str = "product-svc";

/// Reservations expired per sweep round; the rest wait for the next round.
const SWEEP_BATCH: u64 = 200;

/// How often quotes and inbox entries past their retention are pruned.
const QUOTE_PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);

/// What reflection and health advertise for this service.
pub const SERVICE_INFO: oms_runtime::server::ServiceInfo = oms_runtime::server::ServiceInfo {
    name: "product-svc",
    grpc_services: &[
        oms_proto::service_names::PRODUCT,
        oms_proto::service_names::INVENTORY,
        oms_proto::service_names::QUOTE,
    ],
    descriptors: oms_proto::FILE_DESCRIPTOR_SET,
    polled: &[],
};

/// product-svc as a binary: its commands and configuration, in the runtime's service shape
/// (`product-svc --help`).
#[derive(Debug)]
pub struct Binary;

impl oms_runtime::service::Service for Binary {
    const NAME: &'static str = SERVICE_INFO.name;
    const SUMMARY: &'static str =
        "catalogue, price history, inventory and stock reservations (gRPC oms.product.v1)";
    const PROBE: oms_runtime::healthcheck::Probe = oms_runtime::healthcheck::Probe::Grpc;
    type Config = Config;
    type App = App;

    const MIGRATE: Option<fn(Config) -> oms_runtime::service::Work> =
        Some(oms_runtime::service::migrate::<Self>);

    fn config(env: &oms_config::Env) -> Result<Config, oms_config::ConfigError> {
        Config::from_env(env, "DATABASE_URL")
    }
}

/// product-svc, built: its database open (and migrated), its cache, its
/// sweepers, relay and consumer running, its listeners bound.
pub type App = oms_runtime::app::GrpcApp<Binary>;

impl oms_runtime::app::GrpcService for Binary {
    type Config = Config;
    type Migrator = migration::Migrator;
    const INFO: oms_runtime::server::ServiceInfo = SERVICE_INFO;
    const ADDR_VAR: &'static str = ADDR_VAR;

    fn base(config: &Config) -> &oms_config::ServiceBase {
        &config.base
    }

    async fn build(
        config: Config,
        listener: TcpListener,
    ) -> Result<oms_runtime::app::GrpcParts, oms_runtime::StartupError> {
        build_parts(config, listener).await
    }
}

async fn build_parts(
    config: Config,
    listener: TcpListener,
) -> Result<oms_runtime::app::GrpcParts, oms_runtime::StartupError> {
    let mut owned = oms_runtime::app::Owned::default();
    let metrics_listener =
        oms_runtime::server::bind_optional(config.base.metrics_addr, config::METRICS_ADDR_VAR)
            .await?;
    let db = oms_store::db::open::<migration::Migrator>(
        &config.base.database_url,
        Default::default(),
        config.base.migrate_on_start,
    )
    .await?;
    let kv = oms_store::kv::open(config.redis.url.as_ref(), &config.redis.key_prefix).await?;
    owned.hold(oms_store::db::sample_pool(SERVICE_INFO.name, &db));
    owned.hold(oms_store::kv::sample_pool(SERVICE_INFO.name, &kv));
    let cache = cache::ProductCache::new(kv, config.cache_ttl);
    let product_events = product_events::ProductEvents::new(config.broker.outbox());
    let catalogue = catalogue::Catalogue::new(db.clone(), cache.clone(), product_events.clone());
    let inventory = inventory::Inventory::new(
        db.clone(),
        cache.clone(),
        config.reservation_ttl,
        product_events.clone(),
    );
    let blobs = blobs::Blobs::open(&config.blob)
        .map_err(|e| oms_runtime::StartupError::setup(blobs::BLOB_URL_VAR, e.to_string()))?;
    let images = images::Images {
        db: db.clone(),
        blobs,
        max_bytes: config.image_max_bytes,
        events: product_events.clone(),
        cache: cache.clone(),
        uploads: std::sync::Arc::new(tokio::sync::Semaphore::new(images::MAX_CONCURRENT_UPLOADS)),
        thumbnails: images::Thumbnailer::start()
            .map_err(|e| oms_runtime::StartupError::setup("the thumbnail thread", e))?,
    };
    // Bytes whose upload died before its row was written.
    owned.hold(oms_runtime::background::every(
        "swept orphaned image blobs",
        config
            .blob_orphan_grace
            .min(std::time::Duration::from_secs(3_600)),
        {
            let (images, grace) = (images.clone(), config.blob_orphan_grace);
            move || {
                let images = images.clone();
                async move { images.sweep_orphans(grace).await }
            }
        },
    ));
    let quotes = quotes::Quotes {
        db: db.clone(),
        ttl: config.quote_ttl,
        retention: config.quote_retention,
    };
    owned.hold(
        ::events::relay::Relay::for_service(
            &config.broker,
            db.clone(),
            product_events.outbox(),
            SERVICE_INFO.name,
            ::events::PRODUCT_TOPIC,
        )
        .map_err(|e| oms_runtime::StartupError::setup(::events::kafka::BROKERS_VAR, e))?,
    );
    // Each expiry is its own transaction: stopping between two is safe.
    owned.hold(oms_runtime::background::every(
        "swept expired reservations",
        config.sweep_interval,
        {
            let inventory = inventory.clone();
            move || {
                let inventory = inventory.clone();
                async move {
                    let expired = inventory.sweep(SWEEP_BATCH).await?;
                    metrics::counter!("oms_reservations_swept_total")
                        .increment(u64::try_from(expired).unwrap_or(u64::MAX));
                    Ok::<_, error::ProductError>(expired)
                }
            }
        },
    ));

    // Quotes that expired unused are kept a while for audit, then go.
    owned.hold(oms_runtime::background::every(
        "pruned expired quotes",
        QUOTE_PRUNE_EVERY,
        {
            let quotes = quotes.clone();
            move || {
                let quotes = quotes.clone();
                async move { quotes.prune().await }
            }
        },
    ));

    owned.hold(order_events::start(
        config.broker.clone(),
        inventory.clone(),
    ));
    // The inbox only needs what the broker may still redeliver.
    owned.hold(oms_runtime::background::every(
        "pruned the order-event inbox",
        QUOTE_PRUNE_EVERY,
        {
            let (db, retention) = (db.clone(), config.inbox_retention);
            move || {
                let db = db.clone();
                async move {
                    let before = oms_core::time::now()
                        - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
                    ::events::inbox::prune(&db, before)
                        .await
                        .map(|pruned| usize::try_from(pruned).unwrap_or(usize::MAX))
                }
            }
        },
    ));

    let secret = config.client_secret.clone().ok_or_else(|| {
        oms_config::ConfigError::new(
            config::CLIENT_SECRET_VAR,
            "must be set: product-svc's OAuth2 client secret at user-svc (it reads the revocation list with it)",
        )
    })?;
    let dial =
        oms_runtime::channel::Dial::load(SERVICE_INFO.name, config.base.resolve, &config.base.tls)?;
    let auth = oms_runtime::auth::layer_for(
        &config.user_svc_addr,
        &dial,
        &config.base.jwt_issuer,
        Some(AUDIENCE),
        oms_runtime::auth::ClientCredentials {
            client_id: config.client_id.clone(),
            secret,
        },
    )?;
    let routes = api::routes(api::State {
        catalogue,
        inventory,
        quotes,
        images,
    });
    Ok(oms_runtime::app::GrpcParts {
        routes,
        auth,
        listener,
        tls: dial.tls,
        metrics_listener,
        owned,
    })
}
