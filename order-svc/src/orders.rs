//! The order rules. CreateOrder is a saga over product-svc's inventory:
//! record the order PENDING, take the stock (a reservation made and
//! committed in one product-svc transaction), confirm; on a business
//! refusal nothing is held and the order fails with product-svc's error;
//! on a dependency failure, or lines the order cannot price, the
//! reservation is released and the order fails (or, if even that fails,
//! recovery finishes it). Inventory is reached through the [`Inventory`]
//! port: no wire types here.

use std::sync::Arc;

use oms_runtime::auth::Role;
use sea_orm::DatabaseConnection;

use crate::error::OrderError;
use crate::inventory::{CallContext, Inventory, InventoryError, Line, QuoteUse, Reservation};
use crate::model::{Line as OrderLine, Order, Status};
use crate::order_events::OrderEvents;
use crate::store::orders;

/// The orders of one service instance.
#[derive(Debug, Clone)]
pub struct Orders {
    pub(crate) db: DatabaseConnection,
    pub(crate) inventory: Arc<dyn Inventory>,
    pub(crate) events: OrderEvents,
}

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The user's ID.
    pub id: &'a str,
    /// Their role.
    pub role: Role,
}

impl Caller<'_> {
    fn may_see(&self, order: &Order) -> bool {
        self.role == Role::Admin || order.customer_id == self.id
    }
}

impl From<InventoryError> for OrderError {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::Refused(refusal) => Self::Upstream(refusal),
            InventoryError::Unavailable(why) => Self::Dependency(why),
        }
    }
}

impl Orders {
    /// The rules over `db`, reaching inventory through `inventory`, each
    /// change with its event in `events`.
    pub fn new(db: DatabaseConnection, inventory: Arc<dyn Inventory>, events: OrderEvents) -> Self {
        Self {
            db,
            inventory,
            events,
        }
    }

    /// Places an order (at `quote_id`'s prices when given), or returns the
    /// one this request ID already placed.
    pub async fn create(
        &self,
        ctx: &CallContext,
        customer_id: &str,
        request_id: &str,
        lines: Vec<Line>,
        quote_id: Option<&str>,
    ) -> Result<Order, OrderError> {
        let order = Order {
            quote_id: quote_id.map(str::to_owned),
            ..Order::pending(
                customer_id,
                request_id,
                oms_core::lines::digest_with_quote(&lines, quote_id),
                oms_core::time::now(),
            )
        };
        if orders::insert_pending(&self.db, &self.events, &order).await? {
            return self.place(ctx, order, &lines, quote_id).await;
        }
        let existing = orders::find_by_request(&self.db, customer_id, request_id)
            .await?
            .ok_or(OrderError::InFlight)?;
        if existing.request_digest != order.request_digest {
            return Err(OrderError::IdempotencyKeyReused);
        }
        match (&existing.status, &existing.failure) {
            (Status::Pending, _) => Err(OrderError::InFlight),
            (Status::Failed, Some(f)) if f.is_transient() => {
                // The last attempt failed for a passing reason: try again,
                // under a fresh reservation ID, once the last one is known
                // to hold nothing.
                if !existing.stock_released {
                    self.release_attempt(ctx, &existing).await?;
                }
                if !orders::retry(
                    &self.db,
                    &self.events,
                    &existing.id,
                    existing.attempt,
                    oms_core::time::now(),
                )
                .await?
                {
                    return Err(OrderError::InFlight);
                }
                // As the database now holds it.
                let again = Order {
                    attempt: existing.attempt + 1,
                    status: Status::Pending,
                    failure: None,
                    stock_released: true,
                    ..existing
                };
                self.place(ctx, again, &lines, quote_id).await
            }
            (Status::Failed, Some(f)) => Err(OrderError::Replayed(f.clone())),
            _ => Ok(existing),
        }
    }

    /// The saga for a PENDING order.
    async fn place(
        &self,
        ctx: &CallContext,
        order: Order,
        lines: &[Line],
        quote_id: Option<&str>,
    ) -> Result<Order, OrderError> {
        let reservation_id = order.reservation_id();
        let quote = quote_id.map(|quote_id| QuoteUse {
            quote_id: quote_id.to_owned(),
            customer_id: order.customer_id.clone(),
            order_id: order.id.clone(),
        });
        let taken = self
            .inventory
            .take(ctx, &reservation_id, lines, quote.as_ref())
            .await;
        let reservation = match taken {
            Ok(reservation) => reservation,
            // All or nothing: a refused reservation holds nothing.
            Err(InventoryError::Refused(refusal)) => {
                saga_outcome("refused");
                return self.fail(&order, OrderError::Upstream(refusal)).await;
            }
            Err(e) => return self.compensate(ctx, &order, e.into()).await,
        };
        let (currency, total, order_lines) = match priced_lines(&reservation) {
            Ok(priced) => priced,
            Err(e) => return self.compensate(ctx, &order, e).await,
        };
        let now = oms_core::time::now();
        let Some(confirmed) = orders::confirm(
            &self.db,
            &self.events,
            &order,
            &currency,
            total,
            order_lines,
            now,
        )
        .await?
        else {
            return Err(OrderError::NoLongerPending {
                order_id: order.id.clone(),
            });
        };
        saga_outcome("confirmed");
        tracing::info!(order_id = %order.id, total_minor = total, currency = %currency, "order confirmed");
        Ok(confirmed)
    }

