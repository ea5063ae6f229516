//! The backends a test runs against: a fresh database per test on SQLite,
//! and on MariaDB when `OMS_TEST_MYSQL_URL` is set; a Redis key prefix per
//! test when `OMS_TEST_REDIS_URL` is set; a bucket on the test S3 server.
//! Under `CI=true` every backend variable is required: a missing one fails
//! the test instead of silently skipping it.

use std::path::PathBuf;

use crate::scratch::unique_name;
use std::sync::Arc;

use sea_orm::ConnectionTrait;

use oms_config::{DatabaseUrl, RedisUrl};
use oms_store::kv::{KvStore, MemoryKv, RedisKv};

/// The variable naming the MariaDB server for tests.
pub const MYSQL_VAR: &str = "OMS_TEST_MYSQL_URL";
/// The variable naming the Redis server for tests.
pub const REDIS_VAR: &str = "OMS_TEST_REDIS_URL";
/// The variable naming the S3-compatible server for tests
/// (`http://127.0.0.1:PORT`, e.g. moto from `scripts/test-s3`).
pub const S3_VAR: &str = "OMS_TEST_S3_ENDPOINT";
/// The variable naming the Kafka brokers for tests (`host:port,…`, e.g.
/// tansu from `scripts/test-broker`).
pub const KAFKA_VAR: &str = "OMS_TEST_KAFKA_BROKERS";
/// The variable naming a tansu binary, for tests that run (and kill) a
/// broker of their own.
pub const TANSU_VAR: &str = "OMS_TEST_TANSU";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The one rule for a backend a test needs (`OMS_TEST_MYSQL_URL`, Redis,
/// S3, Kafka, tansu …): its variable's value; unset, the test says NOT
/// TESTED and gets `None` — or, under `CI=true`, fails, since CI never
/// skips a backend.
pub fn require_backend(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ if in_ci() => {
            panic!("{var} must be set when CI=true (the suite never skips a backend in CI)")
        }
        _ => {
            eprintln!(
                "NOT TESTED: {var} is not set, so this test does not run against that backend"
            );
            None
        }
    }
}

/// What two replicas of a service share in a test of twins: a fresh
/// MariaDB database and a Redis key prefix (`OMS_REDIS_KEY_PREFIX`);
/// `None` (NOT TESTED, a failure under CI) without MariaDB or Redis.
pub async fn shared_by_twins() -> Option<(TestDb, String)> {
    let db = TestDb::mysql().await?;
    require_backend(REDIS_VAR)?;
    Some((db, format!("{}:", unique_name("oms_test"))))
}

/// A database that exists for one test and is removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    url: DatabaseUrl,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteDir(PathBuf),
    MysqlDatabase { server: String, name: String },
}

impl TestDb {
    /// A fresh SQLite file in its own temporary directory.
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(unique_name("oms_test"));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        Self {
            url: DatabaseUrl::sqlite_file(&dir.join("test.db")),
            cleanup: Cleanup::SqliteDir(dir),
        }
    }

    /// A fresh, uniquely named MariaDB database, or `None` outside CI when
    /// `OMS_TEST_MYSQL_URL` is unset.
    pub async fn mysql() -> Option<Self> {
        let server = require_backend(MYSQL_VAR)?.trim_end_matches('/').to_owned();
        let name = unique_name("oms_test");
        let admin = match DatabaseUrl::parse(&server) {
            Ok(url) => url,
            Err(e) => panic!("{MYSQL_VAR}: {e}"),
        };
        let db = match oms_store::db::connect(&admin, oms_store::db::PoolOptions::default()).await {
            Ok(db) => db,
            Err(e) => panic!("{MYSQL_VAR}: {e}"),
        };
        if let Err(e) = db
            .execute_unprepared(&format!(
                "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            ))
            .await
        {
            panic!("cannot create test database {name}: {e}");
        }
        let _ = db.close().await;
        let url = match DatabaseUrl::parse(&format!("{}/{name}", admin.expose())) {
            Ok(url) => url,
            Err(e) => panic!("{MYSQL_VAR}: {e}"),
        };
        Some(Self {
            url,
            cleanup: Cleanup::MysqlDatabase {
                server: admin.expose().to_owned(),
                name,
            },
        })
    }

    /// The URL to give the service under test.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::MysqlDatabase { server, name } => {
                // Drop runs inside the test's runtime, which cannot block on
                // itself; a short-lived thread with its own runtime can.
                let (server, name) = (server.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let url = DatabaseUrl::parse(&server).ok()?;
                        let db =
                            oms_store::db::connect(&url, oms_store::db::PoolOptions::default())
                                .await
                                .ok()?;
                        db.execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
                            .await
                            .ok()?;
                        db.close().await.ok()
                    })
                })
                .join();
                if !matches!(dropped, Ok(Some(()))) {
                    eprintln!("warning: test database was not dropped");
                }
            }
        }
    }
}

