//! The `reservations` table.

use sea_orm::entity::prelude::*;

/// Stock held under a caller-chosen ID.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reservations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Stored by name (`reserved`, `committed`, …).
    pub state: crate::model::State,
    /// SHA-256 of the requested lines, for idempotent retries.
    pub lines_digest: String,
    pub create_time: DateTimeUtc,
    pub expire_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    pub commit_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
