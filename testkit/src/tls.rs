//! Certificate authorities of a test's own: a CA, and the certificates it
//! signs for names (as cert-manager would), written as PEM files in a
//! directory removed with it; and the `OMS_TLS_*` variables that point a
//! service at them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

use rustls::pki_types::pem::PemObject;

use crate::TempDir;

/// A CA and the directory its files are written to.
pub struct TestCa {
    dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
    ca_file: PathBuf,
    next_serial: AtomicU64,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// A certificate and key the CA signed, as files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM, PKCS#8).
    pub key: PathBuf,
    /// Its serial, as `openssl x509 -serial` prints it.
    pub serial: String,
}

fn must<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: {e}"),
    }
}

impl TestCa {
    /// A new CA named `name`, its certificate in `ca.pem`.
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new("oms_tls");
        let key = must("a CA key", KeyPair::generate());
        let mut params = must(
            "CA parameters",
            CertificateParams::new(Vec::<String>::new()),
        );
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = must("the CA certificate", params.self_signed(&key));
        let ca_file = dir.path().join("ca.pem");
        must("writing ca.pem", std::fs::write(&ca_file, cert.pem()));
        Self {
            issuer: Issuer::new(params, key),
            dir,
            ca_file,
            next_serial: AtomicU64::new(1),
        }
    }

    /// The CA's certificate file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Where its files are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A certificate for `names` (DNS names or IPs), valid for a year,
    /// written to `<stem>.crt` and `<stem>.key` (replacing them).
    pub fn issue(&self, stem: &str, names: &[&str]) -> Issued {
        self.issue_for(stem, names, Duration::from_secs(365 * 86_400))
    }

    /// As [`TestCa::issue`], valid for `validity` from an hour ago.
    pub fn issue_for(&self, stem: &str, names: &[&str], validity: Duration) -> Issued {
        let key = must("a key", KeyPair::generate());
        let mut params = must(
            "certificate parameters",
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()),
        );
        params.distinguished_name.push(DnType::CommonName, stem);
        // Serials that differ between issues, as a CA's must.
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed) << 16 | u64::from(fastish());
        params.serial_number = Some(SerialNumber::from(serial));
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + must("validity", time::Duration::try_from(validity));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = must("signing", params.signed_by(&key, &self.issuer));
        let issued = Issued {
            cert: self.dir.path().join(format!("{stem}.crt")),
            key: self.dir.path().join(format!("{stem}.key")),
            serial: must("the serial", oms_runtime::tls::serial_of(cert.der())),
        };
        must(
            "writing the key",
            write_replacing(&issued.key, &key.serialize_pem()),
        );
        must(
            "writing the certificate",
            write_replacing(&issued.cert, &cert.pem()),
        );
        issued
    }

    /// An HTTPS client (HTTP/1.1 by ALPN) that trusts this CA only.
    pub fn https_client(&self) -> std::sync::Arc<rustls::ClientConfig> {
        let pem = must("reading ca.pem", std::fs::read(&self.ca_file));
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            must("adding the CA", roots.add(must("the CA's PEM", cert)));
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = must(
            "TLS versions",
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions(),
        )
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        std::sync::Arc::new(config)
    }

    /// The variables that give a service `issued` and this CA for both
    /// ends of every link (mutual TLS).
    pub fn mesh_env(&self, issued: &Issued) -> Vec<(String, String)> {
        let path = |p: &Path| p.display().to_string();
        vec![
            ("OMS_TLS_CERT".to_owned(), path(&issued.cert)),
            ("OMS_TLS_KEY".to_owned(), path(&issued.key)),
            ("OMS_TLS_CA".to_owned(), path(&self.ca_file)),
            ("OMS_TLS_CLIENT_CA".to_owned(), path(&self.ca_file)),
        ]
    }
}

/// Replaces `path` at once, as Kubernetes does a mounted Secret's files: a
/// reader sees the old bytes or the new, never half.
fn write_replacing(path: &Path, contents: &str) -> std::io::Result<()> {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, contents)?;
    std::fs::rename(staged, path)
}

/// A few bits that differ between processes, so two runs' serials differ.
fn fastish() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u16::try_from(nanos & 0xffff).unwrap_or(0)
        ^ u16::try_from(std::process::id() & 0xffff).unwrap_or(0)
}
