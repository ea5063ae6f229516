//! Queries on `orders` and `order_lines`. Every status change is a
//! conditional UPDATE on the current status, so concurrent requests,
//! recovery and replicas cannot both make the same change; and every
//! change writes its event to the outbox in the same transaction.

use chrono::{DateTime, Utc};
use oms_store::batch::Batch;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Set, SqlErr, TransactionTrait,
};

use super::OrderEventSink;
use super::{order, order_line};
use crate::model::{Change, Failure, Line, Milestones, Order, Status};

fn from_row(row: order::Model, lines: Vec<Line>) -> Result<Order, DbErr> {
    let failure = row.failure_code.map(|code| Failure {
        code,
        message: row.failure_message.clone().unwrap_or_default(),
        details: row.failure_details.clone().unwrap_or_default(),
    });
    Ok(Order {
        id: row.id,
        customer_id: row.customer_id,
        request_id: row.request_id,
        request_digest: row.request_digest,
        status: row.status,
        currency_code: row.currency_code,
        total_minor: row.total_minor,
        attempt: row.attempt,
        cancel_reason: row.cancel_reason,
        stock_released: row.stock_released,
        failure,
        lines,
        create_time: row.create_time,
        update_time: row.update_time,
        milestones: Milestones {
            confirmed: row.confirm_time,
            shipped: row.ship_time,
            delivered: row.deliver_time,
            cancelled: row.cancel_time,
            failed: row.fail_time,
        },
        quote_id: row.quote_id,
    })
}

