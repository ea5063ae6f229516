//! Access tokens: EdDSA JWTs with `typ: at+jwt` and the signing key's
//! `kid`, for users (audience `oms-api`, a role) and for services (the
//! target service as audience, scopes, at most 5 minutes).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Header};
use oms_runtime::auth::{
    AccessClaims, Role, SERVICE_TOKEN_MAX_TTL_SECS, TOKEN_TYPE, USER_AUDIENCE,
};

use crate::keys::SigningKeys;

/// A signed token and how long it lives.
#[derive(Debug, Clone)]
pub struct SignedToken {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// What a token claims besides who and for whom.
enum Claimed {
    User { role: Role, version: u64 },
    Service { scope: String },
}

/// Signs access tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    keys: SigningKeys,
    issuer: String,
    user_ttl: Duration,
}

impl TokenIssuer {
    /// Signs with `keys`' active key.
    pub fn new(keys: SigningKeys, issuer: String, user_ttl: Duration) -> Self {
        Self {
            keys,
            issuer,
            user_ttl,
        }
    }

    /// The published keys.
    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// A user access token, carrying the account's token version.
    pub fn user_token(
        &self,
        user_id: &str,
        role: Role,
        version: u64,
    ) -> Result<SignedToken, jsonwebtoken::errors::Error> {
        self.sign(
            user_id,
            USER_AUDIENCE,
            self.user_ttl.as_secs(),
            Claimed::User { role, version },
        )
    }

    /// A service token for `audience` with `scopes`.
    pub fn service_token(
        &self,
        client_id: &str,
        audience: &str,
        scopes: &[String],
    ) -> Result<SignedToken, jsonwebtoken::errors::Error> {
        self.sign(
            client_id,
            audience,
            SERVICE_TOKEN_MAX_TTL_SECS,
            Claimed::Service {
                scope: scopes.join(" "),
            },
        )
    }

    fn sign(
        &self,
        subject: &str,
        audience: &str,
        ttl: u64,
        claimed: Claimed,
    ) -> Result<SignedToken, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(self.keys.kid().to_owned());
        let (role, ver, scope, client_id) = match claimed {
            Claimed::User { role, version } => {
                (Some(role.as_str().to_owned()), version, None, None)
            }
            Claimed::Service { scope } => (None, 0, Some(scope), Some(subject.to_owned())),
        };
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: audience.to_owned(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            role,
            scope,
            client_id,
            ver,
        };
        let token = jsonwebtoken::encode(&header, &claims, self.keys.encoding_key())?;
        Ok(SignedToken {
            token,
            expires_in: ttl,
        })
    }
}
