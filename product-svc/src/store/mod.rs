//! The products database: sea-orm entities and the queries product-svc
//! runs. Takes and returns domain values; knows nothing of protobuf.

pub mod price_history;
pub mod product;
pub mod product_image;
pub mod product_images;
pub mod products;
pub mod quote;
pub mod quote_line;
pub mod quotes;
pub mod reservation;
pub mod reservation_line;
pub mod reservations;
pub mod stock_adjustment;
pub mod stock_history;

use oms_store::batch::Batch;

use crate::model::{Product, ProductChange};

/// What the store is handed to write a product change's event in the
/// change's own transaction: the event row is made (encoded) above the
/// store, by the service's events module, and the store only stages it
/// with the change.
pub trait ProductEventSink: Sync {
    /// Adds the event of `change`, which left the product as `product`, to
    /// `batch`, the change's own statements.
    fn stage(&self, batch: &mut Batch, product: &Product, change: ProductChange);
    /// After the change's transaction committed (wakes the relay).
    fn committed(&self);
}

#[cfg(test)]
mod tests {
    /// The layering rule, checked: the store speaks no wire type and
    /// encodes no event (it is handed them through [`super::ProductEventSink`]).
    #[test]
    fn the_store_imports_no_wire_types() {
        for (file, source) in [
            ("price_history.rs", include_str!("price_history.rs")),
            ("product.rs", include_str!("product.rs")),
            ("product_image.rs", include_str!("product_image.rs")),
            ("product_images.rs", include_str!("product_images.rs")),
            ("products.rs", include_str!("products.rs")),
            ("quote.rs", include_str!("quote.rs")),
            ("quote_line.rs", include_str!("quote_line.rs")),
            ("quotes.rs", include_str!("quotes.rs")),
            ("reservation.rs", include_str!("reservation.rs")),
            ("reservation_line.rs", include_str!("reservation_line.rs")),
            ("reservations.rs", include_str!("reservations.rs")),
            ("stock_adjustment.rs", include_str!("stock_adjustment.rs")),
        ] {
            for wire in ["tonic", "oms_proto", "prost", "product_events"] {
                assert!(!source.contains(wire), "store/{file} mentions {wire}");
            }
        }
    }
}
