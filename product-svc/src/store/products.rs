//! Queries on `products`, `price_history` and `stock_adjustments`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr,
};

use super::{price_history, product, stock_adjustment};
use crate::model::{PricePoint, Product};

impl From<product::Model> for Product {
    fn from(row: product::Model) -> Self {
        Self {
            id: row.id,
            sku: row.sku,
            name: row.name,
            description: row.description,
            currency_code: row.currency_code,
            price_minor: row.price_minor,
            stock_on_hand: row.stock_on_hand,
            stock_reserved: row.stock_reserved,
            archived: row.archived,
            create_time: row.create_time,
            update_time: row.update_time,
        }
    }
}

/// Why a catalogue write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The sku is taken.
    #[error("sku already in use")]
    SkuTaken,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Inserts a product row.
pub async fn insert(db: &impl ConnectionTrait, p: &Product) -> Result<(), WriteError> {
    let row = product::ActiveModel {
        id: Set(p.id.clone()),
        sku: Set(p.sku.clone()),
        name: Set(p.name.clone()),
        description: Set(p.description.clone()),
        currency_code: Set(p.currency_code.clone()),
        price_minor: Set(p.price_minor),
        stock_on_hand: Set(p.stock_on_hand),
        stock_reserved: Set(p.stock_reserved),
        archived: Set(p.archived),
        create_time: Set(p.create_time),
        update_time: Set(p.update_time),
    };
    match product::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(WriteError::SkuTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Appends a price to the history.
pub async fn insert_price(
    db: &impl ConnectionTrait,
    product_id: &str,
    currency_code: &str,
    amount_minor: i64,
    changed_by: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = price_history::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        product_id: Set(product_id.to_owned()),
        currency_code: Set(currency_code.to_owned()),
        amount_minor: Set(amount_minor),
        effective_time: Set(at),
        changed_by: Set(changed_by.to_owned()),
    };
    price_history::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The product with this ID.
pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Product>, DbErr> {
    Ok(product::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .map(Product::from))
}

/// The products with these IDs (any order).
pub async fn get_many(db: &impl ConnectionTrait, ids: &[String]) -> Result<Vec<Product>, DbErr> {
    Ok(product::Entity::find()
        .filter(product::Column::Id.is_in(ids.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(Product::from)
        .collect())
}

/// Up to `limit` products with IDs below `before`, newest first. New rows
/// get larger UUIDv7 IDs, so pages stay stable while products are added.
pub async fn list(
    db: &impl ConnectionTrait,
    query: Option<&str>,
    include_archived: bool,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Product>, DbErr> {
    let mut find = product::Entity::find()
        .order_by_desc(product::Column::Id)
        .limit(limit);
    if let Some(before) = before {
        find = find.filter(product::Column::Id.lt(before));
    }
    if !include_archived {
        find = find.filter(product::Column::Archived.eq(false));
    }
    if let Some(query) = query {
        // LIKE wildcards in the query are matched literally.
        let escaped = query
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{}%", escaped.to_lowercase());
        let like = |column: product::Column| {
            Expr::expr(Func::lower(Expr::col(column)))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        find = find.filter(
            Condition::any()
                .add(like(product::Column::Name))
                .add(like(product::Column::Sku)),
        );
    }
    Ok(find.all(db).await?.into_iter().map(Product::from).collect())
}

/// Sets the given fields and bumps `update_time`; false if no such product.
pub async fn update_fields(
    db: &impl ConnectionTrait,
    id: &str,
    name: Option<&str>,
    description: Option<&str>,
    price: Option<(&str, i64)>,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let Some(row) = product::Entity::find_by_id(id.to_owned()).one(db).await? else {
        return Ok(false);
    };
    let mut row: product::ActiveModel = row.into();
    if let Some(name) = name {
        row.name = Set(name.to_owned());
    }
    if let Some(description) = description {
        row.description = Set(description.to_owned());
    }
    if let Some((currency, amount)) = price {
        row.currency_code = Set(currency.to_owned());
        row.price_minor = Set(amount);
    }
    row.update_time = Set(at);
    row.update(db).await?;
    Ok(true)
}

/// Archives a product; false if there is no such product or it already
/// was archived.
pub async fn archive(
    db: &impl ConnectionTrait,
    id: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = product::Entity::update_many()
        .col_expr(product::Column::Archived, Expr::value(true))
        .col_expr(product::Column::UpdateTime, Expr::value(at))
        .filter(product::Column::Id.eq(id))
        .filter(product::Column::Archived.eq(false))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Up to `limit` prices of a product older than `before`, newest first.
pub async fn price_history(
    db: &impl ConnectionTrait,
    product_id: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<PricePoint>, DbErr> {
    let mut find = price_history::Entity::find()
        .filter(price_history::Column::ProductId.eq(product_id))
        .order_by_desc(price_history::Column::Id)
        .limit(limit);
    if let Some(before) = before {
        find = find.filter(price_history::Column::Id.lt(before));
    }
    Ok(find
        .all(db)
        .await?
        .into_iter()
        .map(|row| PricePoint {
            id: row.id,
            currency_code: row.currency_code,
            amount_minor: row.amount_minor,
            effective_time: row.effective_time,
            changed_by: row.changed_by,
        })
        .collect())
}

/// Adds `delta` to stock on hand unless that would leave less than what is
/// reserved; false if refused (or no such product). One conditional
/// UPDATE, so concurrent reservations cannot slip in between a check and
/// the write.
pub async fn adjust_stock(
    db: &impl ConnectionTrait,
    id: &str,
    delta: i64,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = product::Entity::update_many()
        .col_expr(
            product::Column::StockOnHand,
            Expr::col(product::Column::StockOnHand).add(delta),
        )
        .col_expr(product::Column::UpdateTime, Expr::value(at))
        .filter(product::Column::Id.eq(id))
        .filter(
            Expr::col(product::Column::StockOnHand)
                .add(delta)
                .gte(Expr::col(product::Column::StockReserved)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records an adjustment in the audit trail.
pub async fn insert_adjustment(
    db: &impl ConnectionTrait,
    product_id: &str,
    delta: i64,
    reason: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = stock_adjustment::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        product_id: Set(product_id.to_owned()),
        delta: Set(delta),
        reason: Set(reason.to_owned()),
        actor: Set(actor.to_owned()),
        create_time: Set(at),
    };
    stock_adjustment::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}
