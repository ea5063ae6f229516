//! CreateOrder: the saga, idempotency, concurrency, price snapshots.

use oms_proto::order::v1 as pb;
use testkit::{TestDb, assert_grpc_basics, error_reason as reason};
use tonic::Code;

use crate::helpers::{Mesh, start};

testkit::test_on_each_db!(
    starts_migrated_with_health_and_reflection,
    an_order_is_confirmed_with_price_snapshots_that_later_prices_never_touch,
    a_retry_gets_the_same_order_and_other_lines_are_refused,
    concurrent_orders_for_scarce_stock_confirm_exactly_what_exists,
    concurrent_retries_of_one_request_make_one_order,
);

async fn starts_migrated_with_health_and_reflection(db: TestDb) {
    let mesh = start(&db, &[]).await;
    assert_grpc_basics(mesh.orders.channel(), order_svc::SERVICE_INFO).await;
    let Mesh { orders, .. } = mesh;
    orders.stop().await.unwrap();
    testkit::assert_tables(db.url(), &["orders", "order_lines"]).await;
}

async fn an_order_is_confirmed_with_price_snapshots_that_later_prices_never_touch(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let mug = mesh.product("MUG", 1_250, 10).await;
    let tea = mesh.product("TEA", 399, 10).await;
    let order = mesh
        .order(&mesh.alice, "checkout-1", &[(&mug.id, 2), (&tea.id, 3)])
        .await
        .unwrap();
    assert_eq!(order.status(), pb::OrderStatus::Confirmed);
    assert_eq!(order.customer_id, mesh.alice_id);
    assert_eq!(
        order.total.clone().unwrap().amount_minor,
        2 * 1_250 + 3 * 399
    );
    let mug_line = order.lines.iter().find(|l| l.product_id == mug.id).unwrap();
    assert_eq!(
        (mug_line.sku.as_str(), mug_line.product_name.as_str()),
        ("MUG", "Product MUG")
    );
    assert_eq!(mug_line.line_total.clone().unwrap().amount_minor, 2_500);
    assert_eq!(
        mesh.stock(&mug.id).await,
        (8, 0, 8),
        "committed: the units left stock"
    );

    mesh.set_price(&mug.id, 9_999).await;
    let later = mesh.get(&mesh.alice, &order.id).await.unwrap();
    assert_eq!(later, order, "a price change never touches a placed order");
    assert_eq!(mesh.count_reservations("committed").await, 1);
}

async fn a_retry_gets_the_same_order_and_other_lines_are_refused(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let mug = mesh.product("MUG", 500, 10).await;
    let first = mesh
        .order(&mesh.alice, "retry-1", &[(&mug.id, 1)])
        .await
        .unwrap();
    let again = mesh
        .order(&mesh.alice, "retry-1", &[(&mug.id, 1)])
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(mesh.stock(&mug.id).await, (9, 0, 9), "stock taken once");
    let other = mesh
        .order(&mesh.alice, "retry-1", &[(&mug.id, 2)])
        .await
        .unwrap_err();
    assert_eq!(
        (other.code(), reason(&other).as_str()),
        (Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED")
    );
    // Request IDs are per customer: Bob's "retry-1" is his own order.
    let bobs = mesh
        .order(&mesh.bob, "retry-1", &[(&mug.id, 2)])
        .await
        .unwrap();
    assert_ne!(bobs.id, first.id);
}

async fn concurrent_orders_for_scarce_stock_confirm_exactly_what_exists(db: TestDb) {
    // 200 sagas at once against three debug-built services on two cores:
    // what is checked here is the outcome, not the latency, so calls may
    // wait as long as they need.
    let mesh = start(&db, &[("OMS_ORDER_CALL_TIMEOUT_MS", "30000")]).await;
    let hot = mesh.product("HOT", 100, 50).await;
    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let (mut orders, token, id) = (mesh.orders(), mesh.alice.clone(), hot.id.clone());
            tokio::spawn(async move {
                orders
                    .create_order(testkit::bearer(
                        pb::CreateOrderRequest {
                            lines: crate::helpers::lines(&[(&id, 1)]),
                            request_id: format!("rush-{i}"),
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await
            })
        })
        .collect();
    let (mut confirmed, mut short) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(r) if r.get_ref().order.as_ref().unwrap().status() == pb::OrderStatus::Confirmed => {
                confirmed += 1
            }
            Err(e) if reason(&e) == "INSUFFICIENT_STOCK" => short += 1,
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!((confirmed, short), (50, 150));
    assert_eq!(mesh.stock(&hot.id).await, (0, 0, 0));
    assert_eq!(mesh.count_orders("confirmed").await, 50);
    assert_eq!(
        mesh.count_reservations("reserved").await,
        0,
        "nothing left held"
    );
}

async fn concurrent_retries_of_one_request_make_one_order(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let mug = mesh.product("MUG", 100, 100).await;
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let (mut orders, token, id) = (mesh.orders(), mesh.alice.clone(), mug.id.clone());
            tokio::spawn(async move {
                orders
                    .create_order(testkit::bearer(
                        pb::CreateOrderRequest {
                            lines: crate::helpers::lines(&[(&id, 3)]),
                            request_id: "double-click".into(),
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(r) => ids.push(r.into_inner().order.unwrap().id),
            Err(e) => assert_eq!(
                e.code(),
                Code::Aborted,
                "only 'still in flight' may fail: {e:?}"
            ),
        }
    }
    ids.dedup();
    assert!(ids.len() <= 1, "never two orders: {ids:?}");
    let settled = mesh
        .order(&mesh.alice, "double-click", &[(&mug.id, 3)])
        .await
        .unwrap();
    assert!(ids.iter().all(|id| *id == settled.id));
    assert_eq!(mesh.stock(&mug.id).await, (97, 0, 97), "stock taken once");
    assert_eq!(
        testkit::count_rows(&mesh.orders_db, "orders", "request_id = 'double-click'").await,
        1
    );
}
