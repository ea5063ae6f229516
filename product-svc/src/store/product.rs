//! The `products` table.

use sea_orm::entity::prelude::*;

/// A product with its current price and stock counters.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub sku: String,
    pub name: String,
    pub description: String,
    pub currency_code: String,
    pub price_minor: i64,
    /// Units physically held.
    pub stock_on_hand: i64,
    /// Units held by RESERVED reservations.
    pub stock_reserved: i64,
    pub archived: bool,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
