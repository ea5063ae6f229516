//! The `quote_lines` table: what a quote prices.

use sea_orm::entity::prelude::*;

/// One quoted line, with the product's sku, name and price then.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quote_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub quote_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub line_no: i32,
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
