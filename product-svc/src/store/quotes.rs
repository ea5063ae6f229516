//! Queries on `quotes` and `quote_lines`. Consuming and giving back are
//! each one conditional UPDATE, so two orders racing on one quote cannot
//! both have it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use super::quote::QuoteState;
use super::{quote, quote_line, reservation};
use crate::model::{Quote, QuoteLine, QuoteUse, State};

/// Stores a new quote with its lines.
pub async fn insert(db: &DatabaseConnection, q: &Quote) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    quote::Entity::insert(quote::ActiveModel {
        id: Set(q.id.clone()),
        customer_id: Set(q.customer_id.clone()),
        state: Set(QuoteState::Open),
        currency_code: Set(q.currency_code.clone()),
        total_minor: Set(q.total_minor),
        create_time: Set(q.create_time),
        expire_time: Set(q.expire_time),
        order_id: Set(None),
        reservation_id: Set(None),
        consume_time: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    let lines = q
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| quote_line::ActiveModel {
            quote_id: Set(q.id.clone()),
            line_no: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            product_id: Set(l.product_id.clone()),
            sku: Set(l.sku.clone()),
            name: Set(l.name.clone()),
            quantity: Set(l.quantity),
            unit_price_minor: Set(l.unit_price_minor),
        });
    quote_line::Entity::insert_many(lines)
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await
}

/// How many of `customer_id`'s quotes are open (unused, unexpired) at
/// `now`.
pub async fn open_count(
    db: &impl ConnectionTrait,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    quote::Entity::find()
        .filter(quote::Column::CustomerId.eq(customer_id))
        .filter(quote::Column::ExpireTime.gt(now))
        .filter(quote::Column::State.eq(QuoteState::Open))
        .count(db)
        .await
}

/// The quote with its lines.
pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Quote>, DbErr> {
    let Some(row) = quote::Entity::find_by_id(id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let lines = quote_line::Entity::find()
        .filter(quote_line::Column::QuoteId.eq(id))
        .order_by_asc(quote_line::Column::LineNo)
        .all(db)
        .await?
        .into_iter()
        .map(|l| QuoteLine {
            line_total_minor: l.unit_price_minor.saturating_mul(i64::from(l.quantity)),
            product_id: l.product_id,
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            unit_price_minor: l.unit_price_minor,
        })
        .collect();
    Ok(Some(Quote {
        consumed: row.state == QuoteState::Consumed,
        id: row.id,
        customer_id: row.customer_id,
        currency_code: row.currency_code,
        total_minor: row.total_minor,
        lines,
        create_time: row.create_time,
        expire_time: row.expire_time,
        order_id: row.order_id,
    }))
}

/// Marks the quote consumed by `reservation_id` for `using.order_id` if it
/// is still the customer's, open and unexpired at `now`; false otherwise
/// (someone else consumed it first).
pub async fn consume(
    db: &impl ConnectionTrait,
    using: &QuoteUse,
    reservation_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = quote::Entity::update_many()
        .col_expr(quote::Column::State, Expr::value(QuoteState::Consumed))
        .col_expr(quote::Column::OrderId, Expr::value(using.order_id.clone()))
        .col_expr(
            quote::Column::ReservationId,
            Expr::value(reservation_id.to_owned()),
        )
        .col_expr(quote::Column::ConsumeTime, Expr::value(now))
        .filter(quote::Column::Id.eq(using.quote_id.clone()))
        .filter(quote::Column::CustomerId.eq(using.customer_id.clone()))
        .filter(
            Condition::any()
                .add(quote::Column::State.eq(QuoteState::Open))
                .add(used_by_a_released_attempt_of(&using.order_id)),
        )
        .filter(quote::Column::ExpireTime.gt(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// A quote consumed by an earlier attempt of `order_id` whose reservation
/// has given its stock back since: that order, retried after a transient
/// failure, may use it again. (Its stock was taken and committed in one
/// step, so the release that undid the attempt could not tell it from a
/// cancellation and kept the quote consumed.)
fn used_by_a_released_attempt_of(order_id: &str) -> Condition {
    // Correlated on the reservation's primary key: one lookup, no scan.
    let released = Query::select()
        .expr(Expr::val(1))
        .from(reservation::Entity)
        .and_where(
            Expr::col((reservation::Entity, reservation::Column::Id))
                .equals((quote::Entity, quote::Column::ReservationId)),
        )
        .and_where(
            Expr::col((reservation::Entity, reservation::Column::State))
                .is_in([State::Released, State::Expired]),
        )
        .to_owned();
    Condition::all()
        .add(quote::Column::State.eq(QuoteState::Consumed))
        .add(quote::Column::OrderId.eq(order_id))
        .add(Expr::exists(released))
}

/// Makes the quote `reservation_id` consumed open again (its order never
/// got the stock); how many it reopened (0 or 1).
pub async fn give_back(db: &impl ConnectionTrait, reservation_id: &str) -> Result<u64, DbErr> {
    let result = quote::Entity::update_many()
        .col_expr(quote::Column::State, Expr::value(QuoteState::Open))
        .col_expr(quote::Column::OrderId, Expr::value(Option::<String>::None))
        .col_expr(
            quote::Column::ReservationId,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            quote::Column::ConsumeTime,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(quote::Column::ReservationId.eq(reservation_id))
        .filter(quote::Column::State.eq(QuoteState::Consumed))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Deletes quotes that expired unused before `before`, with their lines;
/// how many. Consumed quotes stay with the orders that used them.
pub async fn prune(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    let stale = Query::select()
        .column(quote::Column::Id)
        .from(quote::Entity)
        .and_where(quote::Column::State.eq(QuoteState::Open))
        .and_where(quote::Column::ExpireTime.lt(before))
        .to_owned();
    quote_line::Entity::delete_many()
        .filter(quote_line::Column::QuoteId.in_subquery(stale))
        .exec(&txn)
        .await?;
    let pruned = quote::Entity::delete_many()
        .filter(quote::Column::State.eq(QuoteState::Open))
        .filter(quote::Column::ExpireTime.lt(before))
        .exec(&txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    Ok(pruned)
}
