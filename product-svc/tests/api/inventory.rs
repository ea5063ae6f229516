//! Reservations: concurrency, all or nothing, idempotency, life cycle, expiry.

use std::time::Duration;

use oms_proto::product::v1::{self as pb, product_service_client::ProductServiceClient};
use testkit::{
    TestDb, bearer, error_metadata as metadata, error_reason as reason, eventually, violated_fields,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

testkit::test_on_each_db!(
    concurrent_reservations_never_oversell,
    a_reservation_is_all_or_nothing_and_names_every_short_line,
    reserve_is_idempotent_on_its_id,
    commit_and_release_move_stock_once_each,
    reserve_with_commit_takes_the_units_in_one_step,
    stock_history_counts_back_from_stock_on_hand,
    each_stock_move_has_an_event_with_the_stock_it_left,
    expired_reservations_are_swept_even_after_a_restart,
    validate_reports_each_line_without_holding_stock,
    unknown_archived_and_malformed_lines_are_refused,
    two_replicas_sweeping_together_return_each_unit_once,
    applied_events_older_than_the_retention_leave_the_inbox_of_two_replicas_pruning,
);

async fn applied_events_older_than_the_retention_leave_the_inbox_of_two_replicas_pruning(
    db: TestDb,
) {
    use events::schema::Inbox;
    use sea_orm::ConnectionTrait as _;
    use sea_orm::sea_query::Query;
    let conn = migrated(&db).await;
    let now = oms_core::time::now();
    let mut insert = Query::insert()
        .into_table(Inbox::Table)
        .columns([Inbox::Consumer, Inbox::EventId, Inbox::ApplyTime])
        .values_panic([
            "test".into(),
            "recent".into(),
            (now - chrono::Duration::days(2)).into(),
        ])
        .to_owned();
    for n in 0..300 {
        insert.values_panic([
            "test".into(),
            format!("old-{n}").into(),
            (now - chrono::Duration::days(20)).into(),
        ]);
    }
    conn.execute(&insert).await.unwrap();
    drop(conn);
    // Two replicas on one database, each pruning at start: the same rows,
    // deleted between them without either failing.
    let retention = [("OMS_INBOX_RETENTION", "14d")];
    let mesh = start(&db, &retention).await;
    let _twin = start_products(&db, &mesh.users, &retention, &mesh.bus).await;
    let task = "task=\"pruned the order-event inbox\"";
    eventually(
        Duration::from_secs(20),
        "both replicas' first prune round and the old entries gone",
        || async {
            let rounds = testkit::counter("background_task_rounds_total", task);
            let old = testkit::count_rows(db.url(), "inbox", "event_id LIKE 'old-%'").await;
            (rounds >= 2 && old == 0).then_some(())
        },
    )
    .await;
    assert_eq!(testkit::counter("background_task_errors_total", task), 0);
    assert_eq!(
        testkit::count_rows(db.url(), "inbox", "event_id = 'recent'").await,
        1
    );
}

async fn concurrent_reservations_never_oversell(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("HOT-1", 100, 30).await;
    let attempts = (0..120).map(|i| {
        let (mut inventory, token, id) = (mesh.inventory(), mesh.writer.clone(), p.id.clone());
        tokio::spawn(async move {
            inventory
                .reserve_stock(bearer(
                    pb::ReserveStockRequest {
                        reservation_id: format!("hot-{i}"),
                        lines: items(&[(&id, 1)]),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
        })
    });
    let (mut reserved, mut short) = (0, 0);
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(_) => reserved += 1,
            Err(e) if reason(&e) == "INSUFFICIENT_STOCK" => short += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((reserved, short), (30, 90));
    assert_eq!(stock(&mesh.get(&p.id).await), (30, 30, 0));
}

async fn a_reservation_is_all_or_nothing_and_names_every_short_line(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let (a, b, c) = (
        mesh.create("AON-A", 100, 10).await,
        mesh.create("AON-B", 100, 1).await,
        mesh.create("AON-C", 100, 0).await,
    );
    let one_short = mesh
        .reserve("aon-1", &[(&a.id, 5), (&b.id, 2)])
        .await
        .unwrap_err();
    assert_eq!(
        (one_short.code(), reason(&one_short).as_str()),
        (Code::FailedPrecondition, "INSUFFICIENT_STOCK")
    );
    assert_eq!(
        (
            metadata(&one_short, "productId"),
            metadata(&one_short, "requested"),
            metadata(&one_short, "available")
        ),
        (b.id.clone(), "2".into(), "1".into())
    );
    assert_eq!(
        stock(&mesh.get(&a.id).await),
        (10, 0, 10),
        "the line that fit was not held"
    );

    let two_short = mesh
        .reserve("aon-2", &[(&a.id, 1), (&b.id, 2), (&c.id, 1)])
        .await
        .unwrap_err();
    assert_eq!(metadata(&two_short, "shortLines"), "2");
    let subjects: Vec<String> = two_short
        .get_error_details()
        .precondition_failure()
        .map(|f| f.violations.iter().map(|v| v.subject.clone()).collect())
        .unwrap_or_default();
    let mut expected = vec![format!("products/{}", b.id), format!("products/{}", c.id)];
    expected.sort();
    assert_eq!(subjects, expected);
    // A refused ID is free to use again.
    assert!(mesh.reserve("aon-2", &[(&a.id, 1)]).await.is_ok());
}

async fn reserve_is_idempotent_on_its_id(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let (a, b) = (
        mesh.create("IDEM-A", 250, 10).await,
        mesh.create("IDEM-B", 99, 10).await,
    );
    let first = mesh
        .reserve("idem-1", &[(&a.id, 2), (&b.id, 3)])
        .await
        .unwrap();
    assert_eq!(first.state(), pb::ReservationState::Reserved);
    assert_eq!(first.lines.len(), 2);
    let line_a = first.lines.iter().find(|l| l.product_id == a.id).unwrap();
    assert_eq!(
        (
            line_a.sku.as_str(),
            line_a.unit_price.clone().unwrap().amount_minor
        ),
        ("IDEM-A", 250)
    );
    // Same lines in another order: the same reservation, held once.
    let again = mesh
        .reserve("idem-1", &[(&b.id, 3), (&a.id, 2)])
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(stock(&mesh.get(&a.id).await), (10, 2, 8));
    let other = mesh.reserve("idem-1", &[(&a.id, 1)]).await.unwrap_err();
    assert_eq!(
        (other.code(), reason(&other).as_str()),
        (Code::AlreadyExists, "RESERVATION_ID_REUSED")
    );
}

async fn stock_history_counts_back_from_stock_on_hand(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("HIST-1", 100, 10).await;
    mesh.catalogue()
        .adjust_stock(bearer(
            pb::AdjustStockRequest {
                product_id: p.id.clone(),
                delta: 5,
                reason: "delivery from the supplier".into(),
            },
            &mesh.admin,
        ))
        .await
        .unwrap();
    mesh.reserve("hist-1", &[(&p.id, 3)]).await.unwrap();
    mesh.commit("hist-1").await.unwrap();
    mesh.reserve("hist-2", &[(&p.id, 2)]).await.unwrap();
    mesh.commit("hist-2").await.unwrap();
    mesh.release("hist-2").await.unwrap();
    // Held and dropped, never sold: no change of stock on hand.
    mesh.reserve("hist-3", &[(&p.id, 4)]).await.unwrap();
    mesh.release("hist-3").await.unwrap();
    assert_eq!(stock(&mesh.get(&p.id).await), (12, 0, 12));

    let changes = mesh.stock_history(&p.id, &mesh.admin).await.unwrap();
    let seen: Vec<(pb::stock_change::Kind, i64, i64)> = changes
        .iter()
        .map(|c| (c.kind(), c.delta, c.stock_on_hand))
        .collect();
    use pb::stock_change::Kind;
    assert_eq!(
        seen,
        [
            (Kind::Returned, 2, 12),
            (Kind::Sold, -2, 10),
            (Kind::Sold, -3, 12),
            (Kind::Adjustment, 5, 15),
        ]
    );
    assert_eq!(changes[3].reason, "delivery from the supplier");
    let refused = mesh.stock_history(&p.id, &mesh.writer).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

async fn commit_and_release_move_stock_once_each(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("LIFE-1", 100, 10).await;
    mesh.reserve("life-1", &[(&p.id, 4)]).await.unwrap();
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 4, 6));

    assert_eq!(
        mesh.commit("life-1").await.unwrap().state(),
        pb::ReservationState::Committed
    );
    assert_eq!(
        mesh.commit("life-1").await.unwrap().state(),
        pb::ReservationState::Committed
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (6, 0, 6));

    // A cancellation after commit: the units come back, once.
    assert_eq!(
        mesh.release("life-1").await.unwrap().state(),
        pb::ReservationState::Released
    );
    assert_eq!(
        mesh.release("life-1").await.unwrap().state(),
        pb::ReservationState::Released
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 0, 10));
    let late = mesh.commit("life-1").await.unwrap_err();
    assert_eq!(
        (late.code(), reason(&late).as_str()),
        (Code::FailedPrecondition, "RESERVATION_RELEASED")
    );

    mesh.reserve("life-2", &[(&p.id, 3)]).await.unwrap();
    assert_eq!(
        mesh.release("life-2").await.unwrap().state(),
        pb::ReservationState::Released
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 0, 10));
    let missing = mesh.commit("no-such-reservation").await.unwrap_err();
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "RESERVATION_NOT_FOUND")
    );
}

