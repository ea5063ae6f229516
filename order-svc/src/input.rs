//! Parse, don't validate: CreateOrder's lines and other request fields.

use std::collections::HashSet;

use kit::FieldViolation;

/// Most lines in one order.
pub const MAX_LINES: usize = 100;
/// Largest quantity of one line.
pub const MAX_QUANTITY: i32 = 10_000;

/// One requested line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The product.
    pub product_id: String,
    /// Units.
    pub quantity: i32,
}

/// 1 to 100 lines of distinct products, quantities 1 to 10,000.
pub fn lines(raw: &[oms_proto::common::v1::LineItem]) -> Result<Vec<Line>, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    if raw.is_empty() || raw.len() > MAX_LINES {
        violations.push(FieldViolation::new(
            "lines",
            format!("must hold 1 to {MAX_LINES} lines"),
        ));
    }
    let mut seen = HashSet::new();
    let mut lines = Vec::with_capacity(raw.len());
    for (i, line) in raw.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            violations.push(FieldViolation::new(
                format!("lines[{i}].quantity"),
                format!("must be from 1 to {MAX_QUANTITY}"),
            ));
        }
        match uuid::Uuid::parse_str(line.product_id.trim()) {
            Ok(id) if !seen.insert(id) => violations.push(FieldViolation::new(
                format!("lines[{i}].product_id"),
                "appears in more than one line; merge them",
            )),
            Ok(id) => lines.push(Line {
                product_id: id.hyphenated().to_string(),
                quantity: line.quantity,
            }),
            Err(_) => violations.push(FieldViolation::new(
                format!("lines[{i}].product_id"),
                "must be a product ID (UUID)",
            )),
        }
    }
    if violations.is_empty() {
        Ok(lines)
    } else {
        Err(violations)
    }
}

/// The client's idempotency key: 1 to 128 printable ASCII characters.
pub fn request_id(raw: &str) -> Result<String, FieldViolation> {
    if raw.is_empty() || raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldViolation::new(
            "request_id",
            "must be 1 to 128 printable ASCII characters (e.g. a UUID); set it, or the Idempotency-Key header",
        ));
    }
    Ok(raw.to_owned())
}

/// An order ID: a UUID.
pub fn order_id(raw: &str) -> Result<String, FieldViolation> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| FieldViolation::new("order_id", "must be an order ID (UUID)"))
}

/// A cancellation reason: at most 500 characters.
pub fn cancel_reason(raw: &str) -> Result<String, FieldViolation> {
    if raw.chars().count() > 500 {
        return Err(FieldViolation::new(
            "reason",
            "must be at most 500 characters",
        ));
    }
    Ok(raw.trim().to_owned())
}
