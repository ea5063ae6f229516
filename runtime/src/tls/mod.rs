//! TLS of a process's links, on rustls (ring; no C build): the
//! certificates a listener serves and a client channel presents, the CAs
//! they are checked against, and the files they come from read again
//! every `OMS_TLS_RELOAD_INTERVAL`. A change (cert-manager renewing,
//! Kubernetes swapping a mounted Secret's files through a symlink) is
//! used by every connection made after it; connections already open keep
//! the certificate they began with, so calls in flight finish unharmed.
//! Files that fail to load (twice running: a copy caught halfway is not a
//! failure) leave the last good ones in use and are logged at ERROR; the
//! leaf's expiry is a metric an alert rule reads.
//!
//! - [`accept`] turns a listener's connections into TLS ones (handshakes
//!   that fail are refused, logged at WARN and counted).
//! - [`connect`] dials a peer's address over TLS, verifying the name the
//!   channel dialled.

pub mod accept;
pub mod connect;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};

/// Why certificate files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no PEM block of the kind expected.
    #[error("{path} holds no {what}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        what: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The leaf certificate is not X.509 we can read.
    #[error("{path}: the first certificate cannot be parsed: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// rustls refused the combination (a key that is not the
    /// certificate's, a CA that is not a CA certificate, …).
    #[error("{what}: {reason}")]
    Rustls {
        /// Which part.
        what: &'static str,
        /// What rustls said.
        reason: String,
    },
}

/// Which certificate a [`Tls`] holds, as metrics and logs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The mesh's: gRPC listeners and client channels (`OMS_TLS_*`).
    Mesh,
    /// The gateway's public HTTPS listener (`GATEWAY_TLS_*`).
    Public,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Self::Mesh => "mesh",
            Self::Public => "public",
        }
    }

    /// What a listener with this role offers by ALPN: gRPC is HTTP/2
    /// only; browsers and curl may speak either.
    fn server_alpn(self) -> Vec<Vec<u8>> {
        match self {
            Self::Mesh => vec![b"h2".to_vec()],
            Self::Public => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// The files one [`Tls`] is made from.
#[derive(Debug, Clone)]
struct Sources {
    identity: Option<oms_config::tls::Identity>,
    client_ca: Option<PathBuf>,
    ca: Option<PathBuf>,
}

impl Sources {
    fn paths(&self) -> Vec<&Path> {
        let mut paths = Vec::new();
        if let Some(identity) = &self.identity {
            paths.push(identity.cert.as_path());
            paths.push(identity.key.as_path());
        }
        paths.extend(self.client_ca.as_deref());
        paths.extend(self.ca.as_deref());
        paths
    }

    /// Every file's bytes, read now, and their digest (to tell a change).
    fn read(&self) -> Result<(Files, [u8; 32]), TlsError> {
        let mut digest = Sha256::new();
        let mut files = Files::default();
        for path in self.paths() {
            let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })?;
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(&bytes);
            files.0.push((path.to_owned(), bytes));
        }
        Ok((files, digest.finalize().into()))
    }
}

/// Files read in [`Sources::paths`] order.
#[derive(Default)]
struct Files(Vec<(PathBuf, Vec<u8>)>);

impl Files {
    fn get(&self, path: &Path) -> &[u8] {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map_or(&[], |(_, bytes)| bytes.as_slice())
    }
}

/// What a set of files makes.
struct Loaded {
    server: Option<Arc<ServerConfig>>,
    client: Option<Arc<ClientConfig>>,
    leaf: Option<Leaf>,
    digest: [u8; 32],
}

/// What logs and metrics say of the certificate served.
#[derive(Debug, Clone)]
struct Leaf {
    serial: String,
    not_after: SystemTime,
}

/// A process's TLS of one role, following its files; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("service", &self.shared.service)
            .field("role", &self.shared.role)
            .finish_non_exhaustive()
    }
}

struct Shared {
    service: &'static str,
    role: Role,
    sources: Sources,
    current: RwLock<Arc<Loaded>>,
}

impl Tls {
    /// The mesh's TLS of `service` as `config` says, or `None` when it is
    /// plaintext. Starts following the files (so this needs a Tokio
    /// runtime) until the last clone is dropped.
    pub fn mesh(
        service: &'static str,
        config: &oms_config::MeshTls,
    ) -> Result<Option<Self>, TlsError> {
        if !config.is_on() {
            return Ok(None);
        }
        let sources = Sources {
            identity: config.identity.clone(),
            client_ca: config.client_ca.clone(),
            ca: config.ca.clone(),
        };
        Self::load(service, Role::Mesh, sources, config.reload_interval).map(Some)
    }

