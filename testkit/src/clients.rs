//! `OMS_SERVICE_CLIENTS`: the OAuth2 clients user-svc accepts, written
//! with serde rather than by hand.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One client: its ID, the SHA-256 of its secret and the scopes it may ask
/// for.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceClient {
    /// The client ID.
    pub client_id: String,
    /// Lower-case hex SHA-256 of the secret (user-svc stores no secret).
    pub secret_sha256: String,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
}

impl ServiceClient {
    /// A client with `secret`, allowed `scopes`.
    pub fn new(client_id: &str, secret: &str, scopes: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            secret_sha256: format!("{:x}", Sha256::digest(secret.as_bytes())),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// order-svc as a client: `inventory:write`, `products:read`, and
    /// the revocation list.
    pub fn order_svc(secret: &str) -> Self {
        Self::new(
            "order-svc",
            secret,
            &["inventory:write", "products:read", "revocations:read"],
        )
    }

    /// product-svc as a client: the revocation list.
    pub fn product_svc(secret: &str) -> Self {
        Self::new("product-svc", secret, &["revocations:read"])
    }
}

/// The value of `OMS_SERVICE_CLIENTS` for `clients`.
pub fn env_value(clients: &[ServiceClient]) -> String {
    // Serializing plain strings into a Vec cannot fail.
    serde_json::to_string(clients).unwrap_or_else(|_| "[]".to_owned())
}
