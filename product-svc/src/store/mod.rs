//! sea-orm entities of the products database.

pub mod price_history;
pub mod product;
pub mod reservation;
pub mod reservation_line;
pub mod stock_adjustment;
