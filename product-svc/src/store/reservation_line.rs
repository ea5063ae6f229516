//! The `reservation_lines` table: what a reservation holds, with snapshots.

use sea_orm::entity::prelude::*;

/// One product held by a reservation, with its sku, name and price then.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reservation_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub reservation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub currency_code: String,
    pub unit_price_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
