//! Every row of recovery's state table, and what it leaves alone.

use std::time::Duration;

use super::fake::{Op, unavailable};
use super::{Harness, harness, line};
use crate::inventory::{CallContext, Line, ReservationState};
use crate::model::{Order, Status};
use crate::recovery::recover;
use crate::store::orders as store;

/// Orders younger than this are a live saga's; recovery leaves them.
const AGE: Duration = Duration::from_secs(60);

/// A PENDING order recorded `ago` before now, as a saga that died left it.
async fn pending(h: &Harness, lines: &[Line], ago: chrono::Duration) -> Order {
    let order = Order::pending(
        "alice",
        &uuid::Uuid::now_v7().to_string(),
        oms_core::lines::digest(lines),
        oms_core::time::now() - ago,
    );
    assert!(
        store::insert_pending(&h.orders.db, &h.orders.events, &order)
            .await
            .unwrap()
    );
    order
}

async fn stale(h: &Harness, lines: &[Line]) -> Order {
    pending(h, lines, chrono::Duration::hours(1)).await
}

async fn reload(h: &Harness, order: &Order) -> Order {
    store::get(&h.orders.db, &order.id).await.unwrap().unwrap()
}

async fn with_product() -> Harness {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 10);
    h
}

#[tokio::test]
async fn pending_with_a_committed_reservation_is_confirmed_at_the_reserved_prices() {
    let h = with_product().await;
    let lines = [line("p1", 2)];
    let order = stale(&h, &lines).await;
    h.inventory
        .put(&order.reservation_id(), ReservationState::Committed, &lines);
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 1);
    let order = reload(&h, &order).await;
    assert_eq!(order.status, Status::Confirmed);
    assert_eq!(
        (order.currency_code.as_str(), order.total_minor),
        ("USD", 500)
    );
    assert_eq!(order.lines[0].unit_price_minor, 250);
    assert_eq!(h.inventory.available("p1"), 8, "the units stay taken");
}

#[tokio::test]
async fn pending_with_stock_taken_in_several_currencies_is_released_and_failed_for_that() {
    let h = with_product().await;
    h.inventory.add_product("p2", "EUR", 300, 10);
    let lines = [line("p1", 2), line("p2", 1)];
    let order = stale(&h, &lines).await;
    // The saga took the stock, then died before it could give it back.
    h.inventory
        .put(&order.reservation_id(), ReservationState::Committed, &lines);
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 1);
    let order = reload(&h, &order).await;
    assert_eq!((order.status, order.stock_released), (Status::Failed, true));
    let failure = order.failure.unwrap();
    assert!(!failure.is_transient(), "a retry would fail the same way");
    assert_eq!(
        (h.inventory.available("p1"), h.inventory.available("p2")),
        (10, 10),
        "every unit back"
    );
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 0, "done once");
}

#[tokio::test]
async fn pending_with_a_held_reservation_is_released_and_failed_as_transient() {
    let h = with_product().await;
    let lines = [line("p1", 2)];
    let order = stale(&h, &lines).await;
    h.inventory
        .put(&order.reservation_id(), ReservationState::Reserved, &lines);
    assert_eq!(h.inventory.available("p1"), 8);
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 1);
    let order = reload(&h, &order).await;
    assert_eq!((order.status, order.stock_released), (Status::Failed, true));
    assert!(
        order.failure.unwrap().is_transient(),
        "a retry may place it"
    );
    assert_eq!(h.inventory.available("p1"), 10);
}

#[tokio::test]
async fn pending_with_a_released_expired_or_missing_reservation_is_failed() {
    let h = with_product().await;
    let lines = [line("p1", 2)];
    let released = stale(&h, &lines).await;
    h.inventory.put(
        &released.reservation_id(),
        ReservationState::Released,
        &lines,
    );
    let expired = stale(&h, &lines).await;
    h.inventory
        .put(&expired.reservation_id(), ReservationState::Expired, &lines);
    let never_made = stale(&h, &lines).await;
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 3);
    for order in [released, expired, never_made] {
        let order = reload(&h, &order).await;
        assert_eq!((order.status, order.stock_released), (Status::Failed, true));
    }
    assert!(
        h.inventory.calls(Op::Release).is_empty(),
        "nothing was held"
    );
    assert_eq!(h.inventory.available("p1"), 10);
}

#[tokio::test]
async fn cancelled_or_failed_orders_still_holding_stock_are_released() {
    let h = with_product().await;
    let ctx = CallContext::default();
    // A cancellation whose release failed: status changed, stock not back.
    let confirmed = h
        .orders
        .create(&ctx, "alice", "c1", vec![line("p1", 2)], None)
        .await
        .unwrap();
    assert!(
        store::transition(
            &h.orders.db,
            &h.orders.events,
            &confirmed.id,
            Status::Confirmed,
            Status::Cancelled,
            Some("changed my mind"),
            oms_core::time::now(),
        )
        .await
        .unwrap()
    );
    // A failed saga whose compensation failed.
    h.inventory.lose_next_answer(Op::Take, unavailable());
    h.inventory.fail_next(Op::Release, unavailable());
    h.orders
        .create(&ctx, "alice", "f1", vec![line("p1", 3)], None)
        .await
        .unwrap_err();
    assert_eq!(h.inventory.available("p1"), 5);

    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 2);
    assert_eq!(h.inventory.available("p1"), 10, "every unit back");
    let cancelled = reload(&h, &confirmed).await;
    assert!(cancelled.stock_released);
    // Done once: the next round finds nothing.
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 0);
}

#[tokio::test]
async fn an_unreachable_inventory_defers_the_order_to_the_next_round() {
    let h = with_product().await;
    let lines = [line("p1", 2)];
    let order = stale(&h, &lines).await;
    h.inventory
        .put(&order.reservation_id(), ReservationState::Reserved, &lines);
    h.inventory.fail_next(Op::Get, unavailable());
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 0);
    assert_eq!(reload(&h, &order).await.status, Status::Pending);
    // Next round, inventory answers.
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 1);
    assert_eq!(reload(&h, &order).await.status, Status::Failed);
}

#[tokio::test]
async fn a_pending_order_younger_than_the_recovery_age_is_left_to_its_saga() {
    let h = with_product().await;
    let lines = [line("p1", 2)];
    let order = pending(&h, &lines, chrono::Duration::seconds(1)).await;
    h.inventory
        .put(&order.reservation_id(), ReservationState::Reserved, &lines);
    assert_eq!(recover(&h.orders, AGE).await.unwrap(), 0);
    assert!(h.inventory.calls(Op::Get).is_empty());
    assert_eq!(reload(&h, &order).await.status, Status::Pending);
}