    /// The gateway's public HTTPS certificate.
    pub fn public(service: &'static str, config: &oms_config::PublicTls) -> Result<Self, TlsError> {
        let sources = Sources {
            identity: Some(config.identity.clone()),
            client_ca: None,
            ca: None,
        };
        Self::load(service, Role::Public, sources, config.reload_interval)
    }

    fn load(
        service: &'static str,
        role: Role,
        sources: Sources,
        reload_interval: Duration,
    ) -> Result<Self, TlsError> {
        let (files, digest) = sources.read()?;
        let loaded = build(role, &sources, &files, digest)?;
        let shared = Arc::new(Shared {
            service,
            role,
            sources,
            current: RwLock::new(Arc::new(loaded)),
        });
        shared.loaded_now(&shared.current());
        oms_telemetry::metrics::zero(
            "oms_tls_reload_failures_total",
            &[("service", service), ("certificate", role.label())],
        );
        tokio::spawn(follow(Arc::downgrade(&shared), reload_interval));
        Ok(Self { shared })
    }

    /// What a listener serves now: `None` when this process serves
    /// plaintext (it only dials over TLS).
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.shared.current().server.clone()
    }

    /// What a client channel dials with now: `None` when this process's
    /// channels are plaintext.
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.shared.current().client.clone()
    }

    /// The service this belongs to (metrics and logs name it).
    pub fn service(&self) -> &'static str {
        self.shared.service
    }
}

impl Shared {
    fn current(&self) -> Arc<Loaded> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Says what is in use now, and sets the expiry gauge.
    fn loaded_now(&self, loaded: &Loaded) {
        let Some(leaf) = &loaded.leaf else {
            tracing::info!(
                service = self.service,
                certificate = self.role.label(),
                "TLS CAs loaded"
            );
            return;
        };
        let not_after = leaf
            .not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        metrics::gauge!(
            "oms_tls_certificate_expiry_timestamp_seconds",
            "service" => self.service,
            "certificate" => self.role.label()
        )
        .set(not_after.as_secs_f64());
        let days_left = leaf
            .not_after
            .duration_since(SystemTime::now())
            .map_or(0, |left| left.as_secs() / 86_400);
        tracing::info!(
            service = self.service,
            certificate = self.role.label(),
            serial = %leaf.serial,
            days_left,
            "TLS certificate loaded"
        );
    }
}

/// Reads the files every `interval` until the [`Tls`] is dropped; a change
/// that loads replaces what new connections get. One that does not is
/// given one more round (a writer that is not atomic — `cp` of the
/// certificate, then of its key — is caught halfway), then counted every
/// round and logged at ERROR when its error is new.
async fn follow(shared: Weak<Shared>, interval: Duration) {
    let mut last_error: Option<String> = None;
    let mut reported = false;
    loop {
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let current = shared.current();
        let built = shared.sources.read().and_then(|(files, digest)| {
            if digest == current.digest {
                return Ok(None);
            }
            build(shared.role, &shared.sources, &files, digest).map(Some)
        });
        let error = match built {
            Ok(None) => {
                last_error = None;
                continue;
            }
            Ok(Some(loaded)) => {
                last_error = None;
                let loaded = Arc::new(loaded);
                *shared
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&loaded);
                shared.loaded_now(&loaded);
                continue;
            }
            Err(error) => error.to_string(),
        };
        if last_error.as_ref() != Some(&error) {
            // First seen: perhaps a write in progress; next round tells.
            tracing::debug!(service = shared.service, %error, "changed TLS files do not load yet");
            last_error = Some(error);
            reported = false;
            continue;
        }
        metrics::counter!(
            "oms_tls_reload_failures_total",
            "service" => shared.service,
            "certificate" => shared.role.label()
        )
        .increment(1);
        if !reported {
            let kept = current.leaf.as_ref().map(|leaf| leaf.serial.clone());
            tracing::error!(
                service = shared.service,
                certificate = shared.role.label(),
                %error,
                kept_serial = kept.as_deref().unwrap_or("-"),
                "changed TLS files cannot be used; keeping the last good ones"
            );
            reported = true;
        }
    }
}

