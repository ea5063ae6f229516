//! Which users' earlier access tokens no longer count.
//!
//! user-svc raises a user's token version when their role changes, the
//! account is disabled or enabled, or the password changes, and lists the
//! users changed in the last 16 minutes (`AuthService/ListTokenRevocations`).
//! Every verifier holds that list in memory and refreshes it in the
//! background every second, so checking a request costs a map lookup, not a
//! network call, and a change takes effect everywhere within seconds.
//!
//! When the list cannot be fetched the last one is kept: tokens stay
//! verifiable while user-svc is down (as with the cached JWKS), and the
//! failure is logged and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// How often verifiers refresh the list.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How long user-svc lists a change: an access token's longest life plus
/// the verifiers' clock leeway. After that, every token it voids expired.
pub const LISTED_FOR: Duration = Duration::from_secs(super::USER_TOKEN_MAX_TTL_SECS + 60);

/// Most entries a verifier takes from one refresh; a list beyond it is a
/// fault (or an attack on memory), and the previous list is kept.
pub const MAX_ENTRIES: usize = 100_000;

/// Tokens of one user issued before a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// SHA-256 of the user's ID; see [`subject_digest`].
    pub subject_sha256: [u8; 32],
    /// Tokens whose `ver` claim is below this are void.
    pub min_version: u64,
}

/// The digest under which a subject is listed, so the published list names
/// nobody.
pub fn subject_digest(subject: &str) -> [u8; 32] {
    Sha256::digest(subject.as_bytes()).into()
}

/// Where the current list comes from.
#[async_trait]
pub trait RevocationSource: Send + Sync + 'static {
    /// Every entry listed now.
    async fn fetch(&self) -> Result<Vec<Revocation>, String>;
}

/// The list as a verifier holds it.
#[derive(Debug, Default)]
pub struct Revocations {
    min_versions: RwLock<HashMap<[u8; 32], u64>>,
    /// Whether the last refresh failed, so a long outage logs once.
    failing: AtomicBool,
}

impl Revocations {
    /// The least token version still accepted for `subject`, if any limit
    /// is listed.
    pub fn min_version(&self, subject: &str) -> Option<u64> {
        let map = self
            .min_versions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Most of the time nobody is listed: skip hashing.
        if map.is_empty() {
            return None;
        }
        map.get(&subject_digest(subject)).copied()
    }

    /// Replaces the list with what `source` lists now; keeps the old one
    /// if that fails. Returns how many entries are held.
    pub async fn refresh(&self, source: &dyn RevocationSource) -> Result<usize, String> {
        let fetched = source.fetch().await.and_then(|list| {
            if list.len() > MAX_ENTRIES {
                Err(format!(
                    "{} revocations listed, more than the {MAX_ENTRIES} a verifier holds",
                    list.len()
                ))
            } else {
                Ok(list)
            }
        });
        match fetched {
            Ok(list) => {
                let mut map = HashMap::with_capacity(list.len());
                for entry in list {
                    let min = map.entry(entry.subject_sha256).or_insert(0);
                    *min = (*min).max(entry.min_version);
                }
                let held = map.len();
                *self
                    .min_versions
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = map;
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("token revocations are being fetched again");
                }
                #[allow(clippy::cast_precision_loss)] // at most MAX_ENTRIES
                metrics::gauge!("auth_token_revocations").set(held as f64);
                Ok(held)
            }
            Err(e) => {
                metrics::counter!("auth_token_revocation_fetch_errors_total").increment(1);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        "cannot fetch token revocations; the last list stays in force until it can"
                    );
                }
                Err(e)
            }
        }
    }

    /// Refreshes from `source` every [`REFRESH_INTERVAL`] until the guard is
    /// dropped.
    pub fn follow(
        self: &Arc<Self>,
        source: Arc<dyn RevocationSource>,
    ) -> crate::background::Background {
        let revocations = Arc::clone(self);
        crate::background::every("token revocations", REFRESH_INTERVAL, move || {
            let revocations = Arc::clone(&revocations);
            let source = Arc::clone(&source);
            async move {
                // Failures are logged by `refresh` once per outage, not
                // every second; success changes nothing worth a log line.
                let _ = revocations.refresh(source.as_ref()).await;
                Ok::<usize, std::convert::Infallible>(0)
            }
        })
    }
}

/// The scope that may read the revocation list.
pub const READ_SCOPE: &str = "revocations:read";

