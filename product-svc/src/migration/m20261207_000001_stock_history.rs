//! What a product's stock history is read from: when a reservation was
//! committed (set by the UPDATE that commits it, so no statement of its
//! own), and the reservation lines by product.

use oms_store::db::schema::timestamp_null;
use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Reservations {
    Table,
    CommitTime,
}

#[derive(DeriveIden)]
enum ReservationLines {
    Table,
    ProductId,
}

const LINES_BY_PRODUCT: &str = "idx_reservation_lines_product";

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Reservations::Table)
                    .add_column(timestamp_null(Reservations::CommitTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(LINES_BY_PRODUCT)
                    .table(ReservationLines::Table)
                    .col(ReservationLines::ProductId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(LINES_BY_PRODUCT)
                    .table(ReservationLines::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Reservations::Table)
                    .drop_column(Reservations::CommitTime)
                    .to_owned(),
            )
            .await
    }
}
