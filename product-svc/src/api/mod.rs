//! The gRPC layer of product-svc: decodes requests into `input` values,
//! authorizes, calls the catalogue or inventory rules, and maps results to
//! the wire.

mod images;
mod inventory;
mod products;
mod quotes;

use oms_proto::product::v1 as pb;
use tonic::service::Routes;

use crate::catalogue::Catalogue;
use crate::images::Images;
use crate::inventory::Inventory;
use crate::model::{Reservation, State as ReservationState};
use crate::quotes::Quotes;
pub(crate) use crate::wire::{money, to_proto_product};

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// Products, prices, stock.
    pub(crate) catalogue: Catalogue,
    /// Reservations.
    pub(crate) inventory: Inventory,
    /// Price quotes.
    pub(crate) quotes: Quotes,
    /// Product images.
    pub(crate) images: Images,
}

/// The routes of ProductService, InventoryService and QuoteService.
pub(crate) fn routes(state: State) -> Routes {
    Routes::new(pb::product_service_server::ProductServiceServer::new(
        products::ProductApi {
            state: state.clone(),
        },
    ))
    .add_service(pb::inventory_service_server::InventoryServiceServer::new(
        inventory::InventoryApi {
            state: state.clone(),
        },
    ))
    .add_service(pb::quote_service_server::QuoteServiceServer::new(
        quotes::QuoteApi { state },
    ))
}

fn to_proto_reservation(r: Reservation) -> pb::Reservation {
    let state = match r.state {
        ReservationState::Reserved => pb::ReservationState::Reserved,
        ReservationState::Committed => pb::ReservationState::Committed,
        ReservationState::Released => pb::ReservationState::Released,
        ReservationState::Expired => pb::ReservationState::Expired,
    };
    pb::Reservation {
        reservation_id: r.id,
        state: state.into(),
        lines: r
            .lines
            .into_iter()
            .map(|l| pb::ReservationLine {
                unit_price: money(&l.currency_code, l.unit_price_minor),
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                quantity: l.quantity,
            })
            .collect(),
        create_time: Some(oms_core::time::to_timestamp(r.create_time)),
        expire_time: Some(oms_core::time::to_timestamp(r.expire_time)),
        update_time: Some(oms_core::time::to_timestamp(r.update_time)),
    }
}
