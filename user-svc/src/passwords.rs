//! Password hashing with argon2id at OWASP's parameters (19 MiB, t=2, p=1),
//! as PHC strings, on a few threads of its own: one per core.
//!
//! Every hash needs 19 MiB of working memory. Left to the argon2 crate, that
//! came from glibc's malloc, which kept each freed block in one of its
//! arenas: one login burst left user-svc at 700 MiB resident for good
//! (oms-bench, 32 clients). Now each hash gets memory that malloc must map
//! fresh and unmap when freed ([`working_memory`]), and hashes run on N
//! fixed threads, so at most N blocks exist at once and a login flood
//! queues in front of them instead of allocating without limit.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

fn hash_error(e: impl std::fmt::Display) -> HashError {
    HashError(e.to_string())
}

/// Blocks of 1 KiB past glibc's largest mmap threshold (32 MiB on 64-bit,
/// however high its dynamic threshold has climbed): an allocation this big
/// is always mapped on its own and unmapped when freed.
const ALWAYS_MAPPED_BLOCKS: usize = 33 * 1024;

/// Argon2's working memory for one hash: reserved past
/// [`ALWAYS_MAPPED_BLOCKS`], so it goes back to the OS when dropped, but
/// only `params`' blocks are written, so only they become resident.
fn working_memory(params: &Params) -> Vec<Block> {
    let blocks = params.block_count();
    let mut memory = Vec::with_capacity(blocks.max(ALWAYS_MAPPED_BLOCKS));
    memory.resize(blocks, Block::default());
    memory
}

/// A PHC string of `password` under our parameters and a fresh salt.
fn hash_phc(password: &[u8]) -> Result<String, HashError> {
    let params = Params::DEFAULT;
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    getrandom::fill(&mut salt).map_err(hash_error)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, working_memory(&params))
        .map_err(hash_error)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hash_error)?,
        salt: Some(Salt::new(&salt).map_err(hash_error)?),
        hash: Some(Output::new(&out).map_err(hash_error)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `phc`, recomputed under the parameters the
/// PHC string names and compared in constant time (`Output`'s `==`).
fn verify_phc(password: &[u8], phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(hash_error)?;
    let params = Params::try_from(&parsed).map_err(hash_error)?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(hash_error)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(hash_error)?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(HashError("a stored hash without salt or output".to_owned()));
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, working_memory(&params))
        .map_err(hash_error)?;
    Ok(Output::new(&out).map_err(hash_error)? == *expected)
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
        self.run(move || hash_phc(&password)).await
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
        // Counted so the login limits can be seen to hold: a burst that got
        // past them shows here (and costs 19 MiB and ~20 ms per check).
        metrics::counter!("oms_password_checks_total").increment(1);
        let matched = self.run(move || verify_phc(&password, &phc)).await?;
        Ok(known && matched)
    }

    async fn dummy(&self) -> Result<&str, HashError> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 32];
                getrandom::fill(&mut random).map_err(|e| HashError(e.to_string()))?;
                let random = oms_core::digest::hex(&random);
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

    #[test]
    fn our_phc_strings_and_the_argon2_crates_verify_each_other() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let crate_made = Argon2::default()
            .hash_password(b"s3cret pass")
            .unwrap()
            .to_string();
        assert!(verify_phc(b"s3cret pass", &crate_made).unwrap());
        assert!(!verify_phc(b"s3cret pasS", &crate_made).unwrap());
        let ours = hash_phc(b"s3cret pass").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"s3cret pass", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"other", &parsed)
                .is_err()
        );
        assert!(verify_phc(b"x", "$argon2id$v=19$m=19456,t=2,p=1$bad").is_err());
    }

    #[test]
    fn working_memory_is_reserved_past_the_mmap_threshold_but_sized_for_the_hash() {
        let memory = working_memory(&Params::DEFAULT);
        assert_eq!(memory.len(), Params::DEFAULT.block_count());
        assert!(memory.capacity() * std::mem::size_of::<Block>() > 32 * 1024 * 1024);
    }
}
