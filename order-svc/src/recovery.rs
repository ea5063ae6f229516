//! Recovery: finishes what a crash or a failed call left half-done, from
//! the reservation's state in product-svc. Runs at start-up and then
//! periodically; every step is a conditional update, so replicas running
//! it together do each thing once.
//!
//! - PENDING, reservation COMMITTED → CONFIRMED with the reservation's
//!   price snapshots.
//! - PENDING, reservation RESERVED → released, FAILED.
//! - PENDING, reservation RELEASED, EXPIRED or never made → FAILED.
//! - CANCELLED or FAILED with the reservation not known released →
//!   released.

use std::time::Duration;

use oms_proto::product::v1::ReservationState;
use tonic::Code;

use crate::clients::CallContext;
use crate::error::OrderError;
use crate::orders::{Orders, priced_lines};
use crate::store::orders::{self, Failure, Order, Status};

/// Orders looked at per round.
const BATCH: u64 = 100;

/// Resolves unfinished orders older than `age`; returns how many it
/// changed.
pub async fn recover(orders_: &Orders, age: Duration) -> Result<usize, OrderError> {
    let older_than =
        kit::time::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::seconds(30));
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

fn recovered_failure() -> Failure {
    Failure {
        code: i32::from(Code::Unavailable),
        message: "the order could not be completed; retry with the same request_id".to_owned(),
        details: Vec::new(),
    }
}

async fn resolve(orders_: &Orders, order: &Order) -> Result<bool, OrderError> {
    let ctx = CallContext::default();
    if matches!(order.status, Status::Cancelled | Status::Failed) {
        orders_.release_attempt(&ctx, order).await?;
        return Ok(true);
    }
    let reservation_id = order.reservation_id();
    let now = kit::time::now();
    let reservation = match orders_.inventory.get(&ctx, &reservation_id).await {
        Ok(r) => Some(r),
        Err(status) if status.code() == Code::NotFound => None,
        Err(status) => return Err(OrderError::Dependency(status)),
    };
    let state = reservation.as_ref().map(|r| r.state());
    match (state, reservation) {
        (Some(ReservationState::Committed), Some(reservation)) => {
            let (currency, total, lines) = priced_lines(&reservation)?;
            let done =
                orders::confirm(&orders_.db, &order.id, &currency, total, &lines, now).await?;
            tracing::info!(order_id = %order.id, "recovery confirmed a committed order");
            Ok(done)
        }
        (Some(ReservationState::Reserved), _) => {
            orders_
                .inventory
                .release(&ctx, &reservation_id)
                .await
                .map_err(OrderError::Dependency)?;
            let done =
                orders::fail(&orders_.db, &order.id, &recovered_failure(), true, now).await?;
            tracing::info!(order_id = %order.id, "recovery released a held reservation and failed the order");
            Ok(done)
        }
        _ => {
            let done =
                orders::fail(&orders_.db, &order.id, &recovered_failure(), true, now).await?;
            tracing::info!(order_id = %order.id, "recovery failed an order that holds nothing");
            Ok(done)
        }
    }
}
