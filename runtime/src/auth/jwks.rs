//! JSON Web Keys (RFC 7517 / RFC 8037) and where verifiers get them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// Key ID (the RFC 7638 thumbprint).
    pub kid: String,
    /// Algorithm: `EdDSA`.
    pub alg: String,
    /// Use: `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// Where the current public keys come from.
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    /// Every key a verifier should accept now.
    async fn fetch(&self) -> Result<Vec<Jwk>, String>;
}

/// A fixed key set: user-svc verifies its own tokens with its own keys.
#[async_trait]
impl JwksSource for Vec<Jwk> {
    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        Ok(self.clone())
    }
}

/// user-svc's `AuthService/GetJwks`, over a shared lazily connected channel.
#[derive(Debug, Clone)]
pub struct GrpcJwks {
    channel: crate::channel::Balanced,
}

impl GrpcJwks {
    /// Keys from user-svc at `addr`, dialled as `dial` says (connects on
    /// first use).
    pub fn new(
        addr: &oms_config::PeerAddr,
        dial: &crate::channel::Dial,
    ) -> Result<Self, crate::channel::ChannelError> {
        Ok(Self::on(user_svc_channel(addr, dial)?))
    }

    /// Keys fetched over `channel` (a channel to user-svc other fetches
    /// share).
    pub fn on(channel: crate::channel::Balanced) -> Self {
        Self { channel }
    }
}

/// A lazily connected channel to user-svc's replicas for verifiers'
/// background fetches: short timeouts, since a request may be waiting on
/// the keys.
pub fn user_svc_channel(
    addr: &oms_config::PeerAddr,
    dial: &crate::channel::Dial,
) -> Result<crate::channel::Balanced, crate::channel::ChannelError> {
    crate::channel::balanced(
        addr,
        dial,
        crate::channel::ChannelOptions {
            connect_timeout: std::time::Duration::from_secs(2),
            call_timeout: Some(std::time::Duration::from_secs(3)),
        },
    )
}

#[async_trait]
impl JwksSource for GrpcJwks {
    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        use oms_proto::user::v1::{GetJwksRequest, auth_service_client::AuthServiceClient};
        let mut request = tonic::Request::new(GetJwksRequest {});
        // A fetch caused by a request belongs to that request's trace.
        if let Some(value) =
            oms_telemetry::trace::current_traceparent().and_then(|t| t.parse().ok())
        {
            request.metadata_mut().insert("traceparent", value);
        }
        let response = AuthServiceClient::new(self.channel.clone())
            .get_jwks(request)
            .await
            .map_err(|status| {
                format!(
                    "GetJwks from user-svc: {}: {}",
                    status.code(),
                    status.message()
                )
            })?;
        Ok(response
            .into_inner()
            .keys
            .into_iter()
            .map(|k| Jwk {
                kty: k.kty,
                crv: k.crv,
                x: k.x,
                kid: k.kid,
                alg: k.alg,
                use_: k.r#use,
            })
            .collect())
    }
}
