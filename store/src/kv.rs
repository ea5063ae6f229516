//! A small key-value store with TTLs, for tokens, throttling and caches:
//! Redis in production, a map in process for the embedded default. Both
//! implement [`KvStore`] and both are tested against the same cases.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::redis::{self, AsyncCommands};

use oms_config::RedisUrl;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// No connection could be had from the pool.
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// Redis answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The pool could not be built from the URL.
    #[error("cannot use {url}: {reason}")]
    Setup {
        /// The Redis URL (password redacted).
        url: RedisUrl,
        /// Why.
        reason: String,
    },
}

/// Whether `error` means Redis could not be reached or the connection
/// broke (rather than Redis refusing a command).
fn connection_lost(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

impl KvError {
    /// Whether Redis was down or unreachable, so the same call may succeed
    /// later: callers answer UNAVAILABLE, not INTERNAL.
    pub fn is_unavailable(&self) -> bool {
        match self {
            // No connection within the pool's wait, or none could be made.
            Self::Pool(_) => true,
            // A restarted Redis answers LOADING while it reads its data
            // back; the others are a failover in progress.
            Self::Redis(error) => {
                connection_lost(error)
                    || matches!(
                        error.kind(),
                        redis::ErrorKind::Server(
                            redis::ServerErrorKind::BusyLoading
                                | redis::ServerErrorKind::TryAgain
                                | redis::ServerErrorKind::MasterDown
                                | redis::ServerErrorKind::ClusterDown
                        )
                    )
            }
            Self::Setup { .. } => false,
        }
    }
}

/// Byte values under string keys, each with a time to live.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The value, unless missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// The values of `keys`, in their order: one round trip on Redis
    /// (`MGET`) instead of one per key.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
    /// Sets the value, replacing any previous one.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), KvError>;
    /// Sets the value only if the key is absent; true if it was set.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, KvError>;
    /// Removes and returns the value atomically: of two concurrent takers,
    /// only one gets it (refresh-token rotation relies on this).
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Removes the key; true if it existed.
    async fn delete(&self, key: &str) -> Result<bool, KvError>;
    /// Adds one to a counter that starts at zero and expires `window` after
    /// its first increment; returns the new count (fixed-window throttling).
    async fn increment(&self, key: &str, window: Duration) -> Result<u64, KvError>;
    /// Takes back one [`KvStore::increment`]: subtracts one from a counter
    /// that exists and is above zero, keeping its expiry; never creates
    /// one. Returns the new count (0 when there was nothing to take back).
    async fn decrement(&self, key: &str) -> Result<u64, KvError>;
    /// Connections of the pool behind the store, if it has one.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
}

/// A connection pool's occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open now.
    pub size: usize,
    /// Of those, idle.
    pub idle: usize,
    /// The most it opens.
    pub max: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// Reports `kv`'s pool gauges under `service` whenever metrics are
/// scraped, until the guard is dropped. Stores without a pool report none.
pub fn sample_pool(
    service: &'static str,
    kv: &Arc<dyn KvStore>,
) -> oms_telemetry::metrics::SamplerGuard {
    let kv = kv.clone();
    oms_telemetry::metrics::on_scrape(move || {
        let Some(status) = kv.pool_status() else {
            return;
        };
        #[allow(clippy::cast_precision_loss)] // pool sizes are tiny
        let gauge = |n: usize| n as f64;
        metrics::gauge!("redis_pool_connections", "service" => service, "state" => "idle")
            .set(gauge(status.idle));
        metrics::gauge!("redis_pool_connections", "service" => service, "state" => "in_use")
            .set(gauge(status.size.saturating_sub(status.idle)));
        metrics::gauge!("redis_pool_max_connections", "service" => service).set(gauge(status.max));
        metrics::gauge!("redis_pool_waiting", "service" => service).set(gauge(status.waiting));
    })
}

/// Opens the store the configuration asks for: Redis when a URL is given
/// (checked with a PING so a bad URL fails at start-up), else in process.
/// Every key is stored under `prefix`.
pub async fn open(url: Option<&RedisUrl>, prefix: &str) -> Result<Arc<dyn KvStore>, KvError> {
    match url {
        Some(url) => Ok(Arc::new(RedisKv::connect(url, prefix).await?)),
        None => Ok(Arc::new(MemoryKv::default())),
    }
}

