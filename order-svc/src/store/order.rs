//! The `orders` table.

use sea_orm::entity::prelude::*;

/// An order's header: who, status, total, and its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    /// UUIDv7; also the reservation ID in product-svc.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub customer_id: String,
    /// The client's idempotency key, unique per customer.
    pub request_id: String,
    /// SHA-256 of the requested lines.
    pub request_digest: String,
    /// `pending`, `confirmed`, `cancelled`, `shipped`, `delivered`, `failed`.
    pub status: String,
    pub currency_code: String,
    pub total_minor: i64,
    pub cancel_reason: Option<String>,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
