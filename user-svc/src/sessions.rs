//! Refresh tokens (RFC 9700): opaque 256-bit random strings, stored only as
//! SHA-256 hashes in the key-value store with a TTL, grouped in families
//! (one per sign-in). Each use rotates the token; presenting a rotated
//! token again means it leaked, and the whole family is revoked.
//!
//! Keys:
//! - `rt:<hash>`   → the live token's family and user (taken atomically on use);
//! - `used:<hash>` → the family of a token already rotated (reuse detection);
//! - `fam:<id>`    → the family: its user, the user's generation, and the
//!   OpenID Connect client it was issued to (only that client refreshes it);
//! - `gen:<user>`  → the user's generation; bumping it revokes every family.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oms_store::kv::{KvError, KvStore};
use serde::{Deserialize, Serialize};

use crate::clients::sha256_hex;
use crate::tokens::Granted;

/// A refresh-token store failure.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The key-value store failed.
    #[error(transparent)]
    Store(#[from] KvError),
    /// No randomness for a new token.
    #[error("OS random source failed: {0}")]
    Random(String),
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Valid: the user, and the new token of the same family.
    Rotated {
        /// Whose token it was.
        user_id: String,
        /// The replacement; the presented token is dead.
        new_token: String,
        /// The OpenID Connect client the family was issued to, and the
        /// scopes granted to it.
        granted: Option<Granted>,
    },
    /// Never issued, expired, or its family was revoked.
    Invalid,
    /// Already rotated: the family is now revoked.
    Reused,
}

#[derive(Serialize, Deserialize)]
struct TokenRecord {
    user_id: String,
    family: String,
}

#[derive(Serialize, Deserialize)]
struct FamilyRecord {
    user_id: String,
    generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// The refresh-token store.
#[derive(Clone)]
pub struct Sessions {
    kv: Arc<dyn KvStore>,
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Tokens live `ttl` after their issue or last rotation.
    pub fn new(kv: Arc<dyn KvStore>, ttl: Duration) -> Self {
        Self { kv, ttl }
    }

    /// Starts a family for a new sign-in and returns its first token.
    pub async fn start(&self, user_id: &str) -> Result<String, SessionError> {
        Ok(self.start_for(user_id, None).await?.0)
    }

    /// Starts a family for a sign-in, bound to the OpenID Connect client
    /// it is issued to (if any); returns its first token and the family.
    pub async fn start_for(
        &self,
        user_id: &str,
        granted: Option<&Granted>,
    ) -> Result<(String, String), SessionError> {
        let family = uuid::Uuid::new_v4().simple().to_string();
        let record = FamilyRecord {
            user_id: user_id.to_owned(),
            generation: self.generation(user_id).await?,
            client_id: granted.map(|g| g.client_id.clone()),
            scope: granted.map(|g| g.scope.clone()),
        };
        self.kv
            .set(&format!("fam:{family}"), &to_json(&record), self.ttl)
            .await?;
        Ok((self.issue(user_id, &family).await?, family))
    }

    /// Revokes a family by its ID.
    pub async fn revoke_family(&self, family: &str) -> Result<(), SessionError> {
        self.kv.delete(&format!("fam:{family}")).await?;
        Ok(())
    }

    /// The OpenID Connect client a live token's family was issued to:
    /// `None` for an unknown token, `Some(None)` for a first-party one.
    pub async fn client_of(&self, token: &str) -> Result<Option<Option<String>>, SessionError> {
        let hash = sha256_hex(token);
        let Some(record) = self
            .kv
            .get(&format!("rt:{hash}"))
            .await?
            .and_then(|raw| from_json::<TokenRecord>(&raw))
        else {
            return Ok(None);
        };
        Ok(self
            .kv
            .get(&format!("fam:{}", record.family))
            .await?
            .and_then(|raw| from_json::<FamilyRecord>(&raw))
            .map(|family| family.client_id))
    }