/// Records a PENDING order; `Ok(false)` if the customer already used this
/// request ID (the unique key settles concurrent duplicates).
pub async fn insert_pending(
    db: &DatabaseConnection,
    events: &impl OrderEventSink,
    o: &Order,
) -> Result<bool, DbErr> {
    let row = order::ActiveModel {
        id: Set(o.id.clone()),
        customer_id: Set(o.customer_id.clone()),
        request_id: Set(o.request_id.clone()),
        request_digest: Set(o.request_digest.clone()),
        status: Set(Status::Pending),
        currency_code: Set(String::new()),
        total_minor: Set(0),
        attempt: Set(o.attempt),
        cancel_reason: Set(None),
        stock_released: Set(false),
        failure_code: Set(None),
        failure_message: Set(None),
        failure_details: Set(None),
        create_time: Set(o.create_time),
        update_time: Set(o.update_time),
        quote_id: Set(o.quote_id.clone()),
        // No status after PENDING yet.
        ..Default::default()
    };
    let txn = db.begin().await?;
    // The order and its event in one command on SQLite.
    let mut batch = Batch::new(&txn);
    batch.push(&order::Entity::insert(row).into_query());
    events.stage(&mut batch, o, &Change::Created);
    match batch.execute(&txn).await {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            txn.rollback().await?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    txn.commit().await?;
    events.committed(&o.id);
    Ok(true)
}

/// Writes the event of `change` to order `id` (read again in `txn`, so the
/// event carries the order as it now is; not with events off), then
/// commits.
async fn record_and_commit(
    txn: sea_orm::DatabaseTransaction,
    events: &impl OrderEventSink,
    id: &str,
    change: Change,
) -> Result<(), DbErr> {
    if events.enabled() {
        let order = get(&txn, id).await?.ok_or_else(|| {
            DbErr::RecordNotFound(format!("order {id} vanished in its own change"))
        })?;
        let mut batch = Batch::new(&txn);
        events.stage(&mut batch, &order, &change);
        batch.execute(&txn).await?;
    }
    txn.commit().await?;
    events.committed(id);
    Ok(())
}

/// The order with its lines.
pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Order>, DbErr> {
    let Some(row) = order::Entity::find_by_id(id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let lines = lines_of(db, std::slice::from_ref(&row.id)).await?;
    Ok(Some(from_row(row, lines)?))
}

/// The customer's order for this request ID.
pub async fn find_by_request(
    db: &impl ConnectionTrait,
    customer: &str,
    request_id: &str,
) -> Result<Option<Order>, DbErr> {
    let Some(row) = order::Entity::find()
        .filter(order::Column::CustomerId.eq(customer))
        .filter(order::Column::RequestId.eq(request_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let lines = lines_of(db, std::slice::from_ref(&row.id)).await?;
    Ok(Some(from_row(row, lines)?))
}

async fn lines_of(db: &impl ConnectionTrait, order_ids: &[String]) -> Result<Vec<Line>, DbErr> {
    Ok(lines_by_order(db, order_ids)
        .await?
        .into_iter()
        .map(|(_, l)| l)
        .collect())
}

async fn lines_by_order(
    db: &impl ConnectionTrait,
    order_ids: &[String],
) -> Result<Vec<(String, Line)>, DbErr> {
    Ok(order_line::Entity::find()
        .filter(order_line::Column::OrderId.is_in(order_ids.iter().cloned()))
        .order_by_asc(order_line::Column::OrderId)
        .order_by_asc(order_line::Column::LineNo)
        .all(db)
        .await?
        .into_iter()
        .map(|l| {
            (
                l.order_id,
                Line {
                    product_id: l.product_id,
                    sku: l.sku,
                    product_name: l.product_name,
                    quantity: l.quantity,
                    unit_price_minor: l.unit_price_minor,
                    line_total_minor: l.line_total_minor,
                },
            )
        })
        .collect())
}

/// PENDING → CONFIRMED with its lines and total, in one transaction: the
/// order as confirmed, or `None` if it was no longer PENDING. `pending`
/// is the order as its saga knows it; the confirmed order (returned, and in
/// the event) is built from it and the priced lines, without reading the
/// order back.
pub async fn confirm(
    db: &DatabaseConnection,
    events: &impl OrderEventSink,
    pending: &Order,
    currency_code: &str,
    total_minor: i64,
    lines: Vec<Line>,
    at: DateTime<Utc>,
) -> Result<Option<Order>, DbErr> {
    let id = pending.id.as_str();
    let txn = db.begin().await?;
    let still_pending = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(Status::Confirmed))
        .col_expr(order::Column::ConfirmTime, Expr::value(at))
        .col_expr(order::Column::CurrencyCode, Expr::value(currency_code))
        .col_expr(order::Column::TotalMinor, Expr::value(total_minor))
        .col_expr(order::Column::UpdateTime, Expr::value(at))
        .filter(order::Column::Id.eq(id))
        .filter(order::Column::Status.eq(Status::Pending))
        .into_query();
    let rows = lines
        .iter()
        .enumerate()
        .map(|(i, l)| order_line::ActiveModel {
            order_id: Set(id.to_owned()),
            line_no: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            product_id: Set(l.product_id.clone()),
            sku: Set(l.sku.clone()),
            product_name: Set(l.product_name.clone()),
            quantity: Set(l.quantity),
            currency_code: Set(currency_code.to_owned()),
            unit_price_minor: Set(l.unit_price_minor),
            line_total_minor: Set(l.line_total_minor),
        });
    // The status change, the lines and the event in one command on SQLite.
    let mut batch = Batch::new(&txn);
    batch.push(&order_line::Entity::insert_many(rows).into_query());
    let confirmed = Order {
        status: Status::Confirmed,
        currency_code: currency_code.to_owned(),
        total_minor,
        lines,
        update_time: at,
        milestones: Milestones {
            confirmed: Some(at),
            ..pending.milestones
        },
        ..pending.clone()
    };
    events.stage(&mut batch, &confirmed, &Change::Confirmed);
    if !batch.execute_if(&txn, &still_pending).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    txn.commit().await?;
    events.committed(id);
    Ok(Some(confirmed))
}

/// PENDING → FAILED, keeping the error; `released` says whether the
/// attempt's reservation is known to hold nothing (else recovery, or the
/// next retry, releases it). False if no longer PENDING.
pub async fn fail(
    db: &DatabaseConnection,
    events: &impl OrderEventSink,
    id: &str,
    failure: &Failure,
    released: bool,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let won = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(Status::Failed))
        .col_expr(order::Column::FailTime, Expr::value(at))
        .col_expr(order::Column::StockReleased, Expr::value(released))
        .col_expr(order::Column::FailureCode, Expr::value(failure.code))
        .col_expr(
            order::Column::FailureMessage,
            Expr::value(failure.message.clone()),
        )
        .col_expr(
            order::Column::FailureDetails,
            Expr::value(failure.details.clone()),
        )
        .col_expr(order::Column::UpdateTime, Expr::value(at))
        .filter(order::Column::Id.eq(id))
        .filter(order::Column::Status.eq(Status::Pending))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !won {
        txn.rollback().await?;
        return Ok(false);
    }
    let change = Change::Failed {
        reason: failure.message.clone(),
    };
    record_and_commit(txn, events, id, change).await?;
    Ok(true)
}

/// FAILED (at `attempt`) → PENDING at the next attempt, for a retry after
/// a transient failure; false if someone else already did.
pub async fn retry(
    db: &DatabaseConnection,
    events: &impl OrderEventSink,
    id: &str,
    attempt: i32,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let won = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(Status::Pending))
        .col_expr(order::Column::Attempt, Expr::value(attempt + 1))
        .col_expr(order::Column::FailureCode, Expr::value(Option::<i32>::None))
        .col_expr(
            order::Column::FailureMessage,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            order::Column::FailureDetails,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(order::Column::UpdateTime, Expr::value(at))
        .filter(order::Column::Id.eq(id))
        .filter(order::Column::Status.eq(Status::Failed))
        .filter(order::Column::Attempt.eq(attempt))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !won {
        txn.rollback().await?;
        return Ok(false);
    }
    let change = Change::StatusChanged {
        previous: Status::Failed,
    };
    record_and_commit(txn, events, id, change).await?;
    Ok(true)
}

/// `from` → `to`; false if the order was not in `from`.
pub async fn transition(
    db: &DatabaseConnection,
    events: &impl OrderEventSink,
    id: &str,
    from: Status,
    to: Status,
    cancel_reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let mut update = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(to))
        .col_expr(order::Column::UpdateTime, Expr::value(at))
        .filter(order::Column::Id.eq(id))
        .filter(order::Column::Status.eq(from));
    let reached = match to {
        Status::Confirmed => Some(order::Column::ConfirmTime),
        Status::Shipped => Some(order::Column::ShipTime),
        Status::Delivered => Some(order::Column::DeliverTime),
        Status::Cancelled => Some(order::Column::CancelTime),
        Status::Failed => Some(order::Column::FailTime),
        Status::Pending => None,
    };
    if let Some(column) = reached {
        update = update.col_expr(column, Expr::value(at));
    }
    if let Some(reason) = cancel_reason {
        update = update.col_expr(order::Column::CancelReason, Expr::value(reason));
    }
    if update.exec(&txn).await?.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    let change = if to == Status::Cancelled {
        Change::Cancelled {
            previous: from,
            reason: cancel_reason.unwrap_or_default().to_owned(),
        }
    } else {
        Change::StatusChanged { previous: from }
    };
    record_and_commit(txn, events, id, change).await?;
    Ok(true)
}

/// Notes that the order's current reservation holds nothing any more.
pub async fn mark_stock_released(
    db: &impl ConnectionTrait,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    order::Entity::update_many()
        .col_expr(order::Column::StockReleased, Expr::value(true))
        .col_expr(order::Column::UpdateTime, Expr::value(at))
        .filter(order::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Which orders a list holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    /// One customer's.
    pub customer: Option<&'a str>,
    /// In one status.
    pub status: Option<Status>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_until: Option<DateTime<Utc>>,
}

/// Up to `limit` orders, newest first, below `before`, as `filter` says.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &ListFilter<'_>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Order>, DbErr> {
    let mut find = order::Entity::find()
        .order_by_desc(order::Column::Id)
        .limit(limit);
    if let Some(customer) = filter.customer {
        find = find.filter(order::Column::CustomerId.eq(customer));
    }
    if let Some(status) = filter.status {
        find = find.filter(order::Column::Status.eq(status));
    }
    if let Some(from) = filter.created_from {
        find = find.filter(order::Column::CreateTime.gte(from));
    }
    if let Some(until) = filter.created_until {
        find = find.filter(order::Column::CreateTime.lt(until));
    }
    if let Some(before) = before {
        find = find.filter(order::Column::Id.lt(before));
    }
    let rows = find.all(db).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut lines = lines_by_order(db, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let (mine, rest): (Vec<_>, Vec<_>) = lines.drain(..).partition(|(id, _)| *id == row.id);
            lines = rest;
            from_row(row, mine.into_iter().map(|(_, l)| l).collect())
        })
        .collect()
}

/// Orders recovery must finish: PENDING since before `older_than`, or
/// CANCELLED or FAILED with their reservation not yet released.
pub async fn unfinished(
    db: &impl ConnectionTrait,
    older_than: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Order>, DbErr> {
    let rows = order::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(
                    sea_orm::Condition::all()
                        .add(order::Column::Status.eq(Status::Pending))
                        .add(order::Column::UpdateTime.lt(older_than)),
                )
                .add(
                    sea_orm::Condition::all()
                        .add(order::Column::Status.is_in([Status::Cancelled, Status::Failed]))
                        .add(order::Column::StockReleased.eq(false)),
                ),
        )
        .order_by_asc(order::Column::UpdateTime)
        .limit(limit)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|row| from_row(row, Vec::new()))
        .collect()
}

/// How many orders a customer has with this request ID (tests and checks).
pub async fn count_for_request(
    db: &impl ConnectionTrait,
    customer: &str,
    request_id: &str,
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    order::Entity::find()
        .filter(order::Column::CustomerId.eq(customer))
        .filter(order::Column::RequestId.eq(request_id))
        .count(db)
        .await
}
