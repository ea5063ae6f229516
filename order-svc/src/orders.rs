//! The order rules. CreateOrder is a saga over product-svc: record the
//! order PENDING, reserve, commit, confirm; on a business refusal nothing
//! is held and the order fails with product-svc's error; on a dependency
//! failure the reservation is released and the order fails (or, if even
//! that fails, recovery finishes it). No wire types here but the error
//! statuses product-svc answered with.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kit::auth::Role;
use oms_proto::product::v1 as product_pb;
use sea_orm::DatabaseConnection;
use tonic::Code;

use crate::clients::{CallContext, Inventory};
use crate::config::Faults;
use crate::error::{OrderError, retryable};
use crate::input::Line;
use crate::store::orders::{self, Line as OrderLine, Order, Status};

/// The orders of one service instance.
#[derive(Debug, Clone)]
pub struct Orders {
    pub(crate) db: DatabaseConnection,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) faults: Faults,
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

/// Whether a product-svc error means "no, for a reason" rather than "could
/// not answer".
fn is_business(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange
    )
}

impl Orders {
    /// Places an order, or returns the one this request ID already placed.
    pub async fn create(
        &self,
        ctx: &CallContext,
        customer_id: &str,
        request_id: &str,
        lines: Vec<Line>,
    ) -> Result<Order, OrderError> {
        let now = kit::time::now();
        let order = Order {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: customer_id.to_owned(),
            request_id: request_id.to_owned(),
            request_digest: kit::lines::digest(&lines),
            status: Status::Pending,
            currency_code: String::new(),
            total_minor: 0,
            attempt: 1,
            cancel_reason: None,
            stock_released: false,
            failure: None,
            lines: Vec::new(),
            create_time: now,
            update_time: now,
        };
        if orders::insert_pending(&self.db, &order).await? {
            return self.place(ctx, order, &lines).await;
        }
        let existing = orders::find_by_request(&self.db, customer_id, request_id)
            .await?
            .ok_or(OrderError::InFlight)?;
        if existing.request_digest != order.request_digest {
            return Err(OrderError::IdempotencyKeyReused);
        }
        match (&existing.status, &existing.failure) {
            (Status::Pending, _) => Err(OrderError::InFlight),
            (Status::Failed, Some(f)) if retryable(Code::from(f.code)) => {
                // The last attempt failed for a passing reason: try again,
                // under a fresh reservation ID, once the last one is known
                // to hold nothing.
                if !existing.stock_released {
                    self.release_attempt(ctx, &existing).await?;
                }
                if !orders::retry(&self.db, &existing.id, existing.attempt, kit::time::now())
                    .await?
                {
                    return Err(OrderError::InFlight);
                }
                let again = Order {
                    attempt: existing.attempt + 1,
                    status: Status::Pending,
                    failure: None,
                    ..existing
                };
                self.place(ctx, again, &lines).await
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
    ) -> Result<Order, OrderError> {
        let reservation_id = order.reservation_id();
        let request = product_pb::ReserveStockRequest {
            reservation_id: reservation_id.clone(),
            lines: lines
                .iter()
                .map(|l| oms_proto::common::v1::LineItem {
                    product_id: l.product_id.clone(),
                    quantity: l.quantity,
                })
                .collect(),
        };
        let reservation = match self.inventory.reserve(ctx, request).await {
            Ok(reservation) => reservation,
            // All or nothing: a refused reservation holds nothing.
            Err(status) if is_business(status.code()) => {
                return self.fail(&order, OrderError::Upstream(status)).await;
            }
            Err(status) => {
                return self
                    .compensate(ctx, &order, OrderError::Dependency(status))
                    .await;
            }
        };
        if self.faults.crash_after_reserve.load(Ordering::SeqCst) {
            tracing::warn!(order_id = %order.id, "fault injected: stopping after ReserveStock");
            return Err(OrderError::Dependency(tonic::Status::unavailable(
                "injected crash after reserve",
            )));
        }
        let (currency, total, order_lines) = match priced_lines(&reservation) {
            Ok(priced) => priced,
            Err(e) => return self.compensate(ctx, &order, e).await,
        };
        match self.inventory.commit(ctx, &reservation_id).await {
            Ok(_) => {}
            Err(status) if is_business(status.code()) => {
                return self
                    .compensate(ctx, &order, OrderError::Upstream(status))
                    .await;
            }
            Err(status) => {
                return self
                    .compensate(ctx, &order, OrderError::Dependency(status))
                    .await;
            }
        }
        let now = kit::time::now();
        if !orders::confirm(&self.db, &order.id, &currency, total, &order_lines, now).await? {
            return Err(OrderError::Internal(format!(
                "order {} left PENDING while it was placed",
                order.id
            )));
        }
        tracing::info!(order_id = %order.id, total_minor = total, currency = %currency, "order confirmed");
        orders::get(&self.db, &order.id)
            .await?
            .ok_or(OrderError::NotFound)
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
            Ok(_) => true,
            Err(status) if status.code() == Code::NotFound => true,
            Err(status) => {
                tracing::warn!(order_id = %order.id, error = %status.message(), "release failed; recovery will finish it");
                false
            }
        };
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
            &order.id,
            &error.to_failure(),
            released,
            kit::time::now(),
        )
        .await?;
        tracing::info!(order_id = %order.id, error = %error, "order failed");
        Err(error)
    }