async fn reserve_with_commit_takes_the_units_in_one_step(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("TAKE-1", 100, 10).await;
    let taken = mesh.take("take-1", &[(&p.id, 4)]).await.unwrap();
    assert_eq!(taken.state(), pb::ReservationState::Committed);
    assert_eq!(taken.lines[0].unit_price.clone().unwrap().amount_minor, 100);
    assert_eq!(
        stock(&mesh.get(&p.id).await),
        (6, 0, 6),
        "off stock on hand"
    );
    // Retried: the same reservation, taken once.
    let again = mesh.take("take-1", &[(&p.id, 4)]).await.unwrap();
    assert_eq!(again, taken);
    assert_eq!(stock(&mesh.get(&p.id).await), (6, 0, 6));
    // Sold as of now: the stock history has it.
    let history = mesh.stock_history(&p.id, &mesh.admin).await.unwrap();
    let seen: Vec<_> = history.iter().map(|c| (c.kind(), c.delta)).collect();
    assert_eq!(seen, [(pb::stock_change::Kind::Sold, -4)]);

    // A release gives the units back, and the ID cannot take them again.
    mesh.release("take-1").await.unwrap();
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 0, 10));
    let late = mesh.take("take-1", &[(&p.id, 4)]).await.unwrap_err();
    assert_eq!(
        (late.code(), reason(&late).as_str()),
        (Code::FailedPrecondition, "RESERVATION_RELEASED")
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 0, 10));

    // A take over a reservation held without commit commits it.
    mesh.reserve("take-2", &[(&p.id, 3)]).await.unwrap();
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 3, 7));
    let committed = mesh.take("take-2", &[(&p.id, 3)]).await.unwrap();
    assert_eq!(committed.state(), pb::ReservationState::Committed);
    assert_eq!(stock(&mesh.get(&p.id).await), (7, 0, 7));

    // Short stock: refused, all or nothing, nothing taken.
    let short = mesh.take("take-3", &[(&p.id, 8)]).await.unwrap_err();
    assert_eq!(
        (short.code(), reason(&short).as_str()),
        (Code::FailedPrecondition, "INSUFFICIENT_STOCK")
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (7, 0, 7));
}

