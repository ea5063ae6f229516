//! Line items: the product-and-quantity lists that reservations and
//! orders carry, parsed once with every violation, and hashed so a retry
//! with the same lines in another order matches.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::error::FieldViolation;

/// Most lines in one request.
pub const MAX_LINES: usize = 100;
/// Largest quantity of one line.
pub const MAX_QUANTITY: i32 = 10_000;

/// One valid line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The product's ID, canonical UUID text.
    pub product_id: String,
    /// Units, 1 to 10,000.
    pub quantity: i32,
}

/// A line as a request carries it, not yet checked.
pub trait RawLine {
    /// The product's ID as sent.
    fn product_id(&self) -> &str;
    /// The quantity as sent.
    fn quantity(&self) -> i32;
}

/// 1 to 100 lines of distinct products (UUIDs), quantities 1 to 10,000;
/// or every violation, each naming its `lines[i]` field.
pub fn parse<L: RawLine>(raw: &[L]) -> Result<Vec<Line>, Vec<FieldViolation>> {
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
        let (product_id, quantity) = (line.product_id(), line.quantity());
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            violations.push(FieldViolation::new(
                format!("lines[{i}].quantity"),
                format!("must be from 1 to {MAX_QUANTITY}"),
            ));
        }
        match uuid::Uuid::parse_str(product_id.trim()) {
            Ok(id) if !seen.insert(id) => violations.push(FieldViolation::new(
                format!("lines[{i}].product_id"),
                "appears in more than one line; merge them",
            )),
            Ok(id) => lines.push(Line {
                product_id: id.hyphenated().to_string(),
                quantity,
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

/// SHA-256 (hex) of the lines in product order: the same request, whatever
/// its line order, has the same digest.
pub fn digest(lines: &[Line]) -> String {
    digest_with_quote(lines, None)
}

/// [`digest`] of the lines and, when there is one, the quote they are
/// ordered at: the same lines at another quote are another request.
/// Without a quote it equals [`digest`].
pub fn digest_with_quote(lines: &[Line], quote_id: Option<&str>) -> String {
    let mut sorted: Vec<_> = lines
        .iter()
        .map(|l| (l.product_id.as_str(), l.quantity))
        .collect();
    sorted.sort_unstable();
    let mut hasher = Sha256::new();
    for (id, quantity) in sorted {
        hasher.update(format!("{id}:{quantity}\n").as_bytes());
    }
    if let Some(quote_id) = quote_id {
        hasher.update(format!("quote:{quote_id}\n").as_bytes());
    }
    crate::digest::hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(String, i32);

    impl RawLine for Item {
        fn product_id(&self) -> &str {
            &self.0
        }
        fn quantity(&self) -> i32 {
            self.1
        }
    }

    fn item(id: &str, quantity: i32) -> Item {
        Item(id.into(), quantity)
    }

    #[test]
    fn every_bad_field_is_reported() {
        let id = uuid::Uuid::now_v7().to_string();
        let bad = parse(&[item(&id, 0), item("nope", 5), item(&id, 10_001)]).unwrap_err();
        let fields: Vec<_> = bad.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lines[0].quantity",
                "lines[1].product_id",
                "lines[2].quantity",
                "lines[2].product_id"
            ]
        );
        assert!(parse::<Item>(&[]).is_err());
        assert_eq!(parse(&[item(&id, 3)]).unwrap()[0].quantity, 3);
    }

    #[test]
    fn the_digest_ignores_line_order_but_not_quantities() {
        let (a, b) = (
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        );
        let one = parse(&[item(&a, 1), item(&b, 2)]).unwrap();
        let swapped = parse(&[item(&b, 2), item(&a, 1)]).unwrap();
        let more = parse(&[item(&a, 1), item(&b, 3)]).unwrap();
        assert_eq!(digest(&one), digest(&swapped));
        assert_ne!(digest(&one), digest(&more));
    }
}
