//! The results: every run, the footprint of every service, and the ratios
//! the targets are stated in, printed as Markdown tables and written as
//! JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::BenchError;
use crate::cli::RunArgs;
use crate::driver::{Load, Stats};
use crate::mesh::Backend;
use crate::procfs;

/// The `via` of runs on the baseline mesh (`--baseline-bin-dir`).
pub const BASELINE_GRPC: &str = "grpc, baseline";
pub const BASELINE_GATEWAY: &str = "gateway, baseline";

/// The variant names the report's ratios look up.
pub const CEILING: &str = "empty unary RPC";
pub const DB_CEILING: &str = "the order's own saga and relays, no RPCs";

/// The variant the events ratios divide by.
pub const EVENTS_OFF: &str = "off";

/// The `via` of a run on the mesh with mutual TLS (the tls scenario);
/// its plaintext twin is `grpc`.
pub const GRPC_MTLS: &str = "grpc, mutual TLS";

/// `10^3`, `10^6`, or the number itself.
pub fn table_label(rows: u64) -> String {
    match rows {
        1_000 => "10^3".to_owned(),
        1_000_000 => "10^6".to_owned(),
        n => n.to_string(),
    }
}

/// The `via` of gateway runs over HTTP/2 (h2c, prior knowledge).
pub const GATEWAY_H2: &str = "gateway h2";

/// The `via` of the bare forwarder's runs (the gateway's ceiling), over
/// HTTP/1.1 and HTTP/2.
pub const FORWARDER: &str = "forwarder";
pub const FORWARDER_H2: &str = "forwarder h2";

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub scenario: String,
    pub variant: String,
    /// `grpc`, `gateway` (JSON/HTTP 1.1), `gateway h2` (JSON/HTTP/2) or
    /// `sea-orm`.
    pub via: String,
    pub backend: Option<Backend>,
    pub clients: usize,
    /// Orders in the table (ListOrders only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_rows: Option<u64>,
    #[serde(flatten)]
    pub stats: Stats,
}

impl RunRecord {
    /// A run of `scenario`/`variant` through `via`.
    pub fn new(
        scenario: &str,
        variant: &str,
        via: &str,
        backend: Option<Backend>,
        load: Load,
        stats: Stats,
    ) -> Self {
        Self {
            scenario: scenario.to_owned(),
            variant: variant.to_owned(),
            via: via.to_owned(),
            backend,
            clients: load.clients,
            table_rows: None,
            stats,
        }
    }
}

/// One service's start-up time and memory.
#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    pub backend: Backend,
    pub service: String,
    /// Spawn to the first SERVING health answer (gateway: `/readyz` 200).
    pub startup_ms: f64,
    /// Resident set right after start-up, before any load.
    pub idle_rss_mib: Option<f64>,
    /// Peak resident set over every run (VmHWM).
    pub peak_rss_mib: Option<f64>,
    /// Resident set after the runs.
    pub rss_after_mib: Option<f64>,
}

impl Footprint {
    /// Readings taken as soon as the service is up.
    pub fn at_start(backend: Backend, service: &str, startup: Duration, pid: Option<u32>) -> Self {
        Self {
            backend,
            service: service.to_owned(),
            startup_ms: startup.as_secs_f64() * 1000.0,
            idle_rss_mib: pid.and_then(procfs::rss_mib),
            peak_rss_mib: None,
            rss_after_mib: None,
        }
    }

    /// Readings taken after the load.
    pub fn after_load(&mut self, pid: Option<u32>) {
        self.peak_rss_mib = pid.and_then(procfs::peak_rss_mib);
        self.rss_after_mib = pid.and_then(procfs::rss_mib);
    }
}

/// A ratio of two runs of this report, with its target.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
    /// `>= 0.6` or `<= 1.5`.
    pub target: String,
    pub met: bool,
    /// What was divided by what.
    pub of: String,
}

