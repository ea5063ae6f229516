//! Recovery: finishes what a crash or a failed call left half-done, from
//! the reservation's state in product-svc. Runs at start-up and then
//! periodically; every step is a conditional update, so replicas running
//! it together do each thing once.
//!
//! - PENDING, reservation COMMITTED → CONFIRMED with the reservation's
//!   price snapshots; if those cannot make one order (several currencies,
//!   a total past 64 bits) → released, FAILED with that reason, as the
//!   saga would have done.
//! - PENDING, reservation RESERVED → released, FAILED.
//! - PENDING, reservation RELEASED, EXPIRED or never made → FAILED.
//! - CANCELLED or FAILED with the reservation not known released →
//!   released.

use std::time::Duration;

use crate::error::OrderError;
use crate::inventory::{CallContext, ReservationState};
use crate::model::{Failure, Order, Status};
use crate::orders::{Orders, priced_lines};
use crate::store::orders;

/// Orders looked at per round.
const BATCH: u64 = 100;

/// Resolves unfinished orders older than `age`; returns how many it
/// changed.
pub async fn recover(orders_: &Orders, age: Duration) -> Result<usize, OrderError> {
    let older_than = oms_core::time::now()
        - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::seconds(30));
    let due = orders::unfinished(&orders_.db, older_than, BATCH).await?;
    let mut changed = 0;
    for order in due {
        match resolve(orders_, &order).await {
            Ok(true) => {
                changed += 1;
                metrics::counter!("oms_order_recoveries_total", "outcome" => "resolved")
                    .increment(1);
            }
            Ok(false) => {}
            Err(e) => {
                metrics::counter!("oms_order_recoveries_total", "outcome" => "deferred")
                    .increment(1);
                tracing::warn!(order_id = %order.id, error = %e, "cannot resolve the order yet; next round")
            }
        }
    }
    Ok(changed)
}

/// What a recovered order answers a retry with: a transient failure, so
/// the retry places it again.
fn recovered_failure() -> Failure {
    Failure::unavailable("the order could not be completed; retry with the same request_id")
}

/// One row of the state table above; `Ok(true)` if it changed the order.
pub(crate) async fn resolve(orders_: &Orders, order: &Order) -> Result<bool, OrderError> {
    let ctx = CallContext::default();
    if matches!(order.status, Status::Cancelled | Status::Failed) {
        orders_.release_attempt(&ctx, order).await?;
        return Ok(true);
    }
    let reservation_id = order.reservation_id();
    let now = oms_core::time::now();
    let reservation = orders_.inventory.get(&ctx, &reservation_id).await?;
    match reservation {
        Some(reservation) if reservation.state == ReservationState::Committed => {
            let (currency, total, lines) = match priced_lines(&reservation) {
                Ok(priced) => priced,
                Err(unpriceable) => {
                    orders_.inventory.release(&ctx, &reservation_id).await?;
                    let done = fail(orders_, order, &unpriceable.to_failure()).await?;
                    tracing::info!(order_id = %order.id, error = %unpriceable, "recovery released stock taken for lines it cannot price and failed the order");
                    return Ok(done);
                }
            };
            let done = orders::confirm(
                &orders_.db,
                &orders_.events,
                order,
                &currency,
                total,
                lines,
                now,
            )
            .await?
            .is_some();
            tracing::info!(order_id = %order.id, "recovery confirmed a committed order");
            Ok(done)
        }
        Some(reservation) if reservation.state == ReservationState::Reserved => {
            orders_.inventory.release(&ctx, &reservation_id).await?;
            let done = fail(orders_, order, &recovered_failure()).await?;
            tracing::info!(order_id = %order.id, "recovery released a held reservation and failed the order");
            Ok(done)
        }
        _ => {
            let done = fail(orders_, order, &recovered_failure()).await?;
            tracing::info!(order_id = %order.id, "recovery failed an order that holds nothing");
            Ok(done)
        }
    }
}

/// Fails `order`, which holds no stock now; `Ok(true)` if this call did.
async fn fail(orders_: &Orders, order: &Order, failure: &Failure) -> Result<bool, OrderError> {
    Ok(orders::fail(
        &orders_.db,
        &orders_.events,
        &order.id,
        failure,
        true,
        oms_core::time::now(),
    )
    .await?)
}
