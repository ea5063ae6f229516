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

/// Whether spans are exported.
pub(crate) fn is_exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
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

/// Makes `span` the continuation of the trace in `traceparent`, and
/// returns the `traceparent` that the calls made under `span` must carry:
/// `span` as their parent. Only while spans are exported.
fn continue_trace(span: &tracing::Span, traceparent: &str) -> String {
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

/// One served call's place in its trace: the trace it belongs to and its
/// own span id, as its log lines name them.
#[derive(Debug, Clone)]
pub struct CallTrace {
    trace_id: String,
    /// Chosen here when spans are not exported; else the exported span's,
    /// known once the span exists ([`CallTrace::carry`]).
    span_id: Option<String>,
}

impl CallTrace {
    /// Reads the request's W3C `traceparent`, or starts a trace when it has
    /// no valid one. Without an exporter the call gets a span id of its own
    /// here, and the header is rewritten to name it, so the calls made
    /// under it (which pass the header on) are its children.
    pub fn start(headers: &mut http::HeaderMap) -> Self {
        let incoming = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|t| Some((trace_id_of(t)?, t.get(53..55)?)));
        let exporting = EXPORTING.load(Ordering::Relaxed);
        // Built in one buffer, in hex by hand: this runs on every call,
        // and `format!` was 2 % of a cache-hit GetProduct's CPU.
        let mut traceparent = [0u8; 55];
        traceparent[..3].copy_from_slice(b"00-");
        traceparent[35] = b'-';
        traceparent[52] = b'-';
        match incoming {
            Some((trace_id, _)) if exporting => {
                // The exported span continues it in `carry`.
                return Self {
                    trace_id: trace_id.to_owned(),
                    span_id: None,
                };
            }
            Some((trace_id, flags)) => {
                traceparent[3..35].copy_from_slice(trace_id.as_bytes());
                traceparent[53..].copy_from_slice(flags.as_bytes());
            }
            None => {
                hex(
                    nonzero(fastrand::u128(..)).to_be_bytes(),
                    &mut traceparent[3..35],
                );
                traceparent[53..].copy_from_slice(b"01");
            }
        }
        hex(
            nonzero(fastrand::u64(..)).to_be_bytes(),
            &mut traceparent[36..52],
        );
        // Hex digits and dashes only: always UTF-8.
        let traceparent = std::str::from_utf8(&traceparent).unwrap_or_default();
        if let Some(value) = unique_header(traceparent) {
            headers.insert("traceparent", value);
        }
        Self {
            trace_id: traceparent.get(3..35).unwrap_or_default().to_owned(),
            span_id: (!exporting).then(|| traceparent.get(36..52).unwrap_or_default().to_owned()),
        }
    }

    /// The trace's id (32 hex digits).
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The call's span id (16 hex digits), when chosen by [`Self::start`].
    pub fn span_id(&self) -> Option<&str> {
        self.span_id.as_deref()
    }

    /// With an exporter: continues the trace of `headers` in `span`,
    /// records the exported span's id as `span`'s `span_id` field, and
    /// rewrites the header to name it. Without one, does nothing
    /// ([`Self::start`] did it).
    pub fn carry(&self, span: &tracing::Span, headers: &mut http::HeaderMap) {
        if self.span_id.is_some() || !EXPORTING.load(Ordering::Relaxed) {
            return;
        }
        let Some(incoming) = headers.get("traceparent").and_then(|v| v.to_str().ok()) else {
            return;
        };
        let outgoing = continue_trace(span, incoming);
        if let Some(span_id) = outgoing.get(36..52) {
            span.record("span_id", span_id);
        }
        if outgoing != incoming
            && let Some(value) = unique_header(&outgoing)
        {
            headers.insert("traceparent", value);
        }
    }
}

/// Writes `bytes` as lower-case hex into `out` (twice as long).
fn hex<const N: usize>(bytes: [u8; N], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// W3C trace context forbids all-zero ids.
fn nonzero<T: PartialEq + From<u8>>(id: T) -> T {
    if id == T::from(0) { T::from(1) } else { id }
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
    fn a_request_without_a_trace_starts_one_and_names_the_call_as_parent() {
        let mut headers = http::HeaderMap::new();
        let first = CallTrace::start(&mut headers);
        let header = headers["traceparent"].to_str().unwrap().to_owned();
        assert_eq!(trace_id_of(&header), Some(first.trace_id()));
        let span_id = first
            .span_id()
            .expect("not exporting: a span id of its own");
        assert_eq!(header, format!("00-{}-{span_id}-01", first.trace_id()));
        // The callee continues the trace under a span id of its own.
        let second = CallTrace::start(&mut headers);
        assert_eq!(second.trace_id(), first.trace_id());
        assert_ne!(second.span_id(), first.span_id());
        assert_eq!(second.span_id().map(str::len), Some(16));
    }

    #[test]
    fn a_callers_trace_and_flags_are_kept() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ),
        );
        let call = CallTrace::start(&mut headers);
        assert_eq!(call.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let header = headers["traceparent"].to_str().unwrap();
        assert_eq!(
            header,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-00",
                call.span_id().unwrap()
            )
        );
        assert_ne!(call.span_id(), Some("00f067aa0ba902b7"));
    }
}
