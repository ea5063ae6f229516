//! Read-through cache of GetProduct in the key-value store (Redis, or in
//! process). Writes delete the entry after they commit; entries also
//! expire, which bounds how long a read that raced a write can serve the
//! older row. Reservations never read the cache. A cache failure is logged
//! and the database answers instead: the cache can make reads faster, never
//! make them fail.

use std::sync::Arc;
use std::time::Duration;

use kit::kv::KvStore;

use crate::store::products::Product;

/// The GetProduct cache.
#[derive(Clone)]
pub struct ProductCache {
    kv: Arc<dyn KvStore>,
    ttl: Duration,
}

impl std::fmt::Debug for ProductCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn key(id: &str) -> String {
    format!("product:{id}")
}

impl ProductCache {
    /// Entries live at most `ttl`.
    pub fn new(kv: Arc<dyn KvStore>, ttl: Duration) -> Self {
        Self { kv, ttl }
    }

    /// The cached product, if any.
    pub async fn get(&self, id: &str) -> Option<Product> {
        match self.kv.get(&key(id)).await {
            Ok(Some(raw)) => serde_json::from_slice(&raw).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "product cache read failed; using the database");
                None
            }
        }
    }

    /// Caches a product read from the database.
    pub async fn put(&self, product: &Product) {
        let Ok(raw) = serde_json::to_vec(product) else {
            return;
        };
        if let Err(e) = self.kv.set(&key(&product.id), &raw, self.ttl).await {
            tracing::warn!(error = %e, "product cache write failed");
        }
    }

    /// Drops the entries of products a write changed.
    pub async fn invalidate(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Err(e) = self.kv.delete(&key(&id)).await {
                tracing::warn!(error = %e, product_id = %id, "product cache invalidation failed");
            }
        }
    }
}
