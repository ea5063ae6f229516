//! Password hashing with argon2id at OWASP's parameters (19 MiB, t=2, p=1),
//! as PHC strings, on a few threads of its own: one per core.
//!
//! Why not tokio's blocking pool: every hash allocates 19 MiB, and glibc's
//! malloc keeps a freed block in the arena of the thread that freed it.
//! Spread over the blocking pool's many threads, one login burst left
//! user-svc at 700 MiB resident for good (oms-bench, 32 clients). On N
//! fixed threads at most N blocks exist, in use or kept, and a login flood
//! queues in front of them instead of allocating without limit.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, oneshot};

/// Why hashing failed (never because of the password's content).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords. Clones share the threads, which stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Passwords {
    jobs: mpsc::Sender<Job>,
    /// A hash of a random password, verified when the email is unknown so
    /// that answer takes as long as a wrong password. Made on first use,
    /// so start-up does not pay a hash (or keep its 19 MiB).
    dummy_hash: Arc<OnceCell<String>>,
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
    /// Starts the hashing threads, one per core.
    pub fn new() -> Result<Self, HashError> {
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take a job, not to run it.
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(),
                            // Every sender is gone: the service stopped.
                            Err(mpsc::RecvError) => return,
                        }
                    }
                })
                .map_err(|e| HashError(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            jobs,
            dummy_hash: Arc::new(OnceCell::new()),
        })
    }

    /// Runs `work` on a hashing thread, in the caller's span.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            let _entered = span.enter();
            // The caller may have gone (client disconnected): nothing to tell.
            let _ = done.send(work());
        });
        self.jobs
            .send(job)
            .map_err(|_| HashError("the hashing threads have stopped".to_owned()))?;
        result
            .await
            .map_err(|_| HashError("a hashing thread stopped mid-hash".to_owned()))?
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.as_bytes().to_vec();
        self.run(move || {
            argon2()
                .hash_password(&password)
                .map(|hash| hash.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await
    }

    /// Whether `password` matches `phc`; `None` verifies against the dummy
    /// hash and is always false.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = match phc {
            Some(phc) => phc.to_owned(),
            None => self.dummy().await?.to_owned(),
        };
        let password = password.as_bytes().to_vec();
        let matched = self
            .run(move || {
                let parsed = PasswordHash::new(&phc).map_err(|e| HashError(e.to_string()))?;
                Ok(argon2().verify_password(&password, &parsed).is_ok())
            })
            .await?;
        Ok(known && matched)
    }

    async fn dummy(&self) -> Result<&str, HashError> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 32];
                getrandom::fill(&mut random).map_err(|e| HashError(e.to_string()))?;
                let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
                self.hash(&random).await
            })
            .await?;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_with_owasp_parameters_and_verify() {
        let passwords = Passwords::new().unwrap();
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

    #[tokio::test]
    async fn more_hashes_than_threads_all_finish_and_the_dummy_is_made_once() {
        let passwords = Passwords::new().unwrap();
        let jobs: Vec<_> = (0..6)
            .map(|i| {
                let passwords = passwords.clone();
                tokio::spawn(async move {
                    let password = format!("password number {i}");
                    let phc = passwords.hash(&password).await.unwrap();
                    passwords.verify(&password, Some(&phc)).await.unwrap()
                })
            })
            .collect();
        for job in jobs {
            assert!(job.await.unwrap());
        }
        assert!(
            passwords.dummy_hash.get().is_none(),
            "not made before it is needed"
        );
        assert!(!passwords.verify("x", None).await.unwrap());
        let first = passwords.dummy_hash.get().cloned();
        assert!(!passwords.verify("y", None).await.unwrap());
        assert_eq!(passwords.dummy_hash.get().cloned(), first);
    }
}
