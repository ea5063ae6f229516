//! Parse, don't validate: each product-svc request turned into validated
//! input once, at the edge (`TryFrom<pb::…Request>`), from field parsers
//! that hold only valid values. A request reports all of its bad fields at
//! once.

use oms_core::fields::AllFields as _;
use oms_core::money::Money;
use oms_proto::common::v1::Money as CommonMoney;
use oms_proto::product::v1 as pb;
use oms_runtime::FieldViolation;

use crate::catalogue::{NewProduct, ProductChanges};
use crate::model::{Hold, QuoteUse};

/// Largest stock adjustment, either way: far above any real delivery, far
/// below where counters could overflow.
pub const MAX_STOCK_DELTA: i64 = 1_000_000_000;

/// A UUID in canonical text form.
pub fn uuid(field: &str, raw: &str) -> Result<String, FieldViolation> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| FieldViolation::new(field, "must be an ID (UUID)"))
}

/// A stock-keeping unit: 1 to 64 of `A-Z a-z 0-9 . _ -`, trimmed.
pub fn sku(field: &str, raw: &str) -> Result<String, FieldViolation> {
    let sku = raw.trim();
    let ok_chars = sku
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if sku.is_empty() || sku.len() > 64 || !ok_chars {
        return Err(FieldViolation::new(
            field,
            "must be 1 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    Ok(sku.to_owned())
}

/// A product name: trimmed, 1 to 200 characters, no control characters.
pub fn name(field: &str, raw: &str) -> Result<String, FieldViolation> {
    let name = raw.trim();
    let count = name.chars().count();
    if count == 0 || count > 200 || oms_core::text::hidden_in_line(name).is_some() {
        return Err(FieldViolation::new(
            field,
            "must be 1 to 200 characters without control or invisible characters",
        ));
    }
    Ok(name.to_owned())
}

/// A description: at most 5,000 characters; lines and tabs, but no other
/// control characters and nothing invisible.
pub fn description(field: &str, raw: &str) -> Result<String, FieldViolation> {
    if raw.chars().count() > 5_000 {
        return Err(FieldViolation::new(
            field,
            "must be at most 5000 characters",
        ));
    }
    if oms_core::text::hidden_in_text(raw).is_some() {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters (but tab and newline) or invisible ones",
        ));
    }
    Ok(raw.trim().to_owned())
}

/// A caller-chosen reservation ID: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn reservation_id(field: &str, raw: &str) -> Result<String, FieldViolation> {
    let ok_chars = raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if raw.is_empty() || raw.len() > 64 || !ok_chars {
        return Err(FieldViolation::new(
            field,
            "must be 1 to 64 letters, digits, '_' or '-' (e.g. a UUID)",
        ));
    }
    Ok(raw.to_owned())
}

pub use oms_core::lines::Line;

/// A stock change: not zero, at most a billion either way.
pub fn stock_delta(field: &str, delta: i64) -> Result<i64, FieldViolation> {
    // A range, not `abs()`: i64::MIN has no absolute value (it wrapped to
    // itself in release builds and passed).
    if delta == 0 || !(-MAX_STOCK_DELTA..=MAX_STOCK_DELTA).contains(&delta) {
        return Err(FieldViolation::new(
            field,
            "must be non-zero and at most 1000000000 either way",
        ));
    }
    Ok(delta)
}

/// Why stock was adjusted: 1 to 500 characters.
pub fn reason(field: &str, raw: &str) -> Result<String, FieldViolation> {
    let reason = raw.trim();
    let count = reason.chars().count();
    if count == 0 || count > 500 {
        return Err(FieldViolation::new(field, "must be 1 to 500 characters"));
    }
    if oms_core::text::hidden_in_text(reason).is_some() {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters (but tab and newline) or invisible ones",
        ));
    }
    Ok(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_reservation_ids_and_deltas_are_bounded() {
        assert_eq!(sku("sku", " MUG-RED_350.v2 ").unwrap(), "MUG-RED_350.v2");
        assert!(sku("sku", "has space").is_err());
        assert!(reservation_id("id", &"a".repeat(65)).is_err());
        assert!(reservation_id("id", "0190a-b_c").is_ok());
        assert!(stock_delta("delta", 0).is_err());
        assert!(stock_delta("delta", -5).is_ok());
    }
}

/// The most units a product can be created with.
const MAX_INITIAL_STOCK: i64 = 1_000_000_000;

/// A required price: a known currency, a positive amount in minor units.
pub fn price(field: &str, raw: Option<&CommonMoney>) -> Result<Money, Vec<FieldViolation>> {
    let Some(raw) = raw else {
        return Err(vec![FieldViolation::new(field, "is required")]);
    };
    Money::parse_price(field, &raw.currency_code, raw.amount_minor)
}

