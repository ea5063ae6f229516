//! The catalogue rules: products, prices over time, and manual stock
//! changes. No wire types here.

use oms_core::money::Money;
use sea_orm::{DatabaseConnection, TransactionTrait};

use crate::cache::ProductCache;
use crate::error::ProductError;
use crate::model::{PricePoint, Product, ProductChange, ProductImage, StockCause};
use crate::product_events::ProductEvents;
use crate::store::product_images;
use crate::store::products::{self, WriteError};

/// A new product's fields, already checked.
#[derive(Debug, Clone)]
pub struct NewProduct {
    /// Unique sku.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price.
    pub price: Money,
    /// Initial stock.
    pub stock_on_hand: i64,
}

/// The fields an update changes (`None` = keep).
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New price (appended to the history).
    pub price: Option<Money>,
}

/// The catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub(crate) db: DatabaseConnection,
    pub(crate) cache: ProductCache,
    pub(crate) events: ProductEvents,
}

impl Catalogue {
    /// The rules over `db`, keeping `cache` fresh, each change with its
    /// event in `events`.
    pub fn new(db: DatabaseConnection, cache: ProductCache, events: ProductEvents) -> Self {
        Self { db, cache, events }
    }

    /// Adds a product and its first price, in one transaction.
    pub async fn create(&self, new: NewProduct, actor: &str) -> Result<Product, ProductError> {
        let now = oms_core::time::now();
        let product = Product {
            id: uuid::Uuid::now_v7().to_string(),
            sku: new.sku,
            name: new.name,
            description: new.description,
            currency_code: new.price.currency_code,
            price_minor: new.price.amount_minor,
            stock_on_hand: new.stock_on_hand,
            stock_reserved: 0,
            archived: false,
            create_time: now,
            update_time: now,
        };
        let txn = self.db.begin().await?;
        products::insert(&txn, &product)
            .await
            .map_err(|e| match e {
                WriteError::SkuTaken => ProductError::SkuTaken(product.sku.clone()),
                WriteError::Db(e) => e.into(),
            })?;
        products::insert_price(
            &txn,
            &product.id,
            &product.currency_code,
            product.price_minor,
            actor,
            now,
        )
        .await?;
        self.events
            .record(&txn, &product, ProductChange::Created)
            .await?;
        txn.commit().await?;
        self.events.committed();
        tracing::info!(product_id = %product.id, sku = %product.sku, "product created");
        Ok(product)
    }

