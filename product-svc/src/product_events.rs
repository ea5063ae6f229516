//! Product events: each [`ProductChange`] as an `oms.product.v1.ProductEvent`
//! row in the outbox, made here (the wire) and written in the change's own
//! transaction (by the store through [`crate::store::ProductEventSink`]).

use events::outbox::NewEvent;
use oms_proto::product::v1 as pb;
use oms_store::batch::Batch;
use sea_orm::{ConnectionTrait, DbErr};

use crate::model::{Product, ProductChange};
use crate::wire::{money, to_proto_image, to_proto_product};

/// The outbox's aggregate type for products.
pub const AGGREGATE: &str = "product";

/// Writes product events to product-svc's outbox.
#[derive(Debug, Clone, Default)]
pub struct ProductEvents {
    outbox: events::outbox::Outbox,
}

impl ProductEvents {
    /// Events written to `outbox`.
    pub fn new(outbox: events::outbox::Outbox) -> Self {
        Self { outbox }
    }

    /// The outbox, for its relay.
    pub fn outbox(&self) -> &events::outbox::Outbox {
        &self.outbox
    }

    /// Writes the event of `change`, which left the product as `product`,
    /// in `txn`.
    pub(crate) async fn record(
        &self,
        txn: &impl ConnectionTrait,
        product: &Product,
        change: ProductChange,
    ) -> Result<(), DbErr> {
        self.record_all(txn, [(product, change)]).await
    }

    /// Writes the events of `changes` (each with the product as the change
    /// left it) in `txn`, as one statement.
    pub(crate) async fn record_all<'a>(
        &self,
        txn: &impl ConnectionTrait,
        changes: impl IntoIterator<Item = (&'a Product, ProductChange)>,
    ) -> Result<(), DbErr> {
        let mut batch = Batch::new(txn);
        self.stage_all(&mut batch, changes);
        batch.execute(txn).await?;
        Ok(())
    }

    /// Adds the events of `changes` (each with the product as the change
    /// left it) to `batch`, the change's own statements, as one statement.
    pub(crate) fn stage_all<'a>(
        &self,
        batch: &mut Batch,
        changes: impl IntoIterator<Item = (&'a Product, ProductChange)>,
    ) {
        let messages = changes
            .into_iter()
            .filter_map(|(product, change)| self.message(product, change))
            .collect();
        self.outbox.stage(batch, messages);
    }

    fn message(&self, product: &Product, change: ProductChange) -> Option<NewEvent> {
        let time = product.update_time;
        let (event_type, change) = encode(product, change);
        self.outbox
            .message(AGGREGATE, &product.id, &event_type, time, |event_id| {
                pb::ProductEvent {
                    event_id,
                    product_id: product.id.clone(),
                    occur_time: Some(oms_core::time::to_timestamp(time)),
                    product: Some(to_proto_product(product.clone())),
                    change: Some(change),
                }
            })
    }

    /// Wakes the relay after a transaction with events committed.
    pub(crate) fn committed(&self) {
        self.outbox.committed();
    }
}

impl crate::store::ProductEventSink for ProductEvents {
    fn stage(&self, batch: &mut Batch, product: &Product, change: ProductChange) {
        self.stage_all(batch, [(product, change)]);
    }

    fn committed(&self) {
        ProductEvents::committed(self);
    }
}

fn encode(product: &Product, change: ProductChange) -> (String, pb::product_event::Change) {
    use pb::product_event::Change as C;
    use prost::Name as _;
    match change {
        ProductChange::Created => (
            pb::ProductCreated::full_name(),
            C::Created(pb::ProductCreated {}),
        ),
        ProductChange::Updated(fields) => (
            pb::ProductUpdated::full_name(),
            C::Updated(pb::ProductUpdated {
                update_mask: Some(prost_types::FieldMask {
                    paths: fields.into_iter().map(str::to_owned).collect(),
                }),
            }),
        ),
        ProductChange::Deleted => (
            pb::ProductDeleted::full_name(),
            C::Deleted(pb::ProductDeleted {}),
        ),
        ProductChange::PriceChanged {
            old_currency_code,
            old_price_minor,
        } => (
            pb::ProductPriceChanged::full_name(),
            C::PriceChanged(pb::ProductPriceChanged {
                old_price: money(&old_currency_code, old_price_minor),
                new_price: money(&product.currency_code, product.price_minor),
            }),
        ),
        ProductChange::ImageAdded(image) => (
            pb::ProductImageAdded::full_name(),
            C::ImageAdded(pb::ProductImageAdded {
                image: Some(to_proto_image(*image)),
            }),
        ),
        ProductChange::ImageRemoved { image_id, sha256 } => (
            pb::ProductImageRemoved::full_name(),
            C::ImageRemoved(pb::ProductImageRemoved { image_id, sha256 }),
        ),
        ProductChange::StockChanged {
            cause,
            reservation_id,
        } => (
            pb::ProductStockChanged::full_name(),
            C::StockChanged(pb::ProductStockChanged {
                stock_on_hand: product.stock_on_hand,
                stock_reserved: product.stock_reserved,
                stock_available: product.available(),
                cause: cause.as_str().to_owned(),
                reservation_id: reservation_id.unwrap_or_default(),
            }),
        ),
    }
}
