//! The load loop: N concurrent clients issue one operation after another
//! for a fixed time or count; latencies go into HDR histograms (one per
//! client, merged at the end, so recording takes no lock).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::procfs::{CpuProbe, CpuUsed};

/// One operation of client `client`, its `seq`-th: `Err` counts as an error.
pub type Op = Arc<dyn Fn(usize, u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Wraps an async closure as an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |client, seq| Box::pin(f(client, seq)))
}

/// How hard and how long to push.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Load {
    /// Concurrent clients, each with one request in flight.
    pub clients: usize,
    /// How long to measure (after the warm-up), unless `count` is set.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Measure exactly this many operations instead of a duration.
    pub count: Option<u64>,
    /// Unrecorded time first: connections, caches and pools fill up.
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What one run measured. Latencies in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// CPU time per successful operation, summed over the processes that
    /// serve it (the mesh, or the ceiling server), from /proc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_op: Option<f64>,
    /// The same per process, with the bench's own client and a local
    /// database server beside the services.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cpu_ms_per_op_by_process: std::collections::BTreeMap<String, f64>,
}

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

struct Shared {
    phase: AtomicU8,
    ok: AtomicU64,
    errors: AtomicU64,
    micros: AtomicU64,
    tickets: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// What one run recorded, before it is summarized; runs of the same
/// operation in several rounds merge into one [`Stats`].
pub struct Measured {
    histogram: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    cpu: Option<CpuUsed>,
}

impl Measured {
    /// Merges rounds of one operation: counts and time add up, the
    /// histograms merge, so percentiles cover every round.
    pub fn merge(rounds: Vec<Measured>) -> Stats {
        let mut histogram = new_histogram();
        let (mut ok, mut errors, mut seconds, mut first_error) = (0, 0, 0.0, None);
        let mut cpu: Option<CpuUsed> = None;
        for round in rounds {
            if let Some(used) = &round.cpu {
                cpu.get_or_insert_default().add(used);
            }
            // Same bounds everywhere, so adding cannot fail.
            let _ = histogram.add(&round.histogram);
            ok += round.ok;
            errors += round.errors;
            seconds += round.seconds;
            first_error = first_error.or(round.first_error);
        }
        let ms = |v: u64| v as f64 / 1000.0;
        let per_op = |seconds: f64| seconds * 1000.0 / (ok.max(1) as f64);
        Stats {
            cpu_ms_per_op: cpu.as_ref().map(|c| per_op(c.services_s)),
            cpu_ms_per_op_by_process: cpu
                .map(|c| {
                    c.by_process
                        .into_iter()
                        .map(|(name, s)| (name, per_op(s)))
                        .collect()
                })
                .unwrap_or_default(),
            ok,
            errors,
            first_error,
            seconds,
            throughput: ok as f64 / seconds.max(1e-9),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }
}

/// Runs each of `ops` for `rounds` rounds, taking turns (A B C A B C ...),
/// each round a `rounds`-th of the load's time and warm-up. Operations
/// whose ratio matters are measured this way, so a noisy neighbour or a
/// slow minute on a shared machine weighs on both sides alike.
pub async fn alternate(
    ops: Vec<(String, Op, Option<CpuProbe>)>,
    load: Load,
    rounds: u32,
) -> Vec<Stats> {
    let rounds = rounds.max(1);
    let share = Load {
        duration: load.duration / rounds,
        count: load.count.map(|c| c.div_ceil(u64::from(rounds))),
        warmup: load.warmup / rounds,
        ..load
    };
    let mut measured: Vec<Vec<Measured>> = ops.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for ((label, op, probe), runs) in ops.iter().zip(measured.iter_mut()) {
            let label = if rounds > 1 {
                format!("{label} [{round}/{rounds}]")
            } else {
                label.clone()
            };
            runs.push(drive(&label, share, op.clone(), probe.as_ref()).await);
        }
    }
    measured.into_iter().map(Measured::merge).collect()
}

/// Runs `op` under `load`, printing a progress line every second to
/// stderr, and returns what the measured operations recorded (with the
/// CPU time `probe`'s processes used meanwhile).
pub async fn drive(label: &str, load: Load, op: Op, probe: Option<&CpuProbe>) -> Measured {
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(if load.warmup.is_zero() {
            MEASURING
        } else {
            WARMING
        }),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        micros: AtomicU64::new(0),
        tickets: AtomicU64::new(load.count.unwrap_or(u64::MAX)),
        first_error: Mutex::new(None),
    });
    let mut workers = tokio::task::JoinSet::new();
    for client in 0..load.clients.max(1) {
        let (shared, op) = (shared.clone(), op.clone());
        workers.spawn(async move { worker(client, &shared, &op).await });
    }

    if !load.warmup.is_zero() {
        tokio::time::sleep(load.warmup).await;
        shared.phase.store(MEASURING, Ordering::SeqCst);
    }
    let started = Instant::now();
    let cpu_before = probe.map(CpuProbe::sample);
    let progress = tokio::spawn(progress(label.to_owned(), shared.clone(), started, load));
    if load.count.is_none() {
        tokio::time::sleep(load.duration).await;
        shared.phase.store(STOPPED, Ordering::SeqCst);
    }
    let mut histogram = new_histogram();
    while let Some(joined) = workers.join_next().await {
        if let Ok(h) = joined {
            let _ = histogram.add(h);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = probe
        .zip(cpu_before)
        .map(|(probe, before)| probe.used(&before, &probe.sample()));
    progress.abort();
    finish_progress_line();
    Measured {
        histogram,
        ok: shared.ok.load(Ordering::SeqCst),
        errors: shared.errors.load(Ordering::SeqCst),
        first_error: shared.first_error.lock().map_or(None, |e| e.clone()),
        seconds,
        cpu,
    }
}

/// [`drive`] once and summarize.
pub async fn run_once(label: &str, load: Load, op: Op, probe: Option<&CpuProbe>) -> Stats {
    Measured::merge(vec![drive(label, load, op, probe).await])
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits; the bounds are valid constants.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant, valid histogram bounds")
}

async fn worker(client: usize, shared: &Shared, op: &Op) -> Histogram<u64> {
    let mut histogram = new_histogram();
    let mut seq = 0u64;
    loop {
        let phase = shared.phase.load(Ordering::SeqCst);
        if phase == STOPPED {
            break;
        }
        let measured = phase == MEASURING;
        if measured
            && shared
                .tickets
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| t.checked_sub(1))
                .is_err()
        {
            break;
        }
        let began = Instant::now();
        let outcome = op(client, seq).await;
        let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        seq += 1;
        if !measured {
            continue;
        }
        match outcome {
            Ok(()) => {
                histogram.saturating_record(micros.max(1));
                shared.ok.fetch_add(1, Ordering::Relaxed);
                shared.micros.fetch_add(micros, Ordering::Relaxed);
            }
            Err(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = shared.first_error.lock() {
                    first.get_or_insert(e);
                }
            }
        }
    }
    histogram
}

