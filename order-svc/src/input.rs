//! Parse, don't validate: CreateOrder's lines and other request fields.

use kit::FieldViolation;

pub use kit::lines::Line;

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
