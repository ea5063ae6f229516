//! Products on the wire: the domain's values as protobuf, for the API's
//! answers and for events alike.

use oms_proto::common::v1::Money;
use oms_proto::product::v1 as pb;

use crate::model::{Product, ProductImage};

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
        create_time: Some(oms_core::time::to_timestamp(p.create_time)),
        update_time: Some(oms_core::time::to_timestamp(p.update_time)),
        // Attached by the handlers that answer with images.
        images: Vec::new(),
    }
}

/// The image as the wire shows it, with where the gateway serves it.
pub(crate) fn to_proto_image(image: ProductImage) -> pb::ProductImage {
    let url = format!("/v1/products/{}/images/{}", image.product_id, image.id);
    pb::ProductImage {
        thumbnail_url: format!("{url}/thumbnail"),
        url,
        content_type: image.kind.content_type().to_owned(),
        byte_size: image.byte_size,
        width: i32::try_from(image.width).unwrap_or(i32::MAX),
        height: i32::try_from(image.height).unwrap_or(i32::MAX),
        sha256: image.sha256,
        alt_text: image.alt_text,
        primary: image.primary,
        create_time: Some(oms_core::time::to_timestamp(image.create_time)),
        id: image.id,
    }
}