    /// Releases whatever the attempt may hold, then fails the order. If the
    /// release itself fails, the order fails all the same, marked as maybe
    /// holding stock: recovery (or the next retry) releases it.
    async fn compensate(
        &self,
        ctx: &CallContext,
        order: &Order,
        error: OrderError,
    ) -> Result<Order, OrderError> {
        let released = match self.inventory.release(ctx, &order.reservation_id()).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(order_id = %order.id, error = %e, "release failed; recovery will finish it");
                false
            }
        };
        saga_outcome(if released {
            "compensated"
        } else {
            "compensation_failed"
        });
        self.fail_with(order, error, released).await
    }

    async fn fail(&self, order: &Order, error: OrderError) -> Result<Order, OrderError> {
        self.fail_with(order, error, true).await
    }

    async fn fail_with(
        &self,
        order: &Order,
        error: OrderError,
        released: bool,
    ) -> Result<Order, OrderError> {
        orders::fail(
            &self.db,
            &self.events,
            &order.id,
            &error.to_failure(),
            released,
            oms_core::time::now(),
        )
        .await?;
        tracing::info!(order_id = %order.id, error = %error, "order failed");
        Err(error)
    }

    /// Releases the reservation of the order's current attempt (one never
    /// made is as good) and notes it.
    pub(crate) async fn release_attempt(
        &self,
        ctx: &CallContext,
        order: &Order,
    ) -> Result<(), OrderError> {
        self.inventory.release(ctx, &order.reservation_id()).await?;
        orders::mark_stock_released(&self.db, &order.id, oms_core::time::now()).await?;
        Ok(())
    }

    /// One order the caller may see.
    pub async fn get(&self, caller: Caller<'_>, order_id: &str) -> Result<Order, OrderError> {
        orders::get(&self.db, order_id)
            .await?
            .filter(|o| caller.may_see(o))
            .ok_or(OrderError::NotFound)
    }

    /// Follows one order the caller may see (NOT_FOUND otherwise).
    pub async fn watch(&self, caller: Caller<'_>, order_id: &str) -> Result<Watch, OrderError> {
        // Subscribed before the first read, so no change falls between.
        let changes = self.events.changes();
        self.get(caller, order_id).await?;
        Ok(Watch {
            orders: self.clone(),
            caller_id: caller.id.to_owned(),
            role: caller.role,
            order_id: order_id.to_owned(),
            changes,
            last: None,
        })
    }

    /// A page of orders, newest first: the caller's own, or for an admin
    /// every order or one customer's; in a status and created between two
    /// times when the query says.
    pub async fn list(
        &self,
        caller: Caller<'_>,
        query: &crate::input::OrderQuery,
    ) -> Result<(Vec<Order>, Option<String>), OrderError> {
        let customer = match caller.role {
            Role::Admin => query.customer_id.as_deref(),
            // Customers always see their own; asking for someone else's is
            // answered with their own (nothing to probe).
            Role::Customer => Some(caller.id),
        };
        let filter = orders::ListFilter {
            customer,
            status: query.status,
            created_from: query.created_from,
            created_until: query.created_until,
        };
        let page = orders::list(
            &self.db,
            &filter,
            query.cursor.as_deref(),
            query.page_size + 1,
        )
        .await?;
        Ok(oms_core::paging::split_page(page, query.page_size, |o| {
            o.id.clone()
        }))
    }

    /// Cancels a CONFIRMED order and returns its stock. Idempotent.
    pub async fn cancel(
        &self,
        ctx: &CallContext,
        caller: Caller<'_>,
        order_id: &str,
        reason: &str,
    ) -> Result<Order, OrderError> {
        let order = self.get(caller, order_id).await?;
        match order.status {
            Status::Cancelled => return Ok(order),
            Status::Pending => return Err(OrderError::InFlight),
            Status::Confirmed => {}
            other => {
                return Err(OrderError::InvalidTransition {
                    from: other.as_str(),
                    to: Status::Cancelled.as_str(),
                });
            }
        }
        let now = oms_core::time::now();
        if !orders::transition(
            &self.db,
            &self.events,
            order_id,
            Status::Confirmed,
            Status::Cancelled,
            Some(reason),
            now,
        )
        .await?
        {
            // Shipped or cancelled meanwhile: answer from the new state.
            return Box::pin(self.cancel(ctx, caller, order_id, reason)).await;
        }
        // The status changed first, so a concurrent shipment cannot win
        // after the stock went back; recovery returns it if this fails.
        self.return_stock(ctx, &order).await;
        tracing::info!(order_id, "order cancelled");
        self.get(caller, order_id).await
    }

    /// Returns a cancelled order's stock; a failure is left to recovery.
    async fn return_stock(&self, ctx: &CallContext, order: &Order) {
        if let Err(e) = self.release_attempt(ctx, order).await {
            tracing::warn!(order_id = %order.id, error = %e, "stock not returned yet; recovery will retry");
        }
    }

    /// CONFIRMED → SHIPPED → DELIVERED, nothing else (admins). Asking for
    /// the status the order already has is answered with the order.
    pub async fn advance(
        &self,
        caller: Caller<'_>,
        order_id: &str,
        to: Status,
    ) -> Result<Order, OrderError> {
        let order = self.get(caller, order_id).await?;
        if order.status == to && matches!(to, Status::Shipped | Status::Delivered) {
            return Ok(order);
        }
        let from = match to {
            Status::Shipped => Status::Confirmed,
            Status::Delivered => Status::Shipped,
            _ => order.status,
        };
        let allowed = order.status == from && matches!(to, Status::Shipped | Status::Delivered);
        if !allowed
            || !orders::transition(
                &self.db,
                &self.events,
                order_id,
                from,
                to,
                None,
                oms_core::time::now(),
            )
            .await?
        {
            return Err(OrderError::InvalidTransition {
                from: order.status.as_str(),
                to: to.as_str(),
            });
        }
        tracing::info!(order_id, status = to.as_str(), "order status changed");
        self.get(caller, order_id).await
    }
}

