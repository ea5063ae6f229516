//! `oms.product.v1.InventoryService`: services only, by scope.

use oms_proto::product::v1::{self as pb, inventory_service_server::InventoryService};
use oms_runtime::auth::require_scope;
use tonic::{Request, Response, Status};

use super::{State, money, to_proto_reservation};
use crate::error::ProductError;
use crate::input::{self, ReservationRequest};

/// Scope of every reservation RPC.
const WRITE: &str = "inventory:write";
/// Scope that also allows ValidateProducts.
const READ: &str = "products:read";

pub(super) struct InventoryApi {
    pub(super) state: State,
}

fn auth(e: oms_runtime::ApiError) -> Status {
    ProductError::Auth(e).into()
}

fn reservation_id<T>(request: &Request<T>, raw: &str) -> Result<String, Status> {
    require_scope(request, WRITE).map_err(auth)?;
    Ok(input::reservation_id("reservation_id", raw).map_err(ProductError::from)?)
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn validate_products(
        &self,
        request: Request<pb::ValidateProductsRequest>,
    ) -> Result<Response<pb::ValidateProductsResponse>, Status> {
        require_scope(&request, READ)
            .or_else(|_| require_scope(&request, WRITE))
            .map_err(auth)?;
        let lines =
            oms_core::lines::parse(&request.get_ref().lines).map_err(ProductError::Invalid)?;
        let checks = self.state.inventory.validate(lines).await?;
        Ok(Response::new(pb::ValidateProductsResponse {
            results: checks
                .into_iter()
                .map(|check| {
                    let (line, product) = (check.line, check.product);
                    let available = product.as_ref().map_or(0, |p| p.available());
                    let active = product.as_ref().is_some_and(|p| !p.archived);
                    pb::LineValidation {
                        found: product.is_some(),
                        active,
                        sufficient_stock: active && available >= i64::from(line.quantity),
                        available,
                        unit_price: product
                            .as_ref()
                            .and_then(|p| money(&p.currency_code, p.price_minor)),
                        name: product.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
                        sku: product.as_ref().map(|p| p.sku.clone()).unwrap_or_default(),
                        product_id: line.product_id,
                        quantity: line.quantity,
                    }
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "ReserveStock", fields(reservation_id = %request.get_ref().reservation_id))]
    async fn reserve_stock(
        &self,
        request: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::ReserveStockResponse>, Status> {
        require_scope(&request, WRITE).map_err(auth)?;
        let r = request.get_ref();
        let input = ReservationRequest::try_from(r).map_err(ProductError::Invalid)?;
        let reservation = self
            .state
            .inventory
            .reserve(&input.reservation_id, input.lines, input.quote, input.hold)
            .await?;
        Ok(Response::new(pb::ReserveStockResponse {
            reservation: Some(to_proto_reservation(reservation)),
        }))
    }

    #[tracing::instrument(skip_all, name = "CommitReservation", fields(reservation_id = %request.get_ref().reservation_id))]
    async fn commit_reservation(
        &self,
        request: Request<pb::CommitReservationRequest>,
    ) -> Result<Response<pb::CommitReservationResponse>, Status> {
        let id = reservation_id(&request, &request.get_ref().reservation_id)?;
        let reservation = self.state.inventory.commit(&id).await?;
        Ok(Response::new(pb::CommitReservationResponse {
            reservation: Some(to_proto_reservation(reservation)),
        }))
    }

    #[tracing::instrument(skip_all, name = "ReleaseReservation", fields(reservation_id = %request.get_ref().reservation_id))]
    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::ReleaseReservationResponse>, Status> {
        let id = reservation_id(&request, &request.get_ref().reservation_id)?;
        let reservation = self.state.inventory.release(&id).await?;
        Ok(Response::new(pb::ReleaseReservationResponse {
            reservation: Some(to_proto_reservation(reservation)),
        }))
    }

    #[tracing::instrument(skip_all, name = "GetReservation", fields(reservation_id = %request.get_ref().reservation_id))]
    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::GetReservationResponse>, Status> {
        let id = reservation_id(&request, &request.get_ref().reservation_id)?;
        let reservation = self.state.inventory.get(&id).await?;
        Ok(Response::new(pb::GetReservationResponse {
            reservation: Some(to_proto_reservation(reservation)),
        }))
    }
}
