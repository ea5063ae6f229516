//! Integration-test helpers: a fresh database per test on SQLite, and on
//! MariaDB when `OMS_TEST_MYSQL_URL` is set; a Redis key prefix per test when
//! `OMS_TEST_REDIS_URL` is set. Under `CI=true` both variables are required:
//! a missing one fails the test instead of silently skipping it.

use std::path::PathBuf;
use std::sync::Arc;

use sea_orm::ConnectionTrait;

use crate::config::{DatabaseUrl, RedisUrl};
use crate::kv::{KvStore, MemoryKv, RedisKv};

/// The variable naming the MariaDB server for tests.
pub const MYSQL_VAR: &str = "OMS_TEST_MYSQL_URL";
/// The variable naming the Redis server for tests.
pub const REDIS_VAR: &str = "OMS_TEST_REDIS_URL";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reads a test-server variable; under CI a missing one is a failure.
fn required_in_ci(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ if in_ci() => {
            panic!("{var} must be set when CI=true (the suite never skips a backend in CI)")
        }
        _ => {
            eprintln!("note: {var} is not set; this backend is not tested in this run");
            None
        }
    }
}

/// A short unique name for per-test resources.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // The random tail of a v7 UUID; the timestamp head would collide less
    // visibly but makes names long.
    format!("{prefix}_{}", &id[16..])
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
        let server = required_in_ci(MYSQL_VAR)?.trim_end_matches('/').to_owned();
        let name = unique_name("oms_test");
        let admin = match DatabaseUrl::parse(&server) {
            Ok(url) => url,
            Err(e) => panic!("{MYSQL_VAR}: {e}"),
        };
        let db = match crate::db::connect(&admin, crate::db::PoolOptions::default()).await {
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
                        let db = crate::db::connect(&url, crate::db::PoolOptions::default())
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

/// The Redis URL for tests, or `None` outside CI when unset.
pub fn redis_url() -> Option<RedisUrl> {
    let raw = required_in_ci(REDIS_VAR)?;
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

/// Polls `check` until it returns `Some`, or panics after `timeout`; for
/// waiting on something asynchronous without sleeping a fixed time.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
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
                $crate::telemetry::init_for_tests();
                super::$name($crate::test_support::TestDb::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                $crate::telemetry::init_for_tests();
                if let Some(db) = $crate::test_support::TestDb::mysql().await {
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
                if let Some(kv) = $crate::test_support::kv_store($crate::test_support::KvBackend::Memory).await {
                    super::$name(kv).await;
                }
            }

            #[tokio::test]
            async fn redis() {
                if let Some(kv) = $crate::test_support::kv_store($crate::test_support::KvBackend::Redis).await {
                    super::$name(kv).await;
                }
            }
        }
    )+};
}

/// A service (or the gateway) running in the test on `127.0.0.1:0`.
#[derive(Debug)]
pub struct Spawned {
    /// The address it actually listens on.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), crate::StartupError>>,
}

/// Binds `127.0.0.1:0` and runs `serve(listener, shutdown)` in a task, the
/// way `main` would, but with a shutdown the test controls.
pub async fn spawn<F, Fut>(serve: F) -> Spawned
where
    F: FnOnce(
        tokio::net::TcpListener,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::StartupError>> + Send + 'static,
{
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(e) => panic!("cannot bind 127.0.0.1:0: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => panic!("no local address: {e}"),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = Box::pin(async move {
        let _ = stopped.await;
    });
    let task = tokio::spawn(serve(listener, shutdown));
    Spawned {
        addr,
        stop: Some(stop),
        task,
    }
}

impl Spawned {
    /// A lazily connecting gRPC channel to it.
    pub fn channel(&self) -> tonic::transport::Channel {
        match tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr)) {
            Ok(endpoint) => endpoint.connect_lazy(),
            Err(e) => panic!("bad endpoint for {}: {e}", self.addr),
        }
    }

    /// Asks it to shut down and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<(), crate::StartupError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => panic!("service task panicked: {e}"),
        }
    }

    /// Waits for `serve` to return on its own (a start-up failure).
    pub async fn exited(mut self) -> Result<(), crate::StartupError> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => panic!("service task panicked: {e}"),
        }
    }
}

