//! Command-line options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::mesh::Backend;

/// Load generator for the OMS mesh. Starts the ceiling server and the four
/// services as processes, runs the scenarios, prints a table and writes a
/// JSON result file. See BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "oms-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Helper processes the bench starts itself.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the ceiling's empty unary RPC (prints its address, then serves).
    CeilingServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
    },
    /// Serve the bare forwarder in front of product-svc at PRODUCT (prints
    /// its address, then serves): the gateway's ceiling.
    Forwarder {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        #[arg(long)]
        product: SocketAddr,
    },
    /// Print the figures of NEW beside those of OLD (two result files) with
    /// the change in percent; runs nothing.
    Compare { old: PathBuf, new: PathBuf },
    /// Start the mesh of the first --backends with the bench's catalogue
    /// and customers, print where it listens (and a product URL and a
    /// customer token), and keep it up until Ctrl-C (SIGINT): for load
    /// tools of your own (h2load, oha, wrk, ghz) against the same setup.
    Mesh,
}

/// The scenarios (BENCHMARKS.md says what each one measures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Ceiling,
    GetProduct,
    CreateOrder,
    DbCeiling,
    ListOrders,
    Login,
    Footprint,
    /// CreateOrder with events in process (and on Kafka, with
    /// --kafka-brokers) against events off.
    Events,
    /// GetProduct and CreateOrder over gRPC on a mesh with mutual TLS on
    /// every link (the bench's own too) against the same plaintext.
    Tls,
    /// Faults under a mixed load on MariaDB and a Redis of its own, each
    /// followed by invariant checks on the databases; not in the default
    /// set (it needs MariaDB and redis-server).
    Chaos,
    /// The chaos scenario's load without faults for --soak-for, sampling
    /// memory, files and connections every 10 s; not in the default set.
    Soak,
    /// Two replicas of every service found by name through dnsmasq:
    /// shares, a replica killed, one added, a consumer killed, 2+2+2
    /// against 1+1+1; not in the default set (it needs MariaDB,
    /// redis-server and --dnsmasq).
    Replicas,
}

/// The scenarios run when --scenarios is not given.
fn default_scenarios() -> Vec<Scenario> {
    Scenario::value_variants()
        .iter()
        .copied()
        .filter(|s| !matches!(s, Scenario::Chaos | Scenario::Soak | Scenario::Replicas))
        .collect()
}

/// What to run and how hard.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenarios to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = default_scenarios())]
    pub scenarios: Vec<Scenario>,
    /// Storage of the mesh, comma-separated: sqlite, mariadb.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Sqlite])]
    pub backends: Vec<Backend>,
    /// MariaDB server for --backends mariadb, without a database name.
    #[arg(
        long,
        env = "OMS_BENCH_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306"
    )]
    pub mysql_url: String,
    /// Redis for the services (tokens, throttling, caches); in process if unset.
    #[arg(long, env = "OMS_BENCH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Kafka brokers for the events scenario's Kafka case (skipped if
    /// unset), and for the chaos scenario's mesh.
    #[arg(long, env = "OMS_BENCH_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// A tansu binary: the chaos scenario runs its own broker with it (and
    /// kills it as one of its faults); needs --s3-endpoint for the
    /// broker's storage.
    #[arg(long, env = "OMS_BENCH_TANSU", value_name = "PATH")]
    pub tansu: Option<PathBuf>,
    /// An S3-compatible server (e.g. `scripts/test-s3`'s moto) where the
    /// chaos scenario's broker keeps its topics, so they outlive a restart.
    #[arg(long, env = "OMS_BENCH_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// A dnsmasq binary: the replicas scenario's name server (Debian's
    /// dnsmasq-base; `scripts/ensure-tools dnsmasq`).
    #[arg(long, env = "OMS_BENCH_DNSMASQ", value_name = "PATH")]
    pub dnsmasq: Option<PathBuf>,
    /// Databases the bench creates (and drops) start with this.
    #[arg(long, default_value = "oms_bench_")]
    pub db_prefix: String,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// How long each run measures, e.g. 10s, 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Measure this many operations per run instead of --duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// Runs whose ratio is reported (ceiling and GetProduct, gRPC and
    /// gateway, CreateOrder and the DB ceiling) take turns in this many
    /// rounds, each a share of --duration.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Unrecorded warm-up before each run.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Products in the catalogue (orders pick distinct ones among them).
    #[arg(long, default_value_t = 1000)]
    pub products: usize,
    /// Orders in the table for the large ListOrders case.
    #[arg(long, default_value_t = 1_000_000)]
    pub big_table: u64,
    /// `RUST_LOG` of the services (their per-request log lines are part of the cost).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// `OMS_WORKER_THREADS` of every service (its runtime's worker
    /// threads); unset: the services' default, one per CPU.
    #[arg(long, value_name = "N")]
    pub service_threads: Option<usize>,
    /// Only the chaos faults whose name contains this (e.g. `kafka`,
    /// `kill -9 order-svc`), to reproduce one.
    #[arg(long, value_name = "TEXT")]
    pub chaos_only: Option<String>,
    /// How long the soak scenario runs (--smoke: 30 s).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub soak_for: Duration,
    /// Where the four service binaries are (default: next to oms-bench).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Another build's service binaries (e.g. copied from before a change):
    /// GetProduct and CreateOrder also run on a mesh of these, in turns with
    /// this build's, and the report gives this build / baseline.
    #[arg(long, value_name = "DIR")]
    pub baseline_bin_dir: Option<PathBuf>,
    /// The JSON result file.
    #[arg(long, default_value = "bench-results.json")]
    pub out: PathBuf,
    /// An earlier result file: after the run, print every figure beside its
    /// value there with the change in percent.
    #[arg(long, value_name = "OLD.json")]
    pub compare: Option<PathBuf>,
    /// Seconds-long runs of every scenario with tiny tables: checks that the
    /// bench works (CI), measures nothing worth reading.
    #[arg(long)]
    pub smoke: bool,
}

impl RunArgs {
    /// `--smoke` turns every knob down.
    pub fn effective(mut self) -> Self {
        if self.smoke {
            self.clients = self.clients.min(4);
            self.soak_for = self.soak_for.min(Duration::from_secs(30));
            self.duration = Duration::from_millis(300);
            self.count = None;
            self.warmup = Duration::ZERO;
            self.rounds = 1;
            self.products = self.products.min(20);
            self.big_table = self.big_table.min(3000);
        }
        self
    }
}

/// `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((raw, "s"), |i| raw.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 10s or 500ms"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{raw:?}: unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{raw:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
