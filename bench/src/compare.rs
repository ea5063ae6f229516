//! A result file beside an earlier one: every figure both measured, old
//! and new with the change in percent, so a regression shows at a glance
//! (`oms-bench --compare OLD.json`, or `oms-bench compare OLD NEW`).
//!
//! Works on the JSON, not on [`crate::report::Report`], so files written
//! by older versions of the bench (with fewer fields) still compare.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::BenchError;

/// Reads a result file.
pub fn load(path: &Path) -> Result<Value, BenchError> {
    let raw = std::fs::read(path)
        .map_err(|e| BenchError::Setup(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&raw).map_err(|e| {
        BenchError::Setup(format!(
            "{} is not an oms-bench result file: {e}",
            path.display()
        ))
    })
}

/// The change from `old` to `new` in percent, signed; `-` when either is
/// missing or the old one is zero.
fn change(old: Option<f64>, new: Option<f64>) -> String {
    match (old, new) {
        (Some(old), Some(new)) if old.abs() > f64::EPSILON => {
            format!("{:+.1} %", (new - old) / old * 100.0)
        }
        _ => "-".to_owned(),
    }
}

fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn text<'v>(value: &'v Value, field: &str) -> &'v str {
    value.get(field).and_then(Value::as_str).unwrap_or("-")
}

fn number(value: &Value, field: &str) -> Option<f64> {
    value.get(field).and_then(Value::as_f64)
}

fn list<'v>(value: &'v Value, field: &str) -> &'v [Value] {
    value
        .get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `| old | new | change ` for each of `fields` (name, decimals), closed
/// with `|`.
fn beside(old: &Value, new: &Value, fields: &[(&str, usize)]) -> String {
    let mut cells = String::new();
    for &(field, decimals) in fields {
        let (a, b) = (number(old, field), number(new, field));
        let _ = write!(
            cells,
            "| {} | {} | {} ",
            figure(a, decimals),
            figure(b, decimals),
            change(a, b)
        );
    }
    cells.push('|');
    cells
}

/// What identifies a run across files.
fn run_key(run: &Value) -> (String, String, String, String, Option<u64>) {
    (
        text(run, "scenario").to_owned(),
        text(run, "variant").to_owned(),
        text(run, "via").to_owned(),
        text(run, "backend").to_owned(),
        run.get("table_rows").and_then(Value::as_u64),
    )
}

