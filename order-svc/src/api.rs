//! The gRPC layer of order-svc: decodes requests, authorizes, and maps
//! results to the wire. RPCs not yet implemented answer UNIMPLEMENTED (the
//! generated default) rather than pretending to work.

use oms_proto::order::v1::order_service_server::{OrderService, OrderServiceServer};
use sea_orm::DatabaseConnection;
use tonic::service::Routes;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct State {
    /// The orders database.
    #[allow(dead_code)] // Read by the RPCs of the [order-svc] issue.
    pub(crate) db: DatabaseConnection,
}

/// The routes of OrderService.
pub(crate) fn routes(state: State) -> Routes {
    Routes::new(OrderServiceServer::new(OrderApi { state }))
}

struct OrderApi {
    #[allow(dead_code)]
    state: State,
}

#[tonic::async_trait]
impl OrderService for OrderApi {}
