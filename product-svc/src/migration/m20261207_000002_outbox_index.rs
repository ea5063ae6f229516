//! The outbox without its `(publish_time, id)` index: every row is
//! unpublished now that the relay deletes what the bus acknowledged, so
//! the primary key serves the relay and the index only cost writes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::schema::drop_unpublished_index(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::schema::create_unpublished_index(manager).await
    }
}