/// Which key-value store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvBackend {
    /// The in-process map.
    Memory,
    /// Redis at `OMS_TEST_REDIS_URL`.
    Redis,
}

/// A fresh bucket on the test S3 server: `(endpoint, bucket)`, or `None`
/// outside CI when the server is not configured. The bucket is made with
/// an unsigned request, which the local test server accepts.
pub async fn s3_test_bucket() -> Option<(String, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let endpoint = require_backend(S3_VAR)?;
    let Some(authority) = endpoint.strip_prefix("http://") else {
        panic!("{S3_VAR} must be an http:// endpoint of a local server, not {endpoint}");
    };
    let authority = authority.trim_end_matches('/').to_owned();
    let bucket = unique_name("oms-test").replace('_', "-");
    let mut stream = match tokio::net::TcpStream::connect(&authority).await {
        Ok(stream) => stream,
        Err(e) => panic!("{S3_VAR}: cannot reach {authority}: {e}"),
    };
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut answer = String::new();
    let written = stream.write_all(request.as_bytes()).await;
    let read = stream.read_to_string(&mut answer).await;
    assert!(
        written.is_ok() && read.is_ok() && answer.starts_with("HTTP/1.1 200"),
        "creating bucket {bucket} on {endpoint}: {answer}"
    );
    Some((endpoint.trim_end_matches('/').to_owned(), bucket))
}

/// The Redis URL for tests, or `None` outside CI when unset.
pub fn redis_url() -> Option<RedisUrl> {
    let raw = require_backend(REDIS_VAR)?;
    match RedisUrl::parse(&raw) {
        Ok(url) => Some(url),
        Err(e) => panic!("{REDIS_VAR}: {e}"),
    }
}

/// A store for one test: in process, or Redis under a unique key prefix
/// (`None` outside CI when Redis is not configured).
pub async fn kv_store(backend: KvBackend) -> Option<Arc<dyn KvStore>> {
    match backend {
        KvBackend::Memory => Some(Arc::new(MemoryKv::default())),
        KvBackend::Redis => {
            let url = redis_url()?;
            let prefix = format!("{}:", unique_name("oms_test"));
            match RedisKv::connect(&url, &prefix).await {
                Ok(store) => Some(Arc::new(store)),
                Err(e) => panic!("{REDIS_VAR}: {e}"),
            }
        }
    }
}

/// Generates one test per database backend for each async function
/// `fn(TestDb)`: `name::sqlite` and `name::mariadb`.
#[macro_export]
macro_rules! test_on_each_db {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::init_telemetry_for_tests();
                super::$name($crate::TestDb::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                $crate::init_telemetry_for_tests();
                if let Some(db) = $crate::TestDb::mysql().await {
                    super::$name(db).await;
                }
            }
        }
    )+};
}

/// Generates one test per key-value backend for each async function
/// `fn(Arc<dyn KvStore>)`: `name::memory` and `name::redis`.
#[macro_export]
macro_rules! test_on_each_kv {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                if let Some(kv) = $crate::kv_store($crate::KvBackend::Memory).await {
                    super::$name(kv).await;
                }
            }

            #[tokio::test]
            async fn redis() {
                if let Some(kv) = $crate::kv_store($crate::KvBackend::Redis).await {
                    super::$name(kv).await;
                }
            }
        }
    )+};
}
