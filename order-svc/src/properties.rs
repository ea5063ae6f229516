//! Property tests of order-svc's request parsers on any request a client
//! could send: a parsed value holds only what the rules allow; a refusal
//! names the request's own fields.

use std::collections::HashSet;

use oms_proto::order::v1 as pb;
use proptest::prelude::*;
use testkit::properties::{check_refusal, message, text};

use crate::input::{self, Cancellation, NewOrder, OrderQuery, StatusChange};
use crate::model::Status;

proptest! {
    #![proptest_config(testkit::proptest_config(512))]

    #[test]
    fn a_request_id_is_1_to_128_printable_ascii(raw in text()) {
        let accepted = input::request_id(&raw).is_ok();
        prop_assert_eq!(
            accepted,
            (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic())
        );
    }

    #[test]
    fn create_order_requests(r in message::<pb::CreateOrderRequest>("oms.order.v1.CreateOrderRequest")) {
        match NewOrder::try_from(r.clone()) {
            Ok(order) => {
                prop_assert!((1..=100).contains(&order.lines.len()));
                let distinct: HashSet<&str> = order.lines.iter().map(|l| l.product_id.as_str()).collect();
                prop_assert_eq!(distinct.len(), order.lines.len());
                prop_assert!(order.lines.iter().all(|l| (1..=10_000).contains(&l.quantity)));
                prop_assert_eq!(order.quote_id.is_some(), !r.quote_id.is_empty());
            }
            Err(violations) => check_refusal("oms.order.v1.CreateOrderRequest", &violations)?,
        }
    }

    #[test]
    fn list_orders_requests(r in message::<pb::ListOrdersRequest>("oms.order.v1.ListOrdersRequest")) {
        match OrderQuery::try_from(r) {
            Ok(query) => prop_assert!((1..=200).contains(&query.page_size)),
            Err(violations) => check_refusal("oms.order.v1.ListOrdersRequest", &violations)?,
        }
    }

    #[test]
    fn cancel_order_requests(r in message::<pb::CancelOrderRequest>("oms.order.v1.CancelOrderRequest")) {
        match Cancellation::try_from(r) {
            Ok(cancellation) => {
                prop_assert!(cancellation.reason.chars().count() <= 500);
                prop_assert_eq!(input::order_id(&cancellation.order_id), Ok(cancellation.order_id.clone()));
            }
            Err(violations) => check_refusal("oms.order.v1.CancelOrderRequest", &violations)?,
        }
    }

    #[test]
    fn update_status_requests(r in message::<pb::UpdateOrderStatusRequest>("oms.order.v1.UpdateOrderStatusRequest")) {
        match StatusChange::try_from(r) {
            Ok(change) => prop_assert!(matches!(change.to, Status::Shipped | Status::Delivered)),
            Err(violations) => check_refusal("oms.order.v1.UpdateOrderStatusRequest", &violations)?,
        }
    }
}
