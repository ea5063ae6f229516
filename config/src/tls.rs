//! Which certificate files a process serves and dials with: the mesh's
//! (`OMS_TLS_*`, every gRPC listener and client channel) and the
//! gateway's public one (`GATEWAY_TLS_*`). Paths only: the files are read,
//! and re-read when they change, by `oms-runtime`'s `tls`.

use std::path::PathBuf;
use std::time::Duration;

use crate::{ConfigError, Env};

/// The mesh's server certificate (`OMS_TLS_CERT`, PEM, leaf first).
pub const CERT_VAR: &str = "OMS_TLS_CERT";
/// Its private key (`OMS_TLS_KEY`, PEM: PKCS#8, SEC1 or PKCS#1).
pub const KEY_VAR: &str = "OMS_TLS_KEY";
/// The CA a server requires client certificates to chain to.
pub const CLIENT_CA_VAR: &str = "OMS_TLS_CLIENT_CA";
/// The CA clients verify servers against.
pub const CA_VAR: &str = "OMS_TLS_CA";
/// How often the files are read again.
pub const RELOAD_INTERVAL_VAR: &str = "OMS_TLS_RELOAD_INTERVAL";
/// The gateway's public certificate.
pub const GATEWAY_CERT_VAR: &str = "GATEWAY_TLS_CERT";
/// Its private key.
pub const GATEWAY_KEY_VAR: &str = "GATEWAY_TLS_KEY";

/// A certificate chain and its key, as two PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// TLS inside the mesh. All unset is plaintext (the embedded default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshTls {
    /// What gRPC listeners serve (TLS on when set), and what client
    /// channels present when a server asks.
    pub identity: Option<Identity>,
    /// When set, a listener refuses a client without a certificate that
    /// chains to it (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// When set, every client channel speaks TLS and verifies the server
    /// against it, for the name it dialled.
    pub ca: Option<PathBuf>,
    /// How often the files are read again (a renewed certificate is served
    /// to new connections within this).
    pub reload_interval: Duration,
}

impl MeshTls {
    /// Nothing set: plaintext.
    pub fn plaintext() -> Self {
        Self {
            identity: None,
            client_ca: None,
            ca: None,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// Reads `OMS_TLS_CERT`, `OMS_TLS_KEY`, `OMS_TLS_CLIENT_CA`,
    /// `OMS_TLS_CA` and `OMS_TLS_RELOAD_INTERVAL`: the certificate and key
    /// come together; requiring client certificates needs a server
    /// certificate; and a server certificate needs `OMS_TLS_CA`, because
    /// a process that serves TLS dials peers that do too.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let identity = identity(env, CERT_VAR, KEY_VAR)?;
        let client_ca = file(env, CLIENT_CA_VAR)?;
        let ca = file(env, CA_VAR)?;
        if client_ca.is_some() && identity.is_none() {
            return Err(ConfigError::new(
                CLIENT_CA_VAR,
                format!(
                    "requires {CERT_VAR} and {KEY_VAR}: client certificates are asked for only over TLS"
                ),
            ));
        }
        if identity.is_some() && ca.is_none() {
            return Err(ConfigError::new(
                CA_VAR,
                format!(
                    "must be set with {CERT_VAR}: the CA this process verifies its peers against (they serve TLS too)"
                ),
            ));
        }
        Ok(Self {
            identity,
            client_ca,
            ca,
            reload_interval: reload_interval(env)?,
        })
    }

    /// Whether anything is encrypted.
    pub fn is_on(&self) -> bool {
        self.identity.is_some() || self.ca.is_some()
    }
}

/// The gateway's public listener: HTTPS when set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicTls {
    /// Its certificate and key.
    pub identity: Identity,
    /// How often they are read again.
    pub reload_interval: Duration,
}

impl PublicTls {
    /// Reads `GATEWAY_TLS_CERT` and `GATEWAY_TLS_KEY` (both or neither).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(identity) = identity(env, GATEWAY_CERT_VAR, GATEWAY_KEY_VAR)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            identity,
            reload_interval: reload_interval(env)?,
        }))
    }
}

