//! Parse, don't validate: product-svc's request fields as types that hold
//! only valid values. Every failure is a field violation, and a request
//! reports all of its bad fields at once.

use kit::FieldViolation;

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
    if count == 0 || count > 200 || name.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A description: at most 5,000 characters.
pub fn description(field: &str, raw: &str) -> Result<String, FieldViolation> {
    if raw.chars().count() > 5_000 {
        return Err(FieldViolation::new(
            field,
            "must be at most 5000 characters",
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

pub use kit::lines::Line;

/// A stock change: not zero, at most a billion either way.
pub fn stock_delta(field: &str, delta: i64) -> Result<i64, FieldViolation> {
    if delta == 0 || delta.abs() > MAX_STOCK_DELTA {
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
