//! Everything product-svc can fail with, and its one mapping to the wire.

use oms_runtime::{ApiError, FieldViolation, Rejection};
use tonic::Code;

use crate::DOMAIN;

/// One line that could not be reserved for lack of stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortLine {
    /// The product.
    pub product_id: String,
    /// Units asked for.
    pub requested: i32,
    /// Units available.
    pub available: i64,
}

/// A product-svc failure.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// Bad request fields, every one of them.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// No such product.
    #[error("product {0} not found")]
    ProductNotFound(String),
    /// The sku is taken.
    #[error("sku {0} is already in use")]
    SkuTaken(String),
    /// The product is archived.
    #[error("product {0} is archived")]
    ProductArchived(String),
    /// Not enough stock for these lines (every short line, not only the first).
    #[error("not enough stock for {} line(s)", .0.len())]
    InsufficientStock(Vec<ShortLine>),
    /// An adjustment would leave less stock than is reserved.
    #[error("stock on hand cannot drop below the {reserved} units reserved")]
    StockBelowReserved {
        /// The product.
        product_id: String,
        /// Units reserved now.
        reserved: i64,
    },
    /// No such reservation.
    #[error("reservation {0} not found")]
    ReservationNotFound(String),
    /// The reservation ID was used with other lines.
    #[error("reservation {0} already exists with other lines")]
    ReservationIdReused(String),
    /// The reservation is not in a state that allows this.
    #[error("reservation {id} is {state}; cannot {action}")]
    ReservationState {
        /// The reservation.
        id: String,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// The lines' products are priced in more than one currency.
    #[error("the products are priced in {first} and {other}; one order, one currency")]
    MixedCurrencies {
        /// The first line's currency.
        first: String,
        /// Another line's.
        other: String,
    },
    /// No such quote, or not the caller's.
    #[error("quote {0} not found")]
    QuoteNotFound(String),
    /// The quote's time passed.
    #[error("quote {quote_id} expired at {expire_time}")]
    QuoteExpired {
        /// The quote.
        quote_id: String,
        /// When it expired.
        expire_time: chrono::DateTime<chrono::Utc>,
    },
    /// The order's lines are not the quote's.
    #[error("the lines differ from quote {quote_id}")]
    QuoteMismatch {
        /// The quote.
        quote_id: String,
        /// One violation per differing line.
        differences: Vec<FieldViolation>,
    },
    /// Another order used the quote.
    #[error("quote {quote_id} was already used")]
    QuoteAlreadyUsed {
        /// The quote.
        quote_id: String,
        /// The order that used it, when known.
        order_id: Option<String>,
    },
    /// The customer holds as many open quotes as allowed.
    #[error("at most {limit} open quotes per customer; use or let some expire first")]
    TooManyQuotes {
        /// The bound.
        limit: u64,
    },
    /// The product has as many images as allowed.
    #[error("at most {limit} images per product")]
    TooManyImages {
        /// The bound.
        limit: u64,
    },
    /// As many uploads as allowed are in progress on this instance.
    #[error("at most {limit} image uploads at once; try again shortly")]
    TooManyUploads {
        /// The bound.
        limit: usize,
    },
    /// An upload chunk was larger than allowed.
    #[error("upload chunks are at most {limit} bytes; got {got}")]
    ChunkTooLarge {
        /// The bound.
        limit: usize,
        /// What came.
        got: usize,
    },
    /// The upload passed the size limit.
    #[error("images are at most {limit} bytes")]
    ImageTooLarge {
        /// The bound (`OMS_IMAGE_MAX_BYTES`).
        limit: u64,
    },
    /// The bytes are not the declared type.
    #[error("declared {declared}, but the bytes are {}", .actual.unwrap_or("none of PNG, JPEG or WebP"))]
    ImageTypeMismatch {
        /// The declared media type.
        declared: &'static str,
        /// What the bytes are, if one of ours.
        actual: Option<&'static str>,
    },
    /// The bytes could not be read as an image. The decoder's words are
    /// for the log only: they describe our decoder to whoever sends it
    /// bytes.
    #[error("the bytes are not a readable image of the declared type")]
    InvalidImage(String),
    /// The header declares more pixels than allowed.
    #[error("{width} × {height} pixels; at most {limit} × {limit}")]
    ImageDimensionsTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The bound per side.
        limit: u32,
    },
    /// No such image of that product.
    #[error("image {0} not found")]
    ImageNotFound(String),
    /// The client's upload stream broke off.
    #[error("the upload broke off: {0}")]
    UploadInterrupted(String),
    /// The blob store failed.
    #[error("image storage")]
    Blob(#[source] crate::blobs::BlobError),
    /// Authentication or authorization refused the call.
    #[error(transparent)]
    Auth(ApiError),
    /// A transaction kept losing lock races (deadlock, busy database).
    #[error("too much contention; try again")]
    Busy(String),
    /// The database failed.
    #[error("products database")]
    Database(#[source] sea_orm::DbErr),
    /// The product cache (Redis) failed.
    #[error("product cache")]
    Cache(#[source] oms_store::kv::KvError),
}

impl From<FieldViolation> for ProductError {
    fn from(violation: FieldViolation) -> Self {
        Self::Invalid(vec![violation])
    }
}

impl From<sea_orm::DbErr> for ProductError {
    fn from(e: sea_orm::DbErr) -> Self {
        let text = e.to_string();
        // Lost lock races (MySQL deadlock or lock wait timeout, SQLite busy)
        // are retried as a whole transaction.
        if text.contains("Deadlock found")
            || text.contains("Lock wait timeout")
            || text.contains("database is locked")
        {
            Self::Busy(text)
        } else {
            Self::Database(e)
        }
    }
}

impl From<crate::blobs::BlobError> for ProductError {
    fn from(e: crate::blobs::BlobError) -> Self {
        Self::Blob(e)
    }
}

impl From<oms_store::kv::KvError> for ProductError {
    fn from(e: oms_store::kv::KvError) -> Self {
        Self::Cache(e)
    }
}

impl From<ProductError> for ApiError {
    fn from(error: ProductError) -> Self {
        let message = error.to_string();
        let reject = |code, reason| Rejection::new(code, DOMAIN, reason, message.clone());
        match error {
            ProductError::Invalid(violations) => ApiError::InvalidArgument {
                domain: DOMAIN,
                violations,
            },
            ProductError::ProductNotFound(id) => reject(Code::NotFound, "PRODUCT_NOT_FOUND")
                .with("productId", id)
                .into(),
            ProductError::SkuTaken(sku) => reject(Code::AlreadyExists, "SKU_TAKEN")
                .with("sku", sku)
                .into(),
            ProductError::ProductArchived(id) => {
                reject(Code::FailedPrecondition, "PRODUCT_ARCHIVED")
                    .with("productId", id)
                    .into()
            }
            ProductError::InsufficientStock(lines) => {
                // ErrorInfo metadata is flat: it names the first short line;
                // the PreconditionFailure lists every one.
                let mut rejection = reject(Code::FailedPrecondition, "INSUFFICIENT_STOCK")
                    .with("shortLines", lines.len());
                if let Some(first) = lines.first() {
                    rejection = rejection
                        .with("productId", &first.product_id)
                        .with("requested", first.requested)
                        .with("available", first.available);
                }
                for line in &lines {
                    rejection = rejection.precondition(
                        "INSUFFICIENT_STOCK",
                        format!("products/{}", line.product_id),
                        format!("requested {}, available {}", line.requested, line.available),
                    );
                }
                rejection.into()
            }
            ProductError::StockBelowReserved {
                product_id,
                reserved,
            } => reject(Code::FailedPrecondition, "STOCK_BELOW_RESERVED")
                .with("productId", product_id)
                .with("reserved", reserved)
                .into(),
            ProductError::ReservationNotFound(id) => {
                reject(Code::NotFound, "RESERVATION_NOT_FOUND")
                    .with("reservationId", id)
                    .into()
            }
            ProductError::ReservationIdReused(id) => {
                reject(Code::AlreadyExists, "RESERVATION_ID_REUSED")
                    .with("reservationId", id)
                    .into()
            }
            ProductError::ReservationState { id, state, .. } => {
                let reason = match state {
                    "expired" => "RESERVATION_EXPIRED",
                    "released" => "RESERVATION_RELEASED",
                    "committed" => "RESERVATION_COMMITTED",
                    _ => "INVALID_RESERVATION_STATE",
                };
                reject(Code::FailedPrecondition, reason)
                    .with("reservationId", id)
                    .with("state", state)
                    .into()
            }
            ProductError::MixedCurrencies { first, other } => {
                reject(Code::FailedPrecondition, "MIXED_CURRENCIES")
                    .with("currencies", format!("{first},{other}"))
                    .into()
            }
            ProductError::QuoteNotFound(id) => reject(Code::NotFound, "QUOTE_NOT_FOUND")
                .with("quoteId", id)
                .into(),
            ProductError::QuoteExpired {
                quote_id,
                expire_time,
            } => reject(Code::FailedPrecondition, "QUOTE_EXPIRED")
                .with("quoteId", quote_id)
                .with(
                    "expireTime",
                    expire_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                )
                .into(),
            ProductError::QuoteMismatch {
                quote_id,
                differences,
            } => {
                let mut rejection = reject(Code::FailedPrecondition, "QUOTE_MISMATCH")
                    .with("quoteId", quote_id)
                    .with("differingLines", differences.len());
                for difference in differences {
                    rejection = rejection.field(difference);
                }
                rejection.into()
            }
            ProductError::QuoteAlreadyUsed { quote_id, order_id } => {
                let mut rejection = reject(Code::FailedPrecondition, "QUOTE_ALREADY_USED")
                    .with("quoteId", quote_id);
                if let Some(order_id) = order_id {
                    rejection = rejection.with("orderId", order_id);
                }
                rejection.into()
            }
            ProductError::TooManyQuotes { limit } => {
                reject(Code::ResourceExhausted, "TOO_MANY_QUOTES")
                    .with("limit", limit)
                    .into()
            }
            ProductError::TooManyImages { limit } => {
                reject(Code::ResourceExhausted, "TOO_MANY_IMAGES")
                    .with("limit", limit)
                    .into()
            }
            ProductError::TooManyUploads { limit } => {
                reject(Code::ResourceExhausted, "TOO_MANY_UPLOADS")
                    .with("limit", limit)
                    .retry_after(std::time::Duration::from_secs(1))
                    .into()
            }
            ProductError::ChunkTooLarge { limit, got } => {
                reject(Code::InvalidArgument, "CHUNK_TOO_LARGE")
                    .with("limit", limit)
                    .with("got", got)
                    .into()
            }
            ProductError::ImageTooLarge { limit } => {
                reject(Code::ResourceExhausted, "IMAGE_TOO_LARGE")
                    .with("limit", limit)
                    .into()
            }
            ProductError::ImageTypeMismatch { declared, actual } => {
                let mut rejection =
                    reject(Code::InvalidArgument, "IMAGE_TYPE_MISMATCH").with("declared", declared);
                if let Some(actual) = actual {
                    rejection = rejection.with("actual", actual);
                }
                rejection.into()
            }
            ProductError::InvalidImage(_) => reject(Code::InvalidArgument, "INVALID_IMAGE").into(),
            ProductError::ImageDimensionsTooLarge {
                width,
                height,
                limit,
            } => reject(Code::InvalidArgument, "IMAGE_DIMENSIONS_TOO_LARGE")
                .with("width", width)
                .with("height", height)
                .with("limit", limit)
                .into(),
            ProductError::ImageNotFound(id) => reject(Code::NotFound, "IMAGE_NOT_FOUND")
                .with("imageId", id)
                .into(),
            ProductError::UploadInterrupted(_) => {
                reject(Code::Cancelled, "UPLOAD_INTERRUPTED").into()
            }
            ProductError::Blob(cause) => {
                tracing::warn!(error = %oms_core::error::report(&cause), "the image store failed");
                reject(Code::Unavailable, "IMAGE_STORE_UNAVAILABLE").into()
            }
            ProductError::Busy(cause) => {
                tracing::warn!(%cause, "giving up after repeated lock conflicts");
                reject(Code::Aborted, "CONCURRENT_UPDATE").into()
            }
            ProductError::Auth(e) => e,
            // Redis down: the call may work in a moment.
            ProductError::Cache(e) if e.is_unavailable() => ApiError::unavailable(e),
            ProductError::Database(e) if oms_store::db::is_unavailable(&e) => {
                ApiError::unavailable(e)
            }
            e @ (ProductError::Database(_) | ProductError::Cache(_)) => ApiError::internal(e),
        }
    }
}

impl From<ProductError> for tonic::Status {
    fn from(error: ProductError) -> Self {
        ApiError::from(error).into()
    }
}