/// Thirty seconds: a renewed certificate is in use well within the time
/// Kubernetes takes to update a mounted Secret (about a minute).
const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

fn reload_interval(env: &Env) -> Result<Duration, ConfigError> {
    env.duration(
        RELOAD_INTERVAL_VAR,
        DEFAULT_RELOAD_INTERVAL,
        Duration::from_secs(1)..=Duration::from_secs(3_600),
    )
}

fn identity(env: &Env, cert_var: &str, key_var: &str) -> Result<Option<Identity>, ConfigError> {
    match (file(env, cert_var)?, file(env, key_var)?) {
        (Some(cert), Some(key)) => Ok(Some(Identity { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            key_var,
            format!("must be set with {cert_var}: the certificate's private key"),
        )),
        (None, Some(_)) => Err(ConfigError::new(
            cert_var,
            format!("must be set with {key_var}: the key's certificate"),
        )),
    }
}

/// A path that must name a readable file now (it is read again later;
/// failing at start-up beats failing on the first connection).
fn file(env: &Env, var: &str) -> Result<Option<PathBuf>, ConfigError> {
    let Some(raw) = env.get(var)? else {
        return Ok(None);
    };
    let path = PathBuf::from(raw.trim());
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(Some(path)),
        Ok(_) => Err(ConfigError::new(
            var,
            format!("{} is not a file", path.display()),
        )),
        Err(e) => Err(ConfigError::new(
            var,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_files(pairs: &[(&str, bool)]) -> (Env, Dir) {
        let dir = Dir::new();
        let env = Env::from_pairs(pairs.iter().map(|(var, exists)| {
            let path = dir.0.join(var);
            if *exists {
                std::fs::write(&path, "pem").unwrap();
            }
            (var.to_string(), path.display().to_string())
        }));
        (env, dir)
    }

    /// A directory of its own under the system's temp dir, removed when
    /// dropped (this crate takes no dev-dependencies).
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "oms-config-tls-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn nothing_set_is_plaintext() {
        let tls = MeshTls::from_env(&Env::from_pairs([] as [(&str, &str); 0])).unwrap();
        assert_eq!(tls, MeshTls::plaintext());
        assert!(!tls.is_on());
    }

    #[test]
    fn mutual_tls_takes_all_four_files() {
        let (env, _dir) = env_with_files(&[
            (CERT_VAR, true),
            (KEY_VAR, true),
            (CLIENT_CA_VAR, true),
            (CA_VAR, true),
        ]);
        let tls = MeshTls::from_env(&env).unwrap();
        assert!(tls.identity.is_some() && tls.client_ca.is_some() && tls.ca.is_some());
        assert!(tls.is_on());
    }

    #[test]
    fn each_wrong_combination_names_the_variable_to_fix() {
        for (files, var) in [
            (vec![(CERT_VAR, true), (CA_VAR, true)], KEY_VAR),
            (vec![(KEY_VAR, true), (CA_VAR, true)], CERT_VAR),
            (vec![(CLIENT_CA_VAR, true), (CA_VAR, true)], CLIENT_CA_VAR),
            (vec![(CERT_VAR, true), (KEY_VAR, true)], CA_VAR),
            (
                vec![(CERT_VAR, false), (KEY_VAR, true), (CA_VAR, true)],
                CERT_VAR,
            ),
        ] {
            let (env, _dir) = env_with_files(&files);
            let error = MeshTls::from_env(&env).unwrap_err();
            assert_eq!(error.var, var, "{files:?}: {error}");
        }
    }

    #[test]
    fn the_gateway_serves_https_only_with_both_files() {
        let (env, _dir) = env_with_files(&[(GATEWAY_CERT_VAR, true), (GATEWAY_KEY_VAR, true)]);
        assert!(PublicTls::from_env(&env).unwrap().is_some());
        let (env, _dir) = env_with_files(&[(GATEWAY_CERT_VAR, true)]);
        assert_eq!(PublicTls::from_env(&env).unwrap_err().var, GATEWAY_KEY_VAR);
        assert!(
            PublicTls::from_env(&Env::from_pairs([] as [(&str, &str); 0]))
                .unwrap()
                .is_none()
        );
    }
}
