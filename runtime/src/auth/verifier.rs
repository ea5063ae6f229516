//! Access-token verification: EdDSA only, `typ: at+jwt`, issuer, audience,
//! expiry and lifetime, with keys found by `kid` in a cached JWKS that is
//! refetched (rate-limited) when an unknown `kid` shows up after rotation.
//!
//! A token that passed is remembered by its SHA-256 until its `exp`, so a
//! client sending the same token again (every call of a session, every
//! service token of order-svc) costs a hash, not an Ed25519 verification
//! and a JSON parse. What can change while a token lives is still checked
//! on every call: its key still listed, its expiry, and revocation.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

// tokio's clock, so tests can pause and advance it.
use tokio::time::Instant;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest as _, Sha256};

use super::claims::{
    AccessClaims, Caller, OIDC_SCOPES, Role, SERVICE_TOKEN_MAX_TTL_SECS, TOKEN_TYPE, USER_AUDIENCE,
    USER_TOKEN_MAX_TTL_SECS,
};
use super::jwks::JwksSource;
use super::revocations::{RevocationSource, Revocations};
use crate::error::{ApiError, Rejection};

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The only accepted `iss`.
    pub issuer: String,
    /// This service's own audience for service tokens (e.g. `product-svc`);
    /// `None` where no service may call.
    pub service_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`.
    pub leeway: Duration,
    /// Least time between two JWKS fetches after one succeeded.
    pub refetch_interval: Duration,
}

impl VerifierConfig {
    /// Defaults: 30 s leeway, refetch at most every 5 s.
    pub fn new(issuer: impl Into<String>, service_audience: Option<&str>) -> Self {
        Self {
            issuer: issuer.into(),
            service_audience: service_audience.map(str::to_owned),
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(5),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT, or its header is unreadable.
    #[error("the access token is malformed")]
    Malformed,
    /// `alg` is not EdDSA (`none`, HS256, RS256, …).
    #[error("the access token's algorithm is not accepted")]
    Algorithm,
    /// `typ` is not `at+jwt`.
    #[error("the token is not an access token (typ must be at+jwt)")]
    TokenType,
    /// No key with this `kid`, even after refetching the JWKS.
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    /// The JWKS could not be fetched, so nothing can be verified now.
    #[error("the signing keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// Bad signature, wrong issuer or audience, expired, not yet valid.
    #[error("the access token is invalid: {0}")]
    Invalid(String),
    /// Signed correctly but its claims break OMS rules (lifetime too long,
    /// both or neither of `role` and `scope`).
    #[error("the access token's claims are not acceptable: {0}")]
    Claims(&'static str),
    /// Issued before the account's role, state or password changed.
    #[error("the access token was revoked; sign in again")]
    Revoked,
}

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::KeysUnavailable(_) => Rejection::new(
                tonic::Code::Unavailable,
                super::AUTH_DOMAIN,
                "JWKS_UNAVAILABLE",
                "cannot verify tokens right now; try again shortly",
            )
            .into(),
            revoked @ VerifyError::Revoked => Rejection::new(
                tonic::Code::Unauthenticated,
                super::AUTH_DOMAIN,
                "TOKEN_REVOKED",
                revoked.to_string(),
            )
            .into(),
            other => Rejection::new(
                tonic::Code::Unauthenticated,
                super::AUTH_DOMAIN,
                "INVALID_TOKEN",
                other.to_string(),
            )
            .into(),
        }
    }
}

/// The most verified tokens remembered: a few MiB at most. When full, the
/// expired ones go; if none has, the whole set does (and refills).
const VERIFIED_CAPACITY: usize = 10_000;

/// A token whose signature and claims passed.
#[derive(Debug)]
struct VerifiedToken {
    kid: String,
    claims: AccessClaims,
}

/// Verifies access tokens against a cached JWKS.
pub struct Verifier {
    config: VerifierConfig,
    source: Arc<dyn JwksSource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Tokens that passed, by the SHA-256 of the token, until their `exp`.
    verified: RwLock<HashMap<[u8; 32], Arc<VerifiedToken>>>,
    /// When the JWKS was last fetched and whether that worked; held across
    /// the fetch so concurrent misses cause one fetch, not a stampede.
    last_fetch: tokio::sync::Mutex<Option<(Instant, bool)>>,
    revocations: Arc<Revocations>,
    /// Keeps `revocations` fresh while this verifier lives.
    _following: Option<crate::background::Background>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with an empty cache; keys are fetched on first use.
    pub fn new(config: VerifierConfig, source: Arc<dyn JwksSource>) -> Self {
        for outcome in ["ok", "error"] {
            oms_telemetry::metrics::zero("auth_jwks_fetches_total", &[("outcome", outcome)]);
        }
        Self {
            config,
            source,
            keys: RwLock::new(HashMap::new()),
            verified: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            revocations: Arc::default(),
            _following: None,
        }
    }

    /// Also refuses user tokens that `source` lists as revoked, refreshing
    /// the list in the background while the verifier lives. Every service
    /// verifier follows one; without it only expiry ends a token.
    #[must_use]
    pub fn following(mut self, source: Arc<dyn RevocationSource>) -> Self {
        self._following = Some(self.revocations.follow(source));
        self
    }

    /// Checks `token` and says who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Caller, VerifyError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.remembered(&digest) {
            // Claims (lifetime, role or scope) are checked again: cheap,
            // and revocation may have come since.
            return self.caller(known.claims.clone());
        }
        let (kid, claims) = self.verify_signed(token).await?;
        let caller = self.caller(claims.clone())?;
        self.remember(digest, VerifiedToken { kid, claims });
        Ok(caller)
    }

    /// A remembered token that is still unexpired and whose key is still
    /// listed; one past its `exp` is verified afresh (and refused once
    /// past the leeway, as without the cache).
    fn remembered(&self, digest: &[u8; 32]) -> Option<Arc<VerifiedToken>> {
        let known = self
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(digest)
            .cloned()?;
        let unexpired = jsonwebtoken::get_current_timestamp() < known.claims.exp;
        let key_listed = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&known.kid);
        (unexpired && key_listed).then_some(known)
    }

    fn remember(&self, digest: [u8; 32], token: VerifiedToken) {
        let mut verified = self
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_CAPACITY {
            let now = jsonwebtoken::get_current_timestamp();
            verified.retain(|_, known| known.claims.exp > now);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(digest, Arc::new(token));
    }

    /// The signature, header and registered claims: the costly part.
    async fn verify_signed(&self, token: &str) -> Result<(String, AccessClaims), VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Algorithm);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(VerifyError::TokenType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        let mut audiences = vec![USER_AUDIENCE.to_owned()];
        audiences.extend(self.config.service_audience.clone());
        validation.set_audience(&audiences);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|e| VerifyError::Invalid(describe(&e)))?
            .claims;
        Ok((kid, claims))
    }

    fn caller(&self, claims: AccessClaims) -> Result<Caller, VerifyError> {
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if claims.aud == USER_AUDIENCE {
            if lifetime > USER_TOKEN_MAX_TTL_SECS {
                return Err(VerifyError::Claims("user tokens live at most 15 minutes"));
            }
            // A user token's scope says what the user let an application
            // see of them; it never grants a service's scope.
            let scopes: Vec<String> = claims
                .scope
                .as_deref()
                .unwrap_or_default()
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect();
            if scopes.iter().any(|s| !OIDC_SCOPES.contains(&s.as_str())) {
                return Err(VerifyError::Claims(
                    "a user token carries only OpenID Connect scopes",
                ));
            }
            let role = claims
                .role
                .as_deref()
                .and_then(Role::parse)
                .ok_or(VerifyError::Claims("a user token needs a known role"))?;
            if self
                .revocations
                .min_version(&claims.sub)
                .is_some_and(|min| claims.ver < min)
            {
                metrics::counter!("auth_revoked_tokens_refused_total").increment(1);
                return Err(VerifyError::Revoked);
            }
            Ok(Caller::User {
                id: claims.sub,
                role,
                scopes,
            })
        } else if self.config.service_audience.as_deref() == Some(claims.aud.as_str()) {
            if lifetime > SERVICE_TOKEN_MAX_TTL_SECS {
                return Err(VerifyError::Claims("service tokens live at most 5 minutes"));
            }
            if claims.role.is_some() {
                return Err(VerifyError::Claims("a service token carries no role"));
            }
            let scopes = claims
                .scope
                .ok_or(VerifyError::Claims("a service token needs a scope"))?
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect();
            Ok(Caller::Service {
                client_id: claims.client_id.unwrap_or(claims.sub),
                scopes,
            })
        } else {
            // decode() already checked aud against the accepted set.
            Err(VerifyError::Invalid("audience".to_owned()))
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, VerifyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Someone else may have refreshed while we waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let wait = match *last_fetch {
            Some((_, true)) => self.config.refetch_interval,
            // After a failure, retry sooner: the keys are needed for every call.
            Some((_, false)) => Duration::from_secs(1).min(self.config.refetch_interval),
            None => Duration::ZERO,
        };
        if let Some((at, ok)) = *last_fetch
            && at.elapsed() < wait
        {
            return Err(if ok {
                VerifyError::UnknownKey
            } else {
                VerifyError::KeysUnavailable("the last fetch failed".to_owned())
            });
        }
        let fetched = self.source.fetch().await;
        *last_fetch = Some((Instant::now(), fetched.is_ok()));
        metrics::counter!(
            "auth_jwks_fetches_total",
            "outcome" => if fetched.is_ok() { "ok" } else { "error" }
        )
        .increment(1);
        let jwks = fetched.map_err(VerifyError::KeysUnavailable)?;
        let mut keys = HashMap::new();
        for jwk in jwks {
            if jwk.kty == "OKP"
                && jwk.crv == "Ed25519"
                && let Ok(key) = DecodingKey::from_ed_components(&jwk.x)
            {
                keys.insert(jwk.kid, key);
            }
        }
        let found = keys.get(kid).cloned();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        found.ok_or(VerifyError::UnknownKey)
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kid)
            .cloned()
    }
}

/// Which check a token failed, in a few words a client can act on.
fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired".to_owned(),
        ErrorKind::ImmatureSignature => "not valid yet".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        _ => "malformed".to_owned(),
    }
}
