//! Tokens signed here: access tokens (EdDSA JWTs with `typ: at+jwt` and
//! the signing key's `kid`) for users (audience `oms-api`, a role, and the
//! OpenID Connect scopes when an application signed the user in) and for
//! services (the target service as audience, scopes, at most 5 minutes);
//! and OpenID Connect ID tokens (`typ: JWT`, the client as audience).

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
enum Claimed<'a> {
    User {
        role: Role,
        version: u64,
        /// The application and the scopes granted to it, for an OpenID
        /// Connect sign-in.
        granted: Option<&'a Granted>,
    },
    Service {
        scope: String,
    },
}

/// What a user let an OpenID Connect client have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The client.
    pub client_id: String,
    /// The scopes, space-separated.
    pub scope: String,
}

impl Granted {
    /// Whether `scope` was granted.
    pub fn has(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// The claims of an ID token (OpenID Connect Core §2, §5.1).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IdClaims {
    /// The provider's issuer URL.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client.
    pub aud: String,
    /// Expiry.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// When the user last entered their password.
    pub auth_time: u64,
    /// The authorization request's `nonce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// With `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// With `email`: OMS does not verify emails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// With `profile`: the display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The `typ` of an ID token: a plain JWT, never taken for an access token.
const ID_TOKEN_TYPE: &str = "JWT";

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

    /// A user access token, carrying the account's token version, and the
    /// client and scopes of an OpenID Connect sign-in.
    pub fn user_token(
        &self,
        user_id: &str,
        role: Role,
        version: u64,
        granted: Option<&Granted>,
    ) -> Result<SignedToken, jsonwebtoken::errors::Error> {
        self.sign(
            user_id,
            USER_AUDIENCE,
            self.user_ttl.as_secs(),
            Claimed::User {
                role,
                version,
                granted,
            },
        )
    }

    /// An ID token, living as long as an access token.
    pub fn id_token(&self, mut claims: IdClaims) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now();
        claims.iat = now;
        claims.exp = now + self.user_ttl.as_secs();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ID_TOKEN_TYPE.to_owned());
        header.kid = Some(self.keys.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, self.keys.encoding_key())
    }

    /// Reads a token signed here with one of the published keys, checking
    /// the signature, `iss`, `aud` and (when `live`) its expiry.
    pub fn verify_own<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: Option<&str>,
        live: bool,
    ) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = self.keys.decoding_key(header.kid.as_deref()?)?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        validation.validate_exp = live;
        validation.set_required_spec_claims(&["iss", "sub", "exp"]);
        jsonwebtoken::decode::<T>(token, &key, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// Signs `claims` as a JWT of type `typ` (the sign-in session).
    pub fn sign_own<T: serde::Serialize>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.keys.kid().to_owned());
        jsonwebtoken::encode(&header, claims, self.keys.encoding_key())
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
        claimed: Claimed<'_>,
    ) -> Result<SignedToken, jsonwebtoken::errors::Error> {
        let now = now();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(self.keys.kid().to_owned());
        let (role, ver, scope, client_id) = match claimed {
            Claimed::User {
                role,
                version,
                granted,
            } => (
                Some(role.as_str().to_owned()),
                version,
                granted.map(|g| g.scope.clone()),
                granted.map(|g| g.client_id.clone()),
            ),
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

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
