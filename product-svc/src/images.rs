//! Product images: upload (bounded while it streams, checked before it is
//! stored), thumbnails, listing, primary image, download and delete, and
//! the sweep of stored bytes no row points to.
//!
//! Bytes are stored content-addressed (`products/{id}/{sha256}.{ext}`)
//! before their row is written, so a row always has its bytes; an upload
//! that dies between the two leaves an object that the sweeper removes
//! after a grace period.

use std::io::Cursor;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt as _};
use sea_orm::DatabaseConnection;

use crate::blobs::{BlobError, Blobs};
use crate::cache::ProductCache;
use crate::error::ProductError;
use crate::model::{ImageKind, ProductImage};
use crate::product_events::ProductEvents;
use crate::store::{product_images, products};

/// Largest upload chunk a client may send.
pub use oms_core::uploads::MAX_CHUNK;
/// Largest width or height accepted: a bigger header is refused before
/// anything is decoded (a decompression bomb declares huge dimensions).
pub const MAX_SIDE: u32 = 8_000;
/// Most pixels accepted (a 4:3 16-megapixel photo is 4,608 × 3,456): the
/// header is refused past it, so a decoded image (RGBA, 8 bits) is at most
/// 64 MiB. An 8000 × 8000 PNG of zeros (249 KB) once decoded to 256 MiB.
pub const MAX_PIXELS: u64 = 16_777_216;
/// Most memory one decoding may allocate: the largest accepted image as
/// RGBA and some room; an image needing more (16 bits per channel at full
/// size) is refused as undecodable.
const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 4 + (8 << 20);
/// Images one product may have.
pub const MAX_IMAGES_PER_PRODUCT: u64 = 20;
/// Uploads one instance receives at once: each holds up to
/// `OMS_IMAGE_MAX_BYTES` in memory until it is stored.
pub const MAX_CONCURRENT_UPLOADS: usize = 8;
/// Longest alt text, in characters.
pub const MAX_ALT_TEXT: usize = 500;
/// Width of the JPEG thumbnail made at upload (narrower images keep theirs).
pub const THUMBNAIL_WIDTH: u32 = 320;
/// How long a presigned URL works.
const PRESIGNED_FOR: Duration = Duration::from_secs(300);
/// Stored blobs checked per sweep query.
const SWEEP_BATCH: usize = 500;

/// What an upload is before its bytes arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStart {
    /// The product.
    pub product_id: String,
    /// The declared format.
    pub kind: ImageKind,
    /// Text for people who cannot see it.
    pub alt_text: String,
}

/// The original image or its thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// As uploaded.
    Original,
    /// The JPEG thumbnail.
    Thumbnail,
}

/// What a download is.
pub struct Download {
    /// Media type.
    pub content_type: &'static str,
    /// Bytes that follow.
    pub byte_size: i64,
    /// SHA-256 of the original (the thumbnail is derived from it).
    pub sha256: String,
    /// The bytes, or where to fetch them.
    pub body: DownloadBody,
}

