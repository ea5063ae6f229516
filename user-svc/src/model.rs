//! What user-svc's rules work on: an account. A plain value: the store
//! maps rows to it, the api maps it to protobuf (never with its hash).

use chrono::{DateTime, Utc};
use oms_runtime::auth::Role;

/// An account as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUIDv7.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// Shown name.
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// Registration time.
    pub create_time: DateTime<Utc>,
    /// Disabled by an admin: no sign-in, no token works.
    pub disabled: bool,
    /// Raised by every [`AccessChange`]; access tokens carry the version
    /// they were issued at, and older ones stop working.
    pub token_version: u64,
}

/// A change that ends the account's earlier access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessChange {
    /// A new role.
    Role(Role),
    /// Disabled (`true`) or enabled again.
    Disabled(bool),
    /// A new password, as its argon2id PHC string.
    Password(String),
}