async fn each_stock_move_has_an_event_with_the_stock_it_left(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let (lamp, desk) = (
        mesh.create("MOVE-LAMP", 100, 10).await,
        mesh.create("MOVE-DESK", 100, 5).await,
    );
    mesh.reserve("moves-1", &[(&lamp.id, 4), (&desk.id, 2)])
        .await
        .unwrap();
    mesh.commit("moves-1").await.unwrap();
    // A cancellation after commit returns the units; a release before
    // commit drops the hold.
    mesh.release("moves-1").await.unwrap();
    mesh.reserve("moves-2", &[(&lamp.id, 3)]).await.unwrap();
    mesh.release("moves-2").await.unwrap();

    let reported = |events: &[(StockReport, pb::Product)]| {
        events
            .iter()
            .map(|(report, _)| report.clone())
            .collect::<Vec<_>>()
    };
    let row = |cause: &str, on_hand, reserved, available| {
        (cause.to_owned(), on_hand, reserved, available)
    };
    let lamp_events = stock_events(&mesh, &lamp.id).await;
    assert_eq!(
        reported(&lamp_events),
        [
            row("reserved", 10, 4, 6),
            row("committed", 6, 0, 6),
            row("released", 10, 0, 10),
            row("reserved", 10, 3, 7),
            row("released", 10, 0, 10),
        ]
    );
    assert_eq!(
        reported(&stock_events(&mesh, &desk.id).await),
        [
            row("reserved", 5, 2, 3),
            row("committed", 3, 0, 3),
            row("released", 5, 0, 5),
        ]
    );
    // The last event carries the product as the database holds it.
    let now = mesh.get(&lamp.id).await;
    let (_, last) = lamp_events.last().unwrap();
    assert_eq!(
        (stock(last), &last.update_time),
        (stock(&now), &now.update_time)
    );
}

