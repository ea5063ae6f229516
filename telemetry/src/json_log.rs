//! JSON log lines (`LOG_FORMAT=json`), written the way collectors read
//! them: one object per line with `timestamp`, `level`, the event's fields,
//! `target`, the current `span` and the `spans` it is in.
//!
//! The same keys as tracing-subscriber's own JSON format, produced for
//! less: a span's fields are written as JSON text once, when they are
//! recorded ([`JsonSpanFields`], straight into the text, not through a map
//! of values), and spliced into every line logged inside it as they are.
//! The stock formatters build a map for every span and parse the text back
//! into one for every line, twice (for `span` and `spans`); that was a
//! visible share of a cache-hit GetProduct under load (oms-bench, [perf]).

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

/// A span's fields as one JSON object, `{"key":value,...}`; fields
/// recorded later are appended to it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut pairs = String::new();
        fields.record(&mut Fields { line: &mut pairs });
        // `pairs` is `,"k":v,...`: the first comma goes.
        write!(writer, "{{{}}}", pairs.get(1..).unwrap_or_default())
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut pairs = String::new();
        fields.record(&mut Fields { line: &mut pairs });
        if pairs.is_empty() {
            return Ok(());
        }
        let object = &mut current.fields;
        match object.strip_suffix('}') {
            Some("{") => {
                object.truncate(1);
                object.push_str(pairs.get(1..).unwrap_or_default());
            }
            Some(_) => {
                object.pop();
                object.push_str(&pairs);
            }
            // Not ours (empty): start the object.
            None => {
                object.clear();
                object.push('{');
                object.push_str(pairs.get(1..).unwrap_or_default());
            }
        }
        object.push('}');
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
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\":\"");
        push_timestamp(&mut line, chrono::Utc::now());
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push('"');
        event.record(&mut Fields { line: &mut line });
        line.push_str(",\"target\":");
        push_str(&mut line, event.metadata().target());
        if let Some(scope) = ctx.event_scope() {
            let mut spans = String::new();
            let mut current = None;
            for span in scope.from_root() {
                let extensions = span.extensions();
                let fields = extensions
                    .get::<FormattedFields<JsonSpanFields>>()
                    .map_or("", |f| f.fields.as_str());
                let mut object = String::with_capacity(fields.len() + 24);
                splice_name(&mut object, fields, span.name());
                if !spans.is_empty() {
                    spans.push(',');
                }
                spans.push_str(&object);
                current = Some(object);
            }
            if let Some(current) = current {
                line.push_str(",\"span\":");
                line.push_str(&current);
                line.push_str(",\"spans\":[");
                line.push_str(&spans);
                line.push(']');
            }
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// `fields` (a JSON object as [`JsonSpanFields`] wrote it) with `"name"`
/// added last, as the stock formatter shows a span.
fn splice_name(out: &mut String, fields: &str, name: &str) {
    let inner = fields
        .trim()
        .strip_prefix('{')
        .and_then(|f| f.strip_suffix('}'))
        .map(str::trim)
        .unwrap_or_default();
    out.push('{');
    if !inner.is_empty() {
        out.push_str(inner);
        out.push(',');
    }
    out.push_str("\"name\":");
    push_str(out, name);
    out.push('}');
}

/// Appends the event's fields as `,"key":value` pairs.
struct Fields<'a> {
    line: &'a mut String,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        push_str(self.line, field.name().trim_start_matches("r#"));
        self.line.push(':');
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.line, "{value}");
        } else {
            self.line.push_str("null");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_str(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
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

    fn lines(run: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonSpanFields)
                .event_format(JsonLines)
                .with_writer(move || sink.clone()),
        );
        tracing::subscriber::with_default(subscriber, run);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn a_line_carries_its_fields_target_and_spans_as_valid_json() {
        let lines = lines(|| {
            let outer = tracing::info_span!(
                "rpc",
                rpc = "/oms.X/Get",
                trace_id = "t1",
                caller = tracing::field::Empty
            );
            let _outer = outer.enter();
            outer.record("caller", "user:u1");
            let inner = tracing::info_span!("db");
            let _inner = inner.enter();
            tracing::info!(
                target: "oms::rpc",
                code = "OK",
                latency_ms = 0.25,
                count = 3u64,
                delta = -2i64,
                ok = true,
                odd = "quote \" back\\slash \n newline \u{1} ctl é",
                "rpc finished"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "rpc finished");
        assert_eq!(line["target"], "oms::rpc");
        assert_eq!(line["code"], "OK");
        assert_eq!(line["latency_ms"], 0.25);
        assert_eq!(line["count"], 3);
        assert_eq!(line["delta"], -2);
        assert_eq!(line["ok"], true);
        assert_eq!(line["odd"], "quote \" back\\slash \n newline \u{1} ctl é");
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
        // The current span is the innermost; the list runs from the root.
        assert_eq!(line["span"], serde_json::json!({"name": "db"}));
        assert_eq!(line["spans"][0]["name"], "rpc");
        assert_eq!(line["spans"][0]["rpc"], "/oms.X/Get");
        assert_eq!(line["spans"][0]["trace_id"], "t1");
        // Recorded after the span began: merged into its fields.
        assert_eq!(line["spans"][0]["caller"], "user:u1");
        assert_eq!(line["spans"][1]["name"], "db");
    }

    #[test]
    fn display_and_debug_fields_are_escaped_like_strings() {
        let odd = "quote \" back\\slash \n newline \u{1} ctl é";
        let lines = lines(|| {
            let span = tracing::info_span!("rpc", path = %odd);
            let _entered = span.enter();
            tracing::info!(shown = %odd, debugged = ?odd, "x");
        });
        assert_eq!(lines[0]["shown"], odd);
        assert_eq!(lines[0]["debugged"], format!("{odd:?}"));
        assert_eq!(lines[0]["span"]["path"], odd);
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
        assert!(lines[0].get("span").is_none() && lines[0].get("spans").is_none());
    }
}
