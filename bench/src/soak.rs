//! The soak scenario: the chaos scenario's mesh and mixed load, without
//! faults, for `--soak-for` (10 min by hand, 30 s in CI), sampling every
//! 10 s each service's resident memory (the least of ten readings over
//! half a second: what calls in flight hold is not a leak) and open file
//! descriptors, the
//! connections on each service's MariaDB database and on Redis. It fails
//! if any of them grows past its bound from the first sample taken under
//! load to the last; the report has every sample, and an SVG of RSS over
//! time is written beside the result file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use serde::Serialize;

use crate::BenchError;
use crate::chaos::{Load, Peers, chaos_mesh};
use crate::mesh::Mesh;
use testkit::servers::redis::RedisServer;

/// Time between samples.
const EVERY: Duration = Duration::from_secs(10);
/// Growth allowed from the first sample under load to the last: memory
/// (the larger of a fixed amount and a share of the first reading), file
/// descriptors, and connections (pools fill up to their size, no further).
const RSS_GROWTH_MIB: f64 = 8.0;
const RSS_GROWTH_SHARE: f64 = 0.5;
const FD_GROWTH: i64 = 20;
const CONNECTION_GROWTH: i64 = 8;

/// One reading of one thing.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSample {
    /// Seconds since the load began.
    pub t_s: f64,
    /// A service, a database (`mariadb <name>`) or `redis`.
    pub of: String,
    /// Resident set, services only.
    pub rss_mib: Option<f64>,
    /// Open file descriptors, services only.
    pub fds: Option<i64>,
    /// Connections: on a service's database, or Redis's clients.
    pub connections: Option<i64>,
}

/// The samples and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct SoakRecord {
    /// How long the load ran.
    pub seconds: f64,
    /// Calls made, and those that failed, by operation and code.
    pub requests: u64,
    pub errors: std::collections::BTreeMap<String, u64>,
    pub samples: Vec<SoakSample>,
    /// What grew past its bound; empty when nothing did.
    pub growth: Vec<String>,
}

/// Runs the load for `duration`, sampling; the record, its plot written
/// to `plot`.
pub async fn run(
    args: &crate::cli::RunArgs,
    bin_dir: &Path,
    work: &Path,
    duration: Duration,
    plot: &Path,
) -> Result<SoakRecord, BenchError> {
    let peers = Peers::start(args, &work.join("soak-peers"), false).await?;
    let options = chaos_mesh(args, bin_dir, &work.join("soak"), &peers);
    eprintln!("== soak for {duration:?}: mesh on {}", peers.describe());
    let mesh = match Mesh::start(&options).await {
        Ok(mesh) => mesh,
        Err(e) => {
            peers.stop().await;
            return Err(e);
        }
    };
    let outcome = soak(args, &mesh, &peers.redis, duration).await;
    let stopped = mesh.stop().await;
    peers.stop().await;
    stopped?;
    let record = outcome?;
    std::fs::write(plot, crate::svg::rss_plot(&rss_series(&record.samples))).map_err(|source| {
        BenchError::Write {
            path: plot.to_owned(),
            source,
        }
    })?;
    eprintln!("RSS plot written to {}", plot.display());
    Ok(record)
}

async fn soak(
    args: &crate::cli::RunArgs,
    mesh: &Mesh,
    redis: &RedisServer,
    duration: Duration,
) -> Result<SoakRecord, BenchError> {
    let load = Arc::new(Load::prepare(mesh, args.clients.clamp(1, 16)).await?);
    let (server, names) = mesh
        .mariadb()
        .ok_or_else(|| BenchError::Setup("the soak mesh is not on MariaDB".into()))?;
    let db = sea_orm::Database::connect(&server)
        .await
        .map_err(|e| BenchError::Setup(format!("cannot reach MariaDB: {e}")))?;
    let running = load.start();
    let began = Instant::now();
    let mut samples = Vec::new();
    loop {
        // Paced sampling, not a wait for a condition.
        tokio::time::sleep(EVERY.min(duration.saturating_sub(began.elapsed()))).await;
        let t_s = began.elapsed().as_secs_f64();
        for service in mesh.services() {
            let pid = service.pid();
            samples.push(SoakSample {
                t_s,
                of: service.name.to_owned(),
                rss_mib: match pid {
                    Some(pid) => settled_rss_mib(pid).await,
                    None => None,
                },
                fds: pid.and_then(open_fds),
                connections: None,
            });
        }
        for (name, count) in database_connections(&db, &names).await? {
            samples.push(SoakSample {
                t_s,
                of: format!("mariadb {name}"),
                rss_mib: None,
                fds: None,
                connections: Some(count),
            });
        }
        samples.push(SoakSample {
            t_s,
            of: "redis".to_owned(),
            rss_mib: None,
            fds: None,
            connections: redis.connected_clients().await,
        });
        eprintln!("  soak: {t_s:.0} s sampled");
        if began.elapsed() >= duration {
            break;
        }
    }
    running.stop().await;
    let (requests, errors) = load.tally();
    Ok(SoakRecord {
        seconds: began.elapsed().as_secs_f64(),
        requests,
        errors,
        growth: growth(&samples),
        samples,
    })
}

