//! Ed25519 signing keys: loaded from env or a key file (generated once for
//! the embedded default), identified by their RFC 7638 thumbprint, and
//! published as a JWKS.

use oms_config::ExposeSecret as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::EncodingKey;
use oms_runtime::auth::Jwk;
use sha2::{Digest, Sha256};

use crate::config::KeySource;

/// Why the keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A configured key is not an Ed25519 private key.
    #[error(
        "OMS_JWT_SIGNING_KEYS: key #{index} is not an Ed25519 private key (PKCS#8 PEM, or base64 of PKCS#8 DER or a 32-byte seed)"
    )]
    Unreadable {
        /// 1-based position in the list.
        index: usize,
    },
    /// The list is empty.
    #[error("OMS_JWT_SIGNING_KEYS: no key given")]
    Empty,
    /// The key file could not be read or written.
    #[error("signing key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The OS random source failed.
    #[error("cannot generate a key: {0}")]
    Random(String),
}

/// The key that signs and every key that is published.
#[derive(Clone)]
pub struct SigningKeys {
    kid: String,
    encoding: EncodingKey,
    jwks: Vec<Jwk>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Loads (or, for a key file that doesn't exist yet, generates) the keys.
    pub fn load(source: &KeySource) -> Result<Self, KeyError> {
        let keys = match source {
            KeySource::Env(entries) => entries
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    parse_key(entry.expose_secret()).ok_or(KeyError::Unreadable { index: i + 1 })
                })
                .collect::<Result<Vec<_>, _>>()?,
            KeySource::File(path) => vec![load_or_generate(path)?],
        };
        Self::from_keys(&keys)
    }

    /// The first key signs; all are published.
    pub fn from_keys(keys: &[SigningKey]) -> Result<Self, KeyError> {
        let active = keys.first().ok_or(KeyError::Empty)?;
        let der = active
            .to_pkcs8_der()
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self {
            kid: thumbprint(active),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwks: keys.iter().map(jwk).collect(),
        })
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing key.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public keys, as GetJwks returns them.
    pub fn jwks(&self) -> &[Jwk] {
        &self.jwks
    }

    /// The public key published as `kid`, to verify what user-svc signed
    /// for itself (sign-in sessions, ID token hints).
    pub fn decoding_key(&self, kid: &str) -> Option<jsonwebtoken::DecodingKey> {
        self.jwks
            .iter()
            .find(|k| k.kid == kid)
            .and_then(|k| jsonwebtoken::DecodingKey::from_ed_components(&k.x).ok())
    }
}

/// A new random key.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A key as PKCS#8 PEM (what `user-svc keygen` prints).
pub fn to_pem(key: &SigningKey) -> Result<String, KeyError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| KeyError::Random(e.to_string()))
}

fn parse_key(entry: &str) -> Option<SigningKey> {
    let entry = entry.trim();
    if entry.starts_with("-----BEGIN") {
        return SigningKey::from_pkcs8_pem(entry).ok();
    }
    let bytes = STANDARD
        .decode(entry)
        .or_else(|_| URL_SAFE_NO_PAD.decode(entry))
        .ok()?;
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(seed) => Some(SigningKey::from_bytes(&seed)),
        Err(_) => SigningKey::from_pkcs8_der(&bytes).ok(),
    }
}

fn load_or_generate(path: &Path) -> Result<SigningKey, KeyError> {
    let file_error = |source| KeyError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
            file_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not an Ed25519 PKCS#8 PEM key",
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate()?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(file_error)?;
            }
            write_private(path, &to_pem(&key)?).map_err(file_error)?;
            tracing::info!(path = %path.display(), "generated a new JWT signing key");
            Ok(key)
        }
        Err(e) => Err(file_error(e)),
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

fn public_x(key: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())
}

/// RFC 7638 JWK thumbprint: SHA-256 of the required members in
/// lexicographic order, base64url.
fn thumbprint(key: &SigningKey) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, public_x(key));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn jwk(key: &SigningKey) -> Jwk {
    Jwk {
        kty: "OKP".to_owned(),
        crv: "Ed25519".to_owned(),
        x: public_x(key),
        kid: thumbprint(key),
        alg: "EdDSA".to_owned(),
        use_: "sig".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_config::SecretString;

    #[test]
    fn keys_load_from_pem_seed_and_der_with_the_first_signing() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        let entries = vec![
            to_pem(&a).unwrap(),
            STANDARD.encode(b.to_bytes()),
            STANDARD.encode(a.to_pkcs8_der().unwrap().as_bytes()),
        ];
        let entries = entries.into_iter().map(SecretString::from).collect();
        let keys = SigningKeys::load(&KeySource::Env(entries)).unwrap();
        assert_eq!(keys.kid(), thumbprint(&a));
        assert_eq!(keys.jwks().len(), 3);
        assert!(
            keys.jwks()
                .iter()
                .all(|k| k.kty == "OKP" && k.alg == "EdDSA")
        );
        assert_eq!(keys.jwks()[1].kid, thumbprint(&b));
        assert!(matches!(
            SigningKeys::load(&KeySource::Env(vec![SecretString::from("garbage")])),
            Err(KeyError::Unreadable { index: 1 })
        ));
    }

    #[test]
    fn the_key_file_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(testkit::unique_name("oms_keys"));
        let path = dir.join("key.pem");
        let first = SigningKeys::load(&KeySource::File(path.clone())).unwrap();
        let second = SigningKeys::load(&KeySource::File(path.clone())).unwrap();
        assert_eq!(first.kid(), second.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_thumbprint_matches_rfc_8037_appendix_a3() {
        // RFC 8037 A.1 private key; A.3 gives its thumbprint.
        let seed = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let key = SigningKey::from_bytes(&seed.try_into().unwrap());
        assert_eq!(
            public_x(&key),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(
            thumbprint(&key),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
