//! How an upload crosses the mesh: the chunk size of its stream and the
//! most any upload may hold, one definition for product-svc (which takes
//! the chunks) and the gateway (which cuts a raw body into them).

/// Largest chunk of an upload stream.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The most an upload may be configured to hold (`OMS_IMAGE_MAX_BYTES`'s
/// upper bound): the gateway passes on at most this, and product-svc
/// refuses past its own, lower, limit while the body streams.
pub const MAX_UPLOAD: usize = 64 << 20;

/// `OMS_IMAGE_MAX_BYTES` when unset.
pub const DEFAULT_UPLOAD: usize = 5 << 20;