/// Everything one invocation measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: serde_json::Value,
    pub command: Vec<String>,
    pub binaries: PathBuf,
    pub build: &'static str,
    pub load: Load,
    pub redis: bool,
    pub log_level: String,
    pub runs: Vec<RunRecord>,
    pub footprint: Vec<Footprint>,
    pub ratios: Vec<Ratio>,
    /// One entry per fault of the chaos scenario.
    pub chaos: Vec<crate::chaos::ChaosRecord>,
    /// One entry per step of the replicas scenario.
    pub replicas: Vec<crate::replicas::ReplicaRecord>,
    /// The soak scenario's samples and verdict.
    pub soak: Option<crate::soak::SoakRecord>,
    /// MariaDB's statements per order, real and ceiling (on MariaDB).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<crate::statements::StatementRecord>,
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for this invocation.
    pub fn new(load: Load, args: &RunArgs, binaries: &Path) -> Self {
        Self {
            machine: procfs::machine(),
            command: std::env::args().collect(),
            binaries: binaries.to_owned(),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            load,
            redis: args.redis_url.is_some(),
            log_level: args.log_level.clone(),
            runs: Vec::new(),
            footprint: Vec::new(),
            ratios: Vec::new(),
            chaos: Vec::new(),
            replicas: Vec::new(),
            soak: None,
            statements: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a run and prints its line.
    pub fn add(&mut self, run: RunRecord) {
        let s = &run.stats;
        eprintln!(
            "  {:<13} {:<26} {:<8} {:>9.0} ops/s  p50 {:>7.2}  p99 {:>7.2}  max {:>8.2} ms  errors {}",
            run.scenario,
            run.variant,
            run.via,
            s.throughput,
            s.p50_ms,
            s.p99_ms,
            s.max_ms,
            s.errors
        );
        if let Some(e) = &s.first_error {
            eprintln!("    first error: {e}");
        }
        self.runs.push(run);
    }

    /// A free-form line for the report.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn find(
        &self,
        scenario: &str,
        variant: &str,
        via: &str,
        backend: Option<Backend>,
    ) -> Option<&Stats> {
        self.runs
            .iter()
            .find(|r| {
                r.scenario == scenario
                    && r.variant == variant
                    && r.via == via
                    && r.backend == backend
            })
            .map(|r| &r.stats)
    }

    fn backends(&self) -> Vec<Backend> {
        let mut seen = Vec::new();
        for run in &self.runs {
            if let Some(b) = run.backend
                && !seen.contains(&b)
            {
                seen.push(b);
            }
        }
        seen
    }

    fn ratio(
        &mut self,
        name: String,
        of: String,
        value: Option<f64>,
        at_least: Option<f64>,
        at_most: Option<f64>,
    ) {
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return;
        };
        let (target, met) = match (at_least, at_most) {
            (Some(min), _) => (format!(">= {min}"), value >= min),
            (_, Some(max)) => (format!("<= {max}"), value <= max),
            _ => (String::new(), true),
        };
        self.ratios.push(Ratio {
            name,
            value,
            target,
            met,
            of,
        });
    }

    /// Works out the ratios the targets are stated in, from this run only.
    pub fn finish(&mut self) {
        let throughput = |s: Option<&Stats>| s.map(|s| s.throughput);
        let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        for backend in self.backends() {
            let on = Some(backend);
            let b = backend.name();
            // Measured beside this backend's GetProduct, or alone.
            let ceiling = throughput(
                self.find("ceiling", CEILING, "grpc", on)
                    .or_else(|| self.find("ceiling", CEILING, "grpc", None)),
            );
            let get = throughput(self.find("get-product", "cache warm", "grpc", on));
            let get_gw = throughput(self.find("get-product", "cache warm", "gateway", on));
            let get_gw_h2 = throughput(self.find("get-product", "cache warm", GATEWAY_H2, on));
            let forwarder = throughput(self.find("get-product", "cache warm", FORWARDER, on));
            let forwarder_h2 = throughput(self.find("get-product", "cache warm", FORWARDER_H2, on));
            let order = throughput(self.find("create-order", "1 line", "grpc", on));
            let order_gw = throughput(self.find("create-order", "1 line", "gateway", on));
            let db = throughput(self.find("db-ceiling", DB_CEILING, "sea-orm", on));
            self.ratio(
                format!("GetProduct / ceiling ({b})"),
                "ops/s, gRPC".into(),
                div(get, ceiling),
                Some(0.8),
                None,
            );
            // A gateway call contains a direct one: this ratio shows what
            // the hop costs, and is no longer a target.
            self.ratio(
                format!("gateway / direct gRPC, GetProduct ({b})"),
                "ops/s".into(),
                div(get_gw, get),
                None,
                None,
            );
            self.ratio(
                format!("gateway / forwarder, GetProduct HTTP/1.1 ({b})"),
                "ops/s".into(),
                div(get_gw, forwarder),
                Some(0.8),
                None,
            );
            self.ratio(
                format!("gateway / forwarder, GetProduct HTTP/2 ({b})"),
                "ops/s".into(),
                div(get_gw_h2, forwarder_h2),
                Some(0.8),
                None,
            );
            self.ratio(
                format!("gateway HTTP/2 / HTTP/1.1, GetProduct ({b})"),
                "ops/s".into(),
                div(get_gw_h2, get_gw),
                Some(1.0),
                None,
            );
            self.ratio(
                format!("gateway / direct gRPC, CreateOrder 1 line ({b})"),
                "ops/s".into(),
                div(order_gw, order),
                Some(0.6),
                None,
            );
            self.ratio(
                format!("CreateOrder 1 line / DB ceiling ({b})"),
                "ops/s, gRPC, events in process".into(),
                div(order, db),
                Some(0.6),
                None,
            );
            for (what, scenario, variant, via, baseline) in [
                (
                    "GetProduct gRPC",
                    "get-product",
                    "cache warm",
                    "grpc",
                    BASELINE_GRPC,
                ),
                (
                    "GetProduct gateway",
                    "get-product",
                    "cache warm",
                    "gateway",
                    BASELINE_GATEWAY,
                ),
                (
                    "CreateOrder 1 line gRPC",
                    "create-order",
                    "1 line",
                    "grpc",
                    BASELINE_GRPC,
                ),
            ] {
                let this = self.find(scenario, variant, via, on);
                let before = self.find(scenario, variant, baseline, on);
                let cpu = |s: Option<&Stats>| s.and_then(|s| s.cpu_ms_per_op);
                let (ops, cpu_ratio) = (
                    div(throughput(this), throughput(before)),
                    div(cpu(this), cpu(before)),
                );
                self.ratio(
                    format!("this build / baseline, {what} ({b})"),
                    "ops/s".into(),
                    ops,
                    None,
                    None,
                );
                self.ratio(
                    format!("this build / baseline, {what} ({b})"),
                    "CPU ms per op".into(),
                    cpu_ratio,
                    None,
                    None,
                );
            }
            let events_off = throughput(self.find("events", EVENTS_OFF, "grpc", on));
            for (variant, label) in [("in process", "in process"), ("kafka", "on Kafka")] {
                let with_events = throughput(self.find("events", variant, "grpc", on));
                self.ratio(
                    format!("CreateOrder 1 line, events {label} / events off ({b})"),
                    "ops/s, gRPC".into(),
                    div(with_events, events_off),
                    Some(0.9),
                    None,
                );
            }
            for (scenario, variant, what, target) in [
                ("tls", "GetProduct", "GetProduct", Some(0.85)),
                ("tls", "CreateOrder 1 line", "CreateOrder 1 line", None),
            ] {
                let of = |via| {
                    let stats = self.find(scenario, variant, via, on);
                    (throughput(stats), stats.and_then(|s| s.cpu_ms_per_op))
                };
                let ((plain_ops, plain_cpu), (sealed_ops, sealed_cpu)) =
                    (of("grpc"), of(GRPC_MTLS));
                self.ratio(
                    format!("{what}, mutual TLS / plaintext ({b})"),
                    "ops/s, gRPC".into(),
                    div(sealed_ops, plain_ops),
                    target,
                    None,
                );
                self.ratio(
                    format!("{what}, mutual TLS / plaintext, CPU ({b})"),
                    "CPU ms per op".into(),
                    div(sealed_cpu, plain_cpu),
                    None,
                    None,
                );
            }
            let pages: Vec<(u64, String)> = self
                .runs
                .iter()
                .filter(|r| r.scenario == "list-orders" && r.backend == on)
                .filter_map(|r| r.table_rows.map(|t| (t, r.variant.clone())))
                .collect();
            let (Some(small), Some(big)) = (
                pages.iter().map(|p| p.0).min(),
                pages.iter().map(|p| p.0).max(),
            ) else {
                continue;
            };
            if small == big {
                continue;
            }
            for page in [1, 100] {
                let p50 = |rows: u64| {
                    self.runs
                        .iter()
                        .find(|r| {
                            r.scenario == "list-orders"
                                && r.backend == on
                                && r.table_rows == Some(rows)
                                && r.variant.ends_with(&format!("page {page}"))
                        })
                        .map(|r| r.stats.p50_ms)
                };
                let name = format!(
                    "ListOrders page {page}: {} / {} orders ({b})",
                    table_label(big),
                    table_label(small)
                );
                self.ratio(
                    name,
                    "p50 latency".into(),
                    div(p50(big), p50(small)),
                    None,
                    Some(1.5),
                );
            }
        }
    }

    /// Prints the tables (Markdown, ready for BENCHMARKS.md) on stdout.
    pub fn print(&self) {
        println!(
            "\n| scenario | variant | via | backend | clients | ops/s | p50 ms | p90 ms | p99 ms | max ms | errors | CPU ms/op |"
        );
        println!("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.runs {
            let s = &r.stats;
            println!(
                "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
                r.scenario,
                r.variant,
                r.via,
                r.backend.map_or("-", Backend::name),
                r.clients,
                s.throughput,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.max_ms,
                s.errors,
                s.cpu_ms_per_op
                    .map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.3}"))
            );
        }
        let with_cpu: Vec<&RunRecord> = self
            .runs
            .iter()
            .filter(|r| !r.stats.cpu_ms_per_op_by_process.is_empty())
            .collect();
        if !with_cpu.is_empty() {
            println!(
                "\nCPU ms per operation by process (from /proc; the services' sum is the CPU ms/op above):\n"
            );
            println!("| scenario | variant | via | backend | by process |");
            println!("|---|---|---|---|---|");
            for r in with_cpu {
                let by: Vec<String> = r
                    .stats
                    .cpu_ms_per_op_by_process
                    .iter()
                    .map(|(name, ms)| format!("{name} {ms:.3}"))
                    .collect();
                println!(
                    "| {} | {} | {} | {} | {} |",
                    r.scenario,
                    r.variant,
                    r.via,
                    r.backend.map_or("-", Backend::name),
                    by.join(", ")
                );
            }
        }
        if !self.footprint.is_empty() {
            println!(
                "\n| backend | service | start to SERVING ms | idle RSS MiB | peak RSS MiB | RSS after MiB |"
            );
            println!("|---|---|---:|---:|---:|---:|");
            let mib = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
            for f in &self.footprint {
                println!(
                    "| {} | {} | {:.0} | {} | {} | {} |",
                    f.backend.name(),
                    f.service,
                    f.startup_ms,
                    mib(f.idle_rss_mib),
                    mib(f.peak_rss_mib),
                    mib(f.rss_after_mib)
                );
            }
        }
        if !self.ratios.is_empty() {
            println!("\n| ratio | of | value | target | met |");
            println!("|---|---|---:|---|---|");
            for r in &self.ratios {
                println!(
                    "| {} | {} | {:.2} | {} | {} |",
                    r.name,
                    r.of,
                    r.value,
                    if r.target.is_empty() { "-" } else { &r.target },
                    match (r.target.is_empty(), r.met) {
                        (true, _) => "-",
                        (false, true) => "yes",
                        (false, false) => "**no**",
                    }
                );
            }
        }
        if !self.chaos.is_empty() {
            println!("\n| fault | requests | errors | recovery s | settle s | invariants |");
            println!("|---|---:|---|---:|---:|---|");
            for c in &self.chaos {
                let errors: Vec<String> = c
                    .errors
                    .iter()
                    .map(|(code, n)| format!("{code} {n}"))
                    .collect();
                println!(
                    "| {} | {} | {} | {:.1} | {:.1} | {} |",
                    c.fault,
                    c.requests,
                    if errors.is_empty() {
                        "none".to_owned()
                    } else {
                        errors.join(", ")
                    },
                    c.recovery_s,
                    c.settle_s,
                    if c.invariants_held { "held" } else { "BROKEN" }
                );
            }
        }
        if !self.replicas.is_empty() {
            println!(
                "\n| replicas: step | shares | calls/s | errors | recovery s | invariants | missed |"
            );
            println!("|---|---|---:|---|---:|---|---|");
            for r in &self.replicas {
                let shares: Vec<String> = r
                    .shares
                    .iter()
                    .map(|(label, share)| format!("{label} {:.0} %", share * 100.0))
                    .collect();
                let errors: Vec<String> =
                    r.errors.iter().map(|(e, n)| format!("{e} {n}")).collect();
                let or_none = |v: Vec<String>| {
                    if v.is_empty() {
                        "none".to_owned()
                    } else {
                        v.join(", ")
                    }
                };
                println!(
                    "| {} | {} | {:.0} | {} | {} | {} | {} |",
                    r.step,
                    if shares.is_empty() {
                        "-".to_owned()
                    } else {
                        shares.join(", ")
                    },
                    r.throughput_per_s,
                    or_none(errors),
                    r.recovery_s.map_or("-".to_owned(), |s| format!("{s:.1}")),
                    if r.invariants_held { "held" } else { "BROKEN" },
                    or_none(r.missed.clone())
                );
            }
        }
        if let Some(soak) = &self.soak {
            println!("\n| soak: sample | of | RSS MiB | open files | connections |");
            println!("|---:|---|---:|---:|---:|");
            let cell = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
            for s in &soak.samples {
                println!(
                    "| {:.0} s | {} | {} | {} | {} |",
                    s.t_s,
                    s.of,
                    cell(s.rss_mib.map(|v| format!("{v:.1}"))),
                    cell(s.fds.map(|v| v.to_string())),
                    cell(s.connections.map(|v| v.to_string()))
                );
            }
            println!(
                "\nsoak: {:.0} s, {} requests, errors {:?}; grew past a bound: {}",
                soak.seconds,
                soak.requests,
                soak.errors,
                if soak.growth.is_empty() {
                    "nothing".to_owned()
                } else {
                    soak.growth.join("; ")
                }
            );
        }
        if !self.statements.is_empty() {
            let counters = crate::statements::COUNTERS;
            println!(
                "\n| MariaDB, per operation | ops | {} |",
                counters.join(" | ")
            );
            println!("|---|---:|{}", "---:|".repeat(counters.len()));
            for r in &self.statements {
                let cells: Vec<String> = counters
                    .iter()
                    .map(|c| {
                        r.per_op
                            .get(*c)
                            .map_or("-".to_owned(), |v| format!("{v:.2}"))
                    })
                    .collect();
                println!("| {} | {} | {} |", r.operation, r.ops, cells.join(" | "));
            }
        }
        for note in &self.notes {
            println!("\n{note}");
        }
    }

    /// Writes the JSON result file.
    pub fn write(&self, path: &Path) -> Result<(), BenchError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| BenchError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(path, json).map_err(|source| BenchError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn stats(throughput: f64, p50_ms: f64) -> Stats {
        Stats {
            ok: 100,
            errors: 0,
            first_error: None,
            seconds: 1.0,
            throughput,
            p50_ms,
            p90_ms: p50_ms,
            p99_ms: p50_ms,
            max_ms: p50_ms,
            mean_ms: p50_ms,
            cpu_ms_per_op: None,
            cpu_ms_per_op_by_process: std::collections::BTreeMap::new(),
        }
    }

    fn ratio<'r>(report: &'r Report, name: &str) -> &'r Ratio {
        report
            .ratios
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no ratio {name:?} in {:?}", report.ratios))
    }

    #[test]
    fn ratios_divide_the_right_runs_and_judge_the_targets() {
        let args = crate::cli::Cli::parse_from(["oms-bench"]).run;
        let load = Load {
            clients: 4,
            duration: Duration::from_secs(1),
            count: None,
            warmup: Duration::ZERO,
        };
        let mut report = Report::new(load, &args, Path::new("/bin"));
        let maria = Some(Backend::Mariadb);
        let run = |scenario: &str, variant: &str, via: &str, backend, s| {
            RunRecord::new(scenario, variant, via, backend, load, s)
        };
        report.add(run(
            "ceiling",
            "empty unary RPC",
            "grpc",
            maria,
            stats(1000.0, 1.0),
        ));
        report.add(run(
            "get-product",
            "cache warm",
            "grpc",
            maria,
            stats(850.0, 1.0),
        ));
        report.add(run(
            "get-product",
            "cache warm",
            "gateway",
            maria,
            stats(425.0, 1.0),
        ));
        report.add(run(
            "get-product",
            "cache warm",
            GATEWAY_H2,
            maria,
            stats(510.0, 1.0),
        ));
        report.add(run(
            "get-product",
            "cache warm",
            FORWARDER,
            maria,
            stats(500.0, 1.0),
        ));
        report.add(run(
            "get-product",
            "cache warm",
            FORWARDER_H2,
            maria,
            stats(680.0, 1.0),
        ));
        report.add(run(
            "create-order",
            "1 line",
            "grpc",
            maria,
            stats(300.0, 1.0),
        ));
        report.add(run(
            "create-order",
            "1 line",
            "gateway",
            maria,
            stats(240.0, 1.0),
        ));
        report.add(run(
            "db-ceiling",
            DB_CEILING,
            "sea-orm",
            maria,
            stats(500.0, 1.0),
        ));
        for (rows, page, p50) in [
            (1000, 1, 2.0),
            (1000, 100, 2.0),
            (1_000_000, 1, 2.5),
            (1_000_000, 100, 4.0),
        ] {
            let mut r = run(
                "list-orders",
                &format!("x orders, page {page}"),
                "grpc",
                maria,
                stats(1.0, p50),
            );
            r.table_rows = Some(rows);
            report.add(r);
        }
        report.finish();

        let get = ratio(&report, "GetProduct / ceiling (mariadb)");
        assert!((get.value - 0.85).abs() < 1e-9 && get.met);
        let h2 = ratio(&report, "gateway HTTP/2 / HTTP/1.1, GetProduct (mariadb)");
        assert!((h2.value - 1.2).abs() < 1e-9 && h2.met);
        // Shown, no longer a target.
        let gateway = ratio(&report, "gateway / direct gRPC, GetProduct (mariadb)");
        assert!((gateway.value - 0.5).abs() < 1e-9 && gateway.target.is_empty());
        let forwarder = ratio(
            &report,
            "gateway / forwarder, GetProduct HTTP/1.1 (mariadb)",
        );
        assert!((forwarder.value - 0.85).abs() < 1e-9 && forwarder.met);
        let forwarder_h2 = ratio(&report, "gateway / forwarder, GetProduct HTTP/2 (mariadb)");
        assert!((forwarder_h2.value - 0.75).abs() < 1e-9 && !forwarder_h2.met);
        let order = ratio(
            &report,
            "gateway / direct gRPC, CreateOrder 1 line (mariadb)",
        );
        assert!((order.value - 0.8).abs() < 1e-9 && order.met);
        let db = ratio(&report, "CreateOrder 1 line / DB ceiling (mariadb)");
        assert!((db.value - 0.6).abs() < 1e-9 && db.met);
        let first = ratio(&report, "ListOrders page 1: 10^6 / 10^3 orders (mariadb)");
        assert!((first.value - 1.25).abs() < 1e-9 && first.met);
        let deep = ratio(&report, "ListOrders page 100: 10^6 / 10^3 orders (mariadb)");
        assert!((deep.value - 2.0).abs() < 1e-9 && !deep.met);
    }
}
