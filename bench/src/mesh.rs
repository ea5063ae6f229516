//! The mesh under test: user-svc, product-svc, order-svc and the gateway,
//! each its own process started from the release (or debug) binaries next
//! to this one, on SQLite files in a scratch directory or on fresh MariaDB
//! databases, with fresh secrets. Measures each one's start-up time (spawn
//! to SERVING) on the way; everything is removed again by [`Mesh::stop`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use oms_config::DatabaseUrl;
use sea_orm::ConnectionTrait as _;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::BenchError;

/// Where the services keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One SQLite file per service: the embedded default.
    Sqlite,
    /// One MariaDB/MySQL database per service.
    Mariadb,
}

impl Backend {
    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Mariadb => "mariadb",
        }
    }
}

/// How to start the mesh.
#[derive(Debug, Clone)]
pub struct MeshOptions {
    /// Directory holding the four service binaries.
    pub bin_dir: PathBuf,
    pub backend: Backend,
    /// `mysql://user:pw@host:port` (no database): the server for MariaDB.
    pub mysql_url: Option<String>,
    /// Redis for tokens, throttling and caches; in process when `None`.
    pub redis_url: Option<String>,
    /// Database names start with this (the user must be allowed to create
    /// and drop them).
    pub db_prefix: String,
    /// `RUST_LOG` of the services.
    pub log_level: String,
    /// `OMS_WORKER_THREADS` of the services; their default when `None`.
    pub service_threads: Option<usize>,
    /// Scratch directory: SQLite files and the services' logs.
    pub work_dir: PathBuf,
    /// Where order-svc's and product-svc's events go.
    pub events: Events,
    /// More variables for every service (the chaos scenario's short
    /// recovery and reservation timings).
    pub extra_env: Vec<(String, String)>,
    /// order-svc reaches product-svc through this link, whose delay the
    /// chaos scenario can raise (a slow network); directly when `None`.
    pub product_link: Option<crate::netem::Link>,
    /// Peers reached by name through a DNS server (the replicas
    /// scenario); by address when `None`.
    pub names: Option<Names>,
    /// Mutual TLS on every gRPC link, the bench's own included (the tls
    /// scenario); plaintext when `None`.
    pub tls: Option<MeshTls>,
}

/// Mutual TLS for a bench mesh: one certificate (for 127.0.0.1) every
/// service serves, presents and requires, and the bench's client side.
#[derive(Clone, Debug)]
pub struct MeshTls {
    /// `OMS_TLS_*` of every service.
    env: Vec<(String, String)>,
    /// What the bench dials with.
    client: oms_runtime::tls::Tls,
    /// Keeps the files.
    _ca: std::sync::Arc<testkit::TestCa>,
}

impl MeshTls {
    /// A CA of the run's own and its certificate.
    pub fn new() -> Result<Self, BenchError> {
        let ca = testkit::TestCa::new("oms-bench CA");
        let issued = ca.issue("oms-bench", &["localhost", "127.0.0.1"]);
        let config = oms_config::MeshTls {
            identity: Some(oms_config::tls::Identity {
                cert: issued.cert.clone(),
                key: issued.key.clone(),
            }),
            client_ca: None,
            ca: Some(ca.ca_file().to_owned()),
            reload_interval: Duration::from_secs(3_600),
        };
        let client = oms_runtime::tls::Tls::mesh("oms-bench", &config)
            .map_err(|e| BenchError::Setup(format!("the bench's certificate: {e}")))?
            .ok_or_else(|| BenchError::Setup("TLS is off".into()))?;
        Ok(Self {
            env: ca.mesh_env(&issued),
            client,
            _ca: std::sync::Arc::new(ca),
        })
    }
}

/// Services reached by name: `<service>.<domain>:<port>`, answered by the
/// name server at `dns` (`OMS_DNS_SERVER`), resolved again every second.
#[derive(Debug, Clone)]
pub struct Names {
    pub dns: SocketAddr,
    pub domain: &'static str,
}

impl Names {
    /// The name of `service` (`product-svc` → `product-svc.<domain>`).
    pub fn of(&self, service: &str) -> String {
        format!("{service}.{}", self.domain)
    }
}

/// The events setting of a mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Events {
    /// Each service's in-process bus (the default).
    InProcess,
    /// Kafka at these brokers.
    Kafka(String),
    /// `OMS_EVENTS=off`: no outbox rows, no relay.
    Off,
}