/// rustls with ring, TLS 1.3 and 1.2 only (rustls has no older ones).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn build(
    role: Role,
    sources: &Sources,
    files: &Files,
    digest: [u8; 32],
) -> Result<Loaded, TlsError> {
    let rustls_error = |what: &'static str| {
        move |e: rustls::Error| TlsError::Rustls {
            what,
            reason: e.to_string(),
        }
    };
    let identity = match &sources.identity {
        Some(identity) => {
            let chain = certificates(&identity.cert, files.get(&identity.cert))?;
            let key = PrivateKeyDer::from_pem_slice(files.get(&identity.key)).map_err(|e| {
                TlsError::Pem {
                    path: identity.key.clone(),
                    what: "private key",
                    reason: e.to_string(),
                }
            })?;
            let leaf = leaf(&identity.cert, &chain[0])?;
            Some((chain, key, leaf))
        }
        None => None,
    };
    let server = match &identity {
        Some((chain, key, _)) => {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(VERSIONS)
                .map_err(rustls_error("TLS versions"))?;
            let builder = match &sources.client_ca {
                Some(path) => {
                    let roots = roots(path, files.get(path))?;
                    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider(),
                    )
                    .build()
                    .map_err(|e| TlsError::Rustls {
                        what: "client CA",
                        reason: e.to_string(),
                    })?;
                    builder.with_client_cert_verifier(verifier)
                }
                None => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(rustls_error("certificate and key"))?;
            config.alpn_protocols = role.server_alpn();
            Some(Arc::new(config))
        }
        None => None,
    };
    let client = match &sources.ca {
        Some(path) => {
            let roots = roots(path, files.get(path))?;
            let builder = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(VERSIONS)
                .map_err(rustls_error("TLS versions"))?
                .with_root_certificates(roots);
            let mut config = match &identity {
                Some((chain, key, _)) => builder
                    .with_client_auth_cert(chain.clone(), key.clone_key())
                    .map_err(rustls_error("client certificate and key"))?,
                None => builder.with_no_client_auth(),
            };
            config.alpn_protocols = vec![b"h2".to_vec()];
            Some(Arc::new(config))
        }
        None => None,
    };
    Ok(Loaded {
        server,
        client,
        leaf: identity.map(|(_, _, leaf)| leaf),
        digest,
    })
}

/// A client that trusts exactly the first certificate in `cert_file` (its
/// signatures checked as usual): how a probe talks to the process beside
/// it, whichever CA, public or private, signed that certificate.
pub fn pinned_client(cert_file: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let pem = std::fs::read(cert_file).map_err(|source| TlsError::Read {
        path: cert_file.to_owned(),
        source,
    })?;
    let leaf = certificates(cert_file, &pem)?.swap_remove(0);
    let provider = provider();
    let verifier = Arc::new(Pinned {
        leaf,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::Rustls {
            what: "TLS versions",
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts the one certificate it holds.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        what: "certificate",
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE block".to_owned()));
    }
    Ok(chain)
}

fn roots(path: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, pem)? {
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn leaf(path: &Path, der: &CertificateDer<'_>) -> Result<Leaf, TlsError> {
    let cert = parse(der).map_err(|reason| TlsError::Certificate {
        path: path.to_owned(),
        reason,
    })?;
    Ok(cert)
}

/// The serial (hex, as `openssl x509 -serial` prints it) and expiry of a
/// DER certificate.
fn parse(der: &[u8]) -> Result<Leaf, String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let tbs = &cert.tbs_certificate;
    Ok(Leaf {
        serial: serial_hex(tbs.serial_number.as_bytes()),
        not_after: SystemTime::UNIX_EPOCH + tbs.validity.not_after.to_unix_duration(),
    })
}

/// The serial number of a DER certificate, in upper-case hex without
/// leading zero bytes (as `openssl x509 -serial` prints it).
pub fn serial_of(der: &[u8]) -> Result<String, String> {
    parse(der).map(|leaf| leaf.serial)
}

fn serial_hex(bytes: &[u8]) -> String {
    let trimmed = match bytes.iter().position(|b| *b != 0) {
        Some(first) => &bytes[first..],
        None => &bytes[bytes.len().saturating_sub(1)..],
    };
    trimmed.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_is_written_as_openssl_writes_it() {
        assert_eq!(serial_hex(&[0x00, 0x8a, 0x01]), "8A01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x7f]), "7F");
    }
}
