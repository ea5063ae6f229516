//! Price quotes: the prices held for a customer, and the order that used
//! them.

use oms_store::db::schema::{timestamp, uuid_text};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Quotes {
    Table,
    Id,
    CustomerId,
    State,
    CurrencyCode,
    TotalMinor,
    CreateTime,
    ExpireTime,
    OrderId,
    ReservationId,
    ConsumeTime,
}

#[derive(DeriveIden)]
enum QuoteLines {
    Table,
    QuoteId,
    LineNo,
    ProductId,
    Sku,
    Name,
    Quantity,
    UnitPriceMinor,
}

const RESERVATION_INDEX: &str = "quotes_reservation_id";
const EXPIRE_INDEX: &str = "quotes_state_expire_time";
const CUSTOMER_INDEX: &str = "quotes_customer_id_expire_time";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Quotes::Table)
                    .if_not_exists()
                    .col(uuid_text(Quotes::Id).primary_key())
                    .col(uuid_text(Quotes::CustomerId))
                    .col(ColumnDef::new(Quotes::State).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Quotes::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Quotes::TotalMinor).big_integer().not_null())
                    .col(timestamp(Quotes::CreateTime))
                    .col(timestamp(Quotes::ExpireTime))
                    .col(ColumnDef::new(Quotes::OrderId).string_len(36).null())
                    .col(ColumnDef::new(Quotes::ReservationId).string_len(64).null())
                    .col(
                        ColumnDef::new(Quotes::ConsumeTime)
                            .custom(Alias::new("DATETIME(6)"))
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Releasing a reservation gives its quote back.
        manager
            .create_index(
                Index::create()
                    .name(RESERVATION_INDEX)
                    .table(Quotes::Table)
                    .col(Quotes::ReservationId)
                    .to_owned(),
            )
            .await?;
        // A customer's open quotes are counted against a bound.
        manager
            .create_index(
                Index::create()
                    .name(CUSTOMER_INDEX)
                    .table(Quotes::Table)
                    .col(Quotes::CustomerId)
                    .col(Quotes::ExpireTime)
                    .to_owned(),
            )
            .await?;
        // Pruning finds quotes that expired unused long ago.
        manager
            .create_index(
                Index::create()
                    .name(EXPIRE_INDEX)
                    .table(Quotes::Table)
                    .col(Quotes::State)
                    .col(Quotes::ExpireTime)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QuoteLines::Table)
                    .if_not_exists()
                    .col(uuid_text(QuoteLines::QuoteId))
                    .col(ColumnDef::new(QuoteLines::LineNo).integer().not_null())
                    .col(uuid_text(QuoteLines::ProductId))
                    .col(ColumnDef::new(QuoteLines::Sku).string_len(64).not_null())
                    .col(ColumnDef::new(QuoteLines::Name).string_len(200).not_null())
                    .col(ColumnDef::new(QuoteLines::Quantity).integer().not_null())
                    .col(
                        ColumnDef::new(QuoteLines::UnitPriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(QuoteLines::QuoteId)
                            .col(QuoteLines::LineNo),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuoteLines::Table, QuoteLines::QuoteId)
                            .to(Quotes::Table, Quotes::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QuoteLines::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Quotes::Table).to_owned())
            .await
    }
}
