//! What OMS access tokens carry, and the typed caller they become.

use serde::{Deserialize, Serialize};

/// The `typ` header of every OMS access token (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";

/// The audience of user access tokens: the OMS API as a whole. Service
/// tokens are addressed to one service instead, so neither kind is ever
/// accepted where the other is required (RFC 8725 §3.11).
pub const USER_AUDIENCE: &str = "oms-api";

/// Longest life of a user access token.
pub const USER_TOKEN_MAX_TTL_SECS: u64 = 15 * 60;

/// Longest life of a service token.
pub const SERVICE_TOKEN_MAX_TTL_SECS: u64 = 5 * 60;

/// The claims of an OMS access token. A user token has `role`; a service
/// token has `scope` and `client_id`; never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: user-svc's configured issuer.
    pub iss: String,
    /// Subject: the user's ID, or the service client's ID.
    pub sub: String,
    /// Audience: [`USER_AUDIENCE`] or the target service.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Unique token ID.
    pub jti: String,
    /// User tokens: `customer` or `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Service tokens: space-separated scopes (RFC 9068 §2.2.3); user
    /// tokens from an OpenID Connect sign-in: the [`OIDC_SCOPES`] granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Service tokens, and user tokens from an OpenID Connect sign-in: the
    /// OAuth2 client (RFC 9068 §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// User tokens: the account's token version when it was issued; a
    /// token below the version user-svc lists for its subject is void
    /// (see [`super::revocations`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ver: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The scopes of OpenID Connect (Core §5.4, and `offline_access` for a
/// refresh token): the only ones a user token may carry.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A shopper.
    Customer,
    /// An operator.
    Admin,
}

impl Role {
    /// The name used in tokens and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }

    /// Parses [`Role::as_str`]'s output.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A signed-in user.
    User {
        /// The user's ID.
        id: String,
        /// The user's role when the token was issued.
        role: Role,
        /// The OpenID Connect scopes granted to the application the user
        /// signed in to (see [`OIDC_SCOPES`]); empty for a first-party
        /// sign-in.
        scopes: Vec<String>,
    },
    /// Another service, by OAuth2 client credentials.
    Service {
        /// The client's ID, e.g. `order-svc`.
        client_id: String,
        /// The scopes granted.
        scopes: Vec<String>,
    },
}

impl std::fmt::Display for Caller {
    /// Who is calling, for logs: `user:<id>` or `service:<client id>`.
    /// Identifiers only; nothing secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User { id, .. } => write!(f, "user:{id}"),
            Self::Service { client_id, .. } => write!(f, "service:{client_id}"),
        }
    }
}
