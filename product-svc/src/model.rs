//! What product-svc's rules work on: products with their price and stock,
//! price history entries, and reservations with their price snapshots.
//! Plain values: the store maps rows to them, the api maps them to
//! protobuf.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A product as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// UUIDv7.
    pub id: String,
    /// Unique stock-keeping unit.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// ISO 4217 code of the price.
    pub currency_code: String,
    /// Price in minor units.
    pub price_minor: i64,
    /// Units physically in stock.
    pub stock_on_hand: i64,
    /// Units held by RESERVED reservations.
    pub stock_reserved: i64,
    /// Deleted (archived).
    pub archived: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
}

impl Product {
    /// Units that can still be reserved.
    pub fn available(&self) -> i64 {
        self.stock_on_hand - self.stock_reserved
    }
}

/// One entry of a product's price history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricePoint {
    /// Row ID (UUIDv7): orders the history.
    pub id: String,
    /// ISO 4217 code.
    pub currency_code: String,
    /// Minor units.
    pub amount_minor: i64,
    /// From when.
    pub effective_time: DateTime<Utc>,
    /// Who set it.
    pub changed_by: String,
}

/// What changed a product's stock on hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChangeKind {
    /// An admin's AdjustStock.
    Adjustment,
    /// An order took the units for good (its reservation committed).
    Sold,
    /// A cancelled order gave them back.
    Returned,
}

/// One change of a product's stock on hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChange {
    /// When.
    pub time: DateTime<Utc>,
    /// What did it.
    pub kind: StockChangeKind,
    /// Units added (negative: taken).
    pub delta: i64,
    /// Stock on hand after it.
    pub on_hand_after: i64,
    /// An adjustment's reason.
    pub reason: String,
}

/// Where a reservation is in its life. Stored by its name (a typed column:
/// a name this build does not know is an error when read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::DeriveValueType)]
#[sea_orm(
    value_type = "String",
    from_str = "State::parse",
    to_str = "State::as_str"
)]
pub enum State {
    /// Stock held until `expire_time`.
    Reserved,
    /// Taken for good.
    Committed,
    /// Returned on request.
    Released,
    /// Returned because not committed in time.
    Expired,
}

impl State {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }

    /// Every state.
    pub const ALL: [Self; 4] = [
        Self::Reserved,
        Self::Committed,
        Self::Released,
        Self::Expired,
    ];

    /// The state stored as `name`.
    pub fn parse(name: &str) -> Result<Self, oms_core::error::UnknownName> {
        oms_core::error::find_by_name("reservation state", &Self::ALL, |s| s.as_str(), name)
    }
}

/// What a reservation does with the units it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Holds them until committed, released or expired.
    UntilCommitted,
    /// Commits them in the reservation's own transaction: they leave stock
    /// at once (a caller with nothing to check in between saves a call and
    /// a transaction).
    Committed,
}

impl Hold {
    /// The state a new reservation is stored in.
    pub fn state(self) -> State {
        match self {
            Self::UntilCommitted => State::Reserved,
            Self::Committed => State::Committed,
        }
    }

    /// Why its stock moves, as its events say.
    pub fn cause(self) -> StockCause {
        match self {
            Self::UntilCommitted => StockCause::Reserved,
            Self::Committed => StockCause::Committed,
        }
    }
}

/// A reservation with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Caller-chosen ID.
    pub id: String,
    /// Current state.
    pub state: State,
    /// Hash of the requested lines.
    pub lines_digest: String,
    /// Lines with snapshots, ordered by product ID.
    pub lines: Vec<ReservedLine>,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Released by the sweeper after this unless committed.
    pub expire_time: DateTime<Utc>,
    /// Last state change.
    pub update_time: DateTime<Utc>,
}

/// One line with the product's sku, name and price when reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLine {
    /// The product.
    pub product_id: String,
    /// Its sku then.
    pub sku: String,
    /// Its name then.
    pub name: String,
    /// Units held.
    pub quantity: i32,
    /// Its currency then.
    pub currency_code: String,
    /// Its unit price then.
    pub unit_price_minor: i64,
}