/// A download's bytes, or a URL for them.
pub enum DownloadBody {
    /// Streamed from the store.
    Bytes(BoxStream<'static, Result<Bytes, BlobError>>),
    /// A presigned URL of the store.
    Presigned(String),
    /// Nothing: the caller holds these bytes already.
    NotModified,
}

/// The image rules.
#[derive(Debug, Clone)]
pub struct Images {
    pub(crate) db: DatabaseConnection,
    pub(crate) blobs: Blobs,
    /// `OMS_IMAGE_MAX_BYTES`.
    pub(crate) max_bytes: u64,
    pub(crate) events: ProductEvents,
    /// GetProduct's cache, which holds the images too.
    pub(crate) cache: ProductCache,
    /// Permits for uploads in progress ([`MAX_CONCURRENT_UPLOADS`]).
    pub(crate) uploads: std::sync::Arc<tokio::sync::Semaphore>,
    /// Decodes one image at a time, so the memory decoding takes is one
    /// image's however many uploads arrive together.
    pub(crate) thumbnails: Thumbnailer,
}

impl Images {
    /// Stores the image whose bytes `chunks` stream, or refuses it as soon
    /// as it is known to be bad: an unknown product before reading a byte,
    /// too many bytes when they pass the limit, a wrong type at the first
    /// bytes. The same bytes uploaded again give the stored image.
    pub async fn upload<S>(
        &self,
        start: UploadStart,
        chunks: S,
    ) -> Result<ProductImage, ProductError>
    where
        S: Stream<Item = Result<Bytes, ProductError>> + Unpin,
    {
        let product = products::get(&self.db, &start.product_id)
            .await?
            .ok_or_else(|| ProductError::ProductNotFound(start.product_id.clone()))?;
        if product.archived {
            return Err(ProductError::ProductArchived(product.id));
        }
        if product_images::count(&self.db, &product.id).await? >= MAX_IMAGES_PER_PRODUCT {
            return Err(refused(
                "too_many_images",
                ProductError::TooManyImages {
                    limit: MAX_IMAGES_PER_PRODUCT,
                },
            ));
        }
        // Held until the bytes are stored (or refused): bounds the memory
        // uploads in progress take together.
        let Ok(_receiving) = self.uploads.clone().try_acquire_owned() else {
            return Err(refused(
                "too_many_uploads",
                ProductError::TooManyUploads {
                    limit: MAX_CONCURRENT_UPLOADS,
                },
            ));
        };
        let bytes = self.receive(start.kind, chunks).await?;
        let (width, height) = dimensions(&bytes, start.kind)?;
        let sha256 = oms_core::digest::sha256_hex(&bytes);
        if let Some(existing) =
            product_images::find_by_sha256(&self.db, &product.id, &sha256).await?
        {
            return Ok(existing);
        }
        let thumbnail = self.thumbnails.make(bytes.clone(), start.kind).await?;
        let base = format!("products/{}/{sha256}", product.id);
        let image = ProductImage {
            id: uuid::Uuid::now_v7().to_string(),
            product_id: product.id.clone(),
            kind: start.kind,
            byte_size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            width,
            height,
            sha256: sha256.clone(),
            alt_text: start.alt_text,
            primary: false,
            object_key: format!("{base}.{}", start.kind.extension()),
            thumbnail_key: format!("{base}.thumb.jpg"),
            thumbnail_size: i64::try_from(thumbnail.len()).unwrap_or(i64::MAX),
            create_time: oms_core::time::now(),
        };
        // Bytes first, row second: a row never points at nothing.
        self.blobs.put(&image.object_key, bytes).await?;
        self.blobs.put(&image.thumbnail_key, thumbnail).await?;
        let Some(stored) = product_images::insert(&self.db, &self.events, &image).await? else {
            // The same bytes, uploaded at the same time: one image.
            return product_images::find_by_sha256(&self.db, &product.id, &sha256)
                .await?
                .ok_or_else(|| ProductError::Busy("a concurrent upload rolled back".to_owned()));
        };
        self.cache.invalidate([product.id.clone()]).await;
        tracing::info!(product_id = %product.id, image_id = %stored.id, bytes = stored.byte_size, "image stored");
        Ok(stored)
    }

    /// Reads the upload into memory, never past the limit, checking the
    /// declared type as soon as the first bytes are in.
    async fn receive<S>(&self, kind: ImageKind, mut chunks: S) -> Result<Bytes, ProductError>
    where
        S: Stream<Item = Result<Bytes, ProductError>> + Unpin,
    {
        let mut bytes = BytesMut::new();
        let mut checked = false;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if chunk.len() > MAX_CHUNK {
                return Err(refused(
                    "chunk_too_large",
                    ProductError::ChunkTooLarge {
                        limit: MAX_CHUNK,
                        got: chunk.len(),
                    },
                ));
            }
            let total = (bytes.len() + chunk.len()) as u64;
            if total > self.max_bytes {
                return Err(refused(
                    "image_too_large",
                    ProductError::ImageTooLarge {
                        limit: self.max_bytes,
                    },
                ));
            }
            bytes.extend_from_slice(&chunk);
            if !checked && bytes.len() >= 12 {
                check_type(kind, &bytes)?;
                checked = true;
            }
        }
        if !checked {
            check_type(kind, &bytes)?;
        }
        Ok(bytes.freeze())
    }

    /// The product's images, the primary one first, then oldest first.
    pub async fn list(&self, product_id: &str) -> Result<Vec<ProductImage>, ProductError> {
        Ok(product_images::list(&self.db, &[product_id.to_owned()]).await?)
    }

