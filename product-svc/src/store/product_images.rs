//! Queries on `product_images`. Primary is kept to one image per product:
//! the first image added, and after a change or a delete, the one chosen
//! or the oldest left.

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect as _, Set, SqlErr, TransactionTrait,
};

use super::ProductEventSink;
use super::product_image;
use crate::model::{ImageKind, ProductChange, ProductImage};

fn from_row(row: product_image::Model) -> Result<ProductImage, DbErr> {
    let kind = ImageKind::from_content_type(&row.content_type).ok_or_else(|| {
        DbErr::Custom(format!(
            "image {} has unknown content type {:?}",
            row.id, row.content_type
        ))
    })?;
    Ok(ProductImage {
        id: row.id,
        product_id: row.product_id,
        kind,
        byte_size: row.byte_size,
        width: u32::try_from(row.width).unwrap_or_default(),
        height: u32::try_from(row.height).unwrap_or_default(),
        sha256: row.sha256,
        alt_text: row.alt_text,
        primary: row.is_primary,
        object_key: row.object_key,
        thumbnail_key: row.thumbnail_key,
        thumbnail_size: row.thumbnail_size,
        create_time: row.create_time,
    })
}

/// Records an image whose bytes are stored, primary if it is the
/// product's first, and returns it as stored; `Ok(None)` if the product
/// already has these bytes. Its event is written in the same transaction.
pub async fn insert(
    db: &DatabaseConnection,
    events: &impl ProductEventSink,
    image: &ProductImage,
) -> Result<Option<ProductImage>, DbErr> {
    let txn = db.begin().await?;
    // The product's row is locked first (MySQL; SQLite runs one
    // transaction at a time): two first uploads at once both read "no
    // image yet" and both became primary.
    super::product::Entity::find_by_id(image.product_id.clone())
        .lock_exclusive()
        .one(&txn)
        .await?;
    let first = product_image::Entity::find()
        .filter(product_image::Column::ProductId.eq(image.product_id.clone()))
        .count(&txn)
        .await?
        == 0;
    let row = product_image::ActiveModel {
        id: Set(image.id.clone()),
        product_id: Set(image.product_id.clone()),
        content_type: Set(image.kind.content_type().to_owned()),
        byte_size: Set(image.byte_size),
        width: Set(i32::try_from(image.width).unwrap_or(i32::MAX)),
        height: Set(i32::try_from(image.height).unwrap_or(i32::MAX)),
        sha256: Set(image.sha256.clone()),
        alt_text: Set(image.alt_text.clone()),
        is_primary: Set(first),
        object_key: Set(image.object_key.clone()),
        thumbnail_key: Set(image.thumbnail_key.clone()),
        thumbnail_size: Set(image.thumbnail_size),
        create_time: Set(image.create_time),
    };
    match product_image::Entity::insert(row)
        .exec_without_returning(&txn)
        .await
    {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            txn.rollback().await?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let stored = ProductImage {
        primary: first,
        ..image.clone()
    };
    if let Some(product) = super::products::get(&txn, &image.product_id).await? {
        let change = ProductChange::ImageAdded(Box::new(stored.clone()));
        let mut batch = oms_store::batch::Batch::new(&txn);
        events.stage(&mut batch, &product, change);
        batch.execute(&txn).await?;
    }
    txn.commit().await?;
    events.committed();
    Ok(Some(stored))
}

/// The product's image with these bytes.
pub async fn find_by_sha256(
    db: &impl ConnectionTrait,
    product_id: &str,
    sha256: &str,
) -> Result<Option<ProductImage>, DbErr> {
    product_image::Entity::find()
        .filter(product_image::Column::ProductId.eq(product_id))
        .filter(product_image::Column::Sha256.eq(sha256))
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// One image of the product.
pub async fn get(
    db: &impl ConnectionTrait,
    product_id: &str,
    image_id: &str,
) -> Result<Option<ProductImage>, DbErr> {
    product_image::Entity::find_by_id(image_id.to_owned())
        .filter(product_image::Column::ProductId.eq(product_id))
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// The images of `product_ids`, each product's primary first, then oldest
/// first.
pub async fn list(
    db: &impl ConnectionTrait,
    product_ids: &[String],
) -> Result<Vec<ProductImage>, DbErr> {
    product_image::Entity::find()
        .filter(product_image::Column::ProductId.is_in(product_ids.iter().cloned()))
        .order_by_desc(product_image::Column::IsPrimary)
        .order_by_asc(product_image::Column::CreateTime)
        .order_by_asc(product_image::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// How many images the product has.
pub async fn count(db: &impl ConnectionTrait, product_id: &str) -> Result<u64, DbErr> {
    product_image::Entity::find()
        .filter(product_image::Column::ProductId.eq(product_id))
        .count(db)
        .await
}

/// Removes the image's row (the oldest image left becomes primary if it
/// was); the removed image, if there was one.
/// Its event is written in the same transaction.
pub async fn delete(
    db: &DatabaseConnection,
    events: &impl ProductEventSink,
    product_id: &str,
    image_id: &str,
) -> Result<Option<ProductImage>, DbErr> {
    let txn = db.begin().await?;
    let Some(image) = get(&txn, product_id, image_id).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    product_image::Entity::delete_by_id(image_id.to_owned())
        .exec(&txn)
        .await?;
    if image.primary
        && let Some(next) = list(&txn, &[product_id.to_owned()]).await?.first()
    {
        mark_primary(&txn, product_id, &next.id).await?;
    }
    if let Some(product) = super::products::get(&txn, product_id).await? {
        let change = ProductChange::ImageRemoved {
            image_id: image.id.clone(),
            sha256: image.sha256.clone(),
        };
        let mut batch = oms_store::batch::Batch::new(&txn);
        events.stage(&mut batch, &product, change);
        batch.execute(&txn).await?;
    }
    txn.commit().await?;
    events.committed();
    Ok(Some(image))
}

/// Makes the image the product's only primary one; false if the product
/// has no such image.
pub async fn set_primary(
    db: &DatabaseConnection,
    product_id: &str,
    image_id: &str,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    if get(&txn, product_id, image_id).await?.is_none() {
        txn.rollback().await?;
        return Ok(false);
    }
    mark_primary(&txn, product_id, image_id).await?;
    txn.commit().await?;
    Ok(true)
}

async fn mark_primary(
    txn: &impl ConnectionTrait,
    product_id: &str,
    image_id: &str,
) -> Result<(), DbErr> {
    product_image::Entity::update_many()
        .col_expr(
            product_image::Column::IsPrimary,
            Expr::col(product_image::Column::Id).eq(image_id),
        )
        .filter(product_image::Column::ProductId.eq(product_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Which of `keys` a row points to (as its image or its thumbnail).
pub async fn referenced(
    db: &impl ConnectionTrait,
    keys: &[String],
) -> Result<std::collections::HashSet<String>, DbErr> {
    let rows = product_image::Entity::find()
        .filter(
            product_image::Column::ObjectKey
                .is_in(keys.iter().cloned())
                .or(product_image::Column::ThumbnailKey.is_in(keys.iter().cloned())),
        )
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .flat_map(|r| [r.object_key, r.thumbnail_key])
        .collect())
}
