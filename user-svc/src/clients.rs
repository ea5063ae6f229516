//! OAuth2 service clients (client credentials): who may ask for service
//! tokens, with which scopes, and which service each scope is for.

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// Every scope OMS knows, and the service (token audience) it is for.
pub const SCOPES: &[(&str, &str)] = &[
    ("inventory:write", "product-svc"),
    ("products:read", "product-svc"),
    (oms_runtime::auth::revocations::READ_SCOPE, "user-svc"),
];

/// The audience a scope's tokens are for.
pub fn audience_of(scope: &str) -> Option<&'static str> {
    SCOPES
        .iter()
        .find(|(s, _)| *s == scope)
        .map(|(_, aud)| *aud)
}

/// A configured client. The secret is only held as its SHA-256: client
/// secrets are long random strings, so a fast hash suffices (unlike
/// passwords) and keeps token issuance cheap.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceClient {
    /// e.g. `order-svc`.
    pub client_id: String,
    /// Lower-case hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
    /// A client whose secret is `secret` (hashed here; the secret is not kept).
    pub fn new(client_id: &str, secret: &str, scopes: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            secret_sha256: sha256_hex(secret),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Whether `secret` is this client's, compared in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        sha256_hex(secret)
            .as_bytes()
            .ct_eq(self.secret_sha256.as_bytes())
            .into()
    }
}

/// A new client secret: 256 random bits, base64url.
pub fn random_secret() -> Result<String, String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("OS random source failed: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(input: &str) -> String {
    oms_core::digest::sha256_hex(input.as_bytes())
}

/// Parses `OMS_SERVICE_CLIENTS`: a JSON array of
/// `{"client_id", "secret_sha256", "scopes"}`.
pub fn parse(raw: &str) -> Result<Vec<ServiceClient>, String> {
    let clients: Vec<ServiceClient> = serde_json::from_str(raw).map_err(|e| {
        format!(r#"expected [{{"client_id":"order-svc","secret_sha256":"<64 hex>","scopes":["inventory:write"]}}]: {e}"#)
    })?;
    for client in &clients {
        if client.client_id.trim().is_empty() {
            return Err("a client has an empty client_id".to_owned());
        }
        let hex = &client.secret_sha256;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "client {}: secret_sha256 must be 64 lower-case hex digits",
                client.client_id
            ));
        }
        if let Some(unknown) = client.scopes.iter().find(|s| audience_of(s).is_none()) {
            return Err(format!(
                "client {}: unknown scope {unknown}",
                client.client_id
            ));
        }
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_clients_are_checked() {
        let hash = sha256_hex("s3cret");
        let ok = format!(
            r#"[{{"client_id":"order-svc","secret_sha256":"{hash}","scopes":["inventory:write"]}}]"#
        );
        let clients = parse(&ok).unwrap();
        assert!(clients[0].secret_matches("s3cret"));
        assert!(!clients[0].secret_matches("s3cret "));
        let unknown =
            format!(r#"[{{"client_id":"x","secret_sha256":"{hash}","scopes":["root"]}}]"#);
        assert!(parse(&unknown).unwrap_err().contains("unknown scope root"));
        assert!(parse(r#"[{"client_id":"x","secret_sha256":"abc","scopes":[]}]"#).is_err());
        assert!(parse("not json").is_err());
    }
}
