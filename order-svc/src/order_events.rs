//! Order events: each [`Change`] as an `oms.order.v1.OrderEvent` row in
//! the outbox, written by the store in the change's own transaction.

use oms_proto::order::v1 as pb;
use prost::Message as _;
use sea_orm::{ConnectionTrait, DbErr};

use crate::model::{Change, Order};
use crate::wire::{to_proto_order, to_proto_status};

/// The outbox's aggregate type for orders.
pub const AGGREGATE: &str = "order";

/// Writes order events to order-svc's outbox.
#[derive(Debug, Clone, Default)]
pub struct OrderEvents {
    outbox: events::outbox::Outbox,
}

impl OrderEvents {
    /// Events written to `outbox`.
    pub fn new(outbox: events::outbox::Outbox) -> Self {
        Self { outbox }
    }

    /// The outbox, for its relay.
    pub fn outbox(&self) -> &events::outbox::Outbox {
        &self.outbox
    }

    /// Writes the event of `change`, which left the order as `order`, in
    /// `txn`.
    pub(crate) async fn record(
        &self,
        txn: &impl ConnectionTrait,
        order: &Order,
        change: &Change,
    ) -> Result<(), DbErr> {
        let id = events::outbox::new_event_id();
        let time = order.update_time;
        let (event_type, change) = encode(order, change);
        let event = pb::OrderEvent {
            event_id: id.clone(),
            order_id: order.id.clone(),
            customer_id: order.customer_id.clone(),
            occur_time: Some(kit::time::to_timestamp(time)),
            order: Some(to_proto_order(order.clone())),
            change: Some(change),
        };
        self.outbox
            .add(
                txn,
                events::outbox::NewEvent {
                    id,
                    aggregate_type: AGGREGATE,
                    aggregate_id: order.id.clone(),
                    event_type: event_type.to_owned(),
                    payload: event.encode_to_vec(),
                    time,
                },
            )
            .await
    }

    /// Wakes the relay after a transaction with events committed.
    pub(crate) fn committed(&self) {
        self.outbox.committed();
    }
}

/// The `oneof` case of `change` and its full protobuf name (CloudEvents
/// `type`).
fn encode(order: &Order, change: &Change) -> (&'static str, pb::order_event::Change) {
    use pb::order_event::Change as C;
    match change {
        Change::Created => (
            "oms.order.v1.OrderCreated",
            C::Created(pb::OrderCreated {
                request_id: order.request_id.clone(),
            }),
        ),
        Change::Confirmed => (
            "oms.order.v1.OrderConfirmed",
            C::Confirmed(pb::OrderConfirmed {
                reservation_id: order.reservation_id(),
            }),
        ),
        Change::Failed { reason } => (
            "oms.order.v1.OrderFailed",
            C::Failed(pb::OrderFailed {
                reservation_id: order.reservation_id(),
                reason: reason.clone(),
            }),
        ),
        Change::Cancelled { previous, reason } => (
            "oms.order.v1.OrderCancelled",
            C::Cancelled(pb::OrderCancelled {
                reservation_id: order.reservation_id(),
                previous_status: to_proto_status(*previous).into(),
                reason: reason.clone(),
            }),
        ),
        Change::StatusChanged { previous } => (
            "oms.order.v1.OrderStatusChanged",
            C::StatusChanged(pb::OrderStatusChanged {
                previous_status: to_proto_status(*previous).into(),
                status: to_proto_status(order.status).into(),
            }),
        ),
    }
}
