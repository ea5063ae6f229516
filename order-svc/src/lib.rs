//! order-svc: orders, placed through a saga that reserves and commits stock
//! in product-svc with a service token from user-svc.
//!
//! - [`config`]: what the service reads from the environment.
//! - `api`: the gRPC layer (`oms.order.v1` OrderService).
//! - [`store`]: sea-orm entities for the orders database.
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
pub const DOMAIN: &str = "order.oms";

/// What reflection and health advertise for this service.
pub const SERVICE_INFO: kit::server::ServiceInfo = kit::server::ServiceInfo {
    name: "order-svc",
    grpc_services: &[oms_proto::service_names::ORDER],
    descriptors: oms_proto::FILE_DESCRIPTOR_SET,
};

/// Opens the database (migrating it), then serves gRPC on `listener` until
/// `shutdown` resolves.
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
    let routes = api::routes(api::State { db });
    let auth = kit::auth::layer_for(config.user_svc_addr, &config.jwt_issuer, None)?;
    kit::server::serve_grpc(SERVICE_INFO, routes, auth, listener, shutdown).await?;
    Ok(())
}