/// Open file descriptors of `pid`.
fn open_fds(pid: u32) -> Option<i64> {
    oms_telemetry::process_stats::ProcessStats::of(pid).and_then(|p| i64::try_from(p.open_fds).ok())
}

/// Connections on each of `databases`, as MariaDB lists them.
async fn database_connections(
    db: &sea_orm::DatabaseConnection,
    databases: &[String],
) -> Result<Vec<(String, i64)>, BenchError> {
    let mut counts = Vec::new();
    for name in databases {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?",
                [name.clone().into()],
            ))
            .await
            .map_err(|e| BenchError::Setup(format!("cannot count connections: {e}")))?;
        let count = rows
            .first()
            .and_then(|r| r.try_get_by_index::<i64>(0).ok())
            .unwrap_or(0);
        counts.push((name.clone(), count));
    }
    Ok(counts)
}

/// Readings of one RSS sample, and the time between them.
const RSS_READINGS: usize = 10;
const RSS_READING_GAP: Duration = Duration::from_millis(50);

/// The least of [`RSS_READINGS`] readings of `pid`'s resident set. Memory
/// a call holds only while it runs (user-svc maps 19 MiB per argon2 hash
/// and unmaps it after, one per hashing thread) comes and goes between
/// readings; memory that leaks stays in every one.
async fn settled_rss_mib(pid: u32) -> Option<f64> {
    let mut least: Option<f64> = None;
    for _ in 0..RSS_READINGS {
        if let Some(rss) = crate::procfs::rss_mib(pid) {
            least = Some(least.map_or(rss, |l| l.min(rss)));
        }
        // Spaced readings, not a wait for a condition.
        tokio::time::sleep(RSS_READING_GAP).await;
    }
    least
}

/// Each series that grew past its bound from its first sample to its last.
pub fn growth(samples: &[SoakSample]) -> Vec<String> {
    let mut series: Vec<&str> = samples.iter().map(|s| s.of.as_str()).collect();
    series.dedup();
    series.sort_unstable();
    series.dedup();
    let mut grown = Vec::new();
    for of in series {
        let mine: Vec<&SoakSample> = samples.iter().filter(|s| s.of == of).collect();
        let (Some(first), Some(last)) = (mine.first(), mine.last()) else {
            continue;
        };
        if let (Some(a), Some(b)) = (first.rss_mib, last.rss_mib) {
            let bound = RSS_GROWTH_MIB.max(a * RSS_GROWTH_SHARE);
            if b - a > bound {
                grown.push(format!(
                    "{of}: RSS grew from {a:.1} to {b:.1} MiB (bound +{bound:.1})"
                ));
            }
        }
        if let (Some(a), Some(b)) = (first.fds, last.fds)
            && b - a > FD_GROWTH
        {
            grown.push(format!(
                "{of}: open files grew from {a} to {b} (bound +{FD_GROWTH})"
            ));
        }
        if let (Some(a), Some(b)) = (first.connections, last.connections)
            && b - a > CONNECTION_GROWTH
        {
            grown.push(format!(
                "{of}: connections grew from {a} to {b} (bound +{CONNECTION_GROWTH})"
            ));
        }
    }
    grown
}

/// The verdict on a soak: an error naming what grew.
pub fn verdict(record: Option<&SoakRecord>) -> Result<(), BenchError> {
    match record {
        Some(r) if !r.growth.is_empty() => {
            Err(BenchError::Failed(format!("soak: {}", r.growth.join("; "))))
        }
        _ => Ok(()),
    }
}

/// Each series' RSS samples as `(seconds, MiB)` points, for the plot.
fn rss_series(samples: &[SoakSample]) -> std::collections::BTreeMap<&str, Vec<(f64, f64)>> {
    let mut series: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    for s in samples {
        if let Some(rss) = s.rss_mib {
            series.entry(s.of.as_str()).or_default().push((s.t_s, rss));
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, of: &str, rss_mib: f64, fds: i64) -> SoakSample {
        SoakSample {
            t_s,
            of: of.to_owned(),
            rss_mib: Some(rss_mib),
            fds: Some(fds),
            connections: None,
        }
    }

    #[test]
    fn only_growth_past_a_bound_is_reported() {
        let steady = [
            sample(10.0, "order-svc", 20.0, 30),
            sample(20.0, "order-svc", 26.0, 40),
            sample(30.0, "order-svc", 27.0, 45),
        ];
        assert!(growth(&steady).is_empty(), "{:?}", growth(&steady));
        let leaking = [
            sample(10.0, "product-svc", 20.0, 30),
            sample(20.0, "product-svc", 35.0, 60),
            sample(30.0, "product-svc", 50.0, 90),
        ];
        let grown = growth(&leaking);
        assert_eq!(grown.len(), 2, "{grown:?}");
        assert!(grown[0].contains("RSS") && grown[1].contains("open files"));
    }
}
