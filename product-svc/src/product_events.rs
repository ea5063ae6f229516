//! Product events: each [`ProductChange`] as an `oms.product.v1.ProductEvent`
//! row in the outbox, written in the change's own transaction.

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
            .message(AGGREGATE, &product.id, event_type, time, |event_id| {
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

fn encode(product: &Product, change: ProductChange) -> (&'static str, pb::product_event::Change) {
    use pb::product_event::Change as C;
    match change {
        ProductChange::Created => (
            "oms.product.v1.ProductCreated",
            C::Created(pb::ProductCreated {}),
        ),
        ProductChange::Updated(fields) => (
            "oms.product.v1.ProductUpdated",
            C::Updated(pb::ProductUpdated {
                update_mask: Some(prost_types::FieldMask {
                    paths: fields.into_iter().map(str::to_owned).collect(),
                }),
            }),
        ),
        ProductChange::Deleted => (
            "oms.product.v1.ProductDeleted",
            C::Deleted(pb::ProductDeleted {}),
        ),
        ProductChange::PriceChanged {
            old_currency_code,
            old_price_minor,
        } => (
            "oms.product.v1.ProductPriceChanged",
            C::PriceChanged(pb::ProductPriceChanged {
                old_price: money(&old_currency_code, old_price_minor),
                new_price: money(&product.currency_code, product.price_minor),
            }),
        ),
        ProductChange::ImageAdded(image) => (
            "oms.product.v1.ProductImageAdded",
            C::ImageAdded(pb::ProductImageAdded {
                image: Some(to_proto_image(*image)),
            }),
        ),
        ProductChange::ImageRemoved { image_id, sha256 } => (
            "oms.product.v1.ProductImageRemoved",
            C::ImageRemoved(pb::ProductImageRemoved { image_id, sha256 }),
        ),
        ProductChange::StockChanged {
            cause,
            reservation_id,
        } => (
            "oms.product.v1.ProductStockChanged",
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
