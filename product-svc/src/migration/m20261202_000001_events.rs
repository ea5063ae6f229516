//! The outbox (every product change's event, written with the change) and
//! the inbox (the order events already applied).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::schema::create_outbox(manager).await?;
        events::schema::create_inbox(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::schema::drop_inbox(manager).await?;
        events::schema::drop_outbox(manager).await
    }
}
