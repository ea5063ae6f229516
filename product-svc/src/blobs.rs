//! Blob storage for product images, through `object_store`: local files
//! under `OMS_DATA_DIR` by default, S3 or an S3-compatible server with
//! `OMS_BLOB_URL=s3://bucket/prefix`. Keys are relative
//! (`products/{id}/{sha256}.png`); the configured prefix is added here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer as _;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use oms_config::{ConfigError, Env, ExposeSecret as _, SecretString};

/// The variable naming the store.
pub const BLOB_URL_VAR: &str = "OMS_BLOB_URL";
/// The variable asking for presigned URLs instead of streamed bytes.
pub const PRESIGN_VAR: &str = "OMS_BLOB_PRESIGN";

/// Where blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// A directory (`file:///var/lib/oms/blobs`).
    Files(PathBuf),
    /// A bucket and a key prefix (`s3://bucket/prefix`).
    S3 {
        /// The bucket.
        bucket: String,
        /// Added in front of every key ("" for none).
        prefix: String,
    },
}

/// S3 settings from the standard AWS variables; unset ones fall back to
/// object_store's defaults.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<SecretString>,
    /// `AWS_REGION` (default `us-east-1`).
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: an S3-compatible server.
    pub endpoint: Option<String>,
    /// `AWS_ALLOW_HTTP=true`: a plain-HTTP server (local only).
    pub allow_http: bool,
    /// The rest of the standard credential chain, as set: a session
    /// token, web identity (EKS's IRSA: a token file and a role to
    /// assume), the ECS container endpoint, the instance metadata
    /// endpoint. With no static keys, object_store tries them in the SDKs'
    /// order and falls back to instance metadata.
    pub chain: Vec<(&'static str, SecretString)>,
}

/// The credential-chain variables passed on to object_store (which reads
/// each as its lower-case name).
pub const CREDENTIAL_CHAIN_VARS: &[&str] = &[
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_METADATA_ENDPOINT",
    "AWS_IMDSV1_FALLBACK",
];

/// How to open the store.
#[derive(Debug, Clone)]
pub struct BlobConfig {
    /// Where.
    pub location: BlobLocation,
    /// For S3.
    pub s3: S3Settings,
    /// Hand out presigned URLs (S3 only) instead of streaming bytes.
    pub presign: bool,
}

impl BlobConfig {
    /// Reads `OMS_BLOB_URL` (default: `blobs` under `OMS_DATA_DIR`),
    /// `OMS_BLOB_PRESIGN` and the AWS variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let location = match env.get(BLOB_URL_VAR)? {
            None => BlobLocation::Files(env.data_dir()?.join("blobs")),
            Some(raw) => parse_location(raw.trim())
                .map_err(|reason| ConfigError::new(BLOB_URL_VAR, reason))?,
        };
        let flag = |var: &str| env.flag(var, false);
        let presign = flag(PRESIGN_VAR)?;
        if presign && matches!(location, BlobLocation::Files(_)) {
            return Err(ConfigError::new(
                PRESIGN_VAR,
                format!("presigned URLs need an s3:// {BLOB_URL_VAR}"),
            ));
        }
        Ok(Self {
            location,
            s3: S3Settings {
                access_key_id: env.get("AWS_ACCESS_KEY_ID")?,
                secret_access_key: env.secret("AWS_SECRET_ACCESS_KEY")?,
                region: env.get("AWS_REGION")?,
                endpoint: env.get("AWS_ENDPOINT_URL")?,
                allow_http: flag("AWS_ALLOW_HTTP")?,
                chain: CREDENTIAL_CHAIN_VARS
                    .iter()
                    .filter_map(|var| match env.secret(var) {
                        Ok(Some(value)) => Some(Ok((*var, value))),
                        Ok(None) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<_, _>>()?,
            },
            presign,
        })
    }
}

/// The S3 client's settings: static keys when given, else the rest of
/// the credential chain as set, for object_store to pick from.
fn s3_builder(bucket: &str, s3: &S3Settings) -> Result<AmazonS3Builder, BlobError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(s3.region.as_deref().unwrap_or("us-east-1"))
        .with_allow_http(s3.allow_http);
    if let Some(key) = &s3.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &s3.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose_secret());
    }
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    for (var, value) in &s3.chain {
        let key = var
            .to_ascii_lowercase()
            .parse::<object_store::aws::AmazonS3ConfigKey>()
            .map_err(|e| BlobError::Open(format!("{var}: {e}")))?;
        builder = builder.with_config(key, value.expose_secret());
    }
    Ok(builder)
}

fn parse_location(raw: &str) -> Result<BlobLocation, String> {
    if let Some(path) = raw.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(format!("{raw:?}: a file:// URL needs an absolute path"));
        }
        return Ok(BlobLocation::Files(PathBuf::from(path)));
    }
    if let Some(rest) = raw.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(format!("{raw:?}: not an S3 bucket name"));
        }
        return Ok(BlobLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        });
    }
    Err(format!(
        "{raw:?} is neither file:///absolute/path nor s3://bucket/prefix"
    ))
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under that key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The store failed or could not be reached.
    #[error("blob store")]
    Store(#[source] object_store::Error),
    /// The store could not be opened.
    #[error("opening the blob store: {0}")]
    Open(String),
}