/// user-svc's `AuthService/ListTokenRevocations`, every page of it, read
/// with a service token of [`READ_SCOPE`].
#[derive(Debug, Clone)]
pub struct GrpcRevocations {
    channel: crate::channel::Balanced,
    token: Arc<super::ServiceToken>,
}

impl GrpcRevocations {
    /// The list of user-svc fetched over `channel` (see
    /// [`super::user_svc_channel`]), read as `credentials`.
    pub fn on(channel: crate::channel::Balanced, credentials: super::ClientCredentials) -> Self {
        Self {
            token: Arc::new(super::ServiceToken::new(
                channel.clone(),
                credentials,
                &[READ_SCOPE],
            )),
            channel,
        }
    }
}

#[async_trait]
impl RevocationSource for GrpcRevocations {
    async fn fetch(&self) -> Result<Vec<Revocation>, String> {
        use oms_proto::user::v1::{
            ListTokenRevocationsRequest, auth_service_client::AuthServiceClient,
        };
        let mut client = AuthServiceClient::new(self.channel.clone());
        let token = self.token.get().await?;
        let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| "user-svc issued a token that is no header value".to_owned())?;
        let mut entries = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut request = tonic::Request::new(ListTokenRevocationsRequest {
                page_size: 1000,
                page_token: std::mem::take(&mut page_token),
            });
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            let page = match client.list_token_revocations(request).await {
                Ok(page) => page.into_inner(),
                Err(status) => {
                    // A token user-svc no longer takes (a rotated key):
                    // the next round asks for a new one.
                    if status.code() == tonic::Code::Unauthenticated {
                        self.token.forget(&token).await;
                    }
                    return Err(format!(
                        "ListTokenRevocations from user-svc: {}: {}",
                        status.code(),
                        status.message()
                    ));
                }
            };
            for entry in page.revocations {
                let subject_sha256 = <[u8; 32]>::try_from(entry.subject_sha256.as_slice())
                    .map_err(|_| "user-svc listed a subject digest that is not 32 bytes")?;
                entries.push(Revocation {
                    subject_sha256,
                    min_version: entry.min_token_version,
                });
            }
            if entries.len() > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} revocations listed"));
            }
            if page.next_page_token.is_empty() {
                return Ok(entries);
            }
            page_token = page.next_page_token;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Scripted(Mutex<Vec<Result<Vec<Revocation>, String>>>);

    #[async_trait]
    impl RevocationSource for Scripted {
        async fn fetch(&self) -> Result<Vec<Revocation>, String> {
            self.0.lock().unwrap().remove(0)
        }
    }

    fn entry(subject: &str, min_version: u64) -> Revocation {
        Revocation {
            subject_sha256: subject_digest(subject),
            min_version,
        }
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_list_and_a_good_one_replaces_it() {
        let source = Scripted(Mutex::new(vec![
            Ok(vec![entry("alice", 2), entry("alice", 3), entry("bob", 1)]),
            Err("user-svc is down".to_owned()),
            Ok(vec![entry("bob", 4)]),
        ]));
        let revocations = Revocations::default();
        assert_eq!(revocations.min_version("alice"), None);

        assert_eq!(revocations.refresh(&source).await, Ok(2));
        assert_eq!(
            revocations.min_version("alice"),
            Some(3),
            "the highest wins"
        );
        assert_eq!(revocations.min_version("bob"), Some(1));
        assert_eq!(revocations.min_version("carol"), None);

        assert!(revocations.refresh(&source).await.is_err());
        assert_eq!(
            revocations.min_version("alice"),
            Some(3),
            "kept while failing"
        );

        assert_eq!(revocations.refresh(&source).await, Ok(1));
        assert_eq!(revocations.min_version("alice"), None, "no longer listed");
        assert_eq!(revocations.min_version("bob"), Some(4));
    }

    #[tokio::test]
    async fn an_oversized_list_is_refused_and_the_old_one_kept() {
        let huge = (0..=MAX_ENTRIES)
            .map(|n| entry(&n.to_string(), 1))
            .collect();
        let source = Scripted(Mutex::new(vec![Ok(vec![entry("alice", 2)]), Ok(huge)]));
        let revocations = Revocations::default();
        revocations.refresh(&source).await.unwrap();
        assert!(revocations.refresh(&source).await.is_err());
        assert_eq!(revocations.min_version("alice"), Some(2));
    }
}
