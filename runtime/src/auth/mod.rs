//! Who is calling: access-token verification shared by every service.
//!
//! user-svc signs EdDSA JWTs; every service verifies them against the JWKS
//! user-svc publishes ([`jwks`]), cached and refetched on an unknown `kid`
//! ([`verifier`]). The [`layer`] runs in front of every gRPC service: a
//! valid bearer token becomes a [`Caller`] in the request's extensions, an
//! invalid one is refused with UNAUTHENTICATED before any handler runs, and
//! handlers ask for what they need with [`require_user`], [`require_admin`]
//! or [`require_scope`]. A user token issued before its account's role,
//! state or password changed is refused within seconds ([`revocations`]),
//! a list read with the service's own client credentials
//! ([`ClientCredentials`], [`ServiceToken`]).

pub mod claims;
mod client_credentials;
pub mod jwks;
pub mod layer;
pub mod revocations;
pub mod verifier;

use tonic::Code;

pub use claims::{
    AccessClaims, Caller, OIDC_SCOPES, Role, SERVICE_TOKEN_MAX_TTL_SECS, TOKEN_TYPE, USER_AUDIENCE,
    USER_TOKEN_MAX_TTL_SECS,
};
pub use client_credentials::{ClientCredentials, ServiceToken};
pub use jwks::{GrpcJwks, Jwk, JwksSource, user_svc_channel};
pub use layer::AuthLayer;
pub use revocations::{GrpcRevocations, Revocation, RevocationSource, Revocations};
pub use verifier::{Verifier, VerifierConfig, VerifyError};

use crate::error::{ApiError, Rejection};

/// user-svc's address cannot be dialled.
#[derive(Debug, thiserror::Error)]
#[error("USER_SVC_ADDR {addr}")]
pub struct BadUserSvcAddr {
    /// The address given.
    pub addr: String,
    /// Why it cannot be used.
    #[source]
    pub source: crate::channel::ChannelError,
}

/// The auth layer of a service that trusts user-svc at `user_svc_addr`
/// (its replicas dialled as `dial` says): tokens from `issuer`, service
/// tokens only for `service_audience`; the revocation list is read as
/// `credentials` (it is not public).
pub fn layer_for(
    user_svc_addr: &oms_config::PeerAddr,
    dial: &crate::channel::Dial,
    issuer: &str,
    service_audience: Option<&str>,
    credentials: ClientCredentials,
) -> Result<AuthLayer, BadUserSvcAddr> {
    let bad = |source| BadUserSvcAddr {
        addr: user_svc_addr.to_string(),
        source,
    };
    // One channel (one resolver, one connection per replica) for both
    // fetches.
    let channel = user_svc_channel(user_svc_addr, dial).map_err(bad)?;
    let jwks = GrpcJwks::on(channel.clone());
    let revocations = GrpcRevocations::on(channel, credentials);
    let verifier = Verifier::new(
        VerifierConfig::new(issuer, service_audience),
        std::sync::Arc::new(jwks),
    )
    .following(std::sync::Arc::new(revocations));
    Ok(AuthLayer::new(std::sync::Arc::new(verifier)))
}

/// The `ErrorInfo.domain` of authentication and authorization failures.
pub const AUTH_DOMAIN: &str = "auth.oms";

fn unauthenticated(message: &str) -> ApiError {
    Rejection::new(
        Code::Unauthenticated,
        AUTH_DOMAIN,
        "UNAUTHENTICATED",
        message,
    )
    .into()
}

fn denied(reason: &'static str, message: &str) -> ApiError {
    Rejection::new(Code::PermissionDenied, AUTH_DOMAIN, reason, message).into()
}

/// The verified caller of a request, if it carried a valid token.
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// A signed-in user (any role); a service token is refused.
pub fn require_user<T>(request: &tonic::Request<T>) -> Result<(String, Role), ApiError> {
    match caller(request) {
        Some(Caller::User { id, role, .. }) => Ok((id.clone(), *role)),
        Some(Caller::Service { .. }) => Err(denied(
            "USER_TOKEN_REQUIRED",
            "this call needs a user's access token, not a service token",
        )),
        None => Err(unauthenticated(
            "this call needs `authorization: Bearer <access token>`",
        )),
    }
}

/// A signed-in admin.
pub fn require_admin<T>(request: &tonic::Request<T>) -> Result<String, ApiError> {
    match require_user(request)? {
        (id, Role::Admin) => Ok(id),
        (_, Role::Customer) => Err(denied("ADMIN_REQUIRED", "this call is for admins only")),
    }
}

/// A service token granted `scope`; user tokens, even an admin's, are
/// refused.
pub fn require_scope<T>(request: &tonic::Request<T>, scope: &str) -> Result<String, ApiError> {
    match caller(request) {
        Some(Caller::Service { client_id, scopes }) if scopes.iter().any(|s| s == scope) => {
            Ok(client_id.clone())
        }
        Some(Caller::Service { .. }) => Err(Rejection::new(
            Code::PermissionDenied,
            AUTH_DOMAIN,
            "SCOPE_REQUIRED",
            format!("this call needs a service token with scope {scope}"),
        )
        .with("scope", scope)
        .into()),
        Some(Caller::User { .. }) => Err(denied(
            "SERVICE_TOKEN_REQUIRED",
            "this call is for services; user tokens are not accepted",
        )),
        None => Err(unauthenticated(
            "this call needs `authorization: Bearer <service token>`",
        )),
    }
}
