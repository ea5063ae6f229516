//! Background loops (reservation sweeps, saga recovery, later relays and
//! consumers): one round now and then one per interval, each round's
//! outcome logged the same way, and the loop stopped when its service stops.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

/// A running loop; dropping it stops the loop between two rounds or in
/// the middle of one, so each round must leave the data consistent at any
/// await point (every round in OMS is a series of conditional updates).
#[derive(Debug)]
pub struct Background {
    task: JoinHandle<()>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Background {
    /// Runs `task` (a loop with its own pacing, such as a relay woken by
    /// commits) until the guard is dropped.
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            task: tokio::spawn(task),
        }
    }
}

/// Runs `round` now and then every `interval` (a slow round delays the
/// next rather than piling up). A round returns how many things it
/// changed: a non-zero count is logged at INFO as `what`, an error at WARN,
/// and the loop goes on either way.
pub fn every<F, Fut, E>(what: &'static str, interval: Duration, mut round: F) -> Background
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<usize, E>> + Send,
    E: Display,
{
    oms_telemetry::metrics::zero("background_task_errors_total", &[("task", what)]);
    oms_telemetry::metrics::zero("background_task_rounds_total", &[("task", what)]);
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match round().await {
                Ok(0) => {}
                Ok(changed) => tracing::info!(task = what, changed, "{what}"),
                Err(e) => {
                    // Alerted on by task (deploy/monitoring/rules.yml).
                    metrics::counter!("background_task_errors_total", "task" => what).increment(1);
                    tracing::warn!(task = what, error = %e, "{what}: round failed; retrying next round");
                }
            }
            // A loop that stops turning shows as a flat line.
            metrics::counter!("background_task_rounds_total", "task" => what).increment(1);
        }
    });
    Background { task }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rounds_go_on_after_errors_and_stop_when_dropped() {
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&rounds);
        let loop_ = every("test rounds", Duration::from_secs(1), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n.is_multiple_of(2) {
                    Err("even round")
                } else {
                    Ok(n)
                }
            }
        });
        // Paused time: each sleep advances the clock to the next tick.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let seen = rounds.load(Ordering::SeqCst);
        assert!(seen >= 4, "errors must not stop the loop: {seen} rounds");
        drop(loop_);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            rounds.load(Ordering::SeqCst),
            seen,
            "a dropped loop runs no more rounds"
        );
    }
}
