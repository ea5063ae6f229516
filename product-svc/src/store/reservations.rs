//! Queries on `reservations` and `reservation_lines`, and the conditional
//! stock moves they make on `products`. Each move is one UPDATE whose WHERE
//! clause holds the rule (enough available, right state), so concurrent
//! callers can never oversell or move stock twice.

use chrono::{DateTime, Utc};
use kit::batch::Batch;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Set, SqlErr,
};

use super::{product, reservation, reservation_line};
use crate::model::{Product, Reservation, ReservedLine, State};

fn parse_state(name: &str) -> Option<State> {
    State::ALL.into_iter().find(|s| s.as_str() == name)
}

/// Inserts the reservation header; `Ok(false)` if the ID already exists.
pub async fn insert(db: &impl ConnectionTrait, r: &Reservation) -> Result<bool, DbErr> {
    let row = reservation::ActiveModel {
        id: Set(r.id.clone()),
        state: Set(r.state.as_str().to_owned()),
        lines_digest: Set(r.lines_digest.clone()),
        create_time: Set(r.create_time),
        expire_time: Set(r.expire_time),
        update_time: Set(r.update_time),
    };
    match reservation::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Adds the INSERT of a reservation's lines to `batch`.
pub fn stage_lines(batch: &mut Batch, reservation_id: &str, lines: &[ReservedLine]) {
    if lines.is_empty() {
        return;
    }
    let rows = lines.iter().map(|l| reservation_line::ActiveModel {
        reservation_id: Set(reservation_id.to_owned()),
        product_id: Set(l.product_id.clone()),
        sku: Set(l.sku.clone()),
        name: Set(l.name.clone()),
        quantity: Set(l.quantity),
        currency_code: Set(l.currency_code.clone()),
        unit_price_minor: Set(l.unit_price_minor),
    });
    batch.push(&reservation_line::Entity::insert_many(rows).into_query());
}

/// Holds `quantity` units of an active product if that many are available;
/// false otherwise (missing, archived or short).
pub async fn hold(
    db: &impl ConnectionTrait,
    product_id: &str,
    quantity: i32,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = product::Entity::update_many()
        .col_expr(
            product::Column::StockReserved,
            Expr::col(product::Column::StockReserved).add(quantity),
        )
        .col_expr(product::Column::UpdateTime, Expr::value(at))
        .filter(product::Column::Id.eq(product_id))
        .filter(product::Column::Archived.eq(false))
        .filter(
            Expr::col(product::Column::StockOnHand)
                .sub(Expr::col(product::Column::StockReserved))
                .gte(quantity),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// How a reservation's units move when its state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockMove {
    /// RESERVED → COMMITTED: the units leave stock for good.
    Commit,
    /// RESERVED → RELEASED/EXPIRED: the hold is dropped.
    DropHold,
    /// COMMITTED → RELEASED: the units come back (a cancellation).
    Return,
}

/// Applies `movement` for every line and returns the products as they
/// are after it (one command on SQLite).
pub async fn move_stock(
    db: &impl ConnectionTrait,
    lines: &[ReservedLine],
    movement: StockMove,
    at: DateTime<Utc>,
) -> Result<Vec<Product>, DbErr> {
    let mut batch = Batch::new(db);
    for line in lines {
        let q = i64::from(line.quantity);
        let (on_hand, reserved) = match movement {
            StockMove::Commit => (-q, -q),
            StockMove::DropHold => (0, -q),
            StockMove::Return => (q, 0),
        };
        let update = product::Entity::update_many()
            .col_expr(
                product::Column::StockOnHand,
                Expr::col(product::Column::StockOnHand).add(on_hand),
            )
            .col_expr(
                product::Column::StockReserved,
                Expr::col(product::Column::StockReserved).add(reserved),
            )
            .col_expr(product::Column::UpdateTime, Expr::value(at))
            .filter(product::Column::Id.eq(&line.product_id));
        batch.push(&update.into_query());
    }
    let moved = product::Entity::find()
        .filter(product::Column::Id.is_in(lines.iter().map(|l| l.product_id.clone())))
        .into_query();
    batch
        .query_all(db, &moved)
        .await?
        .iter()
        .map(|row| product::Model::from_query_result(row, "").map(Product::from))
        .collect()
}

/// Which reservations a transition may apply to, by expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Any.
    Any,
    /// Only those whose `expire_time` is before this (the sweeper).
    ExpiredAt(DateTime<Utc>),
    /// Only those still live at this time (commit).
    LiveAt(DateTime<Utc>),
}

/// Moves a reservation from `from` to `to` if it is in `from` and matches
/// `expiry`; true if this call did it. Only the caller that wins this
/// UPDATE moves the stock, so replicas and retries never move it twice.
pub async fn transition(
    db: &impl ConnectionTrait,
    id: &str,
    from: State,
    to: State,
    expiry: Expiry,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut update = reservation::Entity::update_many()
        .col_expr(reservation::Column::State, Expr::value(to.as_str()))
        .col_expr(reservation::Column::UpdateTime, Expr::value(at))
        .filter(reservation::Column::Id.eq(id))
        .filter(reservation::Column::State.eq(from.as_str()));
    update = match expiry {
        Expiry::Any => update,
        Expiry::ExpiredAt(t) => update.filter(reservation::Column::ExpireTime.lt(t)),
        Expiry::LiveAt(t) => update.filter(reservation::Column::ExpireTime.gte(t)),
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// The reservation with its lines.
pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Reservation>, DbErr> {
    let Some(row) = reservation::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let state = parse_state(&row.state).ok_or_else(|| {
        DbErr::Custom(format!(
            "reservation {id} has unknown state {:?}",
            row.state
        ))
    })?;
    let lines = reservation_line::Entity::find()
        .filter(reservation_line::Column::ReservationId.eq(id))
        .order_by_asc(reservation_line::Column::ProductId)
        .all(db)
        .await?
        .into_iter()
        .map(|l| ReservedLine {
            product_id: l.product_id,
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            currency_code: l.currency_code,
            unit_price_minor: l.unit_price_minor,
        })
        .collect();
    Ok(Some(Reservation {
        id: row.id,
        state,
        lines_digest: row.lines_digest,
        lines,
        create_time: row.create_time,
        expire_time: row.expire_time,
        update_time: row.update_time,
    }))
}

/// IDs of up to `limit` RESERVED reservations that expired before `now`.
pub async fn expired(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    reservation::Entity::find()
        .select_only()
        .column(reservation::Column::Id)
        .filter(reservation::Column::State.eq(State::Reserved.as_str()))
        .filter(reservation::Column::ExpireTime.lt(now))
        .order_by_asc(reservation::Column::ExpireTime)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}
