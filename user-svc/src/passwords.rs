//! Password hashing with argon2id at OWASP's parameters (19 MiB, t=2, p=1),
//! as PHC strings, on the blocking pool. A semaphore bounds how many hashes
//! run at once, so a login flood cannot make the process allocate
//! 19 MiB per request without limit.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// Why hashing failed (never because of the password's content).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified when the email is unknown so
    /// that answer takes as long as a wrong password.
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

impl Passwords {
    /// Prepares the dummy hash (one real hash, on the blocking pool).
    pub async fn new() -> Result<Self, HashError> {
        let parallel = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let permits = Arc::new(Semaphore::new(parallel * 2));
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| HashError(e.to_string()))?;
        let dummy = hash_blocking(random.to_vec()).await?;
        Ok(Self {
            permits,
            dummy_hash: Arc::new(dummy),
        })
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        hash_blocking(password.as_bytes().to_vec()).await
    }

    /// Whether `password` matches `phc`; `None` verifies against the dummy
    /// hash and is always false.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        let known = phc.is_some();
        let phc = phc.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let password = password.as_bytes().to_vec();
        let matched = tokio::task::spawn_blocking({
            let span = tracing::Span::current();
            move || {
                let _entered = span.enter();
                let parsed = PasswordHash::new(&phc).map_err(|e| HashError(e.to_string()))?;
                Ok::<_, HashError>(argon2().verify_password(&password, &parsed).is_ok())
            }
        })
        .await
        .map_err(|e| HashError(e.to_string()))??;
        Ok(known && matched)
    }
}

async fn hash_blocking(password: Vec<u8>) -> Result<String, HashError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        argon2()
            .hash_password(&password)
            .map(|hash| hash.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .in_current_span()
    .await
    .map_err(|e| HashError(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_with_owasp_parameters_and_verify() {
        let passwords = Passwords::new().await.unwrap();
        let phc = passwords.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            passwords
                .verify("correct horse battery", Some(&phc))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horse batterY", Some(&phc))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("anything", None).await.unwrap());
        let again = passwords.hash("correct horse battery").await.unwrap();
        assert_ne!(phc, again, "each hash has its own salt");
    }
}
