//! Browser sign-in sessions of the OpenID Provider: what the gateway keeps
//! in an HttpOnly cookie so a second authorization request needs no
//! password. The cookie's value is a JWT signed with the access-token key
//! (`typ: oms-session+jwt`, audience `oms-sign-in`, so it is never taken
//! for an access or ID token) naming a session kept in the key-value store
//! as `sso:<sid>`: ending the session, or a password or role change (the
//! user's refresh generation), kills it at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sessions::{SessionError, Sessions};
use crate::tokens::{TokenIssuer, now};
use oms_store::kv::KvStore;
use std::sync::Arc;

const SESSION_TYPE: &str = "oms-session+jwt";
const SESSION_AUDIENCE: &str = "oms-sign-in";

#[derive(Serialize, Deserialize)]
struct SessionClaims {
    iss: String,
    aud: String,
    sub: String,
    sid: String,
    auth_time: u64,
    iat: u64,
    exp: u64,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    user_id: String,
    generation: u64,
}

/// A live sign-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The user.
    pub user_id: String,
    /// The session's ID.
    pub sid: String,
    /// When the user entered their password, seconds since the epoch.
    pub auth_time: u64,
}

/// The sign-in sessions.
#[derive(Clone)]
pub struct SignInSessions {
    kv: Arc<dyn KvStore>,
    tokens: TokenIssuer,
    issuer: String,
    sessions: Sessions,
    ttl: Duration,
}

impl std::fmt::Debug for SignInSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInSessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SignInSessions {
    /// Sessions signed by `tokens` for `issuer`, living `ttl`.
    pub fn new(
        kv: Arc<dyn KvStore>,
        tokens: TokenIssuer,
        issuer: String,
        sessions: Sessions,
        ttl: Duration,
    ) -> Self {
        Self {
            kv,
            tokens,
            issuer,
            sessions,
            ttl,
        }
    }

    /// How long a session lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for a user who just entered their password.
    pub async fn start(&self, user_id: &str) -> Result<String, SessionError> {
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let record = SessionRecord {
            user_id: user_id.to_owned(),
            generation: self.sessions.generation(user_id).await?,
        };
        let raw = serde_json::to_vec(&record).unwrap_or_default();
        self.kv.set(&format!("sso:{sid}"), &raw, self.ttl).await?;
        let now = now();
        let claims = SessionClaims {
            iss: self.issuer.clone(),
            aud: SESSION_AUDIENCE.to_owned(),
            sub: user_id.to_owned(),
            sid,
            auth_time: now,
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        self.tokens
            .sign_own(SESSION_TYPE, &claims)
            .map_err(|e| SessionError::Random(format!("signing a sign-in session: {e}")))
    }

    /// The session `token` names, if it is signed here, unexpired, not
    /// ended, and made since the user's last password or role change.
    pub async fn resume(&self, token: &str) -> Result<Option<SignedIn>, SessionError> {
        if token.is_empty() || token.len() > 2_048 {
            return Ok(None);
        }
        let Some(claims) = self.claims(token, true) else {
            return Ok(None);
        };
        let Some(raw) = self.kv.get(&format!("sso:{}", claims.sid)).await? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<SessionRecord>(&raw) else {
            return Ok(None);
        };
        if record.user_id != claims.sub
            || record.generation != self.sessions.generation(&record.user_id).await?
        {
            return Ok(None);
        }
        Ok(Some(SignedIn {
            user_id: claims.sub,
            sid: claims.sid,
            auth_time: claims.auth_time,
        }))
    }

    /// Ends the session `token` names (expired or not); anything else is
    /// ignored.
    pub async fn end(&self, token: &str) -> Result<Option<String>, SessionError> {
        if token.is_empty() || token.len() > 2_048 {
            return Ok(None);
        }
        let Some(claims) = self.claims(token, false) else {
            return Ok(None);
        };
        self.kv.delete(&format!("sso:{}", claims.sid)).await?;
        Ok(Some(claims.sub))
    }

    fn claims(&self, token: &str, live: bool) -> Option<SessionClaims> {
        // The type is checked too: an ID token has the same key and issuer.
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some(SESSION_TYPE) {
            return None;
        }
        self.tokens
            .verify_own(token, &self.issuer, Some(SESSION_AUDIENCE), live)
    }
}
