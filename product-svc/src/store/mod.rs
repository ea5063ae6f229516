//! The products database: sea-orm entities and the queries product-svc
//! runs. Takes and returns domain values; knows nothing of protobuf.

pub mod price_history;
pub mod product;
pub mod product_image;
pub mod product_images;
pub mod products;
pub mod quote;
pub mod quote_line;
pub mod quotes;
pub mod reservation;
pub mod reservation_line;
pub mod reservations;
pub mod stock_adjustment;
