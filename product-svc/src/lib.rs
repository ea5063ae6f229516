//! product-svc: the catalogue, prices over time, stock, and the
//! reservations order-svc holds stock with.
//!
//! - [`config`]: what the service reads from the environment.
//! - `api`: the gRPC layer (`oms.product.v1` ProductService and
//!   InventoryService).
//! - [`store`]: sea-orm entities for the products database.
//! - [`migration`]: the schema, applied at start-up.
//!
//! Tests call [`serve`] on a `127.0.0.1:0` listener with their own database
//! and shutdown future.

#![forbid(unsafe_code)]

mod api;
pub mod config;
pub mod migration;
pub mod store;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::{ADDR_VAR, Config};

/// The `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "product.oms";

/// What reflection and health advertise for this service.
pub const SERVICE_INFO: kit::server::ServiceInfo = kit::server::ServiceInfo {
    name: "product-svc",
    grpc_services: &[
        oms_proto::service_names::PRODUCT,
        oms_proto::service_names::INVENTORY,
    ],
    descriptors: oms_proto::FILE_DESCRIPTOR_SET,
};

/// Opens the database (migrating it) and the product cache, then serves
/// gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), kit::StartupError> {
    let db = kit::db::connect_and_migrate::<migration::Migrator>(
        &config.database_url,
        Default::default(),
    )
    .await?;
    let cache = kit::kv::open(config.redis_url.as_ref(), &config.redis_key_prefix).await?;
    let routes = api::routes(api::State { db, cache });
    let verifier = kit::auth::Verifier::new(
        kit::auth::VerifierConfig::new(config.jwt_issuer.clone(), Some("product-svc")),
        std::sync::Arc::new(kit::auth::GrpcJwks::new(config.user_svc_addr)),
    );
    let auth = kit::auth::AuthLayer::new(std::sync::Arc::new(verifier));
    kit::server::serve_grpc(SERVICE_INFO, routes, auth, listener, shutdown).await?;
    Ok(())
}
