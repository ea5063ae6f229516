//! How much a request may send. Headers: at most 8 KiB in all, refused
//! with 431 before anything is forwarded (a service never sees a header
//! list it would refuse, and one client's oversized header breaks no other
//! client's connection). Bodies, per route: the token endpoint a few KiB
//! (it authenticates nobody until it has read the form), JSON routes
//! 1 MiB, the gateway's own GET routes nothing; enforced before a byte is
//! read when the length is declared, while reading when it streams. A
//! refusal is answered with the AIP-193 body, logged at WARN and counted.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tonic::Code;

/// The body of `POST /oauth2/token`: a form of a few short fields.
pub(crate) const TOKEN_FORM_MAX: usize = 8 * 1024;
/// The body of a JSON route.
pub(crate) const JSON_MAX: usize = 1024 * 1024;

/// The most body bytes a request to `path` may carry.
pub(crate) fn limit_for(path: &str) -> usize {
    match path {
        "/oauth2/token" => TOKEN_FORM_MAX,
        "/healthz" | "/readyz" | "/metrics" | "/openapi.json" => 0,
        _ if is_image_upload(path) => crate::images::UPLOAD_MAX,
        _ => JSON_MAX,
    }
}

/// `/v1/products/{product_id}/images`: raw image bodies.
fn is_image_upload(path: &str) -> bool {
    path.strip_prefix("/v1/products/")
        .and_then(|rest| rest.strip_suffix("/images"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Refuses a request whose headers are over [`oms_runtime::server::MAX_FORWARDED_HEADERS`]
/// (431) or whose declared length is over its route's limit (413), before
/// the body is read or anything is forwarded.
pub(crate) async fn refuse_oversize(request: Request, next: Next) -> Response {
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
    let limit = limit_for(request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            too_large(request.uri().path(), peer_of(&request).as_deref(), limit)
        }
        _ => next.run(request).await,
    }
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
    use super::*;

    #[test]
    fn every_route_has_a_limit_suited_to_it() {
        assert_eq!(limit_for("/oauth2/token"), 8 * 1024);
        assert_eq!(limit_for("/v1/orders"), 1024 * 1024);
        assert_eq!(limit_for("/healthz"), 0);
        assert_eq!(limit_for("/v1/products/p1/images"), 64 << 20);
        assert_eq!(limit_for("/v1/products/p1/images/i1"), 1024 * 1024);
    }
}