/// The reservation's lines as order lines, with the order's currency and
/// total, by the pricing rule quotes follow too.
pub(crate) fn priced_lines(
    reservation: &Reservation,
) -> Result<(String, i64, Vec<OrderLine>), OrderError> {
    let priced = oms_core::money::price_lines(reservation.lines.iter().map(|line| {
        (
            line.unit_price.currency_code.as_str(),
            line.unit_price.amount_minor,
            line.quantity,
        )
    }))
    .map_err(|e| match e {
        oms_core::money::PricingError::MixedCurrencies { .. } => OrderError::MixedCurrencies,
        oms_core::money::PricingError::Overflow { .. } => OrderError::TotalOverflow,
    })?;
    let lines = reservation
        .lines
        .iter()
        .zip(priced.line_totals_minor)
        .map(|(line, line_total_minor)| OrderLine {
            product_id: line.product_id.clone(),
            sku: line.sku.clone(),
            product_name: line.name.clone(),
            quantity: line.quantity,
            unit_price_minor: line.unit_price.amount_minor,
            line_total_minor,
        })
        .collect();
    Ok((priced.currency_code, priced.total_minor, lines))
}

/// How often a watcher re-reads its order when no change was announced in
/// this process (another replica may have made one).
const WATCH_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// One caller following one order (WatchOrder).
#[derive(Debug)]
pub struct Watch {
    orders: Orders,
    caller_id: String,
    role: Role,
    order_id: String,
    changes: tokio::sync::broadcast::Receiver<String>,
    /// What was handed out last.
    last: Option<Order>,
}

impl Watch {
    /// The order now, the first time; after that the order each time it
    /// changes; `None` once a final state was handed out.
    pub async fn next(&mut self) -> Result<Option<Order>, OrderError> {
        loop {
            if let Some(last) = &self.last {
                if last.status.is_final() {
                    return Ok(None);
                }
                tokio::select! {
                    () = changed(&mut self.changes, &self.order_id) => {}
                    () = tokio::time::sleep(WATCH_POLL) => {}
                }
            }
            let caller = Caller {
                id: &self.caller_id,
                role: self.role,
            };
            let now = self.orders.get(caller, &self.order_id).await?;
            if self.last.as_ref() != Some(&now) {
                self.last = Some(now.clone());
                return Ok(Some(now));
            }
        }
    }
}

/// Waits until `order_id` is announced as changed (or announcements were
/// missed, which may include it).
async fn changed(changes: &mut tokio::sync::broadcast::Receiver<String>, order_id: &str) {
    loop {
        match changes.recv().await {
            Ok(id) if id == order_id => return,
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
            // Never while the service runs; the poll still reads.
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// How a saga can end, as `oms_saga_outcomes_total` labels them.
pub(crate) const SAGA_OUTCOMES: [&str; 4] =
    ["confirmed", "refused", "compensated", "compensation_failed"];

/// Counts how a saga ended (`confirmed`, `refused` by product-svc,
/// `compensated` after a failure, `compensation_failed` when the release
/// failed too and recovery must finish it): the saga alerts
/// (deploy/monitoring/rules.yml) read it.
fn saga_outcome(outcome: &'static str) {
    metrics::counter!("oms_saga_outcomes_total", "outcome" => outcome).increment(1);
}
