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

/// Placed, then each later status reached, oldest first.
fn timeline(order: &Order) -> Vec<pb::OrderMilestone> {
    let m = &order.milestones;
    let failure = order
        .failure
        .as_ref()
        .map(|f| f.message.clone())
        .unwrap_or_default();
    let cancel = order.cancel_reason.clone().unwrap_or_default();
    let mut steps: Vec<(pb::OrderStatus, chrono::DateTime<chrono::Utc>, String)> = [
        (
            pb::OrderStatus::Pending,
            Some(order.create_time),
            String::new(),
        ),
        (pb::OrderStatus::Failed, m.failed, failure),
        (pb::OrderStatus::Confirmed, m.confirmed, String::new()),
        (pb::OrderStatus::Shipped, m.shipped, String::new()),
        (pb::OrderStatus::Delivered, m.delivered, String::new()),
        (pb::OrderStatus::Cancelled, m.cancelled, cancel),
    ]
    .into_iter()
    .filter_map(|(status, time, note)| Some((status, time?, note)))
    .collect();
    steps.sort_by_key(|(_, time, _)| *time);
    steps
        .into_iter()
        .map(|(status, time, note)| pb::OrderMilestone {
            status: status.into(),
            time: Some(oms_core::time::to_timestamp(time)),
            note,
        })
        .collect()
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
        timeline: timeline(&order),
        quote_id: order.quote_id.clone().unwrap_or_default(),
        create_time: Some(oms_core::time::to_timestamp(order.create_time)),
        update_time: Some(oms_core::time::to_timestamp(order.update_time)),
        id: order.id,
        customer_id: order.customer_id,
    }
}
