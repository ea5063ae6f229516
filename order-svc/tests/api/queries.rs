//! Reading, listing, cancelling and advancing orders, and who may.

use oms_proto::order::v1 as pb;
use testkit::{TestDb, bearer, error_reason as reason};
use tonic::Code;

use crate::helpers::start;

testkit::test_on_each_db!(
    customers_see_only_their_own_orders,
    orders_are_listed_by_when_they_were_created,
    cancelling_returns_the_stock_once,
    status_moves_only_forward_and_only_by_admins,
    a_stored_status_this_build_does_not_know_is_an_error,
);

async fn customers_see_only_their_own_orders(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 50).await;
    let mut alices = Vec::new();
    for i in 0..3 {
        alices.push(
            mesh.order(&mesh.alice, &format!("a-{i}"), &[(&a.id, 1)])
                .await
                .unwrap()
                .id,
        );
    }
    let bobs = mesh.order(&mesh.bob, "b-0", &[(&a.id, 1)]).await.unwrap();

    let hidden = mesh.get(&mesh.alice, &bobs.id).await.unwrap_err();
    assert_eq!(
        (hidden.code(), reason(&hidden).as_str()),
        (Code::NotFound, "ORDER_NOT_FOUND")
    );
    let cancel = mesh
        .orders()
        .cancel_order(bearer(
            pb::CancelOrderRequest {
                order_id: bobs.id.clone(),
                reason: "not mine".into(),
            },
            &mesh.alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(cancel.code(), Code::NotFound);

    let list = |token: &str, customer: &str, page_token: &str| {
        let mut orders = mesh.orders();
        let request = bearer(
            pb::ListOrdersRequest {
                page_size: 2,
                page_token: page_token.into(),
                customer_id: customer.into(),
                ..Default::default()
            },
            token,
        );
        async move { orders.list_orders(request).await.unwrap().into_inner() }
    };
    // Alice, even asking for Bob's, gets her own: newest first, in pages.
    let first = list(&mesh.alice, &mesh.bob_id, "").await;
    let second = list(&mesh.alice, &mesh.bob_id, &first.next_page_token).await;
    let seen: Vec<String> = first
        .orders
        .iter()
        .chain(&second.orders)
        .map(|o| o.id.clone())
        .collect();
    alices.reverse();
    assert_eq!(seen, alices);
    assert!(second.next_page_token.is_empty());

    let admin_all = list(&mesh.admin, "", "").await;
    assert_eq!(
        admin_all.orders[0].id, bobs.id,
        "admins see everyone's, newest first"
    );
    let admin_bob = list(&mesh.admin, &mesh.bob_id, "").await;
    let bob_ids: Vec<&str> = admin_bob.orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(bob_ids, [bobs.id.as_str()]);
    assert!(mesh.get(&mesh.admin, &bobs.id).await.is_ok());
}

async fn orders_are_listed_by_when_they_were_created(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 50).await;
    let mut placed = Vec::new();
    for i in 0..3 {
        placed.push(
            mesh.order(&mesh.alice, &format!("t-{i}"), &[(&a.id, 1)])
                .await
                .unwrap(),
        );
    }
    let list = |start: Option<prost_types::Timestamp>, end: Option<prost_types::Timestamp>| {
        let mut orders = mesh.orders();
        let request = bearer(
            pb::ListOrdersRequest {
                create_time_start: start,
                create_time_end: end,
                ..Default::default()
            },
            &mesh.admin,
        );
        async move { orders.list_orders(request).await }
    };
    let ids =
        |r: pb::ListOrdersResponse| -> Vec<String> { r.orders.into_iter().map(|o| o.id).collect() };
    let middle = placed[1].create_time;
    let from_middle = ids(list(middle, None).await.unwrap().into_inner());
    assert_eq!(from_middle, [placed[2].id.clone(), placed[1].id.clone()]);
    let before_middle = ids(list(None, middle).await.unwrap().into_inner());
    assert_eq!(
        before_middle,
        [placed[0].id.clone()],
        "the end is exclusive"
    );
    let between = ids(list(middle, placed[2].create_time)
        .await
        .unwrap()
        .into_inner());
    assert_eq!(between, [placed[1].id.clone()]);
    let bad = list(
        Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        }),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

