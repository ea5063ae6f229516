//! Token versions and disabled accounts: what lets a role change, a
//! disabled account or a new password end earlier access tokens at once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    TokenVersion,
    Disabled,
    RevokeTime,
}

const REVOKE_TIME_INDEX: &str = "users_revoke_time";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            // Access tokens carry it as `ver`; below the current one they
            // are void once the change is listed.
            ColumnDef::new(Users::TokenVersion)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Users::Disabled)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            // When the version was last raised; the revocation list is the
            // rows with a recent one.
            ColumnDef::new(Users::RevokeTime)
                .custom(Alias::new("DATETIME(6)"))
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(REVOKE_TIME_INDEX)
                    .table(Users::Table)
                    .col(Users::RevokeTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(REVOKE_TIME_INDEX)
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Users::RevokeTime, Users::Disabled, Users::TokenVersion] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
