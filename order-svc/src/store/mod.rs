//! The orders database: sea-orm entities and the queries order-svc runs.
//! Takes and returns domain values; knows nothing of protobuf.

pub mod order;
pub mod order_line;
pub mod orders;
