//! What an order is: its status, lines with price snapshots, and the
//! error a failed one keeps. Plain values shared by the rules, the store
//! (which maps rows to them) and the api (which maps them to protobuf).

use chrono::{DateTime, Utc};

/// Where an order is in its life. Stored by its name (a typed column:
/// a name this build does not know is an error when read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::DeriveValueType)]
#[sea_orm(
    value_type = "String",
    from_str = "Status::parse",
    to_str = "Status::as_str"
)]
pub enum Status {
    /// Recorded; stock is being reserved.
    Pending,
    /// Stock committed.
    Confirmed,
    /// Cancelled before shipping.
    Cancelled,
    /// Handed to the carrier.
    Shipped,
    /// Received.
    Delivered,
    /// Could not be placed; nothing is held.
    Failed,
}

impl Status {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Whether the order never changes again (watchers stop here).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Cancelled | Self::Failed)
    }

    /// Every status.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Confirmed,
        Self::Cancelled,
        Self::Shipped,
        Self::Delivered,
        Self::Failed,
    ];

    /// The status stored as `name`.
    pub fn parse(name: &str) -> Result<Self, oms_core::error::UnknownName> {
        oms_core::error::find_by_name("order status", &Self::ALL, |s| s.as_str(), name)
    }
}

/// The error a failed order answered with, kept to answer retries alike.
/// Opaque to the rules: `error.rs` makes it from an error and says whether
/// it was transient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status code the client got (its number on the wire).
    pub code: i32,
    /// Its message.
    pub message: String,
    /// Its encoded `google.rpc` details.
    pub details: Vec<u8>,
}

/// One line with its price snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The product.
    pub product_id: String,
    /// Its sku when ordered.
    pub sku: String,
    /// Its name when ordered.
    pub product_name: String,
    /// Units.
    pub quantity: i32,
    /// Unit price, minor units.
    pub unit_price_minor: i64,
    /// unit price × quantity.
    pub line_total_minor: i64,
}

/// An order as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// UUIDv7.
    pub id: String,
    /// The ordering user.
    pub customer_id: String,
    /// The client's idempotency key.
    pub request_id: String,
    /// Hash of the requested lines.
    pub request_digest: String,
    /// Where it is.
    pub status: Status,
    /// One currency per order ("" until confirmed).
    pub currency_code: String,
    /// Sum of line totals.
    pub total_minor: i64,
    /// Reservation attempt.
    pub attempt: i32,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// Whether the current attempt's reservation is known to hold nothing
    /// (CANCELLED and FAILED orders; recovery releases the rest).
    pub stock_released: bool,
    /// A failed order's error.
    pub failure: Option<Failure>,
    /// Lines (empty until confirmed).
    pub lines: Vec<Line>,
    /// Placed.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// When it reached each later status.
    pub milestones: Milestones,
    /// The quote whose prices it was placed at.
    pub quote_id: Option<String>,
}

/// When an order reached each status after PENDING (the latest time, for
/// one reached again after a retry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Milestones {
    /// CONFIRMED.
    pub confirmed: Option<DateTime<Utc>>,
    /// SHIPPED.
    pub shipped: Option<DateTime<Utc>>,
    /// DELIVERED.
    pub delivered: Option<DateTime<Utc>>,
    /// CANCELLED.
    pub cancelled: Option<DateTime<Utc>>,
    /// FAILED.
    pub failed: Option<DateTime<Utc>>,
}

impl Order {
    /// A new order, PENDING from `at`, for the lines hashed as `digest`:
    /// first attempt, nothing priced yet.
    pub fn pending(customer_id: &str, request_id: &str, digest: String, at: DateTime<Utc>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: customer_id.to_owned(),
            request_id: request_id.to_owned(),
            request_digest: digest,
            status: Status::Pending,
            currency_code: String::new(),
            total_minor: 0,
            attempt: 1,
            cancel_reason: None,
            stock_released: false,
            failure: None,
            lines: Vec::new(),
            create_time: at,
            update_time: at,
            milestones: Milestones::default(),
            quote_id: None,
        }
    }

    /// The reservation ID of the current attempt.
    pub fn reservation_id(&self) -> String {
        format!("{}-{}", self.id, self.attempt)
    }
}

/// What a change did to an order: each is one event (see `events.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Placed, PENDING.
    Created,
    /// Stock committed, CONFIRMED.
    Confirmed,
    /// Could not be placed, FAILED.
    Failed {
        /// What the client was told.
        reason: String,
    },
    /// CANCELLED.
    Cancelled {
        /// The status before.
        previous: Status,
        /// Why, as given.
        reason: String,
    },
    /// Any other move: a retry (FAILED → PENDING), shipping, delivery.
    StatusChanged {
        /// The status before.
        previous: Status,
    },
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn every_status_is_read_back_from_its_name_and_an_unknown_name_is_an_error() {
        for x in Status::ALL {
            assert_eq!(Status::parse(x.as_str()), Ok(x));
        }
        let unknown = Status::parse("archived").unwrap_err();
        assert_eq!(unknown.to_string(), "unknown order status \"archived\"");
    }
}
