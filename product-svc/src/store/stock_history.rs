//! A product's stock history, read from what already records each change
//! of stock on hand: the AdjustStock audit trail, committed reservations
//! (their commit time) and committed ones released again (a cancelled
//! order: their last update). Nothing is written for it.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};

use crate::model::{State, StockChangeKind};

/// One change, before stock on hand after it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// When.
    pub time: DateTime<Utc>,
    /// What did it.
    pub kind: StockChangeKind,
    /// Units added (negative: taken).
    pub delta: i64,
    /// An adjustment's reason.
    pub reason: String,
}

#[derive(FromQueryResult)]
struct Adjusted {
    create_time: DateTime<Utc>,
    delta: i64,
    reason: String,
}

#[derive(FromQueryResult)]
struct Committed {
    commit_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    state: State,
    quantity: i32,
}

/// The newest `limit` changes of `product_id`'s stock on hand, newest
/// first.
pub async fn newest(
    db: &impl ConnectionTrait,
    product_id: &str,
    limit: u64,
) -> Result<Vec<Delta>, DbErr> {
    let backend = db.get_database_backend();
    let adjusted = Adjusted::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT create_time, delta, reason FROM stock_adjustments WHERE product_id = ? \
         ORDER BY create_time DESC LIMIT ?",
        [product_id.into(), limit.into()],
    ))
    .all(db)
    .await?;
    // A sale and its return are one row: at most twice the limit's changes.
    let committed = Committed::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT r.commit_time, r.update_time, r.state, l.quantity \
         FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id \
         WHERE l.product_id = ? AND r.commit_time IS NOT NULL \
         ORDER BY r.commit_time DESC LIMIT ?",
        [product_id.into(), limit.into()],
    ))
    .all(db)
    .await?;
    let mut changes: Vec<Delta> = adjusted
        .into_iter()
        .map(|a| Delta {
            time: a.create_time,
            kind: StockChangeKind::Adjustment,
            delta: a.delta,
            reason: a.reason,
        })
        .collect();
    for c in committed {
        let units = i64::from(c.quantity);
        changes.push(Delta {
            time: c.commit_time,
            kind: StockChangeKind::Sold,
            delta: -units,
            reason: String::new(),
        });
        if c.state == State::Released {
            changes.push(Delta {
                time: c.update_time,
                kind: StockChangeKind::Returned,
                delta: units,
                reason: String::new(),
            });
        }
    }
    changes.sort_by_key(|c| std::cmp::Reverse(c.time));
    changes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(changes)
}
