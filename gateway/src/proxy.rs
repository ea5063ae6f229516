//! The one handler behind every contract route: match the path against
//! the route table, build the RPC's request from path, query and JSON body,
//! call the backend over its shared channel with the caller's headers and
//! deadline, and answer JSON.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;

use crate::codec::DynamicCodec;
use crate::error;
use crate::limits;
use crate::observe::RouteLabel;
use crate::routes::Route;
use crate::{Gateway, transcode};

/// Deadline of a call when the client gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest deadline a client may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a server stream (WatchOrder) stays open through the gateway:
/// what the service itself allows.
const MAX_STREAM: Duration = Duration::from_secs(600);

/// Headers passed on to the backend as gRPC metadata.
const FORWARDED: &[&str] = &["authorization", "traceparent", "tracestate", "x-request-id"];
/// Of those, the ones whose value is new on every request: kept out of
/// the HTTP/2 header compression table (`oms_telemetry::trace::unique_header`).
const PER_REQUEST: &[&str] = &["traceparent", "x-request-id"];

/// Passes the caller's forwarded headers on to `request` as gRPC
/// metadata, with the client's address as `x-forwarded-for` (the gateway is
/// the edge: the client is its peer) and, when configured, the proxy
/// secret that makes user-svc believe it.
pub(crate) fn forward<T>(
    gateway: &Gateway,
    request: &mut tonic::Request<T>,
    headers: &HeaderMap,
    peer: SocketAddr,
) {
    for name in FORWARDED {
        let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let value = if PER_REQUEST.contains(name) {
            oms_runtime::observe::unique_metadata(value)
        } else {
            value.parse().ok()
        };
        if let Some(value) = value {
            request.metadata_mut().insert(*name, value);
        }
    }
    if let Ok(value) = peer.ip().to_string().parse() {
        request.metadata_mut().insert("x-forwarded-for", value);
    }
    if let Some(secret) = &gateway.proxy_secret {
        request
            .metadata_mut()
            .insert(oms_config::PROXY_SECRET_HEADER, secret.clone());
    }
}

/// Serves a contract route, or 404/405 in the JSON error form.
pub(crate) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    if let Some(value) = oms_telemetry::trace::unique_header(&request_id) {
        parts.headers.insert("x-request-id", value);
    }

    let mut route_label = None;
    let mut response = match find(&gateway.routes, &parts.method, parts.uri.path()) {
        Found::Route(route, _) if !json_or_empty(route, &parts.headers) => {
            route_label = Some(RouteLabel(route.metrics.clone()));
            // Before the body is read: a form or text body is refused, so a
            // cross-site "simple" POST never reaches a service.
            error::body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidArgument,
                "the request body must be JSON (Content-Type: application/json)",
                Vec::new(),
            )
        }
        Found::Route(route, bound) => {
            route_label = Some(RouteLabel(route.metrics.clone()));
            let limit = limits::BodyLimit::of(&parts.extensions);
            match limits::read_body(body, limit, parts.uri.path(), peer).await {
                Ok(bytes) => {
                    call(
                        &gateway,
                        route,
                        &bound,
                        &parts.headers,
                        parts.uri.query(),
                        &bytes,
                        peer,
                    )
                    .await
                }
                Err(refused) => refused,
            }
        }
        Found::WrongMethod(allowed) => {
            let mut response = error::body(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                &format!("{} is not allowed on this path (see Allow)", parts.method),
                Vec::new(),
            );
            let allow = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        Found::Nothing => error::no_route(parts.method.clone()).await,
    };
    if let Some(value) = oms_telemetry::trace::unique_header(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    if let Some(label) = route_label {
        response.extensions_mut().insert(label);
    }
    response
}

