//! Fills order-svc's tables directly (bulk INSERTs through its own
//! entities), so ListOrders can be measured over 10^3 and 10^6 orders
//! without placing a million orders through the saga first.

use oms_config::DatabaseUrl;
use oms_store::db::PoolOptions;
use order_svc::store::{order, order_line};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait as _, TransactionTrait as _};

use crate::BenchError;

/// Rows per INSERT: well under both servers' placeholder limits.
const BATCH: usize = 1000;

/// An open connection to order-svc's database.
pub struct Seeder {
    db: DatabaseConnection,
    product_id: String,
}

impl Seeder {
    /// Connects as order-svc does. `product_id` is what the lines name.
    pub async fn connect(url: &DatabaseUrl, product_id: String) -> Result<Self, BenchError> {
        let db = oms_store::db::connect(url, PoolOptions::default())
            .await
            .map_err(|e| BenchError::Setup(format!("seed: {e}")))?;
        Ok(Self { db, product_id })
    }

    /// Inserts `count` CONFIRMED one-line orders of `customer_id`, or of a
    /// fresh customer every 100 orders when `customer_id` is `None`.
    pub async fn orders(&self, customer_id: Option<&str>, count: u64) -> Result<(), BenchError> {
        let mut left = count;
        let mut other = uuid::Uuid::now_v7().to_string();
        let mut made = 0u64;
        while left > 0 {
            let n = usize::try_from(left.min(BATCH as u64)).unwrap_or(BATCH);
            let now = chrono::Utc::now();
            let mut orders = Vec::with_capacity(n);
            let mut lines = Vec::with_capacity(n);
            for _ in 0..n {
                if made.is_multiple_of(100) {
                    other = uuid::Uuid::now_v7().to_string();
                }
                made += 1;
                let id = uuid::Uuid::now_v7().to_string();
                orders.push(order::ActiveModel {
                    id: Set(id.clone()),
                    customer_id: Set(customer_id.map_or_else(|| other.clone(), str::to_owned)),
                    request_id: Set(uuid::Uuid::new_v4().to_string()),
                    request_digest: Set("0".repeat(64)),
                    status: Set(order_svc::model::Status::Confirmed),
                    currency_code: Set("EUR".to_owned()),
                    total_minor: Set(1000),
                    attempt: Set(1),
                    cancel_reason: Set(None),
                    stock_released: Set(false),
                    failure_code: Set(None),
                    failure_message: Set(None),
                    failure_details: Set(None),
                    create_time: Set(now),
                    update_time: Set(now),
                    confirm_time: Set(Some(now)),
                    ship_time: Set(None),
                    deliver_time: Set(None),
                    cancel_time: Set(None),
                    fail_time: Set(None),
                    quote_id: Set(None),
                });
                lines.push(order_line::ActiveModel {
                    order_id: Set(id),
                    line_no: Set(0),
                    product_id: Set(self.product_id.clone()),
                    sku: Set("BENCH-0".to_owned()),
                    product_name: Set("Bench product 0".to_owned()),
                    quantity: Set(1),
                    currency_code: Set("EUR".to_owned()),
                    unit_price_minor: Set(1000),
                    line_total_minor: Set(1000),
                });
            }
            let err = |e: sea_orm::DbErr| BenchError::Setup(format!("seed: {e}"));
            let txn = self.db.begin().await.map_err(err)?;
            order::Entity::insert_many(orders)
                .exec_without_returning(&txn)
                .await
                .map_err(err)?;
            order_line::Entity::insert_many(lines)
                .exec_without_returning(&txn)
                .await
                .map_err(err)?;
            txn.commit().await.map_err(err)?;
            left -= n as u64;
        }
        Ok(())
    }
}
