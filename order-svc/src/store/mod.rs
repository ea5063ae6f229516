//! The orders database: sea-orm entities and the queries order-svc runs.
//! Takes and returns domain values; knows nothing of protobuf.

pub mod order;
pub mod order_line;
pub mod orders;

use oms_store::batch::Batch;

use crate::model::{Change, Order};

/// What the store is handed to write an order change's event in the
/// change's own transaction: the event row is made (encoded) above the
/// store, by the service's events module, and the store only stages it
/// with the change.
pub trait OrderEventSink: Sync {
    /// Whether events are written (with them off, nothing is read back
    /// for them).
    fn enabled(&self) -> bool;
    /// Adds the event of `change`, which left the order as `order`, to
    /// `batch`, the change's own statements.
    fn stage(&self, batch: &mut Batch, order: &Order, change: &Change);
    /// After the change's transaction committed (wakes the relay and the
    /// order's watchers).
    fn committed(&self, order_id: &str);
}
