//! The catalogue: products with their stock counters, the price history,
//! the stock-adjustment audit trail, and reservations with their lines.

use oms_store::db::schema::{timestamp, uuid_text};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Sku,
    Name,
    Description,
    CurrencyCode,
    PriceMinor,
    StockOnHand,
    StockReserved,
    Archived,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum PriceHistory {
    Table,
    Id,
    ProductId,
    CurrencyCode,
    AmountMinor,
    EffectiveTime,
    ChangedBy,
}

#[derive(DeriveIden)]
enum StockAdjustments {
    Table,
    Id,
    ProductId,
    Delta,
    Reason,
    Actor,
    CreateTime,
}

#[derive(DeriveIden)]
enum Reservations {
    Table,
    Id,
    State,
    LinesDigest,
    CreateTime,
    ExpireTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum ReservationLines {
    Table,
    ReservationId,
    ProductId,
    Sku,
    Name,
    Quantity,
    CurrencyCode,
    UnitPriceMinor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .if_not_exists()
                    .col(uuid_text(Products::Id).primary_key())
                    .col(
                        ColumnDef::new(Products::Sku)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Products::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Products::Description).text().not_null())
                    .col(
                        ColumnDef::new(Products::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Products::PriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    // Reservations move units between these two counters with
                    // conditional UPDATEs, so availability is never read and
                    // then written.
                    .col(
                        ColumnDef::new(Products::StockOnHand)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Products::StockReserved)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Products::Archived)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(timestamp(Products::CreateTime))
                    .col(timestamp(Products::UpdateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PriceHistory::Table)
                    .if_not_exists()
                    .col(uuid_text(PriceHistory::Id).primary_key())
                    .col(uuid_text(PriceHistory::ProductId))
                    .col(
                        ColumnDef::new(PriceHistory::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PriceHistory::AmountMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(timestamp(PriceHistory::EffectiveTime))
                    .col(
                        ColumnDef::new(PriceHistory::ChangedBy)
                            .string_len(64)
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PriceHistory::Table, PriceHistory::ProductId)
                            .to(Products::Table, Products::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_price_history_product")
                    .table(PriceHistory::Table)
                    .col(PriceHistory::ProductId)
                    .col(PriceHistory::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StockAdjustments::Table)
                    .if_not_exists()
                    .col(uuid_text(StockAdjustments::Id).primary_key())
                    .col(uuid_text(StockAdjustments::ProductId))
                    .col(
                        ColumnDef::new(StockAdjustments::Delta)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(StockAdjustments::Reason)
                            .string_len(500)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(StockAdjustments::Actor)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(timestamp(StockAdjustments::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .from(StockAdjustments::Table, StockAdjustments::ProductId)
                            .to(Products::Table, Products::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reservations::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Reservations::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Reservations::State)
                            .string_len(16)
                            .not_null(),
                    )
                    // Hash of the requested lines: a retry with the same id
                    // and other lines is told apart without re-reading them.
                    .col(
                        ColumnDef::new(Reservations::LinesDigest)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(timestamp(Reservations::CreateTime))
                    .col(timestamp(Reservations::ExpireTime))
                    .col(timestamp(Reservations::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reservations_state_expiry")
                    .table(Reservations::Table)
                    .col(Reservations::State)
                    .col(Reservations::ExpireTime)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReservationLines::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ReservationLines::ReservationId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(uuid_text(ReservationLines::ProductId))
                    .col(
                        ColumnDef::new(ReservationLines::Sku)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReservationLines::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReservationLines::Quantity)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReservationLines::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReservationLines::UnitPriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ReservationLines::ReservationId)
                            .col(ReservationLines::ProductId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReservationLines::Table, ReservationLines::ReservationId)
                            .to(Reservations::Table, Reservations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReservationLines::Table, ReservationLines::ProductId)
                            .to(Products::Table, Products::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReservationLines::Table.into_iden(),
            Reservations::Table.into_iden(),
            StockAdjustments::Table.into_iden(),
            PriceHistory::Table.into_iden(),
            Products::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
