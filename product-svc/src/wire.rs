//! Products on the wire: the domain's values as protobuf, for the API's
//! answers and for events alike.

use oms_proto::common::v1::Money;
use oms_proto::product::v1 as pb;

use crate::model::Product;

pub(crate) fn money(currency_code: &str, amount_minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: currency_code.to_owned(),
        amount_minor,
    })
}

pub(crate) fn to_proto_product(p: Product) -> pb::Product {
    pb::Product {
        stock_available: p.available(),
        price: money(&p.currency_code, p.price_minor),
        id: p.id,
        sku: p.sku,
        name: p.name,
        description: p.description,
        stock_on_hand: p.stock_on_hand,
        stock_reserved: p.stock_reserved,
        archived: p.archived,
        create_time: Some(kit::time::to_timestamp(p.create_time)),
        update_time: Some(kit::time::to_timestamp(p.update_time)),
        // Attached by the handlers that answer with images.
        images: Vec::new(),
    }
}
