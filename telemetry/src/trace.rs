//! W3C trace context: continuing a caller's trace in a span, and the
//! `traceparent` a call carries on; spans leave the process only when an
//! exporter is set up ([`crate::init`]).

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Whether spans are exported (set once by [`crate::init`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// From now on, spans are exported: traces are continued, not passed on.
pub(crate) fn exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// A per-call header value (trace context, request id) kept out of the
/// HTTP/2 header compression table: each value is new, so indexing it
/// costs every call a table insert and evicts entries worth keeping (it
/// showed in the gateway's HTTP/2 profile). `None` if not a header value.
pub fn unique_header(value: &str) -> Option<http::HeaderValue> {
    let mut value = http::HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Makes `span` the continuation of the trace in `traceparent` (when spans
/// are exported), and returns the `traceparent` that the calls made under
/// `span` must carry: `span` as their parent. Without exporting, the
/// incoming header is passed on as it is (the trace id still joins logs).
pub fn continue_trace(span: &tracing::Span, traceparent: &str) -> String {
    if !EXPORTING.load(Ordering::Relaxed) {
        return traceparent.to_owned();
    }
    if let Some(remote) = parse(traceparent) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    format_traceparent(span).unwrap_or_else(|| traceparent.to_owned())
}

/// The `traceparent` naming the current span, for a call made outside the
/// request's own headers (e.g. a key fetch); `None` when not exporting.
pub fn current_traceparent() -> Option<String> {
    EXPORTING
        .load(Ordering::Relaxed)
        .then(|| format_traceparent(&tracing::Span::current()))
        .flatten()
}

fn format_traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags()
        )
    })
}

fn parse(traceparent: &str) -> Option<SpanContext> {
    let trace_id = trace_id_of(traceparent)?;
    let mut parts = traceparent.trim().split('-').skip(2);
    let span_id = parts.next()?;
    let flags = u8::from_str_radix(parts.next()?, 16).ok()?;
    Some(SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    ))
}

/// Continues the trace of the request's `traceparent` in `span`, and
/// rewrites the header to name `span`, so handlers that pass it on make
/// their callees its children.
pub fn carry_trace(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let Some(incoming) = headers.get("traceparent").and_then(|v| v.to_str().ok()) else {
        return;
    };
    let outgoing = continue_trace(span, incoming);
    if outgoing != incoming
        && let Some(value) = unique_header(&outgoing)
    {
        headers.insert("traceparent", value);
    }
}

/// The trace id of the request's W3C `traceparent`; a request without a
/// valid one starts a new trace, and the header is set so the handlers
/// pass the same trace on to the services they call.
pub fn ensure_traceparent(headers: &mut http::HeaderMap) -> String {
    if let Some(trace_id) = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id_of)
    {
        return trace_id.to_owned();
    }
    // Written into one buffer: this runs on every call that arrives
    // without a trace.
    let mut hex = [0u8; 32];
    let mut traceparent = String::with_capacity(55);
    traceparent.push_str("00-");
    traceparent.push_str(uuid::Uuid::new_v4().simple().encode_lower(&mut hex));
    traceparent.push('-');
    let span_id = uuid::Uuid::new_v4().simple().encode_lower(&mut hex);
    traceparent.push_str(span_id.get(..16).unwrap_or_default());
    traceparent.push_str("-01");
    let trace_id = traceparent.get(3..35).unwrap_or_default().to_owned();
    if let Some(value) = unique_header(&traceparent) {
        headers.insert("traceparent", value);
    }
    trace_id
}

/// The trace id of a version-00 `traceparent`, if it is well formed.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let all_zero = |s: &str| s.bytes().all(|b| b == b'0');
    (version == "00"
        && parts.next().is_none()
        && hex(trace_id, 32)
        && !all_zero(trace_id)
        && hex(parent_id, 16)
        && !all_zero(parent_id)
        && hex(flags, 2))
    .then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_are_continued() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id_of(good), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_request_without_a_trace_starts_one_and_carries_it_on() {
        let mut headers = http::HeaderMap::new();
        let trace_id = ensure_traceparent(&mut headers);
        let header = headers["traceparent"].to_str().unwrap().to_owned();
        assert_eq!(trace_id_of(&header), Some(trace_id.as_str()));
        // The same request seen again keeps its trace.
        assert_eq!(ensure_traceparent(&mut headers), trace_id);
    }
}
