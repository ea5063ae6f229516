//! The database ceiling for CreateOrder: the four commits one order costs
//! (order-svc: insert PENDING, then confirm with its lines; product-svc:
//! reserve, then commit the reservation), each with the outbox row the real
//! path writes in the same transaction (events on, the default), issued by
//! a minimal sea-orm loop on two databases with the services' own pool
//! settings and no RPCs. Statements the services send as one command
//! ([`oms_store::batch::Batch`] on SQLite: a change and its outbox row, a
//! reservation's header and holds, a confirmation's status change, lines
//! and event) go as one here too.

use std::sync::Arc;

use oms_config::DatabaseUrl;
use oms_store::batch::Batch;
use oms_store::db::PoolOptions;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement, TransactionTrait as _};

use crate::BenchError;
use crate::driver::{Op, op};

/// Products in the stock table; each operation touches a different one,
/// as the distinct-product CreateOrder runs do.
const PRODUCTS: u64 = 1000;

/// An outbox table as the services' migration makes it (`events::schema`).
const OUTBOX: &str = "CREATE TABLE ceil_outbox (id VARCHAR(36) PRIMARY KEY, aggregate_type VARCHAR(32) NOT NULL, aggregate_id VARCHAR(64) NOT NULL, event_type VARCHAR(128) NOT NULL, payload MEDIUMBLOB NOT NULL, create_time DATETIME(6) NOT NULL, publish_time DATETIME(6) NULL, attempts INT NOT NULL DEFAULT 0, last_error TEXT NULL)";
const OUTBOX_INDEX: &str =
    "CREATE INDEX ceil_outbox_publish_time_id ON ceil_outbox (publish_time, id)";
/// About the size of an order event with its one-line order, and of a
/// stock event, in protobuf.
const ORDER_EVENT_BYTES: usize = 320;
const STOCK_EVENT_BYTES: usize = 120;

/// The two pools, with the tables made.
pub struct DbCeiling {
    orders: DatabaseConnection,
    products: DatabaseConnection,
}

fn db_err(e: sea_orm::DbErr) -> BenchError {
    BenchError::Setup(format!("db ceiling: {e}"))
}

impl DbCeiling {
    /// Opens both databases as the services do (oms_store::db::connect with the
    /// default pool) and creates the tables.
    pub async fn prepare(orders: &DatabaseUrl, products: &DatabaseUrl) -> Result<Self, BenchError> {
        let orders = oms_store::db::connect(orders, PoolOptions::default())
            .await
            .map_err(|e| BenchError::Setup(format!("db ceiling: {e}")))?;
        let products = oms_store::db::connect(products, PoolOptions::default())
            .await
            .map_err(|e| BenchError::Setup(format!("db ceiling: {e}")))?;
        for sql in [
            "CREATE TABLE ceil_orders (id VARCHAR(36) PRIMARY KEY, status VARCHAR(16) NOT NULL, total BIGINT NOT NULL)",
            "CREATE TABLE ceil_lines (order_id VARCHAR(36) NOT NULL, line_no INT NOT NULL, product INT NOT NULL, PRIMARY KEY (order_id, line_no))",
            OUTBOX,
            OUTBOX_INDEX,
        ] {
            orders.execute_unprepared(sql).await.map_err(db_err)?;
        }
        for sql in [
            "CREATE TABLE ceil_stock (id INT PRIMARY KEY, on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL)",
            "CREATE TABLE ceil_reservations (id VARCHAR(40) PRIMARY KEY, state VARCHAR(16) NOT NULL, product INT NOT NULL)",
            OUTBOX,
            OUTBOX_INDEX,
        ] {
            products.execute_unprepared(sql).await.map_err(db_err)?;
        }
        let rows: Vec<String> = (0..PRODUCTS)
            .map(|i| format!("({i}, 1000000000, 0)"))
            .collect();
        products
            .execute_unprepared(&format!("INSERT INTO ceil_stock VALUES {}", rows.join(",")))
            .await
            .map_err(db_err)?;
        Ok(Self { orders, products })
    }

