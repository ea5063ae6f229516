//! Property tests of product-svc's request parsers on any request a client
//! could send: a parsed value holds only what the rules allow (and parses
//! again to itself); a refusal names the request's own fields.

use std::collections::HashSet;

use oms_core::lines::Line;
use oms_proto::product::v1 as pb;
use proptest::prelude::*;
use testkit::properties::{check_refusal, message, text};

use crate::catalogue::NewProduct;
use crate::input::{
    self, MAX_STOCK_DELTA, PriceHistoryQuery, ProductQuery, ProductUpdate, ReservationRequest,
    StockAdjustment,
};

/// What every accepted order or quote line list holds.
fn check_lines(lines: &[Line]) -> Result<(), TestCaseError> {
    prop_assert!((1..=100).contains(&lines.len()));
    let distinct: HashSet<&str> = lines.iter().map(|l| l.product_id.as_str()).collect();
    prop_assert_eq!(distinct.len(), lines.len());
    for line in lines {
        prop_assert!((1..=10_000).contains(&line.quantity));
        prop_assert_eq!(
            input::uuid("id", &line.product_id),
            Ok(line.product_id.clone())
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(testkit::proptest_config(512))]

    #[test]
    fn field_parsers_keep_only_what_their_rules_allow(raw in text()) {
        if let Ok(sku) = input::sku("sku", &raw) {
            prop_assert!((1..=64).contains(&sku.len()));
            prop_assert!(sku.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b)));
        }
        if let Ok(name) = input::name("name", &raw) {
            prop_assert!((1..=200).contains(&name.chars().count()));
            prop_assert!(oms_core::text::hidden_in_line(&name).is_none());
            prop_assert_eq!(input::name("name", &name), Ok(name.clone()));
        }
        if let Ok(description) = input::description("description", &raw) {
            prop_assert!(description.chars().count() <= 5_000);
            prop_assert!(oms_core::text::hidden_in_text(&description).is_none());
            prop_assert_eq!(input::description("description", &description), Ok(description.clone()));
        }
        if let Ok(id) = input::reservation_id("reservation_id", &raw) {
            prop_assert!((1..=64).contains(&id.len()));
        }
        if let Ok(reason) = input::reason("reason", &raw) {
            prop_assert!((1..=500).contains(&reason.chars().count()));
            prop_assert!(oms_core::text::hidden_in_text(&reason).is_none());
        }
        if let Ok(id) = input::uuid("id", &raw) {
            prop_assert_eq!(input::uuid("id", &id), Ok(id.clone()));
        }
    }

    #[test]
    fn a_stock_delta_is_non_zero_and_bounded(
        delta in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(i64::MIN + 1), any::<i64>()]
    ) {
        let accepted = input::stock_delta("delta", delta).is_ok();
        prop_assert_eq!(accepted, delta != 0 && delta.unsigned_abs() <= MAX_STOCK_DELTA.unsigned_abs());
    }

    #[test]
    fn create_product_requests(r in message::<pb::CreateProductRequest>("oms.product.v1.CreateProductRequest")) {
        match NewProduct::try_from(r) {
            Ok(product) => {
                prop_assert!(product.price.amount_minor > 0);
                prop_assert!((0..=1_000_000_000).contains(&product.stock_on_hand));
                prop_assert_eq!(input::sku("sku", &product.sku), Ok(product.sku.clone()));
            }
            Err(violations) => check_refusal("oms.product.v1.CreateProductRequest", &violations)?,
        }
    }

    #[test]
    fn list_products_requests(r in message::<pb::ListProductsRequest>("oms.product.v1.ListProductsRequest")) {
        match ProductQuery::try_from(r) {
            Ok(query) => {
                prop_assert!((1..=200).contains(&query.page_size));
                prop_assert!(query.query.is_none_or(|q| !q.is_empty() && q.chars().count() <= 200));
            }
            Err(violations) => check_refusal("oms.product.v1.ListProductsRequest", &violations)?,
        }
    }

    #[test]
    fn update_product_requests(r in message::<pb::UpdateProductRequest>("oms.product.v1.UpdateProductRequest")) {
        match ProductUpdate::try_from(r.clone()) {
            Ok(update) => {
                let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
                prop_assert!(!paths.is_empty());
                prop_assert_eq!(update.changes.name.is_some(), paths.iter().any(|p| p == "name"));
                prop_assert_eq!(update.changes.price.is_some(), paths.iter().any(|p| p == "price"));
            }
            Err(violations) => check_refusal("oms.product.v1.UpdateProductRequest", &violations)?,
        }
    }

    #[test]
    fn price_history_requests(r in message::<pb::ListPriceHistoryRequest>("oms.product.v1.ListPriceHistoryRequest")) {
        if let Err(violations) = PriceHistoryQuery::try_from(r) {
            check_refusal("oms.product.v1.ListPriceHistoryRequest", &violations)?;
        }
    }

    #[test]
    fn adjust_stock_requests(r in message::<pb::AdjustStockRequest>("oms.product.v1.AdjustStockRequest")) {
        match StockAdjustment::try_from(r) {
            Ok(adjustment) => prop_assert!(adjustment.delta != 0),
            Err(violations) => check_refusal("oms.product.v1.AdjustStockRequest", &violations)?,
        }
    }

    #[test]
    fn reserve_stock_requests(r in message::<pb::ReserveStockRequest>("oms.product.v1.ReserveStockRequest")) {
        match ReservationRequest::try_from(&r) {
            Ok(reservation) => {
                check_lines(&reservation.lines)?;
                prop_assert_eq!(reservation.quote.is_some(), !r.quote_id.is_empty());
            }
            Err(violations) => check_refusal("oms.product.v1.ReserveStockRequest", &violations)?,
        }
    }

    #[test]
    fn create_quote_requests(r in message::<pb::CreateQuoteRequest>("oms.product.v1.CreateQuoteRequest")) {
        match input::quote_lines(&r) {
            Ok(lines) => check_lines(&lines)?,
            Err(violations) => check_refusal("oms.product.v1.CreateQuoteRequest", &violations)?,
        }
    }

    #[test]
    fn image_upload_starts(r in message::<pb::ImageUploadStart>("oms.product.v1.ImageUploadStart")) {
        match input::upload_start(&r) {
            Ok(start) => prop_assert!(start.alt_text.chars().count() <= crate::images::MAX_ALT_TEXT),
            // Its violations are named within the upload request.
            Err(violations) => check_refusal("oms.product.v1.UploadProductImageRequest", &violations)?,
        }
    }
}
