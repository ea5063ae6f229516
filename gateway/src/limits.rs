//! How much a request may send. Headers: at most 8 KiB in all, refused
//! with 431 before anything is forwarded (a service never sees a header
//! list it would refuse, and one client's oversized header breaks no other
//! client's connection). Bodies: each route and method declares its limit
//! where the router declares it ([`body_limit`]): the token endpoint a few
//! KiB (it authenticates nobody until it has read the form), JSON routes
//! 1 MiB, image uploads 64 MiB, GET routes nothing;
//! enforced before a byte is read when the length is declared, while
//! reading when it streams ([`read_body`], with the route's [`BodyLimit`]).
//! A refusal is answered with the AIP-193 body, logged at WARN and counted.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{FromFnLayer, Next};
use axum::response::Response;
use futures_util::future::BoxFuture;
use tonic::Code;

/// The body of `POST /oauth2/token`: a form of a few short fields.
pub(crate) const TOKEN_FORM_MAX: usize = 8 * 1024;
/// The body of a JSON route.
pub(crate) const JSON_MAX: usize = 1024 * 1024;

/// A GET route's body: none.
pub(crate) const NO_BODY: usize = 0;

/// The most body bytes the matched route takes, as [`body_limit`] declared
/// it; its handler reads the body within it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

impl BodyLimit {
    /// The limit among a request's `extensions`; none declared takes no
    /// body (a route declared without one fails safe, and the router's
    /// test finds it).
    pub(crate) fn of(extensions: &axum::http::Extensions) -> usize {
        extensions.get::<Self>().map_or(NO_BODY, |limit| limit.0)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for BodyLimit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::of(&parts.extensions)))
    }
}

/// The check a route is declared with (a plain fn, so its layer's type
/// can be named).
type DeclaredCheck = fn(State<usize>, Request, Next) -> BoxFuture<'static, Response>;

/// The layer a route (or one method of it) is declared with: a declared
/// length over `max` is refused with 413 before a byte is read, and the
/// handler finds `max` as the request's [`BodyLimit`].
pub(crate) fn body_limit(max: usize) -> FromFnLayer<DeclaredCheck, usize, (State<usize>, Request)> {
    axum::middleware::from_fn_with_state(max, |State(max), mut request: Request, next: Next| {
        Box::pin(async move {
            let declared = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match declared {
                Some(length) if length > max as u64 => {
                    too_large(request.uri().path(), peer_of(&request).as_deref(), max)
                }
                _ => {
                    request.extensions_mut().insert(BodyLimit(max));
                    next.run(request).await
                }
            }
        }) as BoxFuture<'static, Response>
    })
}

/// Refuses a request whose headers are over
/// [`oms_runtime::server::MAX_FORWARDED_HEADERS`] (431), before anything is
/// routed or forwarded.
pub(crate) async fn refuse_large_headers(request: Request, next: Next) -> Response {
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > oms_runtime::server::MAX_FORWARDED_HEADERS {
        let peer = peer_of(&request);
        tracing::warn!(
            path = request.uri().path(),
            peer = peer.as_deref().unwrap_or("unknown"),
            header_bytes,
            "request headers over the limit refused"
        );
        metrics::counter!("http_server_refused_total", "reason" => "headers_too_large")
            .increment(1);
        return crate::error::body(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::InvalidArgument,
            &format!(
                "the request headers are larger than {} bytes",
                oms_runtime::server::MAX_FORWARDED_HEADERS
            ),
            Vec::new(),
        );
    }
    next.run(request).await
}

fn peer_of(request: &Request) -> Option<String> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.to_string())
}

/// The 413 answer, logged and counted; `path` and `peer` name who.
pub(crate) fn too_large(path: &str, peer: Option<&str>, limit: usize) -> Response {
    tracing::warn!(
        path,
        peer = peer.unwrap_or("unknown"),
        limit,
        "request body over the limit refused"
    );
    metrics::counter!("http_server_refused_total", "reason" => "body_too_large").increment(1);
    // RESOURCE_EXHAUSTED is AIP-193's status for 413.
    crate::error::body(
        StatusCode::PAYLOAD_TOO_LARGE,
        Code::ResourceExhausted,
        &format!("the request body is larger than {limit} bytes"),
        Vec::new(),
    )
}

/// Reads a whole request body of at most `limit` bytes. Each way it can
/// fail has its own answer: over the limit is 413; bytes that stopped
/// arriving are 408 (the transport's stall time); a client that went away
/// is counted as an abort, not as a refusal (nobody reads that answer).
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
    path: &str,
    peer: SocketAddr,
) -> Result<bytes::Bytes, Response> {
    let error = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => return Ok(bytes),
        Err(error) => error.into_inner(),
    };
    if find_cause::<http_body_util::LengthLimitError>(error.as_ref()).is_some() {
        return Err(too_large(path, Some(&peer.to_string()), limit));
    }
    if let Some(timeout) = find_cause::<crate::transport::BodyTimeout>(error.as_ref()) {
        // Counted and logged by the transport, once a second at most.
        return Err(crate::error::body(
            StatusCode::REQUEST_TIMEOUT,
            Code::DeadlineExceeded,
            &format!("no request body bytes arrived for {:?}", timeout.0),
            Vec::new(),
        ));
    }
    tracing::debug!(path, %peer, error = %error, "the client went away while sending its body");
    metrics::counter!("http_server_client_aborts_total").increment(1);
    Err(crate::error::body(
        StatusCode::BAD_REQUEST,
        Code::Cancelled,
        "the request body broke off",
        Vec::new(),
    ))
}

/// The first error of type `T` in `error`'s chain of causes.
fn find_cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower_service::Service as _;

    use super::*;

    /// What the gateway's own router answers `method path` declaring
    /// `length` body bytes (its backends are nowhere: only refusals made
    /// before a handler runs matter here).
    async fn status(method: &str, path: &str, length: usize) -> StatusCode {
        let config = crate::Config::from_env(&oms_config::Env::from_pairs([
            ("USER_SVC_ADDR", "127.0.0.1:1"),
            ("PRODUCT_SVC_ADDR", "127.0.0.1:1"),
            ("ORDER_SVC_ADDR", "127.0.0.1:1"),
        ]))
        .unwrap();
        let mut router = crate::router(&config).unwrap();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_LENGTH, length)
            .body(Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        router.call(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn each_route_and_method_has_the_limit_declared_with_it() {
        const KIB: usize = 1024;
        let too_large = StatusCode::PAYLOAD_TOO_LARGE;
        for (method, path, over) in [
            ("POST", "/oauth2/token", 8 * KIB + 1),
            ("GET", "/healthz", 1),
            ("GET", "/openapi.json", 1),
            ("POST", "/v1/orders", 1024 * KIB + 1),
            ("PUT", "/v1/products/p1/images", (64 << 20) + 1),
            ("GET", "/v1/products/p1/images/i1", 1),
            // The same path by another method is a JSON route.
            ("DELETE", "/v1/products/p1/images/i1", 1024 * KIB + 1),
            ("GET", "/v1/products/p1/images/i1/thumbnail", 1),
        ] {
            assert_eq!(
                status(method, path, over).await,
                too_large,
                "{method} {path}"
            );
            assert_ne!(
                status(method, path, over - 1).await,
                too_large,
                "{method} {path}"
            );
        }
    }
}
