//! The users database: sea-orm entities and the queries user-svc runs.

pub mod user;
pub mod users;
