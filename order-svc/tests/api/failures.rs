//! Errors and faults: business refusals passed on, dependencies down, a
//! crash mid-saga, user-svc gone with a cached token, a service token
//! product-svc no longer accepts.

use std::sync::atomic::Ordering;
use std::time::Duration;

use oms_proto::order::v1 as pb;
use testkit::{
    TestDb, error_metadata as metadata, error_reason as reason, eventually, violated_fields,
};
use tonic::Code;

use crate::helpers::{start, start_orders};

testkit::test_on_each_db!(
    product_svc_refusals_reach_the_client_unchanged_and_are_replayed,
    bad_lines_are_refused_before_anything_is_held,
    product_svc_down_gives_unavailable_and_holds_nothing,
    a_crash_after_the_stock_is_taken_is_recovered_as_confirmed,
    orders_go_on_while_user_svc_is_down_with_a_cached_token,
    a_refused_service_token_is_renewed_once_and_the_call_retried,
    two_replicas_recovering_together_confirm_each_stuck_order_once,
);

async fn product_svc_refusals_reach_the_client_unchanged_and_are_replayed(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let refused_before = saga_outcomes("refused");
    let (a, b) = (
        mesh.product("A", 100, 5).await,
        mesh.product("B", 100, 1).await,
    );
    let short = mesh
        .order(&mesh.alice, "short-1", &[(&a.id, 2), (&b.id, 3)])
        .await
        .unwrap_err();
    assert_eq!(
        (short.code(), reason(&short).as_str()),
        (Code::FailedPrecondition, "INSUFFICIENT_STOCK")
    );
    assert_eq!(
        (
            metadata(&short, "productId"),
            metadata(&short, "requested"),
            metadata(&short, "available")
        ),
        (b.id.clone(), "3".into(), "1".into())
    );
    assert_eq!(mesh.stock(&a.id).await, (5, 0, 5));
    // The order is stored as FAILED; a retry gets the same answer.
    let replay = mesh
        .order(&mesh.alice, "short-1", &[(&a.id, 2), (&b.id, 3)])
        .await
        .unwrap_err();
    assert_eq!(
        (replay.code(), replay.message(), replay.details()),
        (short.code(), short.message(), short.details())
    );
    assert_eq!(mesh.count_orders("failed").await, 1);
    assert_eq!(
        saga_outcomes("refused") - refused_before,
        1,
        "one saga refused; the replay ran none"
    );

    let ghost = uuid::Uuid::now_v7().to_string();
    let unknown = mesh
        .order(&mesh.alice, "ghost-1", &[(&ghost, 1)])
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), reason(&unknown).as_str()),
        (Code::NotFound, "PRODUCT_NOT_FOUND")
    );
}

async fn bad_lines_are_refused_before_anything_is_held(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 5).await;
    let bad = mesh
        .order(&mesh.alice, "", &[(&a.id, 0), ("nope", 1), (&a.id, 10_001)])
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        [
            "lines[0].quantity",
            "lines[1].product_id",
            "lines[2].quantity",
            "lines[2].product_id",
            "request_id"
        ]
    );
    let anonymous = mesh
        .orders()
        .create_order(pb::CreateOrderRequest {
            lines: crate::helpers::lines(&[(&a.id, 1)]),
            request_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(
        mesh.count_orders("pending").await + mesh.count_orders("failed").await,
        0
    );
}

async fn product_svc_down_gives_unavailable_and_holds_nothing(db: TestDb) {
    let mut mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 5).await;
    mesh.order(&mesh.alice, "warm-up", &[(&a.id, 1)])
        .await
        .unwrap();
    mesh.stop_products().await;
    let unreleased_before = saga_outcomes("compensation_failed");

    let down = mesh
        .order(&mesh.alice, "while-down", &[(&a.id, 2)])
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert_eq!(
        saga_outcomes("compensation_failed") - unreleased_before,
        1,
        "the release could not reach product-svc either: counted for the alert"
    );
    assert_eq!(
        mesh.count_orders("confirmed").await,
        1,
        "only the warm-up order"
    );

    mesh.restart_products().await;
    assert_eq!(
        mesh.stock(&a.id).await,
        (4, 0, 4),
        "stock intact after it returns"
    );
    // The same request, retried now, goes through.
    let retried = mesh
        .order(&mesh.alice, "while-down", &[(&a.id, 2)])
        .await
        .unwrap();
    assert_eq!(retried.status(), pb::OrderStatus::Confirmed);
    assert_eq!(mesh.stock(&a.id).await, (2, 0, 2));
}

