//! Product images: what each stored image is and where its bytes live.

use oms_store::db::schema::{timestamp, uuid_text};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum ProductImages {
    Table,
    Id,
    ProductId,
    ContentType,
    ByteSize,
    Width,
    Height,
    Sha256,
    AltText,
    IsPrimary,
    ObjectKey,
    ThumbnailKey,
    ThumbnailSize,
    CreateTime,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
}

/// One product never holds the same bytes twice.
const SAME_BYTES_INDEX: &str = "product_images_product_id_sha256";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProductImages::Table)
                    .if_not_exists()
                    .col(uuid_text(ProductImages::Id).primary_key())
                    .col(uuid_text(ProductImages::ProductId))
                    .col(
                        ColumnDef::new(ProductImages::ContentType)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductImages::ByteSize)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ProductImages::Width).integer().not_null())
                    .col(ColumnDef::new(ProductImages::Height).integer().not_null())
                    .col(
                        ColumnDef::new(ProductImages::Sha256)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductImages::AltText)
                            .string_len(500)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductImages::IsPrimary)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductImages::ObjectKey)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductImages::ThumbnailKey)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductImages::ThumbnailSize)
                            .big_integer()
                            .not_null(),
                    )
                    .col(timestamp(ProductImages::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ProductImages::Table, ProductImages::ProductId)
                            .to(Products::Table, Products::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SAME_BYTES_INDEX)
                    .table(ProductImages::Table)
                    .col(ProductImages::ProductId)
                    .col(ProductImages::Sha256)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProductImages::Table).to_owned())
            .await
    }
}
