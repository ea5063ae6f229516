//! A tower layer in front of every gRPC service: a bearer token, when
//! present, is verified and becomes a [`Caller`] in the request extensions
//! (tonic hands them to handlers); an invalid one is answered with
//! UNAUTHENTICATED before any handler runs. Requests without a token pass
//! through, and each handler decides whether it needs one.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tower_layer::Layer;
use tower_service::Service;

use super::verifier::Verifier;
use crate::error::ApiError;

/// Adds token verification to a service.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
}

impl AuthLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Authenticate<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            match bearer_token(request.headers()) {
                Ok(None) => {}
                Ok(Some(token)) => match verifier.verify(&token).await {
                    Ok(caller) => {
                        tracing::Span::current().record("caller", tracing::field::display(&caller));
                        if let Some(slot) = request.extensions().get::<crate::observe::CallerSlot>()
                        {
                            slot.set(&caller);
                        }
                        request.extensions_mut().insert(caller);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "refused an access token");
                        return Ok(tonic::Status::from(ApiError::from(e)).into_http());
                    }
                },
                Err(e) => return Ok(tonic::Status::from(e).into_http()),
            }
            inner.call(request).await
        })
    }
}

/// The token of an `authorization: Bearer <token>` header, if any.
fn bearer_token(headers: &http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::from(crate::error::Rejection::new(
            tonic::Code::Unauthenticated,
            super::AUTH_DOMAIN,
            "INVALID_TOKEN",
            "the authorization header must be `Bearer <access token>`",
        ))
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token.to_owned()))
}
