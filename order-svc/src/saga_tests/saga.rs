//! Every branch of CreateOrder's saga.

use super::fake::{Op, refused, unavailable};
use super::{harness, line};
use crate::error::OrderError;
use crate::inventory::{CallContext, RefusalKind, ReservationState};
use crate::model::Status;
use crate::store::orders as store;

const ALICE: &str = "alice";

#[tokio::test]
async fn a_taken_order_is_confirmed_with_its_price_snapshots() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 10);
    h.inventory.add_product("p2", "USD", 100, 10);
    let order = h
        .place("r1", vec![line("p1", 2), line("p2", 3)])
        .await
        .unwrap();
    assert_eq!(order.status, Status::Confirmed);
    assert_eq!(
        (order.currency_code.as_str(), order.total_minor),
        ("USD", 800)
    );
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.lines[0].line_total_minor, 500);
    let reservation = h.inventory.reservation(&order.reservation_id()).unwrap();
    assert_eq!(reservation.state, ReservationState::Committed);
    assert_eq!(h.inventory.available("p1"), 8);
    assert!(h.inventory.calls(Op::Release).is_empty());
}

#[tokio::test]
async fn a_refused_reservation_fails_the_order_with_the_refusal_and_holds_nothing() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 1);
    let err = h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    let OrderError::Upstream(refusal) = err else {
        panic!("expected the refusal passed on, got {err:?}");
    };
    assert_eq!(refusal.kind, RefusalKind::FailedPrecondition);
    assert_eq!(refusal.details, b"opaque details");
    let stored = store::find_by_request(&h.orders.db, ALICE, "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, Status::Failed);
    assert!(stored.stock_released, "a refusal holds nothing");
    assert!(!stored.failure.unwrap().is_transient());
    // Nothing to compensate for.
    assert!(h.inventory.calls(Op::Release).is_empty());
    assert_eq!(h.inventory.available("p1"), 1);
}

#[tokio::test]
async fn an_unanswered_reservation_is_released_and_the_order_failed_as_transient() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    h.inventory.fail_next(Op::Take, unavailable());
    let err = h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    assert!(matches!(err, OrderError::Dependency(_)), "{err:?}");
    let stored = store::find_by_request(&h.orders.db, ALICE, "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, Status::Failed);
    assert!(stored.stock_released);
    assert!(stored.failure.as_ref().unwrap().is_transient());
    // The reservation may have been made before the answer was lost.
    assert_eq!(
        h.inventory.calls(Op::Release),
        vec![stored.reservation_id()]
    );
}

#[tokio::test]
async fn a_failed_release_leaves_the_order_marked_as_maybe_holding_stock() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    h.inventory.lose_next_answer(Op::Take, unavailable());
    h.inventory.fail_next(Op::Release, unavailable());
    let err = h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    assert!(matches!(err, OrderError::Dependency(_)), "{err:?}");
    let stored = store::find_by_request(&h.orders.db, ALICE, "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, Status::Failed);
    assert!(!stored.stock_released, "recovery must release it");
    assert_eq!(h.inventory.available("p1"), 3, "still taken");
}

#[tokio::test]
async fn stock_taken_but_unanswered_is_released_and_the_order_failed_as_transient() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    h.inventory.lose_next_answer(Op::Take, unavailable());
    let err = h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    assert!(matches!(err, OrderError::Dependency(_)), "{err:?}");
    assert_eq!(h.inventory.available("p1"), 5, "given back");
    let stored = store::find_by_request(&h.orders.db, ALICE, "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.stock_released),
        (Status::Failed, true)
    );
    assert!(stored.failure.as_ref().unwrap().is_transient());
    let reservation = h.inventory.reservation(&stored.reservation_id()).unwrap();
    assert_eq!(reservation.state, ReservationState::Released);
}

#[tokio::test]
async fn a_refused_take_is_passed_on_and_holds_nothing() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    h.inventory.fail_next(
        Op::Take,
        refused(RefusalKind::FailedPrecondition, "product archived"),
    );
    let err = h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    let OrderError::Upstream(refusal) = err else {
        panic!("expected the refusal passed on, got {err:?}");
    };
    assert_eq!(refusal.message, "product archived");
    assert!(h.inventory.calls(Op::Release).is_empty(), "nothing held");
    assert_eq!(h.inventory.available("p1"), 5);
}

