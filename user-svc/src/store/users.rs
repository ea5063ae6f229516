//! Queries on the `users` table. Takes and returns domain values; knows
//! nothing of protobuf.

use chrono::{DateTime, Utc};
use oms_runtime::auth::Role;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, TransactionTrait,
};

use super::user::{self, Entity as Users};
use crate::model::{AccessChange, User};

/// Why a user query failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The email is already registered.
    #[error("email already registered")]
    EmailTaken,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A row holds a value this build cannot read.
    #[error("user {id} has an unreadable {column} in the database")]
    Corrupt {
        /// The account.
        id: String,
        /// Which column.
        column: &'static str,
    },
    /// The change would leave no active admin.
    #[error("the last active admin cannot be demoted or disabled")]
    LastAdmin,
}

fn from_row(row: user::Model) -> Result<User, StoreError> {
    let corrupt = |column| StoreError::Corrupt {
        id: row.id.clone(),
        column,
    };
    let role = Role::parse(&row.role).ok_or_else(|| corrupt("role"))?;
    let token_version = u64::try_from(row.token_version).map_err(|_| corrupt("token_version"))?;
    Ok(User {
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        password_hash: row.password_hash,
        role,
        create_time: row.create_time,
        disabled: row.disabled,
        token_version,
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
        update_time: Set(oms_core::time::now()),
        token_version: Set(i64::try_from(user.token_version).unwrap_or(i64::MAX)),
        disabled: Set(user.disabled),
        revoke_time: Set(None),
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

/// Creates the account, or sets its role and password hash and enables it
/// if the email exists (the bootstrap admin, idempotent across restarts and
/// replicas: the operator's way back in).
pub async fn upsert_by_email(db: &DatabaseConnection, user: &User) -> Result<(), StoreError> {
    Users::insert(to_row(user))
        .on_conflict(
            OnConflict::column(user::Column::Email)
                .update_columns([
                    user::Column::PasswordHash,
                    user::Column::Role,
                    user::Column::Disabled,
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

/// Applies `change` and raises the account's token version, in one
/// transaction; `None` if there is no such account. A change that would
/// leave no active admin is refused with [`StoreError::LastAdmin`]. A role
/// or state the account already has changes nothing and revokes nothing.
pub async fn change_access(
    db: &DatabaseConnection,
    id: &str,
    change: &AccessChange,
) -> Result<Option<(User, bool)>, StoreError> {
    let txn = db.begin().await?;
    // MySQL: the active admins' rows stay locked until commit, so two
    // admins demoting each other at once cannot both succeed. SQLite has
    // one connection, so transactions never interleave.
    let active_admins = Users::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::Disabled.eq(false))
        .lock_exclusive()
        .into_tuple::<String>()
        .all(&txn)
        .await?;
    let Some(row) = Users::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    let before = from_row(row.clone())?;
    let mut after = before.clone();
    match change {
        AccessChange::Role(role) => after.role = *role,
        AccessChange::Disabled(disabled) => after.disabled = *disabled,
        AccessChange::Password(hash) => after.password_hash.clone_from(hash),
    }
    let changed = after != before;
    if !changed {
        return Ok(Some((before, false)));
    }
    let admin_before = before.role == Role::Admin && !before.disabled;
    let admin_after = after.role == Role::Admin && !after.disabled;
    if admin_before && !admin_after && active_admins.len() <= 1 {
        return Err(StoreError::LastAdmin);
    }
    after.token_version = before.token_version.saturating_add(1);
    let now = oms_core::time::now();
    let mut update: user::ActiveModel = row.into();
    update.role = Set(after.role.as_str().to_owned());
    update.disabled = Set(after.disabled);
    update.password_hash = Set(after.password_hash.clone());
    update.token_version = Set(i64::try_from(after.token_version).unwrap_or(i64::MAX));
    update.revoke_time = Set(Some(now));
    update.update_time = Set(now);
    update.update(&txn).await?;
    txn.commit().await?;
    Ok(Some((after, true)))
}

/// The accounts whose token version was raised at or after `since`, as
/// (ID, version), by ID, `limit` of them from `offset` on. (Offsets rather
/// than a keyset: the page token must not carry an ID, since the list is
/// public. A row added mid-listing may be missed by one refresh and is
/// seen by the next.)
pub async fn revoked_since(
    db: &DatabaseConnection,
    since: DateTime<Utc>,
    offset: u64,
    limit: u64,
) -> Result<Vec<(String, u64)>, StoreError> {
    Users::find()
        .select_only()
        .columns([user::Column::Id, user::Column::TokenVersion])
        .filter(user::Column::RevokeTime.gte(since))
        .order_by_asc(user::Column::Id)
        .offset(offset)
        .limit(limit)
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, version)| {
            let version = u64::try_from(version).map_err(|_| StoreError::Corrupt {
                id: id.clone(),
                column: "token_version",
            })?;
            Ok((id, version))
        })
        .collect()
}
