//! Process metrics: the one Prometheus recorder of a process, gauges that
//! are sampled when scraped (connection pools, the process's own resource
//! use), and the text a `/metrics` route serves.
//!
//! Every service in a process records into the same recorder and tells
//! itself apart by a `service` label, so the embedded `oms` process and a
//! single-service container expose the same series.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: sub-millisecond cache hits up to the
/// 10-second drain limit.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets. The recorder
/// queues every observation until then; without this, a process nobody
/// scrapes (the embedded `oms`, a bench, a missing Prometheus) grew by every
/// request it served, and got slower as the queues grew (found by oms-bench).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

type Sampler = Arc<dyn Fn() + Send + Sync>;
static SAMPLERS: Mutex<BTreeMap<u64, Sampler>> = Mutex::new(BTreeMap::new());
static NEXT_SAMPLER: AtomicU64 = AtomicU64::new(0);

/// Installs the process's recorder the first time; later calls (several
/// services in one process, many tests) reuse it.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // The matcher is a fixed suffix, which cannot be rejected.
        let builder = match builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if something else installed a recorder first; then
        // our series stay empty rather than the process failing.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        let upkept = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("oms-metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkept.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms are folded only when scraped");
        }
        handle
    })
}

/// Registers the counter `name` with `labels` at zero, so that it is
/// exposed (and `rate()` and `increase()` over it work) before its first
/// event: the alerts in deploy/monitoring/rules.yml read counters of rare
/// events, and a series that appears only with its first increment hides
/// that increment from them.
pub fn zero(name: &'static str, labels: &[(&'static str, &'static str)]) {
    install();
    let labels: Vec<(&'static str, &'static str)> = labels.to_vec();
    metrics::counter!(name, &labels).increment(0);
}

/// The current metrics in the Prometheus text format.
pub fn render() -> String {
    let handle = install();
    let samplers: Vec<Sampler> = match SAMPLERS.lock() {
        Ok(samplers) => samplers.values().cloned().collect(),
        Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
    };
    for sample in samplers {
        sample();
    }
    handle.run_upkeep();
    let mut text = handle.render();
    if let Some(process) = crate::process_stats::ProcessStats::read() {
        text.push_str(&process.exposition());
    }
    text
}

/// Keeps a sampler registered until dropped, so a stopped service (tests
/// start and stop many in one process) no longer reports, nor holds its
/// pools open.
#[derive(Debug)]
#[must_use = "the sampler is removed when this is dropped"]
pub struct SamplerGuard(u64);

impl Drop for SamplerGuard {
    fn drop(&mut self) {
        match SAMPLERS.lock() {
            Ok(mut samplers) => samplers.remove(&self.0),
            Err(poisoned) => poisoned.into_inner().remove(&self.0),
        };
    }
}

/// Runs `sample` before every render: for gauges that are cheaper to read
/// on demand than to keep current (pool sizes).
pub fn on_scrape(sample: impl Fn() + Send + Sync + 'static) -> SamplerGuard {
    install();
    let id = NEXT_SAMPLER.fetch_add(1, Ordering::Relaxed);
    match SAMPLERS.lock() {
        Ok(mut samplers) => samplers.insert(id, Arc::new(sample)),
        Err(poisoned) => poisoned.into_inner().insert(id, Arc::new(sample)),
    };
    SamplerGuard(id)
}