impl Events {
    /// What the two services that have events get in their environment.
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::InProcess => Vec::new(),
            Self::Kafka(brokers) => vec![("OMS_KAFKA_BROKERS".to_owned(), brokers.clone())],
            Self::Off => vec![("OMS_EVENTS".to_owned(), "off".to_owned())],
        }
    }
}

/// One running service.
pub struct Service {
    pub name: &'static str,
    process: testkit::process::Process,
    /// Where it listens (gRPC, or HTTP for the gateway), as it reported.
    pub addr: SocketAddr,
    /// From spawn to the first SERVING answer (for the gateway: `/readyz` 200).
    pub startup: Duration,
    /// What it was started with, to start it again.
    env: Vec<(String, String)>,
    /// Times it was started again.
    restarts: u32,
    /// Its log files' name: `<log>.log`, then `<log>.<restart>.log`.
    log: String,
}

impl Service {
    /// The process ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.child.id()
    }

    /// `kill -9`, and waits until it is gone.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Starts it again on the address it had (so its peers' channels find
    /// it again) and waits until it is SERVING; a log file per start.
    pub async fn restart(&mut self, options: &MeshOptions) -> Result<(), BenchError> {
        self.process.kill().await;
        self.restarts += 1;
        let mut env = self.env.clone();
        for (name, value) in &mut env {
            if name == addr_variable(self.name) {
                *value = self.addr.to_string();
            }
        }
        let log = format!("{}.{}", self.log, self.restarts);
        let again = spawn_logged(options, self.name, env, &log).await?;
        self.process = again.process;
        self.startup = again.startup;
        Ok(())
    }
}

impl Service {
    /// Another replica of it on `ip`, on the same port (a name's addresses
    /// carry no port) and otherwise the same settings; waits until it is
    /// SERVING.
    pub async fn twin(&self, options: &MeshOptions, ip: IpAddr) -> Result<Self, BenchError> {
        let mut env = self.env.clone();
        for (name, value) in &mut env {
            if name == addr_variable(self.name) {
                *value = SocketAddr::new(ip, self.addr.port()).to_string();
            } else if self.name != "gateway" && name == metrics_variable(self.name) {
                *value = SocketAddr::new(ip, 0).to_string();
            }
        }
        let log = format!("{}-{ip}", self.name);
        spawn_logged(options, self.name, env, &log).await
    }

