//! The vocabulary every layer of OMS shares, with no I/O and no wire: what
//! a check refuses, money, line items, paging tokens, free-text rules,
//! digests and the clock.
//!
//! - [`error`]: one bad field of a request, and an error's cause chain in
//!   one line.
//! - [`fields`] checks a request's fields all at once, keeping every
//!   violation.
//! - [`lines`] parses and hashes line items (product + quantity).
//! - [`money`] checks currencies and amounts (minor units, never floats).
//! - [`paging`] reads page sizes and opaque keyset page tokens.
//! - [`text`] says which characters free text may not hold.
//! - [`digest`] writes SHA-256 digests as hex.
//! - [`uploads`] is how an upload is cut and bounded.
//! - [`time`] is the clock (to the microsecond a database keeps) and the
//!   conversions of times and deadlines.

#![forbid(unsafe_code)]

pub mod digest;
pub mod error;
pub mod fields;
pub mod lines;
pub mod money;
pub mod paging;
pub mod text;
pub mod time;
pub mod uploads;

pub use error::FieldViolation;