async fn cancelling_returns_the_stock_once(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 10).await;
    let order = mesh.order(&mesh.alice, "c-1", &[(&a.id, 4)]).await.unwrap();
    assert_eq!(mesh.stock(&a.id).await, (6, 0, 6));
    let cancel = || {
        let mut orders = mesh.orders();
        let request = bearer(
            pb::CancelOrderRequest {
                order_id: order.id.clone(),
                reason: "changed my mind".into(),
            },
            &mesh.alice,
        );
        async move {
            orders
                .cancel_order(request)
                .await
                .map(|r| r.into_inner().order.unwrap())
        }
    };
    assert_eq!(cancel().await.unwrap().status(), pb::OrderStatus::Cancelled);
    assert_eq!(
        cancel().await.unwrap().status(),
        pb::OrderStatus::Cancelled,
        "idempotent"
    );
    assert_eq!(mesh.stock(&a.id).await, (10, 0, 10), "returned once");
    // Its timeline: placed, confirmed, cancelled with the reason, in order.
    let cancelled = cancel().await.unwrap();
    let steps: Vec<(pb::OrderStatus, String)> = cancelled
        .timeline
        .iter()
        .map(|m| (m.status(), m.note.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (pb::OrderStatus::Pending, String::new()),
            (pb::OrderStatus::Confirmed, String::new()),
            (pb::OrderStatus::Cancelled, "changed my mind".to_owned()),
        ]
    );
    let times: Vec<i64> = cancelled
        .timeline
        .iter()
        .map(|m| {
            m.time
                .as_ref()
                .map_or(0, |t| t.seconds * 1_000_000_000 + i64::from(t.nanos))
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {times:?}"
    );
    let by_status = |status: pb::OrderStatus| {
        let mut orders = mesh.orders();
        let request = bearer(
            pb::ListOrdersRequest {
                status: status.into(),
                ..Default::default()
            },
            &mesh.alice,
        );
        async move {
            orders
                .list_orders(request)
                .await
                .unwrap()
                .into_inner()
                .orders
                .len()
        }
    };
    assert_eq!(by_status(pb::OrderStatus::Cancelled).await, 1);
    assert_eq!(by_status(pb::OrderStatus::Confirmed).await, 0);
    assert_eq!(by_status(pb::OrderStatus::Unspecified).await, 1);
}

async fn status_moves_only_forward_and_only_by_admins(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let a = mesh.product("A", 100, 10).await;
    let order = mesh.order(&mesh.alice, "s-1", &[(&a.id, 1)]).await.unwrap();
    let advance = |token: &str, status: pb::OrderStatus| {
        let mut orders = mesh.orders();
        let request = bearer(
            pb::UpdateOrderStatusRequest {
                order_id: order.id.clone(),
                status: status.into(),
            },
            token,
        );
        async move {
            orders
                .update_order_status(request)
                .await
                .map(|r| r.into_inner().order.unwrap())
        }
    };
    let by_customer = advance(&mesh.alice, pb::OrderStatus::Shipped)
        .await
        .unwrap_err();
    assert_eq!(by_customer.code(), Code::PermissionDenied);
    let skip = advance(&mesh.admin, pb::OrderStatus::Delivered)
        .await
        .unwrap_err();
    assert_eq!(
        (skip.code(), reason(&skip).as_str()),
        (Code::FailedPrecondition, "INVALID_TRANSITION")
    );
    assert_eq!(
        advance(&mesh.admin, pb::OrderStatus::Shipped)
            .await
            .unwrap()
            .status(),
        pb::OrderStatus::Shipped
    );
    let cancel_shipped = mesh
        .orders()
        .cancel_order(bearer(
            pb::CancelOrderRequest {
                order_id: order.id.clone(),
                reason: String::new(),
            },
            &mesh.alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (cancel_shipped.code(), reason(&cancel_shipped).as_str()),
        (Code::FailedPrecondition, "INVALID_TRANSITION")
    );
    assert_eq!(
        advance(&mesh.admin, pb::OrderStatus::Delivered)
            .await
            .unwrap()
            .status(),
        pb::OrderStatus::Delivered
    );
    let backwards = advance(&mesh.admin, pb::OrderStatus::Cancelled)
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), Code::InvalidArgument);
}

async fn a_stored_status_this_build_does_not_know_is_an_error(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let a = mesh.product("ODD", 100, 5).await;
    let order = mesh
        .order(&mesh.alice, "odd-0", &[(&a.id, 1)])
        .await
        .unwrap();
    let changed = testkit::execute(
        &mesh.orders_db,
        &format!(
            "UPDATE orders SET status = 'archived' WHERE id = '{}'",
            order.id
        ),
    )
    .await;
    assert_eq!(changed, 1);
    // Never read as some status it is not: the read fails, and says so
    // only in the log.
    let odd = mesh.get(&mesh.alice, &order.id).await.unwrap_err();
    assert_eq!(odd.code(), Code::Internal, "{odd:?}");
    assert!(!odd.message().contains("archived"), "{odd:?}");
}
