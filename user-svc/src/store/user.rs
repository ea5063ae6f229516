//! The `users` table.

use sea_orm::entity::prelude::*;

/// One account. The password is only ever held as an argon2id PHC string.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    /// `customer` or `admin`.
    pub role: String,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    /// Raised whenever earlier access tokens must stop working.
    pub token_version: i64,
    pub disabled: bool,
    /// When `token_version` was last raised.
    pub revoke_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
