//! The reservation rules: validate, reserve all or nothing (committing in
//! the same transaction when asked), commit, release (also after commit),
//! and expire what was never committed.
//! Every state change is a conditional UPDATE inside one transaction with
//! the stock moves it causes, so concurrent callers, retries and replicas
//! can neither oversell nor move stock twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oms_store::batch::Batch;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};

use crate::cache::ProductCache;
use crate::error::{ProductError, ShortLine};
use crate::input::Line;
use crate::model::{
    Hold, Product, ProductChange, QuoteUse, Reservation, ReservedLine, State, StockCause,
};
use crate::product_events::ProductEvents;
use crate::store::products;
use crate::store::reservations::{self, Expiry, StockMove};

/// Attempts of a transaction that lost a lock race before giving up.
const TRANSIENT_ATTEMPTS: u32 = 5;

/// What ValidateProducts says about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCheck {
    /// The line as asked.
    pub line: Line,
    /// The product, if it exists.
    pub product: Option<Product>,
}

/// Reservations.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub(crate) db: DatabaseConnection,
    pub(crate) cache: ProductCache,
    /// How long a reservation holds stock unless committed.
    pub(crate) ttl: Duration,
    pub(crate) events: ProductEvents,
}

impl Inventory {
    /// Reservations in `db` that hold stock for `ttl` unless committed,
    /// keeping `cache` fresh, each change with its event in `events`.
    pub fn new(
        db: DatabaseConnection,
        cache: ProductCache,
        ttl: Duration,
        events: ProductEvents,
    ) -> Self {
        Self {
            db,
            cache,
            ttl,
            events,
        }
    }

    /// Checks lines without holding anything.
    pub async fn validate(&self, lines: Vec<Line>) -> Result<Vec<LineCheck>, ProductError> {
        let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
        let found = products::get_many(&self.db, &ids).await?;
        Ok(lines
            .into_iter()
            .map(|line| {
                let product = found.iter().find(|p| p.id == line.product_id).cloned();
                LineCheck { line, product }
            })
            .collect())
    }

    /// Holds stock for every line or for none, until committed or (with
    /// `Hold::Committed`) committed in the same transaction. The same ID
    /// with the same lines returns the stored reservation (committing a
    /// RESERVED one when `hold` asks for that); with other lines it fails.
    ///
    /// With `quote`, the quote is checked and consumed in the same
    /// transaction, and its prices are the reservation's.
    pub async fn reserve(
        &self,
        id: &str,
        lines: Vec<Line>,
        quote: Option<QuoteUse>,
        hold: Hold,
    ) -> Result<Reservation, ProductError> {
        let digest = oms_core::lines::digest(&lines);
        // Mismatches are reported by the caller's line numbers.
        let requested = quote.as_ref().map(|_| lines.clone());
        let mut lines = lines;
        // A fixed lock order: two multi-line reservations cannot deadlock.
        lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        let quote = quote.as_ref().zip(requested.as_deref());
        let reservation = self
            .retrying(|| async {
                let txn = self.db.begin().await?;
                self.try_reserve(txn, id, &lines, &digest, quote, hold)
                    .await
            })
            .await?;
        match (hold, reservation.state) {
            (Hold::UntilCommitted, _) | (Hold::Committed, State::Committed) => {
                self.invalidate(&reservation).await;
                Ok(reservation)
            }
            // A retry finding the reservation an earlier call held without
            // committing: commit it now, as asked.
            (Hold::Committed, State::Reserved) => self.commit(id).await,
            (Hold::Committed, state) => Err(state_error(id, state, "commit")),
        }
    }

