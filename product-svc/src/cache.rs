//! Read-through cache of GetProduct in the key-value store (Redis, or in
//! process). Reservations never read it. A cache failure is logged and the
//! database answers instead: the cache can make reads faster, never make
//! them fail.
//!
//! Every write bumps a per-product generation after it commits, and an
//! entry holds the generation it was read under: a hit is an entry whose
//! generation is the current one. A read that raced a write (read the row
//! before the commit, stores it after) stores the old generation, which
//! never matches again, so a stale row is never served. Plain
//! delete-on-write would let exactly that race serve the old row until the
//! entry expired. Both keys are read in one round trip (`MGET`).
//!
//! Entries are protobuf ([`Entry`]): a hit decodes a few hundred bytes.
//! They were JSON, whose parse (and two RFC 3339 times) stood out in the
//! profile of GetProduct under oms-bench.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oms_store::kv::KvStore;

use crate::model::{ImageKind, Product, ProductImage};

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

/// A cached product. Times as seconds and nanoseconds, so they come back
/// exactly as the database gave them.
#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    sku: String,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    description: String,
    #[prost(string, tag = "5")]
    currency_code: String,
    #[prost(int64, tag = "6")]
    price_minor: i64,
    #[prost(int64, tag = "7")]
    stock_on_hand: i64,
    #[prost(int64, tag = "8")]
    stock_reserved: i64,
    #[prost(bool, tag = "9")]
    archived: bool,
    #[prost(int64, tag = "10")]
    create_secs: i64,
    #[prost(uint32, tag = "11")]
    create_nanos: u32,
    #[prost(int64, tag = "12")]
    update_secs: i64,
    #[prost(uint32, tag = "13")]
    update_nanos: u32,
    #[prost(message, repeated, tag = "14")]
    images: Vec<ImageEntry>,
    /// The product's generation when the row was read.
    #[prost(uint64, tag = "15")]
    generation: u64,
}

/// A cached product's image.
#[derive(Clone, PartialEq, prost::Message)]
struct ImageEntry {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    content_type: String,
    #[prost(int64, tag = "3")]
    byte_size: i64,
    #[prost(uint32, tag = "4")]
    width: u32,
    #[prost(uint32, tag = "5")]
    height: u32,
    #[prost(string, tag = "6")]
    sha256: String,
    #[prost(string, tag = "7")]
    alt_text: String,
    #[prost(bool, tag = "8")]
    primary: bool,
    #[prost(string, tag = "9")]
    object_key: String,
    #[prost(string, tag = "10")]
    thumbnail_key: String,
    #[prost(int64, tag = "11")]
    thumbnail_size: i64,
    #[prost(int64, tag = "12")]
    create_secs: i64,
    #[prost(uint32, tag = "13")]
    create_nanos: u32,
}

impl ImageEntry {
    fn from_image(i: &ProductImage) -> Self {
        Self {
            id: i.id.clone(),
            content_type: i.kind.content_type().to_owned(),
            byte_size: i.byte_size,
            width: i.width,
            height: i.height,
            sha256: i.sha256.clone(),
            alt_text: i.alt_text.clone(),
            primary: i.primary,
            object_key: i.object_key.clone(),
            thumbnail_key: i.thumbnail_key.clone(),
            thumbnail_size: i.thumbnail_size,
            create_secs: i.create_time.timestamp(),
            create_nanos: i.create_time.timestamp_subsec_nanos(),
        }
    }

    fn into_image(self, product_id: &str) -> Option<ProductImage> {
        Some(ProductImage {
            id: self.id,
            product_id: product_id.to_owned(),
            kind: ImageKind::from_content_type(&self.content_type)?,
            byte_size: self.byte_size,
            width: self.width,
            height: self.height,
            sha256: self.sha256,
            alt_text: self.alt_text,
            primary: self.primary,
            object_key: self.object_key,
            thumbnail_key: self.thumbnail_key,
            thumbnail_size: self.thumbnail_size,
            create_time: DateTime::<Utc>::from_timestamp(self.create_secs, self.create_nanos)?,
        })
    }
}

impl Entry {
    fn encode(p: &Product, images: &[ProductImage], generation: u64) -> Vec<u8> {
        prost::Message::encode_to_vec(&Self {
            generation,
            images: images.iter().map(ImageEntry::from_image).collect(),
            id: p.id.clone(),
            sku: p.sku.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            currency_code: p.currency_code.clone(),
            price_minor: p.price_minor,
            stock_on_hand: p.stock_on_hand,
            stock_reserved: p.stock_reserved,
            archived: p.archived,
            create_secs: p.create_time.timestamp(),
            create_nanos: p.create_time.timestamp_subsec_nanos(),
            update_secs: p.update_time.timestamp(),
            update_nanos: p.update_time.timestamp_subsec_nanos(),
        })
    }

