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
    /// Stored by name (`pending`, `confirmed`, …).
    pub status: crate::model::Status,
    pub currency_code: String,
    pub total_minor: i64,
    /// Reservation attempt: the reservation ID is `<id>-<attempt>`.
    pub attempt: i32,
    pub cancel_reason: Option<String>,
    /// Whether a cancelled order's stock went back.
    pub stock_released: bool,
    /// gRPC code of a failed order's error.
    pub failure_code: Option<i32>,
    pub failure_message: Option<String>,
    /// Encoded `google.rpc.Status` details of that error.
    pub failure_details: Option<Vec<u8>>,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    pub confirm_time: Option<DateTimeUtc>,
    pub ship_time: Option<DateTimeUtc>,
    pub deliver_time: Option<DateTimeUtc>,
    pub cancel_time: Option<DateTimeUtc>,
    pub fail_time: Option<DateTimeUtc>,
    pub quote_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
