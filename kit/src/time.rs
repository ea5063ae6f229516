//! Conversions between database times (UTC `chrono`) and the wire's
//! `google.protobuf.Timestamp`.

use chrono::{DateTime, Utc};

/// A UTC time as a protobuf Timestamp.
pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Always in 0..1e9, so the cast cannot truncate.
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Now, truncated to microseconds: what `DATETIME(6)` stores, so a value
/// read back equals the one written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
