//! Process metrics: the one Prometheus recorder of a process, gauges that
//! are sampled when scraped (connection pools, the process's own resource
//! use), and the `/metrics` route.
//!
//! Every service in a process records into the same recorder and tells
//! itself apart by a `service` label, so the embedded `oms` process and a
//! single-service container expose the same series.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

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

/// The `/metrics` handler, for any axum router.
pub async fn handler() -> impl axum::response::IntoResponse {
    (
        [(http::header::CONTENT_TYPE, CONTENT_TYPE)],
        tokio::task::spawn_blocking(render)
            .await
            .unwrap_or_default(),
    )
}

/// Serves `GET /metrics` on `listener` (a service's admin port) until
/// `shutdown` resolves.
pub async fn serve_admin(
    listener: TcpListener,
    service: &'static str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        crate::server::announce(service, "metrics", addr);
    }
    let app = axum::Router::new().route("/metrics", axum::routing::get(handler));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_admin_listener_serves_what_was_recorded_and_sampled() {
        install();
        metrics::counter!("kit_test_events_total", "kind" => "admin").increment(3);
        let depth = Arc::new(std::sync::atomic::AtomicU64::new(7));
        let sampled = depth.clone();
        let guard = on_scrape(move || {
            #[allow(clippy::cast_precision_loss)] // a small test value
            metrics::gauge!("kit_test_queue_depth").set(sampled.load(Ordering::Relaxed) as f64);
        });

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_admin(listener, "kit-test", async {
            let _ = stopped.await;
        }));

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(CONTENT_TYPE), "{reply}");
        assert!(
            reply.contains("kit_test_events_total{kind=\"admin\"} 3"),
            "{reply}"
        );
        assert!(reply.contains("kit_test_queue_depth 7"), "{reply}");

        // A dropped guard stops sampling: the gauge keeps its last value.
        drop(guard);
        depth.store(9, Ordering::Relaxed);
        assert!(render().contains("kit_test_queue_depth 7"));

        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