    /// One "order": four commits, as many statements as the real one's
    /// writes (outbox rows included), none of its reads, RPCs or
    /// serialization.
    pub fn op(self: &Arc<Self>) -> Op {
        let this = self.clone();
        op(move |client, seq| {
            let this = this.clone();
            async move { this.order(client, seq).await.map_err(|e| e.to_string()) }
        })
    }

    async fn order(&self, client: usize, seq: u64) -> Result<(), sea_orm::DbErr> {
        let backend = self.orders.get_database_backend();
        let stmt = |sql: &str, values: Vec<sea_orm::Value>| {
            Statement::from_sql_and_values(backend, sql, values)
        };
        let outbox = |aggregate: &str, id: &str, bytes: usize| {
            stmt(
                "INSERT INTO ceil_outbox (id, aggregate_type, aggregate_id, event_type, payload, create_time) VALUES (?, ?, ?, 'event', ?, ?)",
                vec![
                    uuid::Uuid::now_v7().to_string().into(),
                    aggregate.into(),
                    id.into(),
                    vec![7u8; bytes].into(),
                    chrono::Utc::now().naive_utc().into(),
                ],
            )
        };
        let id = uuid::Uuid::now_v7().to_string();
        let product = i64::try_from((client as u64 * 7919 + seq) % PRODUCTS).unwrap_or(0);
        let product_id = product.to_string();

        // 1. order-svc: the PENDING order and its event.
        let txn = self.orders.begin().await?;
        let mut batch = Batch::new(&txn);
        batch.push_raw(stmt(
            "INSERT INTO ceil_orders (id, status, total) VALUES (?, 'pending', 0)",
            vec![id.clone().into()],
        ));
        batch.push_raw(outbox("order", &id, ORDER_EVENT_BYTES));
        batch.execute(&txn).await?;
        txn.commit().await?;
        // 2. product-svc: reserve (the header and the hold in one command,
        // the lines and the event in another).
        let txn = self.products.begin().await?;
        let mut batch = Batch::new(&txn);
        batch.push_raw(stmt(
            "INSERT INTO ceil_reservations (id, state, product) VALUES (?, 'reserved', ?)",
            vec![id.clone().into(), product.into()],
        ));
        batch.push_raw(stmt("UPDATE ceil_stock SET reserved = reserved + 1 WHERE id = ? AND on_hand - reserved >= 1", vec![product.into()]));
        batch.execute(&txn).await?;
        txn.execute_raw(outbox("product", &product_id, STOCK_EVENT_BYTES))
            .await?;
        txn.commit().await?;
        // 3. product-svc: commit the reservation.
        let txn = self.products.begin().await?;
        txn.execute_raw(stmt(
            "UPDATE ceil_reservations SET state = 'committed' WHERE id = ? AND state = 'reserved'",
            vec![id.clone().into()],
        ))
        .await?;
        txn.execute_raw(stmt(
            "UPDATE ceil_stock SET reserved = reserved - 1, on_hand = on_hand - 1 WHERE id = ?",
            vec![product.into()],
        ))
        .await?;
        txn.execute_raw(outbox("product", &product_id, STOCK_EVENT_BYTES))
            .await?;
        txn.commit().await?;
        // 4. order-svc: confirm with the lines.
        let txn = self.orders.begin().await?;
        let mut batch = Batch::new(&txn);
        batch.push_raw(stmt("UPDATE ceil_orders SET status = 'confirmed', total = 100 WHERE id = ? AND status = 'pending'", vec![id.clone().into()]));
        batch.push_raw(stmt(
            "INSERT INTO ceil_lines (order_id, line_no, product) VALUES (?, 0, ?)",
            vec![id.clone().into(), product.into()],
        ));
        batch.push_raw(outbox("order", &id, ORDER_EVENT_BYTES));
        batch.execute(&txn).await?;
        txn.commit().await?;
        Ok(())
    }
}