/// Markdown tables of `new` beside `old`: runs (throughput, p50, p99, CPU
/// per operation), ratios, and footprint, each row that both files have.
/// Rows only one file has are counted under the tables.
pub fn tables(old: &Value, new: &Value) -> String {
    let mut out = String::new();
    let mut unmatched = 0usize;

    let _ = writeln!(
        out,
        "| scenario | variant | via | backend | ops/s old | ops/s new | change | p50 ms old | p50 ms new | change | p99 ms old | p99 ms new | change | CPU ms/op old | CPU ms/op new | change |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in list(new, "runs") {
        let key = run_key(run);
        let Some(before) = list(old, "runs").iter().find(|r| run_key(r) == key) else {
            unmatched += 1;
            continue;
        };
        let cells = beside(
            before,
            run,
            &[
                ("throughput", 0),
                ("p50_ms", 2),
                ("p99_ms", 2),
                ("cpu_ms_per_op", 3),
            ],
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} {cells}",
            key.0, key.1, key.2, key.3
        );
    }

    let ratios = list(new, "ratios");
    if !ratios.is_empty() {
        let _ = writeln!(
            out,
            "\n| ratio | of | old | new | change | target | met now |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---|---|");
        for ratio in ratios {
            let (name, of) = (text(ratio, "name"), text(ratio, "of"));
            let Some(before) = list(old, "ratios")
                .iter()
                .find(|r| text(r, "name") == name && text(r, "of") == of)
            else {
                unmatched += 1;
                continue;
            };
            let (a, b) = (number(before, "value"), number(ratio, "value"));
            let met = ratio.get("met").and_then(Value::as_bool).unwrap_or(false);
            let target = text(ratio, "target");
            let judged = match (target, met) {
                ("" | "-", _) => "-",
                (_, true) => "yes",
                (_, false) => "**no**",
            };
            let _ = writeln!(
                out,
                "| {name} | {of} | {} | {} | {} | {} | {judged} |",
                figure(a, 2),
                figure(b, 2),
                change(a, b),
                if target.is_empty() { "-" } else { target },
            );
        }
    }

    let footprint = list(new, "footprint");
    if !footprint.is_empty() {
        let _ = writeln!(
            out,
            "\n| backend | service | start ms old | start ms new | change | idle RSS MiB old | idle RSS MiB new | change | peak RSS MiB old | peak RSS MiB new | change |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for entry in footprint {
            let key = (text(entry, "backend"), text(entry, "service"));
            let Some(before) = list(old, "footprint")
                .iter()
                .find(|f| (text(f, "backend"), text(f, "service")) == key)
            else {
                unmatched += 1;
                continue;
            };
            let cells = beside(
                before,
                entry,
                &[("startup_ms", 0), ("idle_rss_mib", 1), ("peak_rss_mib", 1)],
            );
            let _ = writeln!(out, "| {} | {} {cells}", key.0, key.1);
        }
    }
    if unmatched > 0 {
        let _ = writeln!(
            out,
            "\n{unmatched} row(s) of the new results have no counterpart in the old file."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn figures_stand_beside_their_old_values_with_the_change() {
        let old = json!({
            "runs": [
                {"scenario": "get-product", "variant": "cache warm", "via": "grpc", "backend": "sqlite",
                 "throughput": 1000.0, "p50_ms": 2.0, "p99_ms": 8.0},
                {"scenario": "list-orders", "variant": "page 1", "via": "grpc", "backend": "sqlite",
                 "table_rows": 1000, "throughput": 50.0, "p50_ms": 1.0, "p99_ms": 1.0}
            ],
            "ratios": [{"name": "GetProduct / ceiling (sqlite)", "of": "ops/s, gRPC", "value": 0.5}],
            "footprint": [{"backend": "sqlite", "service": "gateway", "startup_ms": 10.0, "idle_rss_mib": 10.0, "peak_rss_mib": 12.0}]
        });
        let new = json!({
            "runs": [
                {"scenario": "get-product", "variant": "cache warm", "via": "grpc", "backend": "sqlite",
                 "throughput": 1250.0, "p50_ms": 1.0, "p99_ms": 8.0, "cpu_ms_per_op": 0.2},
                {"scenario": "list-orders", "variant": "page 1", "via": "grpc", "backend": "sqlite",
                 "table_rows": 1000000, "throughput": 40.0, "p50_ms": 1.0, "p99_ms": 1.0}
            ],
            "ratios": [{"name": "GetProduct / ceiling (sqlite)", "of": "ops/s, gRPC", "value": 0.8, "target": ">= 0.8", "met": true}],
            "footprint": [{"backend": "sqlite", "service": "gateway", "startup_ms": 12.0, "idle_rss_mib": 9.0, "peak_rss_mib": 12.0}]
        });
        let tables = tables(&old, &new);
        assert!(
            tables.contains(
                "| get-product | cache warm | grpc | sqlite | 1000 | 1250 | +25.0 % | 2.00 | 1.00 | -50.0 % | 8.00 | 8.00 | +0.0 % | - | 0.200 | - |"
            ),
            "{tables}"
        );
        assert!(
            tables.contains(
                "| GetProduct / ceiling (sqlite) | ops/s, gRPC | 0.50 | 0.80 | +60.0 % | >= 0.8 | yes |"
            ),
            "{tables}"
        );
        assert!(
            tables.contains("| sqlite | gateway | 10 | 12 | +20.0 % | 10.0 | 9.0 | -10.0 % | 12.0 | 12.0 | +0.0 % |"),
            "{tables}"
        );
        // Another table size is another run, not a change of this one.
        assert!(!tables.contains("| list-orders |"), "{tables}");
        assert!(
            tables.contains("1 row(s) of the new results have no counterpart"),
            "{tables}"
        );
    }
}