/// Whether the request may go on to the body: a route that takes a body
/// gets JSON (`application/json` or a `+json` type) or nothing at all.
fn json_or_empty(route: &Route, headers: &HeaderMap) -> bool {
    if matches!(route.body, crate::routes::Body::None) {
        return true;
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match declared {
        Some(media) => media == "application/json" || media.ends_with("+json"),
        // No type: only with no body at all.
        None => {
            !headers.contains_key(header::TRANSFER_ENCODING)
                && headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .is_none_or(|len| len.trim() == "0")
        }
    }
}

enum Found<'a> {
    Route(&'a Route, Vec<(String, String)>),
    WrongMethod(Vec<Method>),
    Nothing,
}

fn find<'a>(routes: &'a [Route], method: &Method, path: &str) -> Found<'a> {
    let mut allowed = Vec::new();
    for route in routes {
        if let Some(bound) = route.template.matches(path) {
            if route.verb == *method {
                return Found::Route(route, bound);
            }
            if !allowed.contains(&route.verb) {
                allowed.push(route.verb.clone());
            }
        }
    }
    if allowed.is_empty() {
        Found::Nothing
    } else {
        Found::WrongMethod(allowed)
    }
}

/// The caller's deadline from `grpc-timeout` (e.g. `5S`, `1500m`), bounded;
/// a stream (Server-Sent Events, whose clients rarely set one) may stay
/// open as long as its RPC allows.
fn timeout(headers: &HeaderMap, streaming: bool) -> Duration {
    let (default, max) = if streaming {
        (MAX_STREAM, MAX_STREAM)
    } else {
        (DEFAULT_TIMEOUT, MAX_TIMEOUT)
    };
    headers
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(oms_core::time::parse_grpc_timeout)
        .unwrap_or(default)
        .min(max)
}

async fn call(
    gateway: &Gateway,
    route: &Route,
    bound: &[(String, String)],
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
    peer: SocketAddr,
) -> Response {
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let message = match transcode::request(route, bound, query, body, idempotency_key) {
        Ok(message) => message,
        Err(bad) => return error::bad_request(&bad.field, &bad.message),
    };
    let mut request = tonic::Request::new(message);
    forward(gateway, &mut request, headers, peer);
    let streaming = route.method.is_server_streaming();
    request.set_timeout(timeout(headers, streaming));

    let path = route.grpc_path.clone();
    let mut grpc = tonic::client::Grpc::new(gateway.backends.channel(route.backend));
    if let Err(e) = grpc.ready().await {
        return error::from_status(&tonic::Status::unavailable(format!(
            "backend not ready: {e}"
        )));
    }
    let codec = DynamicCodec;
    if streaming {
        return match grpc.server_streaming(request, path, codec).await {
            Ok(response) => server_sent_events(route.clone(), response.into_inner()),
            Err(status) => error::from_call_failure(&status),
        };
    }
    match grpc.unary(request, path, codec).await {
        Ok(response) => match transcode::response_json(route, response.get_ref()) {
            Ok(json) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json,
            )
                .into_response(),
            Err(e) => error::from_status(&tonic::Status::internal(e)),
        },
        Err(status) => error::from_call_failure(&status),
    }
}

/// A server stream as Server-Sent Events: one `data:` event per message,
/// in the JSON the unary routes answer; an error after the stream began
/// comes as an `error` event with the AIP-193 body, and ends it.
fn server_sent_events(route: Route, messages: tonic::Streaming<bytes::Bytes>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt as _;

    let events = messages
        .scan(false, move |failed, item| {
            if *failed {
                return std::future::ready(None);
            }
            let event = match item {
                Ok(message) => match transcode::response_json(&route, &message) {
                    Ok(json) => Event::default().data(String::from_utf8_lossy(&json)),
                    Err(e) => {
                        *failed = true;
                        error_event(&tonic::Status::internal(e))
                    }
                },
                Err(status) => {
                    *failed = true;
                    error_event(&status)
                }
            };
            std::future::ready(Some(Ok::<_, std::convert::Infallible>(event)))
        })
        .boxed();
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn error_event(status: &tonic::Status) -> axum::response::sse::Event {
    axum::response::sse::Event::default()
        .event("error")
        .data(error::stream_error(status).to_string())
}
