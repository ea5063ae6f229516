//! Queries on the `users` table. Takes and returns domain values; knows
//! nothing of protobuf.

use kit::auth::Role;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr,
};

use super::user::{self, Entity as Users};
use crate::model::User;

/// Why a user query failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The email is already registered.
    #[error("email already registered")]
    EmailTaken,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds a role this build doesn't know.
    #[error("user {0} has an unknown role in the database")]
    CorruptRole(String),
}

fn from_row(row: user::Model) -> Result<User, StoreError> {
    let role = Role::parse(&row.role).ok_or_else(|| StoreError::CorruptRole(row.id.clone()))?;
    Ok(User {
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        password_hash: row.password_hash,
        role,
        create_time: row.create_time,
    })
}

fn to_row(user: &User) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(user.id.clone()),
        email: Set(user.email.clone()),
        display_name: Set(user.display_name.clone()),
        password_hash: Set(user.password_hash.clone()),
        role: Set(user.role.as_str().to_owned()),
        create_time: Set(user.create_time),
        update_time: Set(kit::time::now()),
    }
}

/// Inserts a new account.
pub async fn insert(db: &DatabaseConnection, user: &User) -> Result<(), StoreError> {
    match Users::insert(to_row(user)).exec_without_returning(db).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(StoreError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the account, or sets its role and password hash if the email
/// exists (the bootstrap admin, idempotent across restarts and replicas).
pub async fn upsert_by_email(db: &DatabaseConnection, user: &User) -> Result<(), StoreError> {
    Users::insert(to_row(user))
        .on_conflict(
            OnConflict::column(user::Column::Email)
                .update_columns([
                    user::Column::PasswordHash,
                    user::Column::Role,
                    user::Column::UpdateTime,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The account with this normalised email.
pub async fn find_by_email(
    db: &DatabaseConnection,
    email: &str,
) -> Result<Option<User>, StoreError> {
    Users::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// The account with this ID.
pub async fn find_by_id(db: &DatabaseConnection, id: &str) -> Result<Option<User>, StoreError> {
    Users::find_by_id(id.to_owned())
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// Up to `limit` accounts with IDs after `after`, oldest first (UUIDv7 IDs
/// sort by creation, so this is keyset paging on the primary key).
pub async fn list(
    db: &DatabaseConnection,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<User>, StoreError> {
    let mut query = Users::find().order_by_asc(user::Column::Id).limit(limit);
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    query.all(db).await?.into_iter().map(from_row).collect()
}

/// Replaces an account's password hash; false if there is no such account.
pub async fn set_password_hash(
    db: &DatabaseConnection,
    id: &str,
    hash: &str,
) -> Result<bool, StoreError> {
    update(db, id, |row| row.password_hash = Set(hash.to_owned())).await
}

/// Sets an account's role; false if there is no such account.
pub async fn set_role(db: &DatabaseConnection, id: &str, role: Role) -> Result<bool, StoreError> {
    update(db, id, |row| row.role = Set(role.as_str().to_owned())).await
}

async fn update(
    db: &DatabaseConnection,
    id: &str,
    change: impl FnOnce(&mut user::ActiveModel),
) -> Result<bool, StoreError> {
    let Some(row) = Users::find_by_id(id.to_owned()).one(db).await? else {
        return Ok(false);
    };
    let mut row: user::ActiveModel = row.into();
    change(&mut row);
    row.update_time = Set(kit::time::now());
    row.update(db).await?;
    Ok(true)
}
