//! JSON log lines (`LOG_FORMAT=json`): one flat object per line, written
//! the way collectors read them. The schema is in docs/logging.md:
//! `time`, `level`, `target`, `msg`, then the event's fields, then the
//! fields of the spans it is in, innermost first, each key once (the
//! event's own value, else the innermost span's). Dotted keys (`otel.*`,
//! `http.method`, …) are OpenTelemetry attributes: written only when an
//! exporter is configured, which is the only reader that wants them.
//!
//! Produced for less than tracing-subscriber's JSON format: a span's
//! fields are written as JSON text once, when they are recorded
//! ([`JsonSpanFields`]), and copied into every line logged inside it; the
//! stock formatter builds a map per span and parses it back for every
//! line, twice (`span` and `spans`). That, and the line's length, were a
//! visible share of a cache-hit GetProduct under load (BENCHMARKS.md).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter; pair it with [`JsonSpanFields`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonLines;

/// A span's fields as `,"key":value` pairs; fields recorded later are
/// appended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut pairs = String::new();
        fields.record(&mut Fields::new(&mut pairs, None));
        writer.write_str(&pairs)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        fields.record(&mut Fields::new(&mut current.fields, None));
        Ok(())
    }
}

impl<S> FormatEvent<S, JsonSpanFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonSpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(384);
        line.push_str("{\"time\":\"");
        push_timestamp(&mut line, chrono::Utc::now());
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push_str("\",\"target\":");
        push_str(&mut line, event.metadata().target());
        // The keys on the line so far, each as `"key"`, so a span's field
        // of the same name is left out.
        let mut seen = String::with_capacity(128);
        event.record(&mut Fields::new(&mut line, Some(&mut seen)));
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonSpanFields>>() else {
                    continue;
                };
                for (key, pair) in pairs(&fields.fields) {
                    if !seen.contains(key) {
                        seen.push_str(key);
                        line.push_str(pair);
                    }
                }
            }
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// The `,"key":value` pairs of `text` as [`Fields`] wrote them, with each
/// key in its quotes. Values are JSON scalars: a string (escaped, so a
/// `"` inside is preceded by a backslash) or a bare word up to the next
/// comma. Every split is at an ASCII byte, so at a char boundary.
fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let bytes = rest.as_bytes();
        if bytes.first() != Some(&b',') {
            return None;
        }
        let key_end = closing_quote(bytes, 1)?;
        let value_start = key_end + 2;
        let value_end = if bytes.get(value_start) == Some(&b'"') {
            closing_quote(bytes, value_start)? + 1
        } else {
            bytes
                .iter()
                .skip(value_start)
                .position(|&b| b == b',')
                .map_or(bytes.len(), |at| value_start + at)
        };
        let key = rest.get(1..=key_end)?;
        let pair = rest.get(..value_end)?;
        rest = rest.get(value_end..).unwrap_or_default();
        Some((key, pair))
    })
}

/// The index of the quote closing the JSON string that opens at `open`.
fn closing_quote(bytes: &[u8], open: usize) -> Option<usize> {
    if bytes.get(open) != Some(&b'"') {
        return None;
    }
    let mut at = open + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return Some(at),
            _ => at += 1,
        }
    }
    None
}

/// Appends fields as `,"key":value` pairs (`message` as `msg`), noting
/// each key in `seen` when given; dotted keys only while exporting.
struct Fields<'a> {
    line: &'a mut String,
    seen: Option<&'a mut String>,
    exporting: bool,
}

impl<'a> Fields<'a> {
    fn new(line: &'a mut String, seen: Option<&'a mut String>) -> Self {
        Self {
            line,
            seen,
            exporting: crate::trace::is_exporting(),
        }
    }

