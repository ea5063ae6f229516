//! Login throttling with sliding windows, approximated from two fixed
//! windows in the key-value store (the current count plus the previous
//! window's, weighted by how much of it still overlaps), so it works the
//! same on Redis and in process and is shared by every replica.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oms_store::kv::{KvError, KvStore};

/// One event counted by [`SlidingWindow::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The fixed window it was counted in (a take-back goes there).
    index: u64,
    /// Events in the sliding window, this one included.
    pub count: u64,
    /// Set when this event is over the limit: how long until it is not.
    pub retry_after: Option<Duration>,
}

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

    /// Counts one event for `key` *before* the work it guards, and says
    /// whether it is over the limit. The count comes from the store's
    /// atomic increment, so of any number of concurrent hits at most
    /// `limit` see themselves within it: check-then-record let a whole
    /// burst through (every request of it read the same old count).
    pub async fn hit(&self, key: &str) -> Result<Hit, KvError> {
        let (index, elapsed) = self.position();
        // Two windows: the previous one is still read while it overlaps.
        let current = self
            .kv
            .increment(&self.key(key, index), self.window.saturating_mul(2))
            .await?;
        let count = current + self.carried(key, index, elapsed).await?;
        let retry_after = (count > self.limit).then(|| {
            self.window
                .saturating_sub(elapsed)
                .max(Duration::from_secs(1))
        });
        Ok(Hit {
            index,
            count,
            retry_after,
        })
    }

    /// Takes a hit back: the event did not happen after all (it was
    /// refused before the work, or the work succeeded and only failures
    /// count). A hit never taken back stays counted, which errs towards
    /// limiting (a caller that hangs up mid-check, say).
    pub async fn release(&self, key: &str, hit: &Hit) -> Result<(), KvError> {
        self.kv.decrement(&self.key(key, hit.index)).await?;
        Ok(())
    }

    /// Events for `key` in the sliding window now, estimated from the
    /// current window's count plus the overlapping share of the previous
    /// one's.
    pub async fn count_now(&self, key: &str) -> Result<u64, KvError> {
        let (index, elapsed) = self.position();
        let current = self.count(key, index).await?;
        Ok(current + self.carried(key, index, elapsed).await?)
    }

    /// The previous window's events still inside the sliding window,
    /// rounded up, so events just before a window boundary still count in
    /// full right after it: the estimate errs towards limiting.
    async fn carried(&self, key: &str, index: u64, elapsed: Duration) -> Result<u64, KvError> {
        if index == 0 {
            return Ok(0);
        }
        let previous = self.count(key, index - 1).await?;
        let overlap = 1.0 - elapsed.as_secs_f64() / self.window.as_secs_f64();
        // Counts are far below 2^52, so the conversions are exact.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let carried = (previous as f64 * overlap).ceil() as u64;
        Ok(carried)
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

    fn throttle(limit: u64) -> SlidingWindow {
        let kv: Arc<dyn KvStore> = Arc::new(oms_store::kv::MemoryKv::default());
        SlidingWindow::new(kv, "t", limit, Duration::from_secs(600))
    }

    #[tokio::test]
    async fn the_limit_is_reached_after_limit_events_and_is_per_key() {
        let throttle = throttle(3);
        for expected in 1..=3 {
            let hit = throttle.hit("a").await.unwrap();
            assert_eq!((hit.count, hit.retry_after), (expected, None));
        }
        let retry = throttle
            .hit("a")
            .await
            .unwrap()
            .retry_after
            .expect("limited");
        assert!(retry > Duration::ZERO && retry <= Duration::from_secs(600));
        assert_eq!(throttle.hit("b").await.unwrap().retry_after, None);
    }

    #[tokio::test]
    async fn of_a_concurrent_burst_only_the_limit_gets_through() {
        let throttle = throttle(5);
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let throttle = throttle.clone();
            burst.spawn(async move { throttle.hit("a").await.unwrap() });
        }
        let within = burst
            .join_all()
            .await
            .iter()
            .filter(|hit| hit.retry_after.is_none())
            .count();
        assert_eq!(within, 5);
    }

    #[tokio::test]
    async fn a_released_hit_no_longer_counts() {
        let throttle = throttle(2);
        let first = throttle.hit("a").await.unwrap();
        throttle.hit("a").await.unwrap();
        throttle.release("a", &first).await.unwrap();
        assert_eq!(throttle.count_now("a").await.unwrap(), 1);
        assert_eq!(throttle.hit("a").await.unwrap().retry_after, None);
        assert!(throttle.hit("a").await.unwrap().retry_after.is_some());
    }
}