async fn expired_reservations_are_swept_even_after_a_restart(db: TestDb) {
    let short_ttl = [
        ("OMS_RESERVATION_TTL_SECS", "1"),
        ("OMS_RESERVATION_SWEEP_SECS", "3600"),
    ];
    let mesh = start(&db, &short_ttl).await;
    let p = mesh.create("EXP-1", 100, 5).await;
    let held = mesh.reserve("exp-1", &[(&p.id, 2)]).await.unwrap();
    mesh.reserve("exp-2", &[(&p.id, 1)]).await.unwrap();
    let expire_time = held.expire_time.unwrap();
    eventually(
        Duration::from_secs(10),
        "exp-1 to pass its expiry",
        || async {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (now.as_secs_f64() > expire_time.seconds as f64 + f64::from(expire_time.nanos) / 1e9)
                .then_some(())
        },
    )
    .await;
    // This instance never sweeps in time; a commit past expiry is refused
    // all the same, and expires the reservation on the spot.
    let expired = mesh.commit("exp-1").await.unwrap_err();
    assert_eq!(
        (expired.code(), reason(&expired).as_str()),
        (Code::FailedPrecondition, "RESERVATION_EXPIRED")
    );
    assert_eq!(
        stock(&mesh.get(&p.id).await),
        (5, 1, 4),
        "exp-1 returned its units"
    );
    assert_eq!(
        mesh.reservation("exp-1").await.state(),
        pb::ReservationState::Expired
    );
    let Mesh { products, .. } = mesh;
    products.stop().await.unwrap();

    // A new instance on the same database finds exp-2 by its stored state.
    let (users, _users_db) = start_users().await;
    let restarted = start_products(
        &db,
        &users,
        &[("OMS_RESERVATION_SWEEP_SECS", "1")],
        &events::bus::Bus::new(),
    )
    .await;
    let mut catalogue = ProductServiceClient::new(restarted.channel());
    eventually(
        Duration::from_secs(15),
        "the sweeper to return exp-2's unit",
        || {
            let mut catalogue = catalogue.clone();
            let id = p.id.clone();
            async move {
                let product = catalogue
                    .get_product(pb::GetProductRequest { product_id: id })
                    .await
                    .ok()?
                    .into_inner();
                (product.product?.stock_reserved == 0).then_some(())
            }
        },
    )
    .await;
    let product = catalogue
        .get_product(pb::GetProductRequest {
            product_id: p.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(stock(&product), (5, 0, 5));
}

async fn validate_reports_each_line_without_holding_stock(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let (a, b) = (
        mesh.create("VAL-A", 300, 5).await,
        mesh.create("VAL-B", 100, 1).await,
    );
    let ghost = uuid::Uuid::now_v7().to_string();
    let results = mesh
        .inventory()
        .validate_products(bearer(
            pb::ValidateProductsRequest {
                lines: items(&[(&a.id, 5), (&b.id, 2), (&ghost, 1)]),
            },
            &mesh.writer,
        ))
        .await
        .unwrap()
        .into_inner()
        .results;
    let flags: Vec<(bool, bool, bool, i64)> = results
        .iter()
        .map(|r| (r.found, r.active, r.sufficient_stock, r.available))
        .collect();
    assert_eq!(
        flags,
        [
            (true, true, true, 5),
            (true, true, false, 1),
            (false, false, false, 0)
        ]
    );
    assert_eq!(results[0].unit_price.clone().unwrap().amount_minor, 300);
    assert_eq!(stock(&mesh.get(&a.id).await), (5, 0, 5));
}

async fn unknown_archived_and_malformed_lines_are_refused(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("GONE-1", 100, 5).await;
    let ghost = uuid::Uuid::now_v7().to_string();
    let unknown = mesh
        .reserve("bad-1", &[(&p.id, 1), (&ghost, 1)])
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), reason(&unknown).as_str()),
        (Code::NotFound, "PRODUCT_NOT_FOUND")
    );
    assert_eq!(metadata(&unknown, "productId"), ghost);

    mesh.catalogue()
        .delete_product(bearer(
            pb::DeleteProductRequest {
                product_id: p.id.clone(),
            },
            &mesh.admin,
        ))
        .await
        .unwrap();
    let archived = mesh.reserve("bad-2", &[(&p.id, 1)]).await.unwrap_err();
    assert_eq!(
        (archived.code(), reason(&archived).as_str()),
        (Code::FailedPrecondition, "PRODUCT_ARCHIVED")
    );

    let malformed = mesh
        .reserve("bad 3!", &[(&p.id, 0), ("x", 1), (&p.id, 10_001)])
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&malformed),
        [
            "reservation_id",
            "lines[0].quantity",
            "lines[1].product_id",
            "lines[2].quantity",
            "lines[2].product_id"
        ]
    );
    let empty = mesh.reserve("bad-4", &[]).await.unwrap_err();
    assert_eq!(violated_fields(&empty), ["lines"]);
}

