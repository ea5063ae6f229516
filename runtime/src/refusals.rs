//! What a listener refuses because a limit was reached: every refusal
//! counted (`oms_listener_refusals_total{service,limit}`), and logged at WARN
//! at most once a second per limit with how many were not logged, so a
//! flood of refusals cannot become a flood of log lines.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// Between two WARN lines for one limit.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The refusals of one listener.
#[derive(Debug)]
pub struct Refusals {
    service: &'static str,
    /// Per limit: when it was last logged and how many since.
    logged: Mutex<Vec<(&'static str, Instant, u64)>>,
}

impl Refusals {
    /// Refusals of `service`'s listener; every limit's counter starts at
    /// zero, so a dashboard shows the series before the first refusal.
    pub fn new(service: &'static str, limits: &[&'static str]) -> Self {
        for limit in limits {
            oms_telemetry::metrics::zero(
                "oms_listener_refusals_total",
                &[("service", service), ("limit", limit)],
            );
        }
        Self {
            service,
            logged: Mutex::new(Vec::new()),
        }
    }

    /// Counts one refusal under `limit` and logs `what` unless this limit
    /// was logged less than a second ago.
    pub fn refuse(&self, limit: &'static str, what: std::fmt::Arguments<'_>) {
        metrics::counter!("oms_listener_refusals_total", "service" => self.service, "limit" => limit)
            .increment(1);
        let now = Instant::now();
        let unlogged = {
            let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
            match logged.iter_mut().find(|(name, _, _)| *name == limit) {
                Some((_, last, since)) if now.duration_since(*last) < LOG_EVERY => {
                    *since += 1;
                    return;
                }
                Some((_, last, since)) => {
                    *last = now;
                    std::mem::take(since)
                }
                None => {
                    logged.push((limit, now, 0));
                    0
                }
            }
        };
        tracing::warn!(
            service = self.service,
            limit,
            unlogged_since_last = unlogged,
            "refused: {what}"
        );
    }
}
