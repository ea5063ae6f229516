//! The `order_lines` table: what was ordered, at the prices of that moment.

use sea_orm::entity::prelude::*;

/// One line of an order with its price snapshot.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub line_no: i32,
    pub product_id: String,
    pub sku: String,
    pub product_name: String,
    pub quantity: i32,
    pub currency_code: String,
    pub unit_price_minor: i64,
    pub line_total_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
