//! Login throttling with sliding windows, approximated from two fixed
//! windows in the key-value store (the current count plus the previous
//! window's, weighted by how much of it still overlaps), so it works the
//! same on Redis and in process and is shared by every replica.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kit::kv::{KvError, KvStore};

/// A limit of `limit` events per sliding `window`, per key.
#[derive(Clone)]
pub struct SlidingWindow {
    kv: Arc<dyn KvStore>,
    name: &'static str,
    limit: u64,
    window: Duration,
}

impl std::fmt::Debug for SlidingWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlidingWindow")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl SlidingWindow {
    /// `name` keeps different limits' keys apart.
    pub fn new(kv: Arc<dyn KvStore>, name: &'static str, limit: u64, window: Duration) -> Self {
        Self {
            kv,
            name,
            limit,
            window: window.max(Duration::from_secs(1)),
        }
    }

    /// `Some(retry_after)` when `key` has reached the limit.
    pub async fn exceeded(&self, key: &str) -> Result<Option<Duration>, KvError> {
        let (_, elapsed) = self.position();
        // Rounded up (in `count_now`), so events just before a window
        // boundary still count in full right after it: the estimate errs
        // towards limiting.
        let over = self.count_now(key).await? >= self.limit;
        Ok(over.then(|| {
            self.window
                .saturating_sub(elapsed)
                .max(Duration::from_secs(1))
        }))
    }

    /// Events for `key` in the sliding window now (estimated as for
    /// [`SlidingWindow::exceeded`]).
    pub async fn count_now(&self, key: &str) -> Result<u64, KvError> {
        let (index, elapsed) = self.position();
        let current = self.count(key, index).await?;
        let previous = self.count(key, index.saturating_sub(1)).await?;
        let overlap = 1.0 - elapsed.as_secs_f64() / self.window.as_secs_f64();
        // Counts are far below 2^52, so the conversions are exact.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let carried = (previous as f64 * overlap).ceil() as u64;
        Ok(current + carried)
    }

    /// Counts one event for `key`.
    pub async fn record(&self, key: &str) -> Result<(), KvError> {
        let (index, _) = self.position();
        // Two windows: the previous one is still read while it overlaps.
        self.kv
            .increment(&self.key(key, index), self.window.saturating_mul(2))
            .await?;
        Ok(())
    }

    fn key(&self, key: &str, index: u64) -> String {
        format!("thr:{}:{key}:{index}", self.name)
    }

    async fn count(&self, key: &str, index: u64) -> Result<u64, KvError> {
        Ok(self
            .kv
            .get(&self.key(key, index))
            .await?
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// The current window's index and how far into it we are.
    fn position(&self) -> (u64, Duration) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let window_ms = u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        (
            now_ms / window_ms,
            Duration::from_millis(now_ms % window_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_is_reached_after_limit_events_and_is_per_key() {
        let kv: Arc<dyn KvStore> = Arc::new(kit::kv::MemoryKv::default());
        let throttle = SlidingWindow::new(kv, "t", 3, Duration::from_secs(600));
        for _ in 0..3 {
            assert_eq!(throttle.exceeded("a").await.unwrap(), None);
            throttle.record("a").await.unwrap();
        }
        let retry = throttle.exceeded("a").await.unwrap().expect("limited");
        assert!(retry > Duration::ZERO && retry <= Duration::from_secs(600));
        assert_eq!(throttle.exceeded("b").await.unwrap(), None);
    }
}
