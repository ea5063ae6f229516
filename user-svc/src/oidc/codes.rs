//! Authorization codes: 256 random bits handed to the browser, kept in the
//! key-value store only as a SHA-256 (`code:<hash>`) for at most 60 s with
//! what they were issued for, and taken atomically, so a code is used once
//! even across replicas. A taken code leaves `code-used:<hash>` behind for
//! ten minutes naming what it issued, so a second use can revoke it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oms_store::kv::{KvError, KvStore};
use serde::{Deserialize, Serialize};

use crate::clients::sha256_hex;
use crate::sessions::SessionError;

/// How long a used code is remembered, to catch its replay.
const USED_FOR: Duration = Duration::from_secs(600);

/// What a code was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of its request.
    pub redirect_uri: String,
    /// The PKCE challenge (S256).
    pub code_challenge: String,
    /// The user who signed in.
    pub user_id: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The request's nonce.
    pub nonce: Option<String>,
    /// When the user entered their password.
    pub auth_time: u64,
    /// The sign-in session it came from.
    pub sid: String,
    /// Expiry, seconds since the epoch (the store's TTL is the other
    /// guard).
    pub exp: u64,
}

/// What a used code issued, for revoking it on replay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Issued {
    /// The user.
    pub user_id: String,
    /// The refresh-token family, if one was issued.
    pub family: Option<String>,
}

/// What taking a code found.
#[derive(Debug)]
pub enum Taken {
    /// The code, now used.
    Fresh(CodeGrant),
    /// Used before: what it issued.
    Replayed(Issued),
    /// Never issued, or expired.
    Unknown,
}

/// The code store.
#[derive(Clone)]
pub struct Codes {
    kv: Arc<dyn KvStore>,
    ttl: Duration,
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codes")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Codes {
    /// Codes living `ttl` (at most 60 s: configuration checks it).
    pub fn new(kv: Arc<dyn KvStore>, ttl: Duration) -> Self {
        Self { kv, ttl }
    }

    /// How long a code lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a code for `grant`.
    pub async fn issue(&self, grant: &CodeGrant) -> Result<String, SessionError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let raw = serde_json::to_vec(grant).unwrap_or_default();
        self.kv
            .set(&format!("code:{}", sha256_hex(&code)), &raw, self.ttl)
            .await?;
        Ok(code)
    }

    /// Takes `code`: at most one caller ever gets it fresh.
    pub async fn take(&self, code: &str) -> Result<Taken, KvError> {
        let hash = sha256_hex(code);
        match self.kv.take(&format!("code:{hash}")).await? {
            Some(raw) => match serde_json::from_slice::<CodeGrant>(&raw) {
                Ok(grant) => {
                    self.record(
                        code,
                        &Issued {
                            user_id: grant.user_id.clone(),
                            family: None,
                        },
                    )
                    .await?;
                    Ok(Taken::Fresh(grant))
                }
                Err(_) => Ok(Taken::Unknown),
            },
            None => Ok(self
                .kv
                .get(&format!("code-used:{hash}"))
                .await?
                .and_then(|raw| serde_json::from_slice(&raw).ok())
                .map_or(Taken::Unknown, Taken::Replayed)),
        }
    }

    /// Remembers what a taken code issued.
    pub async fn record(&self, code: &str, issued: &Issued) -> Result<(), KvError> {
        let raw = serde_json::to_vec(issued).unwrap_or_default();
        self.kv
            .set(&format!("code-used:{}", sha256_hex(code)), &raw, USED_FOR)
            .await
    }
}