async fn a_crash_after_the_stock_is_taken_is_recovered_as_confirmed(db: TestDb) {
    let mut mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 5).await;
    // The saga takes the stock, then never gets to confirm the order.
    mesh.stall_after_take.store(true, Ordering::SeqCst);
    let mut request = tonic::Request::new(pb::CreateOrderRequest {
        lines: crate::helpers::lines(&[(&a.id, 2)]),
        request_id: "crash-1".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", mesh.alice).parse().unwrap(),
    );
    // The client gives up once the stock is taken (as a deadline would,
    // but without racing a cold token, JWKS fetch and ReserveStock on a
    // loaded machine).
    let call = {
        let mut orders = mesh.orders();
        tokio::spawn(async move { orders.create_order(request).await })
    };
    eventually(
        Duration::from_secs(30),
        "the saga to take the stock",
        || async { (mesh.count_reservations("committed").await == 1).then_some(()) },
    )
    .await;
    assert!(!call.is_finished(), "the saga is stalled: no answer yet");
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(mesh.count_orders("pending").await, 1);
    assert_eq!(
        mesh.stock(&a.id).await,
        (3, 0, 3),
        "taken for the dead saga"
    );

    // order-svc dies; a new one with prompt recovery finds the PENDING
    // order and its committed reservation, and confirms the order at the
    // reservation's prices.
    let (users, products) = (mesh.users_relay.addr, mesh.products_relay.addr);
    let dead = std::mem::replace(
        &mut mesh.orders,
        start_orders(
            &mesh.orders_db,
            users,
            products,
            &[
                ("OMS_ORDER_RECOVERY_SECS", "1"),
                ("OMS_ORDER_RECOVERY_AGE_SECS", "1"),
            ],
            Default::default(),
            &mesh.broker,
        )
        .await,
    );
    dead.stop().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "recovery to confirm the crashed order",
        || async { (mesh.count_orders("confirmed").await == 1).then_some(()) },
    )
    .await;
    assert_eq!(mesh.count_orders("pending").await, 0);
    assert_eq!(mesh.stock(&a.id).await, (3, 0, 3), "taken once");

    // A retry of the same request answers with that order, taking nothing
    // more.
    let retried = mesh
        .order(&mesh.alice, "crash-1", &[(&a.id, 2)])
        .await
        .unwrap();
    assert_eq!(retried.status(), pb::OrderStatus::Confirmed);
    assert_eq!(retried.total.unwrap().amount_minor, 200);
    assert_eq!(mesh.count_reservations("committed").await, 1);
    assert_eq!(mesh.stock(&a.id).await, (3, 0, 3));
}

async fn orders_go_on_while_user_svc_is_down_with_a_cached_token(db: TestDb) {
    let mut mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 5).await;
    // The first order fetches the service token and both JWKS caches fill.
    mesh.order(&mesh.alice, "before", &[(&a.id, 1)])
        .await
        .unwrap();
    mesh.stop_users().await;
    let during = mesh
        .order(&mesh.alice, "during", &[(&a.id, 1)])
        .await
        .unwrap();
    assert_eq!(during.status(), pb::OrderStatus::Confirmed);
}

async fn a_refused_service_token_is_renewed_once_and_the_call_retried(db: TestDb) {
    let mut mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 5).await;
    mesh.order(&mesh.alice, "before", &[(&a.id, 1)])
        .await
        .unwrap();

    // user-svc comes back with a new signing key and product-svc with an
    // empty JWKS cache: order-svc's cached token, still within its
    // lifetime, is now signed by a key product-svc has never seen.
    let renewed_before = token_renewals();
    mesh.restart_users().await;
    mesh.restart_products().await;

    // Alice's own token was verified by order-svc before; its cache still
    // holds the old key, so only the service token is refused.
    let after = mesh
        .order(&mesh.alice, "after", &[(&a.id, 2)])
        .await
        .unwrap();
    assert_eq!(after.status(), pb::OrderStatus::Confirmed);
    assert_eq!(mesh.stock(&a.id).await, (2, 0, 2));
    assert_eq!(
        token_renewals() - renewed_before,
        1,
        "one renewal after the refusal, then the retried call"
    );
}