impl From<object_store::Error> for BlobError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => Self::NotFound(path),
            other => Self::Store(other),
        }
    }
}

/// One stored blob, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key, without the store's prefix.
    pub key: String,
    /// When it was last written.
    pub modified: DateTime<Utc>,
}

/// The open store.
#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Set for S3 with presigning on.
    signer: Option<Arc<AmazonS3>>,
    /// Prepended to every key.
    prefix: String,
}

impl Blobs {
    /// Opens (for files: creates) the store.
    pub fn open(config: &BlobConfig) -> Result<Self, BlobError> {
        match &config.location {
            BlobLocation::Files(dir) => {
                // Keys under the directory's absolute path; directories are
                // made by the first write, not at start-up (a service that
                // never stores an image leaves no trace).
                let dir = std::path::absolute(dir)
                    .map_err(|e| BlobError::Open(format!("{}: {e}", dir.display())))?;
                let prefix = dir
                    .to_str()
                    .ok_or_else(|| BlobError::Open(format!("{} is not UTF-8", dir.display())))?
                    .trim_matches('/')
                    .to_owned();
                Ok(Self {
                    store: Arc::new(LocalFileSystem::new()),
                    signer: None,
                    prefix,
                })
            }
            BlobLocation::S3 { bucket, prefix } => {
                // reqwest's rustls takes the process's provider: ring, as
                // everywhere else here.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let builder = s3_builder(bucket, &config.s3)?;
                let store = Arc::new(
                    builder
                        .build()
                        .map_err(|e| BlobError::Open(e.to_string()))?,
                );
                Ok(Self {
                    signer: config.presign.then(|| Arc::clone(&store)),
                    store,
                    prefix: prefix.clone(),
                })
            }
        }
    }

    fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Stores `bytes` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.store
            .put(&self.path(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// The bytes under `key`, as they arrive from the store.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let found = self.store.get(&self.path(key)).await?;
        Ok(found.into_stream().map_err(BlobError::from).boxed())
    }

    /// Deletes `key`; a missing key is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every blob under `key_prefix`, with when it was written.
    pub fn list(&self, key_prefix: &str) -> BoxStream<'static, Result<Listed, BlobError>> {
        let skip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        self.store
            .list(Some(&self.path(key_prefix)))
            .map(move |meta| {
                let meta = meta?;
                Ok(Listed {
                    key: meta
                        .location
                        .as_ref()
                        .get(skip..)
                        .unwrap_or_default()
                        .to_owned(),
                    modified: meta.last_modified,
                })
            })
            .boxed()
    }

    /// A URL that fetches `key` for `ttl` without credentials, when the
    /// store hands them out (S3 with `OMS_BLOB_PRESIGN=true`).
    pub async fn presigned(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let url = signer
            .signed_url(http::Method::GET, &self.path(key), ttl)
            .await?;
        Ok(Some(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_chain_reaches_the_s3_client() {
        use object_store::aws::AmazonS3ConfigKey as Key;
        // What EKS sets in a pod whose ServiceAccount names a role (IRSA).
        let env = Env::from_pairs([
            ("OMS_BLOB_URL", "s3://oms-images/images"),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            ),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/oms-product-svc",
            ),
            ("AWS_ROLE_SESSION_NAME", "product-svc"),
        ]);
        let config = BlobConfig::from_env(&env).unwrap();
        assert!(config.s3.access_key_id.is_none());
        let builder = s3_builder("oms-images", &config.s3).unwrap();
        assert_eq!(
            builder
                .get_config_value(&Key::WebIdentityTokenFile)
                .as_deref(),
            Some("/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
        );
        assert_eq!(
            builder.get_config_value(&Key::RoleArn).as_deref(),
            Some("arn:aws:iam::123456789012:role/oms-product-svc")
        );
        assert_eq!(
            builder.get_config_value(&Key::RoleSessionName).as_deref(),
            Some("product-svc")
        );
        // Every variable of the chain is one object_store knows.
        for var in CREDENTIAL_CHAIN_VARS {
            assert!(var.to_ascii_lowercase().parse::<Key>().is_ok(), "{var}");
        }
    }

    #[test]
    fn locations_parse_or_say_why_not() {
        assert_eq!(
            parse_location("file:///var/lib/oms/blobs"),
            Ok(BlobLocation::Files(PathBuf::from("/var/lib/oms/blobs")))
        );
        assert_eq!(
            parse_location("s3://oms-images/prod/"),
            Ok(BlobLocation::S3 {
                bucket: "oms-images".into(),
                prefix: "prod".into()
            })
        );
        assert_eq!(
            parse_location("s3://oms-images"),
            Ok(BlobLocation::S3 {
                bucket: "oms-images".into(),
                prefix: String::new()
            })
        );
        for bad in ["file://relative", "s3://UPPER", "s3://", "gs://b", "/tmp/x"] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
    }
}