    /// A product with its images (primary first), from the cache when it
    /// holds them.
    pub async fn get(&self, id: &str) -> Result<(Product, Vec<ProductImage>), ProductError> {
        let (cached, generation) = self.cache.get(id).await;
        if let Some(found) = cached {
            return Ok(found);
        }
        let product = products::get(&self.db, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
        let images = product_images::list(&self.db, &[id.to_owned()]).await?;
        self.cache.put(&product, &images, generation).await;
        Ok((product, images))
    }

    /// One page of products, newest first, and the cursor of the next.
    pub async fn list(
        &self,
        query: Option<&str>,
        include_archived: bool,
        before: Option<&str>,
        page_size: u64,
    ) -> Result<(Vec<Product>, Option<String>), ProductError> {
        let page = products::list(&self.db, query, include_archived, before, page_size + 1).await?;
        Ok(oms_core::paging::split_page(page, page_size, |p| {
            p.id.clone()
        }))
    }

    /// Changes name, description and/or price; a new price is appended to
    /// the history in the same transaction.
    pub async fn update(
        &self,
        id: &str,
        changes: ProductChanges,
        actor: &str,
    ) -> Result<Product, ProductError> {
        let now = oms_core::time::now();
        let txn = self.db.begin().await?;
        let current = products::get(&txn, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
        let price = changes.price.as_ref().filter(|p| {
            p.currency_code != current.currency_code || p.amount_minor != current.price_minor
        });
        products::update_fields(
            &txn,
            id,
            changes.name.as_deref(),
            changes.description.as_deref(),
            price.map(|p| (p.currency_code.as_str(), p.amount_minor)),
            now,
        )
        .await?;
        if let Some(price) = price {
            products::insert_price(
                &txn,
                id,
                &price.currency_code,
                price.amount_minor,
                actor,
                now,
            )
            .await?;
        }
        let updated = products::get(&txn, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
        let fields: Vec<&'static str> = [
            ("name", changes.name.is_some_and(|n| n != current.name)),
            (
                "description",
                changes
                    .description
                    .is_some_and(|d| d != current.description),
            ),
        ]
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect();
        if !fields.is_empty() {
            self.events
                .record(&txn, &updated, ProductChange::Updated(fields))
                .await?;
        }
        if price.is_some() {
            let change = ProductChange::PriceChanged {
                old_currency_code: current.currency_code.clone(),
                old_price_minor: current.price_minor,
            };
            self.events.record(&txn, &updated, change).await?;
        }
        txn.commit().await?;
        self.events.committed();
        self.cache.invalidate([id.to_owned()]).await;
        Ok(updated)
    }

    /// Archives a product (idempotent: archiving it again changes
    /// nothing and writes no event).
    pub async fn archive(&self, id: &str) -> Result<Product, ProductError> {
        let txn = self.db.begin().await?;
        let before = products::get(&txn, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
        if before.archived {
            txn.rollback().await?;
            return Ok(before);
        }
        if !products::archive(&txn, id, oms_core::time::now()).await? {
            // Archived meanwhile by someone else, who wrote the event.
            txn.rollback().await?;
            return self.get_uncached(id).await;
        }
        let archived = products::get(&txn, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
        self.events
            .record(&txn, &archived, ProductChange::Deleted)
            .await?;
        txn.commit().await?;
        self.events.committed();
        self.cache.invalidate([id.to_owned()]).await;
        tracing::info!(product_id = id, "product archived");
        Ok(archived)
    }

    async fn get_uncached(&self, id: &str) -> Result<Product, ProductError> {
        products::get(&self.db, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))
    }

    /// One page of a product's prices, newest first.
    pub async fn price_history(
        &self,
        id: &str,
        before: Option<&str>,
        page_size: u64,
    ) -> Result<(Vec<PricePoint>, Option<String>), ProductError> {
        if products::get(&self.db, id).await?.is_none() {
            return Err(ProductError::ProductNotFound(id.to_owned()));
        }
        let page = products::price_history(&self.db, id, before, page_size + 1).await?;
        Ok(oms_core::paging::split_page(page, page_size, |p| {
            p.id.clone()
        }))
    }

    /// The newest `limit` changes of a product's stock on hand, newest
    /// first, each with the stock on hand after it (counted back from now).
    pub async fn stock_history(
        &self,
        id: &str,
        limit: u64,
    ) -> Result<Vec<crate::model::StockChange>, ProductError> {
        let product = products::get(&self.db, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
        let deltas = crate::store::stock_history::newest(&self.db, id, limit).await?;
        let mut on_hand = product.stock_on_hand;
        Ok(deltas
            .into_iter()
            .map(|d| {
                let change = crate::model::StockChange {
                    time: d.time,
                    kind: d.kind,
                    delta: d.delta,
                    on_hand_after: on_hand,
                    reason: d.reason,
                };
                on_hand -= d.delta;
                change
            })
            .collect())
    }

    /// Adds to or removes from stock on hand, never below what is reserved,
    /// with an audit row in the same transaction.
    pub async fn adjust_stock(
        &self,
        id: &str,
        delta: i64,
        reason: &str,
        actor: &str,
    ) -> Result<Product, ProductError> {
        let now = oms_core::time::now();
        let txn = self.db.begin().await?;
        if !products::adjust_stock(&txn, id, delta, now).await? {
            let product = products::get(&txn, id)
                .await?
                .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
            return Err(ProductError::StockBelowReserved {
                product_id: product.id,
                reserved: product.stock_reserved,
            });
        }
        products::insert_adjustment(&txn, id, delta, reason, actor, now).await?;
        let product = products::get(&txn, id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(id.to_owned()))?;
        let change = ProductChange::StockChanged {
            cause: StockCause::Adjustment,
            reservation_id: None,
        };
        self.events.record(&txn, &product, change).await?;
        txn.commit().await?;
        self.events.committed();
        self.cache.invalidate([id.to_owned()]).await;
        tracing::info!(product_id = id, delta, "stock adjusted");
        Ok(product)
    }
}
