//! Queries on `reservations` and `reservation_lines`, and the conditional
//! stock moves they make on `products`. Each move is one UPDATE whose WHERE
//! clause holds the rule (enough available, right state), so concurrent
//! callers can never oversell or move stock twice.

use chrono::{DateTime, Utc};
use oms_core::lines::Line;
use oms_store::batch::Batch;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement, UpdateStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QueryResult, QuerySelect, QueryTrait, Set, SqlErr,
};

use super::{product, reservation, reservation_line};
use crate::model::{Hold, Product, Reservation, ReservedLine, State};

fn header(r: &Reservation) -> reservation::ActiveModel {
    reservation::ActiveModel {
        id: Set(r.id.clone()),
        state: Set(r.state),
        lines_digest: Set(r.lines_digest.clone()),
        create_time: Set(r.create_time),
        expire_time: Set(r.expire_time),
        update_time: Set(r.update_time),
        // The stock history reads when units left for good: now, for a
        // reservation committed as it is made, else when it is committed.
        commit_time: Set((r.state == State::Committed).then_some(r.update_time)),
    }
}

/// Inserts the reservation header; `Ok(false)` if the ID already exists.
pub async fn insert(db: &impl ConnectionTrait, r: &Reservation) -> Result<bool, DbErr> {
    match reservation::Entity::insert(header(r))
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

/// The UPDATE that holds `quantity` units of an active product if that
/// many are available: as reserved, or (`Hold::Committed`) taken off the
/// stock on hand at once.
fn hold_update(product_id: &str, quantity: i32, hold: Hold, at: DateTime<Utc>) -> UpdateStatement {
    let (held, by) = match hold {
        Hold::UntilCommitted => (product::Column::StockReserved, quantity),
        Hold::Committed => (product::Column::StockOnHand, -quantity),
    };
    product::Entity::update_many()
        .col_expr(held, Expr::col(held).add(by))
        .col_expr(product::Column::UpdateTime, Expr::value(at))
        .filter(product::Column::Id.eq(product_id))
        .filter(product::Column::Archived.eq(false))
        .filter(
            Expr::col(product::Column::StockOnHand)
                .sub(Expr::col(product::Column::StockReserved))
                .gte(quantity),
        )
        .into_query()
}

/// Inserts the reservation header, then holds each line's units; `None`
/// if the ID already exists, else the products held, as they are after
/// their hold (a line whose product is not among them was refused:
/// missing, archived or short). On SQLite all of it is one command, each
/// hold returning its product; MariaDB has no `UPDATE … RETURNING`, so
/// there the holds run one by one and the held products are read after.
pub async fn insert_and_hold(
    db: &impl ConnectionTrait,
    r: &Reservation,
    lines: &[Line],
    hold: Hold,
    at: DateTime<Utc>,
) -> Result<Option<Vec<Product>>, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        if !insert(db, r).await? {
            return Ok(None);
        }
        return hold_all(db, lines, hold, at).await.map(Some);
    }
    let mut batch = Batch::new(db);
    batch.push(&reservation::Entity::insert(header(r)).into_query());
    match held_on_sqlite(db, batch, lines, hold, at).await {
        Ok(held) => Ok(Some(held)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `batch`, then each line's hold returning its product, as one
/// SQLite command; the products held.
async fn held_on_sqlite(
    db: &impl ConnectionTrait,
    mut batch: Batch,
    lines: &[Line],
    hold: Hold,
    at: DateTime<Utc>,
) -> Result<Vec<Product>, DbErr> {
    for line in lines {
        batch.push(hold_update(&line.product_id, line.quantity, hold, at).returning_all());
    }
    batch
        .rows(db)
        .await?
        .iter()
        .map(|row| product::Model::from_query_result(row, "").map(Product::from))
        .collect()
}

/// Holds each line's units (see [`insert_and_hold`]) and returns the
/// products held, as they are after their hold.
pub async fn hold_all(
    db: &impl ConnectionTrait,
    lines: &[Line],
    hold: Hold,
    at: DateTime<Utc>,
) -> Result<Vec<Product>, DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        return held_on_sqlite(db, Batch::new(db), lines, hold, at).await;
    }
    let mut held = Vec::with_capacity(lines.len());
    for line in lines {
        if db
            .execute(&hold_update(&line.product_id, line.quantity, hold, at))
            .await?
            .rows_affected()
            == 1
        {
            held.push(line.product_id.clone());
        }
    }
    if held.is_empty() {
        return Ok(Vec::new());
    }
    super::products::get_many(db, &held).await
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
/// `expiry`, and returns it as it now is, or `None` if this call did not
/// move it. Only the caller that wins this UPDATE moves the stock, so
/// replicas and retries never move it twice. The UPDATE and the read are
/// one command on SQLite.
pub async fn transition(
    db: &impl ConnectionTrait,
    id: &str,
    from: State,
    to: State,
    expiry: Expiry,
    at: DateTime<Utc>,
) -> Result<Option<Reservation>, DbErr> {
    let mut update = reservation::Entity::update_many()
        .col_expr(reservation::Column::State, Expr::value(to))
        .col_expr(reservation::Column::UpdateTime, Expr::value(at))
        .filter(reservation::Column::Id.eq(id))
        .filter(reservation::Column::State.eq(from));
    // The stock history reads when units left for good.
    if to == State::Committed {
        update = update.col_expr(reservation::Column::CommitTime, Expr::value(at));
    }
    update = match expiry {
        Expiry::Any => update,
        Expiry::ExpiredAt(t) => update.filter(reservation::Column::ExpireTime.lt(t)),
        Expiry::LiveAt(t) => update.filter(reservation::Column::ExpireTime.gte(t)),
    };
    let Some(rows) = Batch::new(db)
        .query_all_if(db, &update.into_query(), &with_lines(id))
        .await?
    else {
        return Ok(None);
    };
    from_rows(&rows)
}

/// The reservation with its lines.
pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Reservation>, DbErr> {
    let rows = db.query_all(&with_lines(id)).await?;
    from_rows(&rows)
}

/// Reservation `id` joined with its lines: a row per line, in product
/// order (one row with empty line columns if it has none).
fn with_lines(id: &str) -> SelectStatement {
    use reservation::Column as R;
    use reservation_line::Column as L;
    Query::select()
        .columns(
            [
                R::Id,
                R::State,
                R::LinesDigest,
                R::CreateTime,
                R::ExpireTime,
                R::UpdateTime,
            ]
            .map(|c| (reservation::Entity, c)),
        )
        .columns(
            [
                L::ReservationId,
                L::ProductId,
                L::Sku,
                L::Name,
                L::Quantity,
                L::CurrencyCode,
                L::UnitPriceMinor,
            ]
            .map(|c| (reservation_line::Entity, c)),
        )
        .from(reservation::Entity)
        .left_join(
            reservation_line::Entity,
            Expr::col((reservation_line::Entity, L::ReservationId))
                .equals((reservation::Entity, R::Id)),
        )
        .and_where(Expr::col((reservation::Entity, R::Id)).eq(id))
        .order_by((reservation_line::Entity, L::ProductId), Order::Asc)
        .to_owned()
}

/// The reservation in rows read by [`with_lines`]; `None` without rows.
fn from_rows(rows: &[QueryResult]) -> Result<Option<Reservation>, DbErr> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let row = reservation::Model::from_query_result(first, "")?;
    let state = row.state;
    let mut lines = Vec::with_capacity(rows.len());
    for line in rows {
        // The LEFT JOIN's row of a reservation without lines.
        if line.try_get::<Option<String>>("", "product_id")?.is_none() {
            continue;
        }
        let l = reservation_line::Model::from_query_result(line, "")?;
        lines.push(ReservedLine {
            product_id: l.product_id,
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            currency_code: l.currency_code,
            unit_price_minor: l.unit_price_minor,
        });
    }
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
        .filter(reservation::Column::State.eq(State::Reserved))
        .filter(reservation::Column::ExpireTime.lt(now))
        .order_by_asc(reservation::Column::ExpireTime)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}
