//! sea-orm entities of the orders database.

pub mod order;
pub mod order_line;