    /// Writes `,"key":` and returns true, or false for a key that is
    /// left out.
    fn key(&mut self, field: &Field) -> bool {
        let name = match field.name() {
            "message" => "msg",
            name => name.trim_start_matches("r#"),
        };
        if name.contains('.') && !self.exporting {
            return false;
        }
        self.line.push(',');
        let at = self.line.len();
        push_str(self.line, name);
        if let Some(seen) = self.seen.as_deref_mut() {
            seen.push_str(self.line.get(at..).unwrap_or_default());
        }
        self.line.push(':');
        true
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.key(field) {
            return;
        }
        if value.is_finite() {
            let _ = write!(self.line, "{value}");
        } else {
            self.line.push_str("null");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !self.key(field) {
            return;
        }
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.key(field) {
            return;
        }
        let _ = write!(self.line, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if !self.key(field) {
            return;
        }
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.key(field) {
            return;
        }
        push_str(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.key(field) {
            return;
        }
        // Formatted straight into the line (`%` fields come here too), not
        // into a String of their own first.
        self.line.push('"');
        let _ = write!(Escaping(self.line), "{value:?}");
        self.line.push('"');
    }
}

/// `value` as a JSON string (RFC 8259 escaping).
fn push_str(out: &mut String, value: &str) {
    out.push('"');
    push_escaped(out, value);
    out.push('"');
}

/// Appends `value` escaped for a JSON string: runs that need no escape
/// (all of most values) are copied whole.
fn push_escaped(out: &mut String, value: &str) {
    let mut plain_from = 0;
    for (at, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `at` is an ASCII byte, so both slices end on char boundaries.
        out.push_str(value.get(plain_from..at).unwrap_or_default());
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        plain_from = at + 1;
    }
    out.push_str(value.get(plain_from..).unwrap_or_default());
}

/// A [`fmt::Write`] that escapes what is written into a JSON string.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

thread_local! {
    /// The second last formatted on this thread and its text up to the
    /// seconds: lines come many per second, and formatting a date with
    /// chrono's format strings was a visible share of each line.
    static SECOND: std::cell::RefCell<(i64, String)> =
        const { std::cell::RefCell::new((i64::MIN, String::new())) };
}

/// Appends `now` as RFC 3339 in UTC with microseconds
/// (`2026-12-04T17:08:55.123456Z`).
fn push_timestamp(out: &mut String, now: chrono::DateTime<chrono::Utc>) {
    let second = now.timestamp();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            text.clear();
            let _ = write!(text, "{}", now.format("%Y-%m-%dT%H:%M:%S"));
            *cached = second;
        }
        out.push_str(text);
    });
    // A leap second's nanoseconds run past 10^9: keep six digits.
    let mut micros = now.timestamp_subsec_micros().min(999_999);
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    out.push('.');
    out.extend(digits.iter().map(|&d| char::from(d)));
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `run` logs, as written.
    fn text(run: impl FnOnce()) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonSpanFields)
                .event_format(JsonLines)
                .with_writer(move || sink.clone()),
        );
        tracing::subscriber::with_default(subscriber, run);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    fn lines(run: impl FnOnce()) -> Vec<serde_json::Value> {
        text(run)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn a_line_is_flat_with_each_key_once_innermost_first() {
        let lines = lines(|| {
            let outer = tracing::info_span!(
                "rpc",
                otel.name = "oms.X/Get",
                rpc = "oms.X/Get",
                trace_id = "t1",
                peer = "outer",
                caller = tracing::field::Empty
            );
            let _outer = outer.enter();
            outer.record("caller", "user:u1");
            let inner = tracing::info_span!("db", peer = "inner", table = "orders");
            let _inner = inner.enter();
            tracing::info!(
                target: "oms::rpc",
                code = "OK",
                ms = 0.25,
                count = 3u64,
                delta = -2i64,
                ok = true,
                rpc = "oms.X/Get",
                odd = "quote \" back\\slash \n newline \u{1} ctl é, \"k\":1",
                "rpc finished"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = lines[0].as_object().unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["msg"], "rpc finished");
        assert_eq!(line["target"], "oms::rpc");
        assert_eq!(line["code"], "OK");
        assert_eq!(line["ms"], 0.25);
        assert_eq!(line["count"], 3);
        assert_eq!(line["delta"], -2);
        assert_eq!(line["ok"], true);
        assert_eq!(
            line["odd"],
            "quote \" back\\slash \n newline \u{1} ctl é, \"k\":1"
        );
        let time = line["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        // Both spans' fields, the inner one's value where both have one;
        // recorded after the span began, merged in.
        assert_eq!(line["trace_id"], "t1");
        assert_eq!(line["caller"], "user:u1");
        assert_eq!(line["table"], "orders");
        assert_eq!(line["peer"], "inner");
        assert_eq!(line["rpc"], "oms.X/Get");
        // No exporter: no OpenTelemetry attributes, no span names.
        let mut keys: Vec<&str> = line.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "caller", "code", "count", "delta", "level", "ms", "msg", "odd", "ok", "peer",
                "rpc", "table", "target", "time", "trace_id"
            ]
        );
    }

    #[test]
    fn each_key_is_written_once_even_when_event_and_span_share_it() {
        let text = text(|| {
            let span = tracing::info_span!("rpc", caller = "span's", rpc = "r");
            let _entered = span.enter();
            tracing::info!(caller = "event's", "x");
        });
        // serde_json keeps the last of duplicate keys: count them in the text.
        assert_eq!(text.matches("\"caller\"").count(), 1, "{text}");
        assert!(text.contains("\"caller\":\"event's\""), "{text}");
        assert_eq!(text.matches("\"rpc\"").count(), 1, "{text}");
    }

    #[test]
    fn display_and_debug_fields_are_escaped_like_strings() {
        let odd = "quote \" back\\slash \n newline \u{1} ctl é";
        let lines = lines(|| {
            let span = tracing::info_span!("rpc", path = %odd, after = 1);
            let _entered = span.enter();
            tracing::info!(shown = %odd, debugged = ?odd, "x");
        });
        assert_eq!(lines[0]["shown"], odd);
        assert_eq!(lines[0]["debugged"], format!("{odd:?}"));
        assert_eq!(lines[0]["path"], odd);
        assert_eq!(lines[0]["after"], 1);
    }

    #[test]
    fn span_pairs_split_at_the_right_commas() {
        let text = r#","a":"x,\"y\",z","b":-1.5,"c\"d":true,"e":"""#;
        let found: Vec<(&str, &str)> = pairs(text).collect();
        assert_eq!(
            found,
            [
                (r#""a""#, r#","a":"x,\"y\",z""#),
                (r#""b""#, r#","b":-1.5"#),
                (r#""c\"d""#, r#","c\"d":true"#),
                (r#""e""#, r#","e":"""#),
            ]
        );
        // Not ours: nothing, rather than a guess.
        assert_eq!(pairs("{").count(), 0);
        assert_eq!(pairs(r#","a":"unterminated"#).count(), 0);
    }

    #[test]
    fn timestamps_have_microseconds_and_follow_the_clock_across_seconds() {
        use chrono::TimeZone as _;
        let at = |s: i64, micros: u32| {
            let mut out = String::new();
            push_timestamp(
                &mut out,
                chrono::Utc
                    .timestamp_opt(s, micros * 1000)
                    .single()
                    .unwrap(),
            );
            out
        };
        assert_eq!(at(1_796_000_000, 7), "2026-11-30T00:53:20.000007Z");
        assert_eq!(at(1_796_000_000, 999_999), "2026-11-30T00:53:20.999999Z");
        // The next second on the same thread is not the cached one.
        assert_eq!(at(1_796_000_001, 120_000), "2026-11-30T00:53:21.120000Z");
        assert_eq!(at(1_796_000_000, 0), "2026-11-30T00:53:20.000000Z");
    }

    #[test]
    fn a_line_outside_any_span_has_no_span_keys() {
        let lines = lines(|| tracing::warn!(reason = "x", "refused"));
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["reason"], "x");
        let mut keys: Vec<&str> = lines[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["level", "msg", "reason", "target", "time"]);
    }
}