async fn two_replicas_sweeping_together_return_each_unit_once(db: TestDb) {
    // Each replica's in-process cache is invalidated only by its own writes
    // (production shares Redis); the other's sweep shows once it expires.
    let replica = |sweep_secs: &'static str| {
        [
            ("OMS_RESERVATION_TTL_SECS", "1"),
            ("OMS_RESERVATION_SWEEP_SECS", sweep_secs),
            ("OMS_PRODUCT_CACHE_TTL_SECS", "1"),
        ]
    };
    // The first replica sweeps once, at start, before anything is
    // reserved: every expiry in the first round is the twin's.
    let mesh = start(&db, &replica("3600")).await;
    let twin = start_products(&db, &mesh.users, &replica("1"), &mesh.bus).await;
    let p = mesh.create("TWIN-1", 100, 50).await;
    let twin_catalogue = ProductServiceClient::new(twin.channel());
    // Settled: every reservation of the round EXPIRED (read from the
    // database), then the product as both replicas' caches come to show it
    // (a unit returned twice would leave reserved stock below zero, and
    // this would never be reached).
    let settled = |round: usize| {
        let (mesh, twin_catalogue, id) = (&mesh, twin_catalogue.clone(), p.id.clone());
        async move {
            eventually(
                Duration::from_secs(30),
                "every reservation to expire",
                || async move {
                    for i in 0..10 {
                        let state = mesh.reservation(&format!("twin-{round}-{i}")).await.state();
                        if state != pb::ReservationState::Expired {
                            return None;
                        }
                    }
                    Some(())
                },
            )
            .await;
            eventually(
                Duration::from_secs(30),
                "the stock to be whole again",
                || {
                    let mut catalogue = twin_catalogue.clone();
                    let id = id.clone();
                    async move {
                        let product = catalogue
                            .get_product(pb::GetProductRequest { product_id: id })
                            .await
                            .ok()?
                            .into_inner()
                            .product?;
                        (stock(&product) == (50, 0, 50)).then_some(())
                    }
                },
            )
            .await;
        }
    };
    let reserve_ten = |round: usize| {
        let (mesh, id) = (&mesh, p.id.clone());
        async move {
            for i in 0..10 {
                let held = mesh
                    .reserve(&format!("twin-{round}-{i}"), &[(&id, 2)])
                    .await
                    .unwrap();
                assert_eq!(held.state(), pb::ReservationState::Reserved);
            }
        }
    };
    reserve_ten(1).await;
    // The twin's sweep, alone.
    settled(1).await;

    // Now a second replica sweeping every second too: both sweep the same
    // rows; a unit returned twice would show as negative reserved stock.
    let third = start_products(&db, &mesh.users, &replica("1"), &mesh.bus).await;
    reserve_ten(2).await;
    settled(2).await;
    third.stop().await.unwrap();
}