    /// Releases the reservation of the order's current attempt and notes
    /// it; NOT_FOUND means it never existed, which is as good.
    pub(crate) async fn release_attempt(
        &self,
        ctx: &CallContext,
        order: &Order,
    ) -> Result<(), OrderError> {
        match self.inventory.release(ctx, &order.reservation_id()).await {
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(OrderError::Dependency(status)),
        }
        orders::mark_stock_released(&self.db, &order.id, kit::time::now()).await?;
        Ok(())
    }

    /// One order the caller may see.
    pub async fn get(&self, caller: Caller<'_>, order_id: &str) -> Result<Order, OrderError> {
        orders::get(&self.db, order_id)
            .await?
            .filter(|o| caller.may_see(o))
            .ok_or(OrderError::NotFound)
    }

    /// A page of orders, newest first: the caller's own, or for an admin
    /// every order or one customer's.
    pub async fn list(
        &self,
        caller: Caller<'_>,
        customer_id: Option<&str>,
        status: Option<Status>,
        before: Option<&str>,
        page_size: u64,
    ) -> Result<(Vec<Order>, Option<String>), OrderError> {
        let customer = match caller.role {
            Role::Admin => customer_id,
            // Customers always see their own; asking for someone else's is
            // answered with their own (nothing to probe).
            Role::Customer => Some(caller.id),
        };
        let page = orders::list(&self.db, customer, status, before, page_size + 1).await?;
        Ok(kit::paging::split_page(page, page_size, |o| o.id.clone()))
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
        let now = kit::time::now();
        if !orders::transition(
            &self.db,
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
            || !orders::transition(&self.db, order_id, from, to, None, kit::time::now()).await?
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
/// total; all lines must share one currency and the sums must fit.
pub(crate) fn priced_lines(
    reservation: &product_pb::Reservation,
) -> Result<(String, i64, Vec<OrderLine>), OrderError> {
    let mut currency: Option<String> = None;
    let mut total: i64 = 0;
    let mut lines = Vec::with_capacity(reservation.lines.len());
    for line in &reservation.lines {
        let price = line.unit_price.clone().unwrap_or_default();
        match &currency {
            None => currency = Some(price.currency_code.clone()),
            Some(c) if *c != price.currency_code => return Err(OrderError::MixedCurrencies),
            Some(_) => {}
        }
        let line_total = price
            .amount_minor
            .checked_mul(i64::from(line.quantity))
            .ok_or(OrderError::TotalOverflow)?;
        total = total
            .checked_add(line_total)
            .ok_or(OrderError::TotalOverflow)?;
        lines.push(OrderLine {
            product_id: line.product_id.clone(),
            sku: line.sku.clone(),
            product_name: line.name.clone(),
            quantity: line.quantity,
            unit_price_minor: price.amount_minor,
            line_total_minor: line_total,
        });
    }
    Ok((currency.unwrap_or_default(), total, lines))
}