    /// `None` for bytes that are not an entry of `generation`: a miss, not
    /// an error.
    fn decode(raw: &[u8], generation: u64) -> Option<(Product, Vec<ProductImage>)> {
        let e: Self = prost::Message::decode(raw).ok()?;
        if e.generation != generation {
            return None;
        }
        let images = e
            .images
            .into_iter()
            .map(|i| i.into_image(&e.id))
            .collect::<Option<Vec<_>>>()?;
        let product = Product {
            create_time: DateTime::<Utc>::from_timestamp(e.create_secs, e.create_nanos)?,
            update_time: DateTime::<Utc>::from_timestamp(e.update_secs, e.update_nanos)?,
            id: e.id,
            sku: e.sku,
            name: e.name,
            description: e.description,
            currency_code: e.currency_code,
            price_minor: e.price_minor,
            stock_on_hand: e.stock_on_hand,
            stock_reserved: e.stock_reserved,
            archived: e.archived,
        };
        Some((product, images))
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

    /// The cached product with its images, if any, and the generation to
    /// store a database read under if not.
    pub async fn get(&self, id: &str) -> (Option<(Product, Vec<ProductImage>)>, Generation) {
        let (generation_key, entry_key) = (generation_key(id), entry_key(id));
        let mut values = match self.kv.get_many(&[&generation_key, &entry_key]).await {
            Ok(values) => values.into_iter(),
            Err(e) => {
                tracing::warn!(error = %e, "product cache read failed; using the database");
                return (None, Generation(None));
            }
        };
        let generation = values
            .next()
            .flatten()
            .and_then(|r| String::from_utf8(r).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let entry = values
            .next()
            .flatten()
            .and_then(|raw| Entry::decode(&raw, generation));
        (entry, Generation(Some(generation)))
    }

    /// Caches a product and its images read from the database after a miss.
    pub async fn put(&self, product: &Product, images: &[ProductImage], generation: Generation) {
        let Generation(Some(generation)) = generation else {
            return;
        };
        let raw = Entry::encode(product, images, generation);
        if let Err(e) = self.kv.set(&entry_key(&product.id), &raw, self.ttl).await {
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

fn entry_key(id: &str) -> String {
    // Not `product:`, `product-pb:` nor `product-pb2:`, where entries of
    // earlier versions (JSON; without images; keyed by generation) may
    // linger. The generation key keeps its name: versions side by side in
    // a rolling upgrade bump the same counter.
    format!("product-pb3:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str) -> Product {
        let now = oms_core::time::now();
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
            Arc::new(oms_store::kv::MemoryKv::default()),
            Duration::from_secs(60),
        );
        // A reader misses and reads the old row from the database...
        let (hit, generation) = cache.get("p1").await;
        assert!(hit.is_none());
        // ...a write commits and invalidates...
        cache.invalidate(["p1".to_owned()]).await;
        // ...and the reader stores the old row late.
        cache.put(&product("old"), &[], generation).await;
        let (hit, generation) = cache.get("p1").await;
        assert!(hit.is_none(), "the late, stale entry is invisible");
        cache.put(&product("new"), &[], generation).await;
        assert_eq!(
            cache.get("p1").await.0.map(|(p, _)| p.name),
            Some("new".to_owned())
        );
    }

    #[test]
    fn an_entry_comes_back_exactly_and_junk_is_a_miss() {
        let mut p = product("mug");
        p.create_time = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid time");
        p.archived = true;
        p.stock_reserved = 7;
        let image = ProductImage {
            id: "i1".into(),
            product_id: p.id.clone(),
            kind: ImageKind::Webp,
            byte_size: 1234,
            width: 640,
            height: 480,
            sha256: "ab".repeat(32),
            alt_text: "a mug".into(),
            primary: true,
            object_key: "products/p1/x.webp".into(),
            thumbnail_key: "products/p1/x.thumb.jpg".into(),
            thumbnail_size: 99,
            create_time: DateTime::from_timestamp(1_700_000_001, 5_000).expect("valid time"),
        };
        let images = vec![image];
        let raw = Entry::encode(&p, &images, 4);
        assert_eq!(Entry::decode(&raw, 5), None, "another generation's entry");
        assert_eq!(Entry::decode(&raw, 4), Some((p, images)));
        assert_eq!(Entry::decode(b"{\"id\":\"p1\"}", 0), None);
    }
}