async fn progress(label: String, shared: Arc<Shared>, started: Instant, load: Load) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_ok, mut last_at) = (0u64, Instant::now());
    loop {
        tick.tick().await;
        let ok = shared.ok.load(Ordering::Relaxed);
        let errors = shared.errors.load(Ordering::Relaxed);
        let micros = shared.micros.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (ok - last_ok) as f64 / now.duration_since(last_at).as_secs_f64();
        let mean = if ok == 0 {
            0.0
        } else {
            micros as f64 / ok as f64 / 1000.0
        };
        let of = load.count.map_or_else(
            || {
                format!(
                    "{:.0}/{:.0} s",
                    started.elapsed().as_secs_f64(),
                    load.duration.as_secs_f64()
                )
            },
            |count| format!("{ok}/{count}"),
        );
        progress_line(&format!(
            "  {label:<40} {of:>12}  {ok:>9} ok {errors:>5} err  {rate:>9.0}/s  mean {mean:.2} ms"
        ));
        (last_ok, last_at) = (ok, now);
    }
}

/// On a terminal the line is redrawn in place; in a log, one line a second.
fn progress_line(line: &str) {
    let mut err = std::io::stderr().lock();
    if err.is_terminal() {
        let _ = write!(err, "\r{line}\x1b[K");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

fn finish_progress_line() {
    let mut err = std::io::stderr().lock();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}