/// The `grpc.health.v1` status of `service` ("" for the whole server).
pub async fn health_status(
    channel: tonic::transport::Channel,
    service: &str,
) -> Result<tonic_health::pb::health_check_response::ServingStatus, tonic::Status> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

/// The services a server advertises through reflection v1 or v1alpha,
/// sorted.
pub async fn reflected_services(
    channel: tonic::transport::Channel,
    v1alpha: bool,
) -> Result<Vec<String>, tonic::Status> {
    // The two versions share their message shapes but not their types.
    macro_rules! list {
        ($pb:path) => {{
            use $pb as pb;
            let mut client = pb::server_reflection_client::ServerReflectionClient::new(channel);
            let request = pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(pb::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
            };
            let mut replies = client
                .server_reflection_info(tokio_stream::once(request))
                .await?
                .into_inner();
            let mut names = Vec::new();
            while let Some(reply) = replies.message().await? {
                if let Some(
                    pb::server_reflection_response::MessageResponse::ListServicesResponse(list),
                ) = reply.message_response
                {
                    names.extend(list.service.into_iter().map(|s| s.name));
                }
            }
            names
        }};
    }
    let mut names = if v1alpha {
        list!(tonic_reflection::pb::v1alpha)
    } else {
        list!(tonic_reflection::pb::v1)
    };
    names.sort();
    Ok(names)
}

/// Checks what every OMS gRPC server must offer: health SERVING for the
/// server and each of its services, and reflection v1 and v1alpha listing
/// exactly its services plus health and reflection.
pub async fn assert_grpc_basics(
    channel: tonic::transport::Channel,
    info: crate::server::ServiceInfo,
) {
    use tonic_health::pb::health_check_response::ServingStatus;
    for service in std::iter::once("").chain(info.grpc_services.iter().copied()) {
        let status = health_status(channel.clone(), service).await;
        assert_eq!(
            status.ok(),
            Some(ServingStatus::Serving),
            "health of {service:?}"
        );
    }
    let mut expected: Vec<String> = info
        .grpc_services
        .iter()
        .map(|s| (*s).to_owned())
        .chain(
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
            .map(String::from),
        )
        .collect();
    expected.sort();
    for v1alpha in [false, true] {
        let listed = reflected_services(channel.clone(), v1alpha).await;
        assert_eq!(
            listed.ok().as_ref(),
            Some(&expected),
            "reflection (v1alpha: {v1alpha})"
        );
    }
}

/// Asserts that each table exists in the database at `url` (the
/// migrations ran) by counting its rows.
pub async fn assert_tables(url: &DatabaseUrl, tables: &[&str]) {
    let db = match crate::db::connect(url, crate::db::PoolOptions::default()).await {
        Ok(db) => db,
        Err(e) => panic!("reopening {url}: {e}"),
    };
    for table in tables {
        let counted = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await;
        assert!(counted.is_ok(), "table {table} is missing: {counted:?}");
    }
    let _ = db.close().await;
}

/// Asserts how many rows `table` holds in the database at `url`.
pub async fn assert_row_count(url: &DatabaseUrl, table: &str, expected: i64) {
    let db = match crate::db::connect(url, crate::db::PoolOptions::default()).await {
        Ok(db) => db,
        Err(e) => panic!("reopening {url}: {e}"),
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await;
    let count = match row {
        Ok(Some(row)) => row.try_get::<i64>("", "n"),
        other => panic!("counting {table}: {other:?}"),
    };
    assert_eq!(count.ok(), Some(expected), "rows in {table}");
    let _ = db.close().await;
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    match format!("Bearer {token}").parse() {
        Ok(value) => {
            request.metadata_mut().insert("authorization", value);
        }
        Err(e) => panic!("a token must be a valid header value: {e}"),
    }
    request
}

/// The `ErrorInfo.reason` of an error ("" without one).
pub fn error_reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// One `ErrorInfo.metadata` value of an error ("" without it).
pub fn error_metadata(status: &tonic::Status, key: &str) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get(key).cloned())
        .unwrap_or_default()
}

/// The fields named by an error's `BadRequest` detail, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}