#[tokio::test]
async fn lines_in_several_currencies_are_released_and_refused() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    h.inventory.add_product("p2", "EUR", 250, 5);
    let err = h
        .place("r1", vec![line("p1", 1), line("p2", 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, OrderError::MixedCurrencies), "{err:?}");
    assert_eq!(
        (h.inventory.available("p1"), h.inventory.available("p2")),
        (5, 5)
    );
    // Taken in one step, then given back: the order cannot price them.
    assert_eq!(h.inventory.calls(Op::Release).len(), 1);
}

#[tokio::test]
async fn a_total_past_64_bits_is_released_and_refused() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", i64::MAX / 2, 5);
    let err = h.place("r1", vec![line("p1", 3)]).await.unwrap_err();
    assert!(matches!(err, OrderError::TotalOverflow), "{err:?}");
    assert_eq!(h.inventory.available("p1"), 5);
}

#[tokio::test]
async fn a_retry_gets_the_stored_order_and_reserves_nothing_more() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    let ctx = CallContext::default();
    let first = h.place("r1", vec![line("p1", 2)]).await.unwrap();
    let again = h.place("r1", vec![line("p1", 2)]).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(h.inventory.calls(Op::Take).len(), 1);
    assert_eq!(h.inventory.available("p1"), 3);
    // Another customer's request ID is theirs alone.
    let bobs = h
        .orders
        .create(&ctx, "bob", "r1", vec![line("p1", 1)], None)
        .await
        .unwrap();
    assert_ne!(bobs.id, first.id);
}

#[tokio::test]
async fn a_request_id_reused_with_other_lines_is_refused() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    h.place("r1", vec![line("p1", 2)]).await.unwrap();
    let err = h.place("r1", vec![line("p1", 3)]).await.unwrap_err();
    assert!(matches!(err, OrderError::IdempotencyKeyReused), "{err:?}");
}

#[tokio::test]
async fn a_retry_after_a_transient_failure_places_it_under_a_new_reservation() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    h.inventory.lose_next_answer(Op::Take, unavailable());
    h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    let placed = h.place("r1", vec![line("p1", 2)]).await.unwrap();
    assert_eq!((placed.status, placed.attempt), (Status::Confirmed, 2));
    let reserved = h.inventory.calls(Op::Take);
    assert_eq!(reserved.len(), 2);
    assert_ne!(reserved[0], reserved[1], "a fresh reservation ID");
    assert_eq!(
        h.inventory.available("p1"),
        3,
        "only the second attempt holds stock"
    );
}

#[tokio::test]
async fn a_retry_after_a_refusal_answers_the_same_refusal_without_calling_inventory() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 1);
    h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    let err = h.place("r1", vec![line("p1", 2)]).await.unwrap_err();
    let OrderError::Replayed(failure) = err else {
        panic!("expected the stored failure, got {err:?}");
    };
    assert_eq!(failure.message, "insufficient stock");
    assert_eq!(h.inventory.calls(Op::Take).len(), 1);
}

#[tokio::test]
async fn a_duplicate_of_an_order_still_pending_is_in_flight() {
    let h = harness().await;
    h.inventory.add_product("p1", "USD", 250, 5);
    // A saga that died after recording the order.
    let mut pending = h.place("r0", vec![line("p1", 1)]).await.unwrap();
    pending.id = uuid::Uuid::now_v7().to_string();
    pending.request_id = "r1".to_owned();
    pending.status = Status::Pending;
    pending.request_digest = oms_core::lines::digest(&[line("p1", 1)]);
    assert!(
        store::insert_pending(&h.orders.db, &h.orders.events, &pending)
            .await
            .unwrap()
    );
    let err = h.place("r1", vec![line("p1", 1)]).await.unwrap_err();
    assert!(matches!(err, OrderError::InFlight), "{err:?}");
}