/// What a change did to a product: each is one event (see
/// `product_events.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductChange {
    /// Added.
    Created,
    /// Name and/or description changed (the field names).
    Updated(Vec<&'static str>),
    /// Archived.
    Deleted,
    /// A new price.
    PriceChanged {
        /// Currency of the old price.
        old_currency_code: String,
        /// The old price, minor units.
        old_price_minor: i64,
    },
    /// An image was added (as stored, primary flag included).
    ImageAdded(Box<ProductImage>),
    /// An image was removed.
    ImageRemoved {
        /// Its ID.
        image_id: String,
        /// Its SHA-256.
        sha256: String,
    },
    /// Stock moved.
    StockChanged {
        /// Why.
        cause: StockCause,
        /// The reservation that moved it, if one did.
        reservation_id: Option<String>,
    },
}

/// Why stock moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockCause {
    /// AdjustStock.
    Adjustment,
    /// A reservation held units.
    Reserved,
    /// A reservation was committed.
    Committed,
    /// A reservation gave its units back.
    Released,
    /// A reservation expired uncommitted.
    Expired,
}

impl StockCause {
    /// The name events carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adjustment => "adjustment",
            Self::Reserved => "reserved",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }
}

/// A price quote: prices held for one customer until `expire_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// UUIDv7.
    pub id: String,
    /// The customer it was made for.
    pub customer_id: String,
    /// Stored state; see [`Quote::state_at`] for what a reader is shown.
    pub consumed: bool,
    /// One currency for every line.
    pub currency_code: String,
    /// Sum of the line totals.
    pub total_minor: i64,
    /// The lines, in request order.
    pub lines: Vec<QuoteLine>,
    /// Made.
    pub create_time: DateTime<Utc>,
    /// Usable until.
    pub expire_time: DateTime<Utc>,
    /// The order that used it (set while consumed).
    pub order_id: Option<String>,
}

/// Where a quote is, as a reader sees it at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteState {
    /// Usable.
    Open,
    /// Used by an order.
    Consumed,
    /// Its time passed unused.
    Expired,
}

impl Quote {
    /// Its state at `now`: an open quote past its time is expired.
    pub fn state_at(&self, now: DateTime<Utc>) -> QuoteState {
        if self.consumed {
            QuoteState::Consumed
        } else if now >= self.expire_time {
            QuoteState::Expired
        } else {
            QuoteState::Open
        }
    }
}

/// One quoted line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteLine {
    /// The product.
    pub product_id: String,
    /// Its sku when quoted.
    pub sku: String,
    /// Its name when quoted.
    pub name: String,
    /// Units.
    pub quantity: i32,
    /// The unit price held, in the quote's currency.
    pub unit_price_minor: i64,
    /// `unit_price_minor × quantity`.
    pub line_total_minor: i64,
}

/// A reservation's use of a quote: whose order it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteUse {
    /// The quote.
    pub quote_id: String,
    /// The customer ordering (must be the quote's).
    pub customer_id: String,
    /// The order using it.
    pub order_id: String,
}

/// One image of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductImage {
    /// UUIDv7.
    pub id: String,
    /// The product.
    pub product_id: String,
    /// What the bytes are.
    pub kind: ImageKind,
    /// Size in bytes.
    pub byte_size: i64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Text for people who cannot see it.
    pub alt_text: String,
    /// The product's primary image.
    pub primary: bool,
    /// Where the bytes are stored.
    pub object_key: String,
    /// Where its JPEG thumbnail is stored.
    pub thumbnail_key: String,
    /// The thumbnail's size in bytes.
    pub thumbnail_size: i64,
    /// Added.
    pub create_time: DateTime<Utc>,
}

/// The image formats a product image may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
}

impl ImageKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Png, Self::Jpeg, Self::Webp];

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// The file extension of its stored object.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    /// The kind of a media type (`image/png`), if it is one of ours.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        Self::ALL
            .into_iter()
            .find(|k| k.content_type().eq_ignore_ascii_case(essence))
    }

    /// The kind the bytes' signature says, if any of ours.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn every_state_is_read_back_from_its_name_and_an_unknown_name_is_an_error() {
        for x in State::ALL {
            assert_eq!(State::parse(x.as_str()), Ok(x));
        }
        let unknown = State::parse("archived").unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown reservation state \"archived\""
        );
    }
}
