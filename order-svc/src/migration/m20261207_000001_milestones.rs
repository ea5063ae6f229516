//! When an order reached each status (the timeline the console shows),
//! each set by the UPDATE that changes the status, so it costs no
//! statement of its own; and the quote whose prices it was placed at.

use oms_store::db::schema::timestamp_null;
use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Orders {
    Table,
    ConfirmTime,
    ShipTime,
    DeliverTime,
    CancelTime,
    FailTime,
    QuoteId,
}

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            Orders::ConfirmTime,
            Orders::ShipTime,
            Orders::DeliverTime,
            Orders::CancelTime,
            Orders::FailTime,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .add_column(timestamp_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(ColumnDef::new(Orders::QuoteId).string_len(36).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Orders::QuoteId,
            Orders::ConfirmTime,
            Orders::ShipTime,
            Orders::DeliverTime,
            Orders::CancelTime,
            Orders::FailTime,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