/// Redis. Reads, the hot path (every product cache hit), are pipelined
/// over one shared multiplexed connection: many concurrent `GET`s travel
/// in one write and come back in one read. Everything else goes through a
/// deadpool pool, whose occupancy `pool_status` reports. Measured with
/// oms-bench: reads through the pool (8 connections for 32 concurrent
/// calls, one round trip each) made a cache hit on Redis cost product-svc
/// almost twice the CPU of one on the in-process store.
#[derive(Clone)]
pub struct RedisKv {
    pool: deadpool_redis::Pool,
    reads: Arc<SharedConnection>,
    prefix: String,
}

/// Longest wait for a new read connection, and for an answer on it.
const READ_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const READ_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// One multiplexed connection shared by every reader, made on first use and
/// made again after it broke.
struct SharedConnection {
    client: redis::Client,
    current: std::sync::RwLock<Option<redis::aio::MultiplexedConnection>>,
    /// One reconnect at a time; the others wait for it.
    connecting: tokio::sync::Mutex<()>,
}

impl SharedConnection {
    fn cached(&self) -> Option<redis::aio::MultiplexedConnection> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn get(&self) -> Result<redis::aio::MultiplexedConnection, KvError> {
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let _one = self.connecting.lock().await;
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(READ_CONNECT_TIMEOUT))
            .set_response_timeout(Some(READ_RESPONSE_TIMEOUT));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    /// Drops the connection after an error that may have broken it, so the
    /// next read connects afresh.
    fn failed(&self, error: &redis::RedisError) {
        if connection_lost(error) {
            *self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, KvError> {
        let mut conn = self.get().await?;
        command.query_async(&mut conn).await.map_err(|e| {
            self.failed(&e);
            KvError::Redis(e)
        })
    }
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisKv {
    /// Builds the pool and checks the server answers.
    pub async fn connect(url: &RedisUrl, prefix: &str) -> Result<Self, KvError> {
        let setup = |reason: String| KvError::Setup {
            url: url.clone(),
            reason,
        };
        let client = client(url).map_err(setup)?;
        let manager = deadpool_redis::Manager::new(client.get_connection_info().clone())
            .map_err(|e| setup(e.to_string()))?;
        let pool = deadpool_redis::Pool::builder(manager)
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let store = Self {
            pool,
            reads: Arc::new(SharedConnection {
                client,
                current: std::sync::RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
            prefix: prefix.to_owned(),
        };
        let mut conn = store.pool.get().await.map_err(|e| KvError::Setup {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(store)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// The client of `url`: over TLS for `rediss://`, the server verified for
/// the URL's host against the CA file its `ssl-ca` parameter names (as a
/// MySQL URL names one), or else the system's roots.
fn client(url: &RedisUrl) -> Result<redis::Client, String> {
    let Some(ca) = url.ssl_ca() else {
        return redis::Client::open(url.expose()).map_err(|e| e.to_string());
    };
    let pem = std::fs::read(ca).map_err(|e| format!("cannot read ssl-ca {ca}: {e}"))?;
    redis::Client::build_with_tls(
        url.expose(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
    .map_err(|e| e.to_string())
}

fn ttl_millis(ttl: Duration) -> u64 {
    // Redis rejects a zero expiry; the shortest real TTL is 1 ms.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl KvStore for RedisKv {
    fn pool_status(&self) -> Option<PoolStatus> {
        let status = self.pool.status();
        Some(PoolStatus {
            size: status.size,
            idle: status.available,
            max: status.max_size,
            waiting: status.waiting,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut command = redis::cmd("GET");
        command.arg(self.key(key));
        self.reads.query(&command).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut command = redis::cmd("MGET");
        for key in keys {
            command.arg(self.key(key));
        }
        self.reads.query(&command).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), KvError> {
        let mut conn = self.pool.get().await?;
        let _: () = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, KvError> {
        let mut conn = self.pool.get().await?;
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(reply.is_some())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?)
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let mut conn = self.pool.get().await?;
        let removed: u64 = conn.del(self.key(key)).await?;
        Ok(removed > 0)
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<u64, KvError> {
        let mut conn = self.pool.get().await?;
        let key = self.key(key);
        // INCR then PEXPIRE NX in one round trip: the window starts at the
        // first increment and later increments don't extend it.
        let (count, _): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_millis(window))
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }

    async fn decrement(&self, key: &str) -> Result<u64, KvError> {
        // A plain DECR would create a key without expiry (at -1) when the
        // window has already closed; the script touches only live counts.
        const TAKE_BACK: &str = "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
            if n and n > 0 then return redis.call('DECR', KEYS[1]) end return 0";
        let mut conn = self.pool.get().await?;
        let count: i64 = redis::cmd("EVAL")
            .arg(TAKE_BACK)
            .arg(1)
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// The in-process store of the embedded default: one map behind a mutex,
/// expired entries dropped lazily and swept now and then.
#[derive(Debug, Default)]
pub struct MemoryKv {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    entries: HashMap<String, (Vec<u8>, Instant)>,
    writes_since_sweep: u32,
}

/// Writes between sweeps of expired entries; bounds memory without a timer.
const SWEEP_EVERY: u32 = 1024;

impl MemoryKv {
    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner, Instant) -> T) -> T {
        // A panic while holding the lock cannot leave the map half-written
        // (every operation is a single insert/remove), so poisoning is safe
        // to ignore.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner, Instant::now())
    }
}

impl MemoryInner {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut (Vec<u8>, Instant)> {
        if self
            .entries
            .get(key)
            .is_some_and(|(_, expires)| *expires <= now)
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn insert(&mut self, key: &str, value: Vec<u8>, expires: Instant, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            self.entries.retain(|_, (_, exp)| *exp > now);
        }
        self.entries.insert(key.to_owned(), (value, expires));
    }
}

#[async_trait]
impl KvStore for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.with(|m, now| m.live(key, now).map(|(v, _)| v.clone())))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), KvError> {
        self.with(|m, now| m.insert(key, value.to_vec(), now + ttl, now));
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, KvError> {
        Ok(self.with(|m, now| {
            if m.live(key, now).is_some() {
                false
            } else {
                m.insert(key, value.to_vec(), now + ttl, now);
                true
            }
        }))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.with(|m, now| {
            m.live(key, now)?;
            m.entries.remove(key).map(|(v, _)| v)
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.with(|m, now| m.live(key, now).is_some() && m.entries.remove(key).is_some()))
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<u64, KvError> {
        Ok(self.with(|m, now| {
            if let Some((value, _)) = m.live(key, now) {
                let count = parse_count(value) + 1;
                *value = count.to_string().into_bytes();
                count
            } else {
                m.insert(key, b"1".to_vec(), now + window, now);
                1
            }
        }))
    }

    async fn decrement(&self, key: &str) -> Result<u64, KvError> {
        Ok(self.with(|m, now| match m.live(key, now) {
            Some((value, _)) => {
                let count = parse_count(value).saturating_sub(1);
                *value = count.to_string().into_bytes();
                count
            }
            None => 0,
        }))
    }
}

fn parse_count(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_lost_connection_is_unavailable_and_a_refused_command_is_not() {
        let refused = KvError::Redis(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )));
        assert!(refused.is_unavailable(), "{refused}");
        let reset = KvError::Redis(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        )));
        assert!(reset.is_unavailable(), "{reset}");
        let wrong_type = KvError::Redis(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "not a string",
        )));
        assert!(!wrong_type.is_unavailable(), "{wrong_type}");
        let loading = KvError::Redis(redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
            "Redis is loading the dataset in memory",
        )));
        assert!(loading.is_unavailable(), "{loading}");
    }

    use super::*;

    /// The shared read connection, killed by the server (a Redis restart,
    /// a proxy's idle timeout), is made again: reads fail at most until the
    /// next one, never for good.
    #[tokio::test]
    async fn reads_reconnect_after_their_connection_is_killed() {
        let Some(url) = testkit::redis_url() else {
            return;
        };
        let kv = RedisKv::connect(&url, &testkit::unique_name("kv-reconnect:"))
            .await
            .unwrap();
        kv.set("k", b"v", Duration::from_secs(60)).await.unwrap();
        assert_eq!(kv.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        let first: u64 = kv
            .reads
            .query(redis::cmd("CLIENT").arg("ID"))
            .await
            .unwrap();

        let mut admin = kv.pool.get().await.unwrap();
        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(first)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 1);

        let mut failures = 0;
        let value = loop {
            match kv.get("k").await {
                Ok(value) => break value,
                Err(_) if failures < 3 => failures += 1,
                Err(e) => panic!("reads did not recover: {e}"),
            }
        };
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
        let second: u64 = kv
            .reads
            .query(redis::cmd("CLIENT").arg("ID"))
            .await
            .unwrap();
        assert_ne!(first, second, "a new connection");
    }
}