    async fn try_reserve(
        &self,
        txn: DatabaseTransaction,
        id: &str,
        lines: &[Line],
        digest: &str,
        quote: Option<(&QuoteUse, &[Line])>,
        hold: Hold,
    ) -> Result<Reservation, ProductError> {
        let now = oms_core::time::now();
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(10));
        let mut reservation = Reservation {
            id: id.to_owned(),
            state: hold.state(),
            lines_digest: digest.to_owned(),
            lines: Vec::new(),
            create_time: now,
            expire_time: now + ttl,
            update_time: now,
        };
        // The header goes first: its primary key settles concurrent
        // duplicates, and on SQLite a write first takes the write lock
        // before anything is read. A quote is consumed before the holds:
        // the same lock order as a release giving a quote back.
        let (held, quoted) = match quote {
            None => {
                match reservations::insert_and_hold(&txn, &reservation, lines, hold, now).await? {
                    Some(held) => (held, None),
                    None => {
                        txn.rollback().await?;
                        return self.existing(id, digest).await;
                    }
                }
            }
            Some((using, requested)) => {
                if !reservations::insert(&txn, &reservation).await? {
                    txn.rollback().await?;
                    return self.existing(id, digest).await;
                }
                let quoted = crate::quotes::consume(&txn, using, requested, id, now).await?;
                (
                    reservations::hold_all(&txn, lines, hold, now).await?,
                    Some(quoted),
                )
            }
        };
        let refused: Vec<&Line> = lines
            .iter()
            .filter(|line| !held.iter().any(|p| p.id == line.product_id))
            .collect();
        if !refused.is_empty() {
            txn.rollback().await?;
            return Err(self.why_refused(&refused).await?);
        }
        reservation.lines = lines
            .iter()
            .filter_map(|line| {
                let p = held.iter().find(|p| p.id == line.product_id)?;
                // The quote's price when there is one (its lines are these
                // lines), else today's.
                let (currency_code, unit_price_minor) = quoted
                    .as_ref()
                    .and_then(|q| q.price_of(&p.id))
                    .unwrap_or((&p.currency_code, p.price_minor));
                Some(ReservedLine {
                    product_id: p.id.clone(),
                    sku: p.sku.clone(),
                    name: p.name.clone(),
                    quantity: line.quantity,
                    currency_code: currency_code.to_owned(),
                    unit_price_minor,
                })
            })
            .collect();
        // The lines and the stock events in one command on SQLite.
        let mut batch = Batch::new(&txn);
        reservations::stage_lines(&mut batch, id, &reservation.lines);
        self.stage_stock_changed(&mut batch, &held, hold.cause(), id);
        batch.execute(&txn).await?;
        txn.commit().await?;
        self.events.committed();
        tracing::info!(
            reservation_id = id,
            lines = lines.len(),
            state = reservation.state.as_str(),
            "stock reserved"
        );
        Ok(reservation)
    }

    async fn existing(&self, id: &str, digest: &str) -> Result<Reservation, ProductError> {
        match reservations::get(&self.db, id).await? {
            Some(existing) if existing.lines_digest == digest => Ok(existing),
            Some(_) => Err(ProductError::ReservationIdReused(id.to_owned())),
            // Inserted and rolled back by a concurrent caller between our
            // insert and this read: let the retry loop try again.
            None => Err(ProductError::Busy(
                "a concurrent reservation with this ID rolled back".to_owned(),
            )),
        }
    }

    /// Why lines were refused: a missing product first, then an archived
    /// one, else every short line with what is available now.
    async fn why_refused(&self, refused: &[&Line]) -> Result<ProductError, ProductError> {
        let ids: Vec<String> = refused.iter().map(|l| l.product_id.clone()).collect();
        let found = products::get_many(&self.db, &ids).await?;
        if let Some(missing) = refused
            .iter()
            .find(|l| !found.iter().any(|p| p.id == l.product_id))
        {
            return Ok(ProductError::ProductNotFound(missing.product_id.clone()));
        }
        if let Some(archived) = found.iter().find(|p| p.archived) {
            return Ok(ProductError::ProductArchived(archived.id.clone()));
        }
        Ok(ProductError::InsufficientStock(
            refused
                .iter()
                .filter_map(|line| {
                    let p = found.iter().find(|p| p.id == line.product_id)?;
                    Some(ShortLine {
                        product_id: p.id.clone(),
                        requested: line.quantity,
                        available: p.available(),
                    })
                })
                .collect(),
        ))
    }

    /// Makes a reservation permanent. Idempotent; an expired one fails.
    pub async fn commit(&self, id: &str) -> Result<Reservation, ProductError> {
        let outcome = self
            .retrying(|| async {
                let now = oms_core::time::now();
                let txn = self.db.begin().await?;
                if let Some(reservation) = reservations::transition(
                    &txn,
                    id,
                    State::Reserved,
                    State::Committed,
                    Expiry::LiveAt(now),
                    now,
                )
                .await?
                {
                    self.moved(
                        &txn,
                        &reservation,
                        StockMove::Commit,
                        StockCause::Committed,
                        now,
                    )
                    .await?;
                    txn.commit().await?;
                    self.events.committed();
                    return Ok(Some(reservation));
                }
                txn.rollback().await?;
                Ok(None)
            })
            .await?;
        if let Some(reservation) = outcome {
            tracing::info!(reservation_id = id, "reservation committed");
            self.invalidate(&reservation).await;
            return Ok(reservation);
        }
        let current = self.get(id).await?;
        match current.state {
            State::Committed => Ok(current),
            // Past its expiry but not swept yet: expire it now, then refuse.
            State::Reserved => {
                self.expire(id).await?;
                Err(state_error(id, State::Expired, "commit"))
            }
            state => Err(state_error(id, state, "commit")),
        }
    }

    /// Returns a reservation's units: the hold of a RESERVED one, or the
    /// units of a COMMITTED one (a cancellation). Idempotent.
    pub async fn release(&self, id: &str) -> Result<Reservation, ProductError> {
        self.release_with(id, None).await
    }

    /// [`Inventory::release`] on behalf of event `event_id` seen by
    /// `consumer`: the event goes into the inbox in the release's own
    /// transaction, so a redelivered event releases nothing.
    pub async fn release_for_event(
        &self,
        id: &str,
        consumer: &str,
        event_id: &str,
    ) -> Result<Reservation, ProductError> {
        self.release_with(id, Some((consumer, event_id))).await
    }

    async fn release_with(
        &self,
        id: &str,
        inbox: Option<(&str, &str)>,
    ) -> Result<Reservation, ProductError> {
        let outcome = self
            .retrying(|| async {
                let now = oms_core::time::now();
                let txn = self.db.begin().await?;
                if let Some((consumer, event_id)) = inbox
                    && !::events::inbox::first_time(&txn, consumer, event_id).await?
                {
                    txn.rollback().await?;
                    return Ok(None);
                }
                let moved = match reservations::transition(
                    &txn,
                    id,
                    State::Reserved,
                    State::Released,
                    Expiry::Any,
                    now,
                )
                .await?
                {
                    Some(reservation) => Some((reservation, StockMove::DropHold)),
                    None => reservations::transition(
                        &txn,
                        id,
                        State::Committed,
                        State::Released,
                        Expiry::Any,
                        now,
                    )
                    .await?
                    .map(|reservation| (reservation, StockMove::Return)),
                };
                let Some((reservation, movement)) = moved else {
                    txn.rollback().await?;
                    return Ok(None);
                };
                self.moved(&txn, &reservation, movement, StockCause::Released, now)
                    .await?;
                txn.commit().await?;
                self.events.committed();
                Ok(Some(reservation))
            })
            .await?;
        match outcome {
            Some(reservation) => {
                tracing::info!(reservation_id = id, "reservation released");
                self.invalidate(&reservation).await;
                Ok(reservation)
            }
            // Already released or expired: nothing to return twice.
            None => self.get(id).await,
        }
    }

    /// A reservation and its state.
    pub async fn get(&self, id: &str) -> Result<Reservation, ProductError> {
        reservations::get(&self.db, id)
            .await?
            .ok_or_else(|| ProductError::ReservationNotFound(id.to_owned()))
    }

    /// Expires up to `limit` RESERVED reservations past their expiry and
    /// returns how many this call expired. Safe to run on every replica at
    /// once: each expiry is won by exactly one of them.
    pub async fn sweep(&self, limit: u64) -> Result<usize, ProductError> {
        let due = reservations::expired(&self.db, oms_core::time::now(), limit).await?;
        let mut expired = 0;
        for id in due {
            if self.expire(&id).await? {
                expired += 1;
            }
        }
        Ok(expired)
    }

    async fn expire(&self, id: &str) -> Result<bool, ProductError> {
        let reservation = self
            .retrying(|| async {
                let now = oms_core::time::now();
                let txn = self.db.begin().await?;
                let Some(reservation) = reservations::transition(
                    &txn,
                    id,
                    State::Reserved,
                    State::Expired,
                    Expiry::ExpiredAt(now),
                    now,
                )
                .await?
                else {
                    txn.rollback().await?;
                    return Ok(None);
                };
                self.moved(
                    &txn,
                    &reservation,
                    StockMove::DropHold,
                    StockCause::Expired,
                    now,
                )
                .await?;
                txn.commit().await?;
                self.events.committed();
                Ok(Some(reservation))
            })
            .await?;
        let Some(reservation) = reservation else {
            return Ok(false);
        };
        tracing::info!(reservation_id = id, "reservation expired; stock returned");
        self.invalidate(&reservation).await;
        Ok(true)
    }

    /// Moves the stock of `reservation` (just transitioned in `txn`),
    /// gives back the quote of a reservation dropped before commit, and
    /// writes each product's stock event.
    async fn moved(
        &self,
        txn: &DatabaseTransaction,
        reservation: &Reservation,
        movement: StockMove,
        cause: StockCause,
        now: DateTime<Utc>,
    ) -> Result<(), ProductError> {
        let id = reservation.id.as_str();
        if movement == StockMove::DropHold {
            // The order never got the stock: its quote may serve a retry.
            crate::store::quotes::give_back(txn, id).await?;
        }
        let products = reservations::move_stock(txn, &reservation.lines, movement, now).await?;
        self.stock_changed(txn, &products, cause, id).await
    }

    /// One stock event per product in `products` (as they are after the
    /// move), in `txn`.
    async fn stock_changed(
        &self,
        txn: &DatabaseTransaction,
        products: &[Product],
        cause: StockCause,
        reservation_id: &str,
    ) -> Result<(), ProductError> {
        let mut batch = Batch::new(txn);
        self.stage_stock_changed(&mut batch, products, cause, reservation_id);
        batch.execute(txn).await?;
        Ok(())
    }

    /// Adds one stock event per product in `products` (as they are after
    /// the move) to `batch`.
    fn stage_stock_changed(
        &self,
        batch: &mut Batch,
        products: &[Product],
        cause: StockCause,
        reservation_id: &str,
    ) {
        let changes = products.iter().map(|product| {
            let change = ProductChange::StockChanged {
                cause,
                reservation_id: Some(reservation_id.to_owned()),
            };
            (product, change)
        });
        self.events.stage_all(batch, changes);
    }

    async fn invalidate(&self, reservation: &Reservation) {
        let ids: Vec<String> = reservation
            .lines
            .iter()
            .map(|l| l.product_id.clone())
            .collect();
        self.cache.invalidate(ids).await;
    }

    /// Runs `attempt` again (with a short growing pause) when it lost a
    /// lock race; any other outcome is returned as is.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, ProductError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProductError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Err(ProductError::Busy(cause)) if tries < TRANSIENT_ATTEMPTS => {
                    tracing::debug!(%cause, tries, "transaction lost a lock race; retrying");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                }
                other => return other,
            }
        }
    }
}

fn state_error(id: &str, state: State, action: &'static str) -> ProductError {
    ProductError::ReservationState {
        id: id.to_owned(),
        state: state.as_str(),
        action,
    }
}