    /// The images of several products, each product's primary first.
    pub async fn list_many(
        &self,
        product_ids: &[String],
    ) -> Result<Vec<ProductImage>, ProductError> {
        Ok(product_images::list(&self.db, product_ids).await?)
    }

    /// Makes the image the product's primary one; the product's images.
    pub async fn set_primary(
        &self,
        product_id: &str,
        image_id: &str,
    ) -> Result<Vec<ProductImage>, ProductError> {
        if !product_images::set_primary(&self.db, product_id, image_id).await? {
            return Err(ProductError::ImageNotFound(image_id.to_owned()));
        }
        self.cache.invalidate([product_id.to_owned()]).await;
        self.list(product_id).await
    }

    /// Removes the image's row, then its bytes (a failure there leaves
    /// them to the sweeper).
    pub async fn delete(&self, product_id: &str, image_id: &str) -> Result<(), ProductError> {
        let image = product_images::delete(&self.db, &self.events, product_id, image_id)
            .await?
            .ok_or_else(|| ProductError::ImageNotFound(image_id.to_owned()))?;
        self.cache.invalidate([product_id.to_owned()]).await;
        for key in [&image.object_key, &image.thumbnail_key] {
            if let Err(e) = self.blobs.delete(key).await {
                tracing::warn!(key = %key, error = %e, "deleting an image's bytes failed; the sweeper will");
            }
        }
        tracing::info!(product_id, image_id, "image deleted");
        Ok(())
    }

    /// The image's bytes (or its thumbnail's), or a presigned URL for them.
    pub async fn download(
        &self,
        product_id: &str,
        image_id: &str,
        variant: Variant,
        if_none_match: &str,
    ) -> Result<Download, ProductError> {
        let image = product_images::get(&self.db, product_id, image_id)
            .await?
            .ok_or_else(|| ProductError::ImageNotFound(image_id.to_owned()))?;
        let (key, content_type, byte_size) = match variant {
            Variant::Original => (image.object_key, image.kind.content_type(), image.byte_size),
            Variant::Thumbnail => (image.thumbnail_key, "image/jpeg", image.thumbnail_size),
        };
        // Decided from the row: the store is not asked for bytes the
        // caller holds.
        if etag_matches(if_none_match, &image.sha256) {
            return Ok(Download {
                content_type,
                byte_size,
                sha256: image.sha256,
                body: DownloadBody::NotModified,
            });
        }
        let body = match self.blobs.presigned(&key, PRESIGNED_FOR).await? {
            Some(url) => DownloadBody::Presigned(url),
            None => DownloadBody::Bytes(self.blobs.get(&key).await?),
        };
        Ok(Download {
            content_type,
            byte_size,
            sha256: image.sha256,
            body,
        })
    }

    /// Deletes stored blobs that no row points to and that are older than
    /// `grace` (younger ones may belong to an upload still writing its
    /// row); how many.
    pub async fn sweep_orphans(&self, grace: Duration) -> Result<usize, ProductError> {
        let before = oms_core::time::now() - chrono::Duration::from_std(grace).unwrap_or_default();
        let mut listed = self.blobs.list("products");
        let mut swept = 0;
        let mut batch = Vec::with_capacity(SWEEP_BATCH);
        loop {
            let next = listed.next().await.transpose()?;
            let done = next.is_none();
            if let Some(blob) = next
                && blob.modified < before
            {
                batch.push(blob.key);
            }
            if batch.len() >= SWEEP_BATCH || (done && !batch.is_empty()) {
                let kept = product_images::referenced(&self.db, &batch).await?;
                for key in batch.drain(..).filter(|k| !kept.contains(k)) {
                    self.blobs.delete(&key).await?;
                    tracing::info!(key = %key, "swept an image blob no row points to");
                    swept += 1;
                }
            }
            if done {
                return Ok(swept);
            }
        }
    }
}

/// Logs and counts a refused upload, then returns its error.
fn refused(reason: &'static str, error: ProductError) -> ProductError {
    match &error {
        ProductError::InvalidImage(detail) => {
            tracing::warn!(reason, error = %error, detail, "refused an image upload");
        }
        _ => tracing::warn!(reason, error = %error, "refused an image upload"),
    }
    metrics::counter!("oms_image_uploads_refused_total", "reason" => reason).increment(1);
    error
}

