//! Order events: each [`Change`] as an `oms.order.v1.OrderEvent` row in
//! the outbox, made here (the wire) and handed to the store, which writes
//! it in the change's own transaction ([`crate::store::OrderEventSink`]).

use oms_proto::order::v1 as pb;
use oms_store::batch::Batch;

use crate::model::{Change, Order};
use crate::wire::{to_proto_order, to_proto_status};

/// The outbox's aggregate type for orders.
pub const AGGREGATE: &str = "order";

/// Writes order events to order-svc's outbox, and tells this process's
/// watchers which order changed.
#[derive(Debug, Clone)]
pub struct OrderEvents {
    outbox: events::outbox::Outbox,
    /// IDs of orders whose change just committed (WatchOrder); a watcher
    /// that lags behind re-reads its order anyway.
    changed: tokio::sync::broadcast::Sender<String>,
}

impl Default for OrderEvents {
    fn default() -> Self {
        Self::new(events::outbox::Outbox::new())
    }
}

impl OrderEvents {
    /// Events written to `outbox`.
    pub fn new(outbox: events::outbox::Outbox) -> Self {
        Self {
            outbox,
            changed: tokio::sync::broadcast::channel(1024).0,
        }
    }

    /// The IDs of orders changed from now on, in this process (other
    /// replicas' changes are not seen here).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    /// The outbox, for its relay.
    pub fn outbox(&self) -> &events::outbox::Outbox {
        &self.outbox
    }
}

impl crate::store::OrderEventSink for OrderEvents {
    fn stage(&self, batch: &mut Batch, order: &Order, change: &Change) {
        let time = order.update_time;
        let (event_type, change) = encode(order, change);
        let message = self
            .outbox
            .message(AGGREGATE, &order.id, &event_type, time, |event_id| {
                pb::OrderEvent {
                    event_id,
                    order_id: order.id.clone(),
                    customer_id: order.customer_id.clone(),
                    occur_time: Some(oms_core::time::to_timestamp(time)),
                    order: Some(to_proto_order(order.clone())),
                    change: Some(change),
                }
            });
        if let Some(message) = message {
            self.outbox.stage(batch, vec![message]);
        }
    }

    fn enabled(&self) -> bool {
        self.outbox.enabled()
    }

    fn committed(&self, order_id: &str) {
        self.outbox.committed();
        // No receiver is not an error: nobody watches.
        let _ = self.changed.send(order_id.to_owned());
    }
}

/// The `oneof` case of `change` and its message's full protobuf name
/// (CloudEvents `type`, from `prost::Name`).
fn encode(order: &Order, change: &Change) -> (String, pb::order_event::Change) {
    use pb::order_event::Change as C;
    use prost::Name as _;
    match change {
        Change::Created => (
            pb::OrderCreated::full_name(),
            C::Created(pb::OrderCreated {
                request_id: order.request_id.clone(),
            }),
        ),
        Change::Confirmed => (
            pb::OrderConfirmed::full_name(),
            C::Confirmed(pb::OrderConfirmed {
                reservation_id: order.reservation_id(),
            }),
        ),
        Change::Failed { reason } => (
            pb::OrderFailed::full_name(),
            C::Failed(pb::OrderFailed {
                reservation_id: order.reservation_id(),
                reason: reason.clone(),
            }),
        ),
        Change::Cancelled { previous, reason } => (
            pb::OrderCancelled::full_name(),
            C::Cancelled(pb::OrderCancelled {
                reservation_id: order.reservation_id(),
                previous_status: to_proto_status(*previous).into(),
                reason: reason.clone(),
            }),
        ),
        Change::StatusChanged { previous } => (
            pb::OrderStatusChanged::full_name(),
            C::StatusChanged(pb::OrderStatusChanged {
                previous_status: to_proto_status(*previous).into(),
                status: to_proto_status(order.status).into(),
            }),
        ),
    }
}
