//! Read-through cache of GetProduct in the key-value store (Redis, or in
//! process). Reservations never read it. A cache failure is logged and the
//! database answers instead: the cache can make reads faster, never make
//! them fail.
//!
//! Entries are keyed by a per-product generation that every write bumps
//! after it commits. A read that raced a write (read the row before the
//! commit, stores it after) stores under the old generation, which no one
//! reads any more, so a stale row is never served. Plain delete-on-write
//! would let exactly that race serve the old row until the entry expired.

use std::sync::Arc;
use std::time::Duration;

use kit::kv::KvStore;

use crate::store::products::Product;

/// How long a generation counter lives: far longer than any entry, so an
/// expired counter can only hide entries that are gone too.
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

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

/// Where a lookup found the product's generation, to store a miss under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(Option<u64>);

impl ProductCache {
    /// Entries live at most `ttl`.
    pub fn new(kv: Arc<dyn KvStore>, ttl: Duration) -> Self {
        Self { kv, ttl }
    }

    /// The cached product, if any, and the generation to store a database
    /// read under if not.
    pub async fn get(&self, id: &str) -> (Option<Product>, Generation) {
        let generation = match self.kv.get(&generation_key(id)).await {
            Ok(raw) => raw
                .and_then(|r| String::from_utf8(r).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "product cache read failed; using the database");
                return (None, Generation(None));
            }
        };
        match self.kv.get(&entry_key(id, generation)).await {
            Ok(raw) => (
                raw.and_then(|r| serde_json::from_slice(&r).ok()),
                Generation(Some(generation)),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "product cache read failed; using the database");
                (None, Generation(None))
            }
        }
    }

    /// Caches a product read from the database after a miss.
    pub async fn put(&self, product: &Product, generation: Generation) {
        let Generation(Some(generation)) = generation else {
            return;
        };
        let Ok(raw) = serde_json::to_vec(product) else {
            return;
        };
        if let Err(e) = self
            .kv
            .set(&entry_key(&product.id, generation), &raw, self.ttl)
            .await
        {
            tracing::warn!(error = %e, "product cache write failed");
        }
    }

    /// Retires the cached entries of products a committed write changed.
    pub async fn invalidate(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Err(e) = self
                .kv
                .increment(&generation_key(&id), GENERATION_TTL)
                .await
            {
                tracing::warn!(error = %e, product_id = %id, "product cache invalidation failed");
            }
        }
    }
}

fn generation_key(id: &str) -> String {
    format!("product-gen:{id}")
}

fn entry_key(id: &str, generation: u64) -> String {
    format!("product:{id}:{generation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str) -> Product {
        let now = kit::time::now();
        Product {
            id: "p1".into(),
            sku: "S".into(),
            name: name.into(),
            description: String::new(),
            currency_code: "USD".into(),
            price_minor: 1,
            stock_on_hand: 1,
            stock_reserved: 0,
            archived: false,
            create_time: now,
            update_time: now,
        }
    }

    #[tokio::test]
    async fn a_read_that_raced_a_write_is_never_served() {
        let cache = ProductCache::new(
            Arc::new(kit::kv::MemoryKv::default()),
            Duration::from_secs(60),
        );
        // A reader misses and reads the old row from the database...
        let (hit, generation) = cache.get("p1").await;
        assert!(hit.is_none());
        // ...a write commits and invalidates...
        cache.invalidate(["p1".to_owned()]).await;
        // ...and the reader stores the old row late.
        cache.put(&product("old"), generation).await;
        let (hit, generation) = cache.get("p1").await;
        assert!(hit.is_none(), "the late, stale entry is invisible");
        cache.put(&product("new"), generation).await;
        assert_eq!(
            cache.get("p1").await.0.map(|p| p.name),
            Some("new".to_owned())
        );
    }
}
