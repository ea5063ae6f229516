//! The `stock_adjustments` table: the audit trail of AdjustStock.

use sea_orm::entity::prelude::*;

/// One manual change of stock on hand.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_adjustments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub product_id: String,
    pub delta: i64,
    pub reason: String,
    /// The user ID of the admin who made it.
    pub actor: String,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
