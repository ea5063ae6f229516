//! The gRPC layer of product-svc: decodes requests, authorizes, and maps
//! results to the wire. RPCs not yet implemented answer UNIMPLEMENTED (the
//! generated default) rather than pretending to work.

use std::sync::Arc;

use kit::kv::KvStore;
use oms_proto::product::v1::{
    inventory_service_server::{InventoryService, InventoryServiceServer},
    product_service_server::{ProductService, ProductServiceServer},
};
use sea_orm::DatabaseConnection;
use tonic::service::Routes;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct State {
    /// The products database.
    #[allow(dead_code)] // Read by the RPCs of the [product-svc] issue.
    pub(crate) db: DatabaseConnection,
    /// Read-through cache of GetProduct.
    #[allow(dead_code)] // Read by the RPCs of the [product-svc] issue.
    pub(crate) cache: Arc<dyn KvStore>,
}

/// The routes of ProductService and InventoryService.
pub(crate) fn routes(state: State) -> Routes {
    Routes::new(ProductServiceServer::new(ProductApi {
        state: state.clone(),
    }))
    .add_service(InventoryServiceServer::new(InventoryApi { state }))
}

struct ProductApi {
    #[allow(dead_code)]
    state: State,
}

#[tonic::async_trait]
impl ProductService for ProductApi {}

struct InventoryApi {
    #[allow(dead_code)]
    state: State,
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {}