/// Service tokens order-svc got from user-svc so far (this test process
/// runs one order-svc; nextest gives every test its own process).
fn token_renewals() -> u64 {
    oms_telemetry::metrics::render()
        .lines()
        .find(|l| l.starts_with("oms_service_token_renewals_total") && l.contains("outcome=\"ok\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Sagas of order-svc that ended with `outcome` so far (this test process
/// runs one order-svc).
fn saga_outcomes(outcome: &str) -> u64 {
    let label = format!("outcome=\"{outcome}\"");
    oms_telemetry::metrics::render()
        .lines()
        .find(|l| l.starts_with("oms_saga_outcomes_total") && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

async fn two_replicas_recovering_together_confirm_each_stuck_order_once(db: TestDb) {
    let mut mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 10).await;
    // Three sagas take their stock, then never get to confirm; their
    // callers give up.
    mesh.stall_after_take.store(true, Ordering::SeqCst);
    let calls: Vec<_> = (0..3)
        .map(|n| {
            let mut request = tonic::Request::new(pb::CreateOrderRequest {
                lines: crate::helpers::lines(&[(&a.id, 1)]),
                request_id: format!("stuck-{n}"),
                ..Default::default()
            });
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {}", mesh.alice).parse().unwrap(),
            );
            let mut orders = mesh.orders();
            tokio::spawn(async move { orders.create_order(request).await })
        })
        .collect();
    eventually(
        Duration::from_secs(30),
        "the sagas to take their stock",
        || async { (mesh.count_reservations("committed").await == 3).then_some(()) },
    )
    .await;
    for call in calls {
        call.abort();
    }
    assert_eq!(mesh.count_orders("pending").await, 3);

    // The stalled instance dies; two replicas on its database recover at
    // once, every second, each over the same stuck orders.
    let (users, products) = (mesh.users_relay.addr, mesh.products_relay.addr);
    let recovering = [
        ("OMS_ORDER_RECOVERY_SECS", "1"),
        ("OMS_ORDER_RECOVERY_AGE_SECS", "1"),
    ];
    let mut twins = Vec::new();
    for _ in 0..2 {
        twins.push(
            start_orders(
                &mesh.orders_db,
                users,
                products,
                &recovering,
                Default::default(),
                &mesh.broker,
            )
            .await,
        );
    }
    let (first, second) = (twins.remove(0), twins.remove(0));
    let dead = std::mem::replace(&mut mesh.orders, first);
    dead.stop().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "recovery to confirm the stuck orders",
        || async { (mesh.count_orders("confirmed").await == 3).then_some(()) },
    )
    .await;
    const CONFIRMED: &str = "oms.order.v1.OrderConfirmed";
    eventually(
        Duration::from_secs(30),
        "the confirmations' events",
        || async { (mesh.on_bus(CONFIRMED).len() >= 3).then_some(()) },
    )
    .await;
    let rounds = || {
        testkit::counter(
            "background_task_rounds_total",
            "task=\"recovery resolved unfinished orders\"",
        )
    };
    let rounds_then = rounds();
    eventually(
        Duration::from_secs(30),
        "two more rounds of each replica",
        || async { (rounds() >= rounds_then + 4).then_some(()) },
    )
    .await;
    // Later rounds of both replicas found nothing left to do.
    assert_eq!(
        mesh.published(CONFIRMED).await.len(),
        3,
        "each order confirmed once"
    );
    assert_eq!(mesh.count_orders("pending").await, 0);
    assert_eq!(mesh.count_reservations("committed").await, 3);
    assert_eq!(mesh.stock(&a.id).await, (7, 0, 7), "each unit taken once");
    second.stop().await.unwrap();
}
