//! Servers of a test's (or the bench's) own, as processes on a port of
//! 127.0.0.1 in a scratch directory: MariaDB and Redis, optionally with
//! TLS on, which a test may stop, kill and start again on the same data
//! without touching a server anybody else uses.

pub mod mariadb;
pub mod peer;
pub mod redis;

/// Why a server could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// The files a server serves TLS with: its certificate and key, and the
/// CA its clients' certificates would chain to.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The certificate (PEM).
    pub cert: std::path::PathBuf,
    /// Its key (PEM).
    pub key: std::path::PathBuf,
    /// The CA (PEM).
    pub ca: std::path::PathBuf,
}
