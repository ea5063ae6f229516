//! Effects exactly once: a consumer records each event ID it applies in
//! the inbox, in the same transaction as the effect. A redelivered event
//! finds its ID there and changes nothing.

use sea_orm::sea_query::{ExprTrait as _, Query};
use sea_orm::{ConnectionTrait, DbErr, SqlErr};

use crate::schema::Inbox;

/// Records that `consumer` applies `event_id`, in `txn`; false if it
/// already had (the caller then rolls back and skips the effect).
pub async fn first_time(
    txn: &impl ConnectionTrait,
    consumer: &str,
    event_id: &str,
) -> Result<bool, DbErr> {
    let insert = Query::insert()
        .into_table(Inbox::Table)
        .columns([Inbox::Consumer, Inbox::EventId, Inbox::ApplyTime])
        .values([
            consumer.into(),
            event_id.into(),
            oms_core::time::now().into(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    // The primary key decides; neither MySQL nor SQLite aborts the
    // transaction over a refused insert.
    match txn.execute(&insert).await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Forgets applied events older than `before`: by then the bus no longer
/// redelivers them. Returns how many.
pub async fn prune(
    db: &impl ConnectionTrait,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    let delete = Query::delete()
        .from_table(Inbox::Table)
        .and_where(sea_orm::sea_query::Expr::col(Inbox::ApplyTime).lt(before))
        .to_owned();
    Ok(db.execute(&delete).await?.rows_affected())
}
