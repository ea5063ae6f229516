//! The `price_history` table: every price a product has had.

use sea_orm::entity::prelude::*;

/// One price, from `effective_time` until the next row of the product.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "price_history")]
pub struct Model {
    /// UUIDv7, so ordering by id is ordering by time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub product_id: String,
    pub currency_code: String,
    pub amount_minor: i64,
    pub effective_time: DateTimeUtc,
    /// The user ID of whoever set the price.
    pub changed_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