    /// Uses `token`: rotates it, or says why not. A token issued to an
    /// OpenID Connect client is rotated only for `client`; presented by
    /// anyone else it leaked, and its family is revoked.
    pub async fn rotate(
        &self,
        token: &str,
        client: Option<&str>,
    ) -> Result<Rotation, SessionError> {
        let hash = sha256_hex(token);
        let Some(raw) = self.kv.take(&format!("rt:{hash}")).await? else {
            if let Some(family) = self.kv.get(&format!("used:{hash}")).await? {
                let family = String::from_utf8_lossy(&family).into_owned();
                self.kv.delete(&format!("fam:{family}")).await?;
                tracing::warn!(family = %family, "a rotated refresh token was presented again; its family is revoked");
                return Ok(Rotation::Reused);
            }
            return Ok(Rotation::Invalid);
        };
        let Some(record) = from_json::<TokenRecord>(&raw) else {
            return Ok(Rotation::Invalid);
        };
        self.kv
            .set(&format!("used:{hash}"), record.family.as_bytes(), self.ttl)
            .await?;
        let Some((raw_family, family)) = self.live_family(&record.family).await? else {
            return Ok(Rotation::Invalid);
        };
        if family.client_id.is_some() && family.client_id.as_deref() != client {
            self.kv.delete(&format!("fam:{}", record.family)).await?;
            tracing::warn!(family = %record.family, "a refresh token was presented by another client than its own; its family is revoked");
            return Ok(Rotation::Invalid);
        }
        // Keep the family as long as its newest token.
        self.kv
            .set(&format!("fam:{}", record.family), &raw_family, self.ttl)
            .await?;
        let new_token = self.issue(&record.user_id, &record.family).await?;
        Ok(Rotation::Rotated {
            user_id: record.user_id,
            new_token,
            granted: family.client_id.map(|client_id| Granted {
                client_id,
                scope: family.scope.unwrap_or_default(),
            }),
        })
    }

    /// Revokes the family of `token` (live or already rotated). Unknown
    /// tokens are ignored, as RFC 7009 asks.
    pub async fn revoke_family_of(&self, token: &str) -> Result<(), SessionError> {
        let hash = sha256_hex(token);
        let family = match self.kv.get(&format!("rt:{hash}")).await? {
            Some(raw) => from_json::<TokenRecord>(&raw).map(|r| r.family),
            None => self
                .kv
                .get(&format!("used:{hash}"))
                .await?
                .map(|f| String::from_utf8_lossy(&f).into_owned()),
        };
        if let Some(family) = family {
            self.kv.delete(&format!("fam:{family}")).await?;
        }
        Ok(())
    }

    /// Revokes every family of `user_id` (password or role change).
    pub async fn revoke_all(&self, user_id: &str) -> Result<(), SessionError> {
        // The generation outlives every token issued before the bump.
        self.kv
            .increment(&format!("gen:{user_id}"), self.ttl.saturating_mul(2))
            .await?;
        Ok(())
    }

    async fn issue(&self, user_id: &str, family: &str) -> Result<String, SessionError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let record = TokenRecord {
            user_id: user_id.to_owned(),
            family: family.to_owned(),
        };
        self.kv
            .set(
                &format!("rt:{}", sha256_hex(&token)),
                &to_json(&record),
                self.ttl,
            )
            .await?;
        Ok(token)
    }

    /// The family, raw and read, while it is not revoked.
    async fn live_family(&self, family: &str) -> Result<Option<(Vec<u8>, FamilyRecord)>, KvError> {
        let Some(raw) = self.kv.get(&format!("fam:{family}")).await? else {
            return Ok(None);
        };
        let Some(record) = from_json::<FamilyRecord>(&raw) else {
            return Ok(None);
        };
        if record.generation != self.generation(&record.user_id).await? {
            return Ok(None);
        }
        Ok(Some((raw, record)))
    }

    /// The user's generation: every family and sign-in session made
    /// under an older one is revoked.
    pub(crate) async fn generation(&self, user_id: &str) -> Result<u64, KvError> {
        Ok(self
            .kv
            .get(&format!("gen:{user_id}"))
            .await?
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings and integers cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn from_json<T: for<'de> Deserialize<'de>>(raw: &[u8]) -> Option<T> {
    serde_json::from_slice(raw).ok()
}