fn required_product(product: Option<pb::Product>) -> Result<pb::Product, Vec<FieldViolation>> {
    product.ok_or_else(|| vec![FieldViolation::new("product", "is required")])
}

impl TryFrom<pb::CreateProductRequest> for NewProduct {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::CreateProductRequest) -> Result<Self, Self::Error> {
        let p = required_product(r.product)?;
        let stock = if (0..=MAX_INITIAL_STOCK).contains(&p.stock_on_hand) {
            Ok(p.stock_on_hand)
        } else {
            Err(FieldViolation::new(
                "product.stock_on_hand",
                "must be from 0 to 1000000000",
            ))
        };
        let (sku, name, description, price, stock_on_hand) = (
            sku("product.sku", &p.sku),
            name("product.name", &p.name),
            description("product.description", &p.description),
            price("product.price", p.price.as_ref()),
            stock,
        )
            .all_fields()?;
        Ok(Self {
            sku,
            name,
            description,
            price,
            stock_on_hand,
        })
    }
}

/// A ListProducts request, valid.
#[derive(Debug, Clone)]
pub struct ProductQuery {
    /// Words to look for in sku, name and description; `None` lists all.
    pub query: Option<String>,
    /// Whether archived products are listed too.
    pub include_archived: bool,
    /// Products per page.
    pub page_size: u64,
    /// Where the page starts.
    pub cursor: Option<String>,
}

impl TryFrom<pb::ListProductsRequest> for ProductQuery {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::ListProductsRequest) -> Result<Self, Self::Error> {
        let query = r.query.trim();
        let query = if query.chars().count() > 200 {
            Err(FieldViolation::new(
                "query",
                "must be at most 200 characters",
            ))
        } else if oms_core::text::hidden_in_line(query).is_some() {
            Err(FieldViolation::new(
                "query",
                "must not contain control or invisible characters",
            ))
        } else {
            Ok((!query.is_empty()).then(|| query.to_owned()))
        };
        let (query, page_size, cursor) = (
            query,
            oms_core::paging::page_size(r.page_size),
            oms_core::paging::decode_token(&r.page_token),
        )
            .all_fields()?;
        Ok(Self {
            query,
            include_archived: r.include_archived,
            page_size,
            cursor,
        })
    }
}

/// An UpdateProduct request, valid: the product and what changes.
#[derive(Debug, Clone)]
pub struct ProductUpdate {
    /// The product.
    pub id: String,
    /// The fields the mask names, parsed.
    pub changes: ProductChanges,
}

impl TryFrom<pb::UpdateProductRequest> for ProductUpdate {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::UpdateProductRequest) -> Result<Self, Self::Error> {
        let p = required_product(r.product)?;
        let mut violations = Vec::new();
        let id = uuid("product.id", &p.id)
            .map_err(|v| violations.push(v))
            .ok();
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            violations.push(FieldViolation::new(
                "update_mask",
                "must name the fields to change: name, description, price",
            ));
        }
        let mut changes = ProductChanges::default();
        for path in &paths {
            match path.as_str() {
                "name" => match name("product.name", &p.name) {
                    Ok(name) => changes.name = Some(name),
                    Err(v) => violations.push(v),
                },
                "description" => match description("product.description", &p.description) {
                    Ok(d) => changes.description = Some(d),
                    Err(v) => violations.push(v),
                },
                "price" => match price("product.price", p.price.as_ref()) {
                    Ok(m) => changes.price = Some(m),
                    Err(v) => violations.extend(v),
                },
                "id" | "sku" | "stock_on_hand" | "stock_reserved" | "stock_available"
                | "archived" | "create_time" | "update_time" => {
                    violations.push(FieldViolation::new(
                        "update_mask",
                        format!(
                            "{path} cannot be changed here (stock: AdjustStock; archiving: DeleteProduct)"
                        ),
                    ));
                }
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{other} is not a field of Product"),
                )),
            }
        }
        match id {
            Some(id) if violations.is_empty() => Ok(Self { id, changes }),
            _ => Err(violations),
        }
    }
}

/// A ListPriceHistory request, valid.
#[derive(Debug, Clone)]
pub struct PriceHistoryQuery {
    /// The product.
    pub product_id: String,
    /// Entries per page.
    pub page_size: u64,
    /// Where the page starts.
    pub cursor: Option<String>,
}

impl TryFrom<pb::ListPriceHistoryRequest> for PriceHistoryQuery {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::ListPriceHistoryRequest) -> Result<Self, Self::Error> {
        let (product_id, page_size, cursor) = (
            uuid("product_id", &r.product_id),
            oms_core::paging::page_size(r.page_size),
            oms_core::paging::decode_token(&r.page_token),
        )
            .all_fields()?;
        Ok(Self {
            product_id,
            page_size,
            cursor,
        })
    }
}

