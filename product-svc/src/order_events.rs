//! Consumes order events (group `product-svc`): a cancelled or failed
//! order's reservation is released, once per event (the inbox is written
//! in the release's transaction), so stock comes back even when the order
//! was cancelled while product-svc was down.

use events::Delivery;
use events::consume::Handled;
use oms_proto::order::v1 as order_pb;
use prost::Message as _;

use crate::error::ProductError;
use crate::inventory::Inventory;

/// The consumer group, and the inbox's consumer name.
pub const GROUP: &str = "product-svc";

/// Whether an order event of `event_type` may need a reservation released.
fn may_release(event_type: &str) -> bool {
    use prost::Name as _;
    event_type == order_pb::OrderCancelled::full_name()
        || event_type == order_pb::OrderFailed::full_name()
}

/// Applies one order event.
pub(crate) async fn apply(
    inventory: &Inventory,
    delivery: Delivery,
) -> Result<Handled, ProductError> {
    // Most order events (created, confirmed, status changed) mean nothing
    // here: their CloudEvents type says so without decoding them. A record
    // without a type is decoded to find out.
    let event_type = delivery.record.event_type.as_str();
    if !event_type.is_empty() && !may_release(event_type) {
        return Ok(Handled::Done);
    }
    let event = match order_pb::OrderEvent::decode(delivery.record.payload.as_slice()) {
        Ok(event) => event,
        Err(e) => return Ok(Handled::Poison(format!("not an OrderEvent: {e}"))),
    };
    use order_pb::order_event::Change;
    let reservation_id = match event.change {
        Some(Change::Cancelled(cancelled)) => cancelled.reservation_id,
        Some(Change::Failed(failed)) => failed.reservation_id,
        // Nothing for inventory to do.
        _ => return Ok(Handled::Done),
    };
    if reservation_id.is_empty() || event.event_id.is_empty() {
        return Ok(Handled::Poison(
            "an order event without its event or reservation ID".to_owned(),
        ));
    }
    match inventory
        .release_for_event(&reservation_id, GROUP, &event.event_id)
        .await
    {
        // Released now, or already (by the fast path, an earlier delivery
        // or expiry).
        Ok(_) | Err(ProductError::ReservationNotFound(_)) => Ok(Handled::Done),
        Err(e) => Err(e),
    }
}

/// Consumes order events from `broker` until dropped.
pub(crate) fn start(
    broker: events::Broker,
    inventory: Inventory,
) -> oms_runtime::background::Background {
    events::consume::start(
        broker,
        events::ORDER_TOPIC,
        GROUP,
        "product-svc",
        move |delivery| {
            let inventory = inventory.clone();
            async move { apply(&inventory, delivery).await }
        },
    )
}
