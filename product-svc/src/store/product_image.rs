//! The `product_images` table: each image of a product and where its
//! bytes (and its thumbnail's) are stored.

use sea_orm::entity::prelude::*;

/// One stored image.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_images")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub product_id: String,
    pub content_type: String,
    pub byte_size: i64,
    pub width: i32,
    pub height: i32,
    pub sha256: String,
    pub alt_text: String,
    pub is_primary: bool,
    pub object_key: String,
    pub thumbnail_key: String,
    pub thumbnail_size: i64,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
