//! Orders on the wire: the domain's values as protobuf, for the API's
//! answers and for events alike.

use oms_proto::common::v1::Money;
use oms_proto::order::v1 as pb;

use crate::model::{Order, Status as OrderStatus};

pub(crate) fn to_proto_status(status: OrderStatus) -> pb::OrderStatus {
    match status {
        OrderStatus::Pending => pb::OrderStatus::Pending,
        OrderStatus::Confirmed => pb::OrderStatus::Confirmed,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
        OrderStatus::Shipped => pb::OrderStatus::Shipped,
        OrderStatus::Delivered => pb::OrderStatus::Delivered,
        OrderStatus::Failed => pb::OrderStatus::Failed,
    }
}

pub(crate) fn to_proto_order(order: Order) -> pb::Order {
    let money = |amount_minor| {
        (!order.currency_code.is_empty()).then(|| Money {
            currency_code: order.currency_code.clone(),
            amount_minor,
        })
    };
    pb::Order {
        status: to_proto_status(order.status).into(),
        total: money(order.total_minor),
        lines: order
            .lines
            .iter()
            .map(|l| pb::OrderLine {
                product_id: l.product_id.clone(),
                sku: l.sku.clone(),
                product_name: l.product_name.clone(),
                quantity: l.quantity,
                unit_price: money(l.unit_price_minor),
                line_total: money(l.line_total_minor),
            })
            .collect(),
        create_time: Some(oms_core::time::to_timestamp(order.create_time)),
        update_time: Some(oms_core::time::to_timestamp(order.update_time)),
        id: order.id,
        customer_id: order.customer_id,
    }
}
