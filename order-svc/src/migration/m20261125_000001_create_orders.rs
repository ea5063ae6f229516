//! Orders and their lines, with price snapshots and the idempotency key.

use oms_store::db::schema::{timestamp, uuid_text};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    CustomerId,
    RequestId,
    RequestDigest,
    Status,
    CurrencyCode,
    TotalMinor,
    Attempt,
    CancelReason,
    StockReleased,
    FailureCode,
    FailureMessage,
    FailureDetails,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    OrderId,
    LineNo,
    ProductId,
    Sku,
    ProductName,
    Quantity,
    CurrencyCode,
    UnitPriceMinor,
    LineTotalMinor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(uuid_text(Orders::Id).primary_key())
                    .col(uuid_text(Orders::CustomerId))
                    .col(ColumnDef::new(Orders::RequestId).string_len(128).not_null())
                    // Hash of the requested lines: the same request_id with
                    // other lines is IDEMPOTENCY_KEY_REUSED.
                    .col(
                        ColumnDef::new(Orders::RequestDigest)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Orders::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Orders::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Orders::TotalMinor).big_integer().not_null())
                    // Reservation IDs are `<order id>-<attempt>`: a retry after
                    // a transient failure reserves afresh.
                    .col(
                        ColumnDef::new(Orders::Attempt)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(ColumnDef::new(Orders::CancelReason).string_len(500).null())
                    // A cancelled order's stock goes back after the status
                    // changes; recovery finishes it if the process died.
                    .col(
                        ColumnDef::new(Orders::StockReleased)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    // A failed order's error, replayed to retries.
                    .col(ColumnDef::new(Orders::FailureCode).integer().null())
                    .col(
                        ColumnDef::new(Orders::FailureMessage)
                            .string_len(1000)
                            .null(),
                    )
                    .col(ColumnDef::new(Orders::FailureDetails).blob().null())
                    .col(timestamp(Orders::CreateTime))
                    .col(timestamp(Orders::UpdateTime))
                    .to_owned(),
            )
            .await?;
        // Idempotency lives in the database, so it holds across replicas.
        manager
            .create_index(
                Index::create()
                    .name("uq_orders_customer_request")
                    .table(Orders::Table)
                    .col(Orders::CustomerId)
                    .col(Orders::RequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Keyset paging of one customer's orders, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_customer_id")
                    .table(Orders::Table)
                    .col(Orders::CustomerId)
                    .col(Orders::Id)
                    .to_owned(),
            )
            .await?;
        // Recovery scans PENDING orders by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_status_update")
                    .table(Orders::Table)
                    .col(Orders::Status)
                    .col(Orders::UpdateTime)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OrderLines::Table)
                    .if_not_exists()
                    .col(uuid_text(OrderLines::OrderId))
                    .col(ColumnDef::new(OrderLines::LineNo).integer().not_null())
                    .col(uuid_text(OrderLines::ProductId))
                    .col(ColumnDef::new(OrderLines::Sku).string_len(64).not_null())
                    .col(
                        ColumnDef::new(OrderLines::ProductName)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrderLines::Quantity).integer().not_null())
                    .col(
                        ColumnDef::new(OrderLines::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderLines::UnitPriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderLines::LineTotalMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(OrderLines::OrderId)
                            .col(OrderLines::LineNo),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrderLines::Table, OrderLines::OrderId)
                            .to(Orders::Table, Orders::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OrderLines::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await
    }
}
