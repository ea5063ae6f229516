//! The tables events need, for the services' migrations: the outbox and
//! its relay lease (producers), and the inbox (consumers).

use oms_store::db::schema::{timestamp, uuid_text};
use sea_orm_migration::prelude::*;

/// The outbox: one row per event, written with the change it describes.
#[derive(DeriveIden)]
pub enum Outbox {
    /// The table.
    Table,
    /// UUIDv7: the event ID, and the publish order.
    Id,
    /// `order`, `product`.
    AggregateType,
    /// The order or product ID.
    AggregateId,
    /// The full protobuf name of the change.
    EventType,
    /// The event message, protobuf-encoded.
    Payload,
    /// When the change was made.
    CreateTime,
    /// When the bus acknowledged it; unset until then.
    PublishTime,
    /// Failed publish attempts.
    Attempts,
    /// The last failure.
    LastError,
}

/// Which relay may publish now: one row per outbox, held for a while.
#[derive(DeriveIden)]
pub enum OutboxLease {
    /// The table.
    Table,
    /// The outbox it guards (`outbox`).
    Name,
    /// The relay holding it (random per process).
    Holder,
    /// Until when.
    ExpireTime,
}

/// The inbox: the events a consumer has applied.
#[derive(DeriveIden)]
pub enum Inbox {
    /// The table.
    Table,
    /// The consumer group.
    Consumer,
    /// The event ID.
    EventId,
    /// When it was applied.
    ApplyTime,
}

const UNPUBLISHED_INDEX: &str = "outbox_publish_time_id";
const INBOX_TIME_INDEX: &str = "inbox_apply_time";

/// Creates the outbox and its lease table.
pub async fn create_outbox(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Outbox::Table)
                .if_not_exists()
                .col(uuid_text(Outbox::Id).primary_key())
                .col(
                    ColumnDef::new(Outbox::AggregateType)
                        .string_len(32)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Outbox::AggregateId)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(Outbox::EventType).string_len(128).not_null())
                // MEDIUMBLOB on MySQL (BLOB stops at 64 KiB; an order of
                // 100 lines is well under, but not by a factor to bet on).
                .col(
                    ColumnDef::new(Outbox::Payload)
                        .custom(Alias::new("MEDIUMBLOB"))
                        .not_null(),
                )
                .col(timestamp(Outbox::CreateTime))
                .col(
                    ColumnDef::new(Outbox::PublishTime)
                        .custom(Alias::new("DATETIME(6)"))
                        .null(),
                )
                .col(
                    ColumnDef::new(Outbox::Attempts)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(ColumnDef::new(Outbox::LastError).text().null())
                .to_owned(),
        )
        .await?;
    // Dropped again by a later migration (see drop_unpublished_index); an
    // applied migration is never edited.
    create_unpublished_index(manager).await?;
    manager
        .create_table(
            Table::create()
                .table(OutboxLease::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(OutboxLease::Name)
                        .string_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(OutboxLease::Holder)
                        .string_len(64)
                        .not_null(),
                )
                .col(timestamp(OutboxLease::ExpireTime))
                .to_owned(),
        )
        .await
}

/// The index the relay once read unpublished rows by, and pruning old
/// published ones.
pub async fn create_unpublished_index(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_index(
            Index::create()
                .name(UNPUBLISHED_INDEX)
                .table(Outbox::Table)
                .col(Outbox::PublishTime)
                .col(Outbox::Id)
                .to_owned(),
        )
        .await
}

/// Drops the `(publish_time, id)` index. Since the relay deletes a row
/// once the bus has it, every row is unpublished and the primary key (a
/// UUIDv7) is already the relay's order: the index only cost each event
/// an index insert and an index delete.
pub async fn drop_unpublished_index(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_index(
            Index::drop()
                .name(UNPUBLISHED_INDEX)
                .table(Outbox::Table)
                .to_owned(),
        )
        .await
}

/// The migration every producer applies after its outbox's: it drops the
/// `(publish_time, id)` index ([`drop_unpublished_index`]). One type, so
/// order-svc and product-svc record it under the same name.
#[derive(Debug)]
pub struct DropUnpublishedIndex;

impl MigrationName for DropUnpublishedIndex {
    fn name(&self) -> &str {
        "m20261207_000002_outbox_index"
    }
}

// sea-orm's `MigrationTrait` (async_trait) names `SchemaManager` without
// its lifetime; the impl must match it.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for DropUnpublishedIndex {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_unpublished_index(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_unpublished_index(manager).await
    }
}

/// Drops what [`create_outbox`] made.
pub async fn drop_outbox(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(OutboxLease::Table).to_owned())
        .await?;
    manager
        .drop_table(Table::drop().table(Outbox::Table).to_owned())
        .await
}

/// Creates the inbox.
pub async fn create_inbox(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Inbox::Table)
                .if_not_exists()
                .col(ColumnDef::new(Inbox::Consumer).string_len(64).not_null())
                .col(uuid_text(Inbox::EventId))
                .col(timestamp(Inbox::ApplyTime))
                .primary_key(Index::create().col(Inbox::Consumer).col(Inbox::EventId))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name(INBOX_TIME_INDEX)
                .table(Inbox::Table)
                .col(Inbox::ApplyTime)
                .to_owned(),
        )
        .await
}

/// Drops what [`create_inbox`] made.
pub async fn drop_inbox(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Inbox::Table).to_owned())
        .await
}
