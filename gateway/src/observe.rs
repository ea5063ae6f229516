//! What every HTTP request leaves behind: request metrics by route
//! template (never the raw path, so clients cannot grow the series), one
//! log event, and a W3C trace that the backends continue.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The contract route that served a request, set by the handler that
/// matched it; requests without one are labelled by axum's match or
/// `unmatched`.
#[derive(Debug, Clone)]
pub(crate) struct RouteLabel(pub(crate) Arc<RouteMetrics>);

/// One contract route's series, registered once at start-up so a request
/// touches atomics, not the recorder's registry.
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    route: String,
    method: String,
    duration: metrics::Histogram,
    /// `http_server_requests_total` by status, registered at first use.
    by_status: RwLock<HashMap<u16, metrics::Counter>>,
}

impl RouteMetrics {
    /// The series of `method` on the route `template`.
    pub(crate) fn new(method: &http::Method, template: &str) -> Self {
        let (route, method) = (template.to_owned(), method.as_str().to_owned());
        Self {
            duration: metrics::histogram!(
                "http_server_request_duration_seconds",
                "route" => route.clone(),
                "method" => method.clone(),
            ),
            route,
            method,
            by_status: RwLock::default(),
        }
    }

    fn record(&self, status: u16, elapsed: std::time::Duration) {
        self.duration.record(elapsed.as_secs_f64());
        let known = self
            .by_status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&status)
            .cloned();
        let counter = known.unwrap_or_else(|| {
            let counter = metrics::counter!(
                "http_server_requests_total",
                "route" => self.route.clone(),
                "method" => self.method.clone(),
                "status" => status.to_string(),
            );
            self.by_status
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(status, counter.clone());
            counter
        });
        counter.increment(1);
    }
}

/// Middleware around every request.
pub(crate) async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    // The gateway's own routes (health, metrics, OAuth2, OpenAPI) carry
    // axum's match; contract routes are matched by the proxy, which labels
    // its response.
    let own_route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(peer)| peer.to_string());
    let trace = oms_telemetry::trace::CallTrace::start(request.headers_mut());
    // The fields every line logged in the request carries
    // (docs/logging.md); the dotted ones go to an OpenTelemetry exporter
    // only.
    let span = tracing::info_span!(
        "http",
        otel.name = %format!("{method} {path}"),
        otel.kind = "server",
        oms.service = "gateway",
        http.method = %method,
        http.target = %path,
        trace_id = trace.trace_id(),
        span_id = trace.span_id(),
    );
    // The backend calls the proxy makes are children of this span.
    trace.carry(&span, request.headers_mut());
    metrics::gauge!("http_server_in_flight_requests").increment(1.0);
    let response = next.run(request).instrument(span.clone()).await;
    metrics::gauge!("http_server_in_flight_requests").decrement(1.0);

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let route = match response.extensions().get::<RouteLabel>() {
        Some(RouteLabel(route)) => {
            route.record(status, elapsed);
            Cow::Borrowed(route.route.as_str())
        }
        None => {
            let route = own_route.unwrap_or_else(|| "unmatched".to_owned());
            metrics::counter!(
                "http_server_requests_total",
                "route" => route.clone(),
                "method" => method.clone(),
                "status" => status.to_string(),
            )
            .increment(1);
            metrics::histogram!(
                "http_server_request_duration_seconds",
                "route" => route.clone(),
                "method" => method.clone(),
            )
            .record(elapsed.as_secs_f64());
            Cow::Owned(route)
        }
    };
    let route = route.as_ref();

    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    // Microseconds are what a request's duration is worth showing.
    let ms = elapsed.as_micros() as f64 / 1000.0;
    let peer = peer.as_deref().unwrap_or("unknown");
    let _entered = span.enter();
    if status >= 500 || matches!(status, 413 | 429 | 431) {
        // A failure of ours, or a refusal for abuse: seen at WARN.
        tracing::warn!(target: "oms::http", method, route, status, ms, request_id, peer, "request finished");
    } else if matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
        tracing::debug!(target: "oms::http", method, route, status, ms, request_id, peer, "request finished");
    } else {
        tracing::info!(target: "oms::http", method, route, status, ms, request_id, peer, "request finished");
    }
    response
}