    /// Where it serves `/metrics` now, as its current process reports it
    /// (a listener announced just after the gRPC one: waited for, at most
    /// 10 s).
    pub async fn metrics_addr(&self) -> Option<SocketAddr> {
        if self.name == "gateway" {
            return Some(self.addr);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = std::fs::read_to_string(&self.process.log).unwrap_or_default();
            if let Some(addr) = testkit::process::listen_addr(&logs, "metrics") {
                return Some(addr);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The variable naming a service's own listen address.
fn addr_variable(service: &str) -> &'static str {
    match service {
        "user-svc" => "USER_SVC_ADDR",
        "product-svc" => "PRODUCT_SVC_ADDR",
        "order-svc" => "ORDER_SVC_ADDR",
        _ => "GATEWAY_ADDR",
    }
}

/// The variable naming a gRPC service's `/metrics` listener (the gateway
/// serves `/metrics` on its own port).
fn metrics_variable(service: &str) -> &'static str {
    match service {
        "user-svc" => "USER_SVC_METRICS_ADDR",
        "product-svc" => "PRODUCT_SVC_METRICS_ADDR",
        _ => "ORDER_SVC_METRICS_ADDR",
    }
}

/// The four services, up.
pub struct Mesh {
    pub user: Service,
    pub product: Service,
    pub order: Service,
    pub gateway: Service,
    pub admin_email: String,
    pub admin_password: String,
    /// order-svc's database, for seeding orders directly.
    pub orders_db: DatabaseUrl,
    /// What [`Mesh::stop`] drops (MariaDB) and the server it is on.
    created_databases: Vec<String>,
    server_url: Option<String>,
    /// How the bench dials it: over mutual TLS when its services serve it.
    tls: Option<oms_runtime::tls::Tls>,
}

fn random_hex(bytes: usize) -> Result<String, BenchError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| BenchError::Setup(format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates one database per service on MariaDB; their names.
pub async fn create_databases(
    server_url: &str,
    prefix: &str,
    names: &[&str],
) -> Result<Vec<String>, BenchError> {
    let run = random_hex(3)?;
    let server = sea_orm::Database::connect(server_url)
        .await
        .map_err(|e| BenchError::Setup(format!("cannot reach MariaDB: {e}")))?;
    let mut created = Vec::new();
    for name in names {
        let db = format!("{prefix}{run}_{name}");
        server
            .execute_unprepared(&format!("CREATE DATABASE `{db}`"))
            .await
            .map_err(|e| BenchError::Setup(format!("cannot create database {db}: {e}")))?;
        created.push(db);
    }
    Ok(created)
}

/// Drops what [`create_databases`] made.
pub async fn drop_databases(server_url: &str, names: &[String]) -> Result<(), BenchError> {
    let server = sea_orm::Database::connect(server_url)
        .await
        .map_err(|e| BenchError::Setup(format!("cannot reach MariaDB: {e}")))?;
    for db in names {
        server
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{db}`"))
            .await
            .map_err(|e| BenchError::Setup(format!("cannot drop database {db}: {e}")))?;
    }
    Ok(())
}

impl Mesh {
    /// Starts the services one after another, each once the one it needs
    /// is SERVING, as compose.yaml orders them.
    pub async fn start(options: &MeshOptions) -> Result<Self, BenchError> {
        std::fs::create_dir_all(&options.work_dir).map_err(|e| {
            BenchError::Setup(format!("cannot create {}: {e}", options.work_dir.display()))
        })?;
        let (database_urls, created_databases, server_url) = match options.backend {
            Backend::Sqlite => {
                let file = |name: &str| {
                    DatabaseUrl::sqlite_file(&options.work_dir.join(format!("{name}.db")))
                };
                (
                    [file("users"), file("products"), file("orders")],
                    Vec::new(),
                    None,
                )
            }
            Backend::Mariadb => {
                let server = options.mysql_url.clone().ok_or_else(|| {
                    BenchError::Setup(
                        "--backends mariadb needs --mysql-url (or OMS_BENCH_MYSQL_URL)".into(),
                    )
                })?;
                let server = server.trim_end_matches('/').to_owned();
                let names = create_databases(
                    &server,
                    &options.db_prefix,
                    &["users", "products", "orders"],
                )
                .await?;
                let url = |db: &str| {
                    DatabaseUrl::parse(&format!("{server}/{db}")).map_err(BenchError::Setup)
                };
                (
                    [url(&names[0])?, url(&names[1])?, url(&names[2])?],
                    names,
                    Some(server),
                )
            }
        };

        match Self::spawn_all(options, database_urls).await {
            Ok(mesh) => Ok(Self {
                created_databases,
                server_url,
                ..mesh
            }),
            Err(e) => {
                // Nothing left behind in the user's MariaDB when a service
                // fails to start (the processes die with their handles).
                if let Some(server) = &server_url {
                    drop_databases(server, &created_databases).await?;
                }
                Err(e)
            }
        }
    }

    /// Starts the four services on `database_urls` (users, products, orders).
    async fn spawn_all(
        options: &MeshOptions,
        database_urls: [DatabaseUrl; 3],
    ) -> Result<Self, BenchError> {
        let signing_key = {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| BenchError::Setup(format!("no randomness: {e}")))?;
            base64::engine::general_purpose::STANDARD.encode(seed)
        };
        let client_secret = random_hex(32)?;
        let product_secret = random_hex(32)?;
        let clients = testkit::clients::env_value(&[
            testkit::clients::ServiceClient::order_svc(&client_secret),
            testkit::clients::ServiceClient::product_svc(&product_secret),
        ]);
        let admin_email = "bench-admin@example.com".to_owned();
        let admin_password = random_hex(12)?;
        let redis_prefix = format!("oms-bench-{}:", random_hex(3)?);

        // Every listener on port 0: each service reports the port it got,
        // and the next one is wired to it (by name, when names are given).
        let any_port = "127.0.0.1:0".to_owned();
        let peer = |service: &str, addr: SocketAddr| match &options.names {
            Some(names) => format!("{}:{}", names.of(service), addr.port()),
            None => addr.to_string(),
        };

        let common = |database: Option<&DatabaseUrl>| {
            let mut env = vec![
                (
                    "RUST_LOG".to_owned(),
                    testkit::process::rust_log(&options.log_level),
                ),
                (
                    "OMS_DATA_DIR".to_owned(),
                    options.work_dir.display().to_string(),
                ),
                ("OMS_REDIS_KEY_PREFIX".to_owned(), redis_prefix.clone()),
            ];
            if let Some(db) = database {
                env.push(("DATABASE_URL".to_owned(), db.expose().to_owned()));
            }
            if let Some(threads) = options.service_threads {
                env.push(("OMS_WORKER_THREADS".to_owned(), threads.to_string()));
            }
            if let Some(redis) = &options.redis_url {
                env.push(("REDIS_URL".to_owned(), redis.clone()));
            }
            if let Some(names) = &options.names {
                env.push(("OMS_DNS_SERVER".to_owned(), names.dns.to_string()));
                env.push(("OMS_RESOLVE_INTERVAL".to_owned(), "1s".to_owned()));
            }
            if let Some(tls) = &options.tls {
                env.extend(tls.env.iter().cloned());
            }
            env.extend(options.extra_env.iter().cloned());
            env
        };
        // Each replica's own `/metrics`, for the replicas scenario's shares.
        let metrics = |service: &str| {
            options
                .names
                .as_ref()
                .map(|_| (metrics_variable(service).to_owned(), any_port.clone()))
        };

        let mut user_env = common(Some(&database_urls[0]));
        user_env.extend([
            ("USER_SVC_ADDR".to_owned(), any_port.clone()),
            ("OMS_JWT_SIGNING_KEYS".to_owned(), signing_key),
            ("OMS_SERVICE_CLIENTS".to_owned(), clients),
            ("OMS_BOOTSTRAP_ADMIN_EMAIL".to_owned(), admin_email.clone()),
            (
                "OMS_BOOTSTRAP_ADMIN_PASSWORD".to_owned(),
                admin_password.clone(),
            ),
            // Every bench client logs in from 127.0.0.1; the per-peer limit
            // (30/min) would turn the Login scenario into a throttling
            // test. The argon2id cost stays.
            (
                "OMS_LOGIN_MAX_ATTEMPTS_PER_PEER".to_owned(),
                "1000000000".to_owned(),
            ),
            // Every bench customer signs up from 127.0.0.1 too.
            ("OMS_REGISTER_MAX_PER_PEER".to_owned(), "1000000".to_owned()),
            // The bench never refreshes; its tokens should not outlive it
            // in a shared Redis by two weeks.
            ("OMS_REFRESH_TOKEN_TTL_SECS".to_owned(), "600".to_owned()),
        ]);
        user_env.extend(metrics("user-svc"));
        let user = spawn(options, "user-svc", user_env).await?;
        let user_addr = peer("user-svc", user.addr);

        let mut product_env = common(Some(&database_urls[1]));
        product_env.extend([
            ("PRODUCT_SVC_ADDR".to_owned(), any_port.clone()),
            ("USER_SVC_ADDR".to_owned(), user_addr.clone()),
            ("OMS_PRODUCT_SVC_CLIENT_SECRET".to_owned(), product_secret),
        ]);
        product_env.extend(options.events.env());
        product_env.extend(metrics("product-svc"));
        let product = spawn(options, "product-svc", product_env).await?;
        let product_addr = peer("product-svc", product.addr);

        let order_to_product = match &options.product_link {
            Some(link) => link.serve(product.addr).await?.to_string(),
            None => product_addr.clone(),
        };
        let mut order_env = common(Some(&database_urls[2]));
        order_env.extend([
            ("ORDER_SVC_ADDR".to_owned(), any_port.clone()),
            ("USER_SVC_ADDR".to_owned(), user_addr.clone()),
            ("PRODUCT_SVC_ADDR".to_owned(), order_to_product),
            ("OMS_ORDER_SVC_CLIENT_ID".to_owned(), "order-svc".to_owned()),
            ("OMS_ORDER_SVC_CLIENT_SECRET".to_owned(), client_secret),
        ]);
        order_env.extend(options.events.env());
        order_env.extend(metrics("order-svc"));
        let order = spawn(options, "order-svc", order_env).await?;

        let mut gateway_env = common(None);
        gateway_env.extend([
            ("GATEWAY_ADDR".to_owned(), any_port),
            ("USER_SVC_ADDR".to_owned(), user_addr),
            ("PRODUCT_SVC_ADDR".to_owned(), product_addr),
            ("ORDER_SVC_ADDR".to_owned(), peer("order-svc", order.addr)),
        ]);
        let gateway = spawn(options, "gateway", gateway_env).await?;

        let [_, _, orders_db] = database_urls;
        Ok(Self {
            user,
            product,
            order,
            gateway,
            admin_email,
            admin_password,
            orders_db,
            created_databases: Vec::new(),
            server_url: None,
            tls: options.tls.as_ref().map(|tls| tls.client.clone()),
        })
    }

    /// The MariaDB server and the databases (users, products, orders),
    /// when the mesh is on MariaDB.
    pub fn mariadb(&self) -> Option<(String, Vec<String>)> {
        Some((self.server_url.clone()?, self.created_databases.clone()))
    }

    /// Every service, for readings across all of them.
    pub fn services(&self) -> [&Service; 4] {
        [&self.user, &self.product, &self.order, &self.gateway]
    }

    /// The mesh's four processes (counted) with the bench's client and a
    /// local MariaDB (reported), for CPU time per operation.
    pub fn cpu_probe(&self) -> crate::procfs::CpuProbe {
        crate::procfs::CpuProbe::new(
            self.services()
                .iter()
                .filter_map(|s| s.pid().map(|pid| (s.name.to_owned(), pid)))
                .collect(),
            crate::procfs::CpuProbe::client_and_database(),
        )
    }

    /// Stops every process and drops the MariaDB databases.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        for service in [
            &mut self.gateway,
            &mut self.order,
            &mut self.product,
            &mut self.user,
        ] {
            service.process.kill().await;
        }
        if let Some(server) = &self.server_url {
            drop_databases(server, &self.created_databases).await?;
        }
        Ok(())
    }
}

/// Spawns `name` on port 0, reads the address it got, and waits (polling,
/// with a deadline) until it is SERVING.
async fn spawn(
    options: &MeshOptions,
    name: &'static str,
    env: Vec<(String, String)>,
) -> Result<Service, BenchError> {
    spawn_logged(options, name, env, name).await
}

/// [`spawn`], its output in `<log>.log`.
async fn spawn_logged(
    options: &MeshOptions,
    name: &'static str,
    env: Vec<(String, String)>,
    log: &str,
) -> Result<Service, BenchError> {
    let binary = options.bin_dir.join(name);
    let log_name = log;
    let log = options.work_dir.join(format!("{log}.log"));
    let began = Instant::now();
    let mut process =
        testkit::process::Process::spawn(name, &binary, env.clone(), log).map_err(|e| {
            BenchError::Setup(format!(
                "{e} (build it first: cargo build --release -p {name})"
            ))
        })?;
    let kind = if name == "gateway" { "http" } else { "grpc" };
    let addr = process
        .wait_listening(kind, Duration::from_secs(60))
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let deadline = began + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = process.child.try_wait() {
            return Err(BenchError::Setup(format!(
                "{name} exited with {status} while starting: {}",
                process.log_tail()
            )));
        }
        let ready = if name == "gateway" {
            crate::http_client::get_status(addr, "/readyz").await == Some(200)
        } else {
            grpc_serving(addr, options.tls.as_ref().map(|tls| &tls.client)).await
        };
        if ready {
            return Ok(Service {
                name,
                process,
                addr,
                startup: began.elapsed(),
                env,
                restarts: 0,
                log: log_name.to_owned(),
            });
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "{name} was not SERVING within 60 s: {}",
                process.log_tail()
            )));
        }
        // A short poll: start-up itself is one of the measurements.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn grpc_serving(addr: SocketAddr, tls: Option<&oms_runtime::tls::Tls>) -> bool {
    let connecting = channel_over(addr, tls);
    let Ok(Ok(channel)) = tokio::time::timeout(Duration::from_secs(1), connecting).await else {
        return false;
    };
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    matches!(reply, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32)
}

impl Service {
    /// The end of its log, for error messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

impl Mesh {
    /// A gRPC channel of its own to `addr`, one of this mesh's services
    /// (one HTTP/2 connection; over mutual TLS when the mesh is).
    pub async fn channel(&self, addr: SocketAddr) -> Result<Channel, BenchError> {
        channel_over(addr, self.tls.as_ref()).await
    }
}

/// [`channel`], over TLS with `tls` (the server's certificate checked for
/// 127.0.0.1) when given.
async fn channel_over(
    addr: SocketAddr,
    tls: Option<&oms_runtime::tls::Tls>,
) -> Result<Channel, BenchError> {
    let Some(tls) = tls else {
        return channel(addr).await;
    };
    let name = oms_runtime::tls::connect::server_name(&addr.ip().to_string())
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .connect_with_connector(oms_runtime::tls::connect::Connector::new(
            addr,
            name,
            tls.clone(),
        ))
        .await
        .map_err(|e| BenchError::Setup(format!("cannot connect to {addr} over TLS: {e}")))
}

/// A gRPC channel of its own to `addr` (one HTTP/2 connection).
pub async fn channel(addr: SocketAddr) -> Result<Channel, BenchError> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| BenchError::Setup(format!("cannot connect to {addr}: {e}")))
}
