//! The port through which the saga and recovery reach product-svc's
//! inventory, in domain terms: reserved lines with price snapshots, the
//! state of a reservation, and an error that tells a refusal (with what
//! the client should be told) from an inventory that could not answer.
//! `clients.rs` implements it over gRPC; tests implement it in memory.

use std::time::{Duration, Instant};

pub use oms_core::lines::Line;

/// What a call may carry from the request that caused it.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// When the caller stops waiting (from its `grpc-timeout`).
    pub deadline: Option<Instant>,
    /// W3C `traceparent` of the incoming request.
    pub traceparent: Option<String>,
}

impl CallContext {
    /// The time a call may take: the configured limit, or less if the
    /// caller's deadline is nearer.
    pub fn budget(&self, limit: Duration) -> Duration {
        self.deadline.map_or(limit, |d| {
            d.saturating_duration_since(Instant::now()).min(limit)
        })
    }
}

/// A unit price as product-svc quoted it when stock was reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// ISO 4217 code.
    pub currency_code: String,
    /// Minor units.
    pub amount_minor: i64,
}

/// One reserved line with the snapshot the order keeps.
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
    /// Its price then.
    pub unit_price: Price,
}

/// Where a reservation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    /// Holding stock until committed, released or expired.
    Reserved,
    /// Stock taken for good.
    Committed,
    /// Stock returned.
    Released,
    /// Released by product-svc when its time ran out.
    Expired,
}

/// A reservation as the saga sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The caller-chosen ID (`<order id>-<attempt>`).
    pub id: String,
    /// Where it is.
    pub state: ReservationState,
    /// What it holds, priced.
    pub lines: Vec<ReservedLine>,
}

/// The kind of a refusal, which decides the status the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A line is malformed.
    Invalid,
    /// A product does not exist.
    NotFound,
    /// Not now: not enough stock, archived product, state conflict.
    FailedPrecondition,
    /// Already done differently (a reused reservation ID).
    AlreadyExists,
    /// A number out of range.
    OutOfRange,
}

/// Inventory said no for a reason the client should hear as it was said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of no.
    pub kind: RefusalKind,
    /// product-svc's message.
    pub message: String,
    /// product-svc's error details, encoded, passed on unchanged (so a
    /// client sees INSUFFICIENT_STOCK with its metadata).
    pub details: Vec<u8>,
}

/// An order's use of a quote: product-svc checks that the quote is the
/// customer's and marks it used by the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteUse {
    /// The quote.
    pub quote_id: String,
    /// The ordering customer.
    pub customer_id: String,
    /// The order.
    pub order_id: String,
}

/// Inventory could not answer: down, overloaded or too slow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// Whether time ran out (the caller's deadline or ours) rather than
    /// the peer failing.
    pub timed_out: bool,
    /// What happened, for logs.
    pub message: String,
}

/// Why an inventory call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// A business refusal: nothing was done.
    #[error("product-svc refused: {}", .0.message)]
    Refused(Refusal),
    /// No answer: the call may or may not have taken effect.
    #[error("product-svc unavailable: {}", .0.message)]
    Unavailable(Unavailable),
}

/// product-svc's InventoryService as the saga needs it. Every call is
/// idempotent per reservation ID, so a retry after an unknown outcome is
/// safe.
#[async_trait::async_trait]
pub trait Inventory: Send + Sync + std::fmt::Debug {
    /// Takes `lines`' units for good under `reservation_id`, all or
    /// nothing, priced (at `quote`'s prices, consuming it, when there is
    /// one): a reservation made and committed in one step, COMMITTED.
    /// [`Inventory::release`] gives the units back.
    async fn take(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
        lines: &[Line],
        quote: Option<&QuoteUse>,
    ) -> Result<Reservation, InventoryError>;

    /// Returns what the reservation holds (also after a commit); `Ok` too
    /// when no such reservation was ever made, which holds nothing either.
    async fn release(&self, ctx: &CallContext, reservation_id: &str) -> Result<(), InventoryError>;

    /// The reservation, or `None` if it was never made.
    async fn get(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<Option<Reservation>, InventoryError>;
}