fn check_type(declared: ImageKind, bytes: &[u8]) -> Result<(), ProductError> {
    let actual = ImageKind::sniff(bytes);
    if actual == Some(declared) {
        return Ok(());
    }
    Err(refused(
        "type_mismatch",
        ProductError::ImageTypeMismatch {
            declared: declared.content_type(),
            actual: actual.map(ImageKind::content_type),
        },
    ))
}

fn image_format(kind: ImageKind) -> image::ImageFormat {
    match kind {
        ImageKind::Png => image::ImageFormat::Png,
        ImageKind::Jpeg => image::ImageFormat::Jpeg,
        ImageKind::Webp => image::ImageFormat::WebP,
    }
}

/// Width and height from the header alone, refused past [`MAX_SIDE`].
fn dimensions(bytes: &[u8], kind: ImageKind) -> Result<(u32, u32), ProductError> {
    // No decoder limits for the header alone: our own bound below names
    // the dimensions instead of a decoder's generic refusal.
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format(kind));
    reader.no_limits();
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| refused("unreadable", ProductError::InvalidImage(e.to_string())))?;
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(refused(
            "dimensions",
            ProductError::ImageDimensionsTooLarge {
                width,
                height,
                limit: MAX_SIDE,
            },
        ));
    }
    Ok((width, height))
}

/// Whether an If-None-Match list (`"a", "b"`, weak `W/"a"`, or `*`) names
/// the image whose SHA-256 is `sha256` (its ETag).
pub fn etag_matches(if_none_match: &str, sha256: &str) -> bool {
    if_none_match.split(',').any(|tag| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag.trim_matches('"') == sha256 && !sha256.is_empty()
    })
}

/// One decoding job: the bytes, their kind, and where the thumbnail goes.
type ThumbnailJob = (
    Bytes,
    ImageKind,
    tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
);

/// Makes thumbnails on one thread of its own, one image at a time. One
/// thread, not the blocking pool: glibc gives each thread its own arena,
/// and each kept a freed decode buffer (16 MiB here) for good, so memory
/// grew with every pool thread that had decoded once.
#[derive(Debug, Clone)]
pub struct Thumbnailer {
    jobs: std::sync::mpsc::Sender<ThumbnailJob>,
}

impl Thumbnailer {
    /// Starts the thread; it stops when the last clone is dropped.
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<ThumbnailJob>();
        std::thread::Builder::new()
            .name("thumbnails".to_owned())
            .spawn(move || {
                for (bytes, kind, done) in queue {
                    let _ = done.send(thumbnail_of(&bytes, kind));
                }
            })?;
        Ok(Self { jobs })
    }

    /// A JPEG at most [`THUMBNAIL_WIDTH`] wide of `bytes`, after the
    /// uploads ahead of it (at most [`MAX_CONCURRENT_UPLOADS`] wait).
    async fn make(&self, bytes: Bytes, kind: ImageKind) -> Result<Bytes, ProductError> {
        let (done, made) = tokio::sync::oneshot::channel();
        self.jobs
            .send((bytes, kind, done))
            .map_err(|_| ProductError::InvalidImage("the thumbnail thread stopped".to_owned()))?;
        let made = made
            .await
            .map_err(|_| ProductError::InvalidImage("the thumbnail thread stopped".to_owned()))?;
        made.map(Bytes::from)
            .map_err(|e| refused("undecodable", ProductError::InvalidImage(e)))
    }
}

/// Decodes within limits and encodes the thumbnail.
fn thumbnail_of(bytes: &[u8], kind: ImageKind) -> Result<Vec<u8>, String> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format(kind));
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| e.to_string())?;
    // `thumbnail` averages areas straight into the small image; a filtered
    // `resize` first built a float copy a whole column high.
    let small = if decoded.width() > THUMBNAIL_WIDTH {
        decoded.thumbnail(THUMBNAIL_WIDTH, u32::MAX)
    } else {
        decoded
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small.to_rgb8())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_as_http_says() {
        let sha = "ab12";
        for held in ["\"ab12\"", "ab12", "W/\"ab12\"", "\"x\", \"ab12\"", "*"] {
            assert!(etag_matches(held, sha), "{held}");
        }
        for held in ["", "\"ab1\"", "\"x\", \"y\""] {
            assert!(!etag_matches(held, sha), "{held}");
        }
    }
}
