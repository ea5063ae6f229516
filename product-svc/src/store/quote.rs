//! The `quotes` table: prices held for a customer, and who used them.

use sea_orm::entity::prelude::*;

/// One quote's header.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quotes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub customer_id: String,
    /// `open` or `consumed` (expiry is read from `expire_time`).
    pub state: String,
    pub currency_code: String,
    pub total_minor: i64,
    pub create_time: DateTimeUtc,
    pub expire_time: DateTimeUtc,
    pub order_id: Option<String>,
    /// The reservation that consumed it: releasing that gives it back.
    pub reservation_id: Option<String>,
    pub consume_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