/// A GetStockHistory request: the product and how many changes (default
/// 100, at most 500).
pub fn stock_history(r: &pb::GetStockHistoryRequest) -> Result<(String, u64), Vec<FieldViolation>> {
    let limit = match r.max_changes {
        0 => Ok(100),
        n if n < 0 => Err(FieldViolation::new("max_changes", "must not be negative")),
        n => Ok(u64::try_from(n).unwrap_or(500).min(500)),
    };
    (uuid("product_id", &r.product_id), limit).all_fields()
}

/// An AdjustStock request, valid.
#[derive(Debug, Clone)]
pub struct StockAdjustment {
    /// The product.
    pub product_id: String,
    /// Units added (negative: removed).
    pub delta: i64,
    /// Why.
    pub reason: String,
}

impl TryFrom<pb::AdjustStockRequest> for StockAdjustment {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::AdjustStockRequest) -> Result<Self, Self::Error> {
        let (product_id, delta, reason) = (
            uuid("product_id", &r.product_id),
            stock_delta("delta", r.delta),
            reason("reason", &r.reason),
        )
            .all_fields()?;
        Ok(Self {
            product_id,
            delta,
            reason,
        })
    }
}

/// A ReserveStock request, valid.
#[derive(Debug, Clone)]
pub struct ReservationRequest {
    /// The caller-chosen ID.
    pub reservation_id: String,
    /// 1 to 100 lines of distinct products.
    pub lines: Vec<Line>,
    /// The quote whose prices it takes, for whose order.
    pub quote: Option<QuoteUse>,
    /// Held until committed, or committed at once.
    pub hold: Hold,
}

impl TryFrom<&pb::ReserveStockRequest> for ReservationRequest {
    type Error = Vec<FieldViolation>;

    fn try_from(r: &pb::ReserveStockRequest) -> Result<Self, Self::Error> {
        let (reservation_id, lines, quote) = (
            reservation_id("reservation_id", &r.reservation_id),
            oms_core::lines::parse(&r.lines),
            quote_use(r),
        )
            .all_fields()?;
        Ok(Self {
            reservation_id,
            lines,
            quote,
            hold: if r.commit {
                Hold::Committed
            } else {
                Hold::UntilCommitted
            },
        })
    }
}

/// The quote fields of a ReserveStock request: none, or all three.
fn quote_use(r: &pb::ReserveStockRequest) -> Result<Option<QuoteUse>, Vec<FieldViolation>> {
    if r.quote_id.is_empty() {
        return Ok(None);
    }
    let (quote_id, customer_id, order_id) = (
        uuid("quote_id", &r.quote_id),
        uuid("customer_id", &r.customer_id),
        uuid("order_id", &r.order_id),
    )
        .all_fields()?;
    Ok(Some(QuoteUse {
        quote_id,
        customer_id,
        order_id,
    }))
}

/// A CreateQuote request, valid: 1 to 100 lines of distinct products.
pub fn quote_lines(r: &pb::CreateQuoteRequest) -> Result<Vec<Line>, Vec<FieldViolation>> {
    oms_core::lines::parse(&r.lines)
}

/// The first message of an image upload, valid.
pub fn upload_start(
    r: &pb::ImageUploadStart,
) -> Result<crate::images::UploadStart, Vec<FieldViolation>> {
    let kind = crate::model::ImageKind::from_content_type(&r.content_type).ok_or_else(|| {
        FieldViolation::new(
            "start.content_type",
            "must be image/png, image/jpeg or image/webp",
        )
    });
    let alt_text = {
        let text = r.alt_text.trim();
        if text.chars().count() > crate::images::MAX_ALT_TEXT
            || oms_core::text::hidden_in_line(text).is_some()
        {
            Err(FieldViolation::new(
                "start.alt_text",
                format!(
                    "must be at most {} characters without control or invisible characters",
                    crate::images::MAX_ALT_TEXT
                ),
            ))
        } else {
            Ok(text.to_owned())
        }
    };
    let (product_id, kind, alt_text) =
        (uuid("start.product_id", &r.product_id), kind, alt_text).all_fields()?;
    Ok(crate::images::UploadStart {
        product_id,
        kind,
        alt_text,
    })
}

/// A product ID and one of its image IDs, valid.
pub fn image_ref(
    product_id: &str,
    image_id: &str,
) -> Result<(String, String), Vec<FieldViolation>> {
    (uuid("product_id", product_id), uuid("image_id", image_id)).all_fields()
}
