//! The chaos scenario's invariant checks find what they are there to
//! find: on MariaDB databases with the services' own schemas, a consistent
//! state passes, and each kind of damage is reported with its rows.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use oms_bench::invariants::{Databases, Expected};
use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use testkit::TestDb;

const PRODUCT: &str = "00000000-0000-7000-8000-000000000001";
const KEPT: &str = "00000000-0000-7000-8000-0000000000a1";

async fn migrated<M: sea_orm_migration::MigratorTrait>(db: &TestDb) -> DatabaseConnection {
    let conn = sea_orm::Database::connect(db.url().expose()).await.unwrap();
    M::up(&conn, None).await.unwrap();
    conn
}

async fn run(conn: &DatabaseConnection, sql: &str) {
    conn.execute_unprepared(sql).await.unwrap();
}

/// The database's name, the last part of its URL.
fn name(db: &TestDb) -> String {
    db.url().expose().rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_consistent_state_passes_and_each_breach_is_reported() {
    let (Some(products_db), Some(orders_db)) = (TestDb::mysql().await, TestDb::mysql().await)
    else {
        return;
    };
    let products = migrated::<product_svc::migration::Migrator>(&products_db).await;
    let orders = migrated::<order_svc::migration::Migrator>(&orders_db).await;
    let now = "UTC_TIMESTAMP(6)";
    // 100 units: 5 taken by the kept order, 2 held by a live reservation.
    run(&products, &format!(
        "INSERT INTO products (id, sku, name, description, currency_code, price_minor, stock_on_hand, stock_reserved, create_time, update_time) \
         VALUES ('{PRODUCT}', 'S', 'N', '', 'EUR', 1000, 95, 2, {now}, {now})"
    )).await;
    run(&products, &format!(
        "INSERT INTO reservations (id, state, lines_digest, create_time, expire_time, update_time) VALUES \
         ('{KEPT}-1', 'committed', 'd', {now}, {now} + INTERVAL 1 HOUR, {now}), \
         ('live-1', 'reserved', 'd', {now}, {now} + INTERVAL 1 HOUR, {now})"
    )).await;
    run(&products, &format!(
        "INSERT INTO reservation_lines (reservation_id, product_id, sku, name, quantity, currency_code, unit_price_minor) VALUES \
         ('{KEPT}-1', '{PRODUCT}', 'S', 'N', 5, 'EUR', 1000), ('live-1', '{PRODUCT}', 'S', 'N', 2, 'EUR', 1000)"
    )).await;
    run(&orders, &format!(
        "INSERT INTO orders (id, customer_id, request_id, request_digest, status, currency_code, total_minor, attempt, stock_released, create_time, update_time) \
         VALUES ('{KEPT}', 'c1', 'r1', 'd', 'confirmed', 'EUR', 5000, 1, 0, {now}, {now})"
    )).await;
    run(&orders, &format!(
        "INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, quantity, currency_code, unit_price_minor, line_total_minor) \
         VALUES ('{KEPT}', 1, '{PRODUCT}', 'S', 'N', 5, 'EUR', 1000, 5000)"
    )).await;

    let server = std::env::var(testkit::MYSQL_VAR).unwrap();
    let databases = Databases::connect(&server, &name(&products_db), &name(&orders_db))
        .await
        .unwrap();
    let initial_stock = HashMap::from([(PRODUCT.to_owned(), 100)]);
    let mut acknowledged = HashSet::from([KEPT.to_owned()]);
    let check = async |acknowledged: &HashSet<String>| {
        databases
            .breaches(&Expected {
                initial_stock: &initial_stock,
                acknowledged,
                expiry_grace: Duration::from_secs(3),
            })
            .await
            .unwrap()
    };
    assert_eq!(check(&acknowledged).await, Vec::<String>::new());

    // A unit gone missing.
    run(
        &products,
        &format!("UPDATE products SET stock_on_hand = 94 WHERE id = '{PRODUCT}'"),
    )
    .await;
    let breaches = check(&acknowledged).await;
    assert!(
        breaches.iter().any(|b| b.contains("stock of product")),
        "{breaches:?}"
    );
    run(
        &products,
        &format!("UPDATE products SET stock_on_hand = 95 WHERE id = '{PRODUCT}'"),
    )
    .await;

    // A kept order whose reservation was released: stock back, order kept.
    run(
        &products,
        &format!("UPDATE reservations SET state = 'released' WHERE id = '{KEPT}-1'"),
    )
    .await;
    let breaches = check(&acknowledged).await;
    assert!(
        breaches.iter().any(|b| b.contains("its reservation")),
        "{breaches:?}"
    );
    run(
        &products,
        &format!("UPDATE reservations SET state = 'committed' WHERE id = '{KEPT}-1'"),
    )
    .await;

    // An order left PENDING, a reservation held past its expiry, and an
    // order a client was told about that is not stored.
    run(&orders, &format!(
        "INSERT INTO orders (id, customer_id, request_id, request_digest, status, currency_code, total_minor, attempt, stock_released, create_time, update_time) \
         VALUES ('pending-order', 'c1', 'r2', 'd', 'pending', '', 0, 1, 0, {now}, {now})"
    )).await;
    run(
        &products,
        &format!(
            "UPDATE reservations SET expire_time = {now} - INTERVAL 1 HOUR WHERE id = 'live-1'"
        ),
    )
    .await;
    acknowledged.insert("never-stored".to_owned());
    let breaches = check(&acknowledged).await;
    for what in ["PENDING", "past their expiry", "not stored"] {
        assert!(
            breaches.iter().any(|b| b.contains(what)),
            "{what}: {breaches:?}"
        );
    }
}
