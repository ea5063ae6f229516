//! The chaos scenario: the mesh as separate processes on a MariaDB and a
//! Redis of the bench's own (and Kafka: a tansu of its own with `--tansu`,
//! or the brokers given), under a steady mixed load (CreateOrder retried
//! on its request ID as a real client does, CancelOrder, GetProduct by
//! gRPC and through the gateway, Login), one fault at a time — `kill -9`
//! of each service then a restart, MariaDB killed and restarted, Redis
//! stopped, the broker killed, product-svc frozen with SIGSTOP, the link
//! from order-svc to product-svc slowed — then healing. After each fault
//! the load stops, recovery settles, and the databases and the order topic
//! are read to check that no stock, no order and no event was lost
//! ([`crate::invariants`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oms_proto::common::v1::LineItem;
use oms_proto::order::v1::{self as order_pb, order_service_client::OrderServiceClient};
use oms_proto::product::v1::{self as product_pb, product_service_client::ProductServiceClient};
use oms_proto::user::v1::{self as user_pb, auth_service_client::AuthServiceClient};
use oms_runtime::channel::{Balanced, ChannelOptions};
use serde::Serialize;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Code, Status};

use crate::BenchError;
use crate::broker::Broker;
use crate::fixtures::{CUSTOMER_PASSWORD, authed, bearer, create_products, customer, login};
use crate::http_client::HttpClient;
use crate::invariants::{Databases, Expected};
use crate::mesh::{Backend, Events, Mesh, MeshOptions};
use crate::netem::Link;
use testkit::servers::mariadb::MariadbServer;
use testkit::servers::redis::RedisServer;

/// Units each product starts with: more than any run sells.
const INITIAL_STOCK: i64 = 1_000_000;
/// Products the load orders from.
const PRODUCTS: usize = 20;
/// Load before each fault, so the fault hits a mesh in its stride.
const STEADY: Duration = Duration::from_secs(2);
/// Error-free this long after healing counts as recovered.
const QUIET: Duration = Duration::from_secs(2);
/// Healing that takes longer than this is reported as not recovered.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// A client retries a CreateOrder on its request ID for this long.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// Each call's own deadline (a frozen peer must not hang a client).
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Recovery and reservation timings of the mesh under chaos: short, so
/// settling takes seconds, not the production defaults' minutes.
const TIMINGS: [(&str, &str); 5] = [
    ("OMS_ORDER_RECOVERY_SECS", "1"),
    ("OMS_ORDER_RECOVERY_AGE_SECS", "5"),
    ("OMS_ORDER_CALL_TIMEOUT_MS", "1000"),
    ("OMS_RESERVATION_TTL_SECS", "20"),
    ("OMS_RESERVATION_SWEEP_SECS", "1"),
];
/// A RESERVED reservation this long past its expiry breaches (the sweep
/// runs every second).
const EXPIRY_GRACE: Duration = Duration::from_secs(3);

/// One fault, as the report names it.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9`, down for `hold`, started again.
    Kill(Target),
    /// SIGSTOP product-svc for `hold`, then SIGCONT.
    FreezeProductSvc,
    /// Redis killed, down for `hold`, started again on the same data.
    StopRedis,
    /// MariaDB killed, down for `hold`, started again (crash recovery).
    RestartMariadb,
    /// The broker stopped (SIGTERM), down for `hold`, started again on
    /// its storage.
    StopBroker,
    /// Every chunk between order-svc and product-svc held for
    /// [`SLOW_LINK`] each way, for `hold`.
    SlowNetwork,
}

/// The one-way delay of the slow-network fault: a saga's two calls then
/// take 600 ms more, within the mesh's 1 s call timeout under light load.
const SLOW_LINK: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, Copy)]
enum Target {
    User,
    Product,
    Order,
    Gateway,
}

impl Fault {
    fn name(self) -> String {
        match self {
            Self::Kill(target) => format!("kill -9 {}", target.service()),
            Self::FreezeProductSvc => "SIGSTOP product-svc".to_owned(),
            Self::StopRedis => "stop redis".to_owned(),
            Self::RestartMariadb => "kill -9 mariadb, restart".to_owned(),
            Self::StopBroker => "stop kafka broker, restart".to_owned(),
            Self::SlowNetwork => format!(
                "slow network order-svc -> product-svc (+{} ms each way)",
                SLOW_LINK.as_millis()
            ),
        }
    }
}

impl Target {
    fn service(self) -> &'static str {
        match self {
            Self::User => "user-svc",
            Self::Product => "product-svc",
            Self::Order => "order-svc",
            Self::Gateway => "gateway",
        }
    }

    fn of(self, mesh: &mut Mesh) -> &mut crate::mesh::Service {
        match self {
            Self::User => &mut mesh.user,
            Self::Product => &mut mesh.product,
            Self::Order => &mut mesh.order,
            Self::Gateway => &mut mesh.gateway,
        }
    }
}

/// What one fault did to the clients, and whether the data survived it.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosRecord {
    /// e.g. `kill -9 order-svc`, `stop redis`.
    pub fault: String,
    /// Calls made from the load's start to its stop (retries included).
    pub requests: u64,
    /// Calls that failed, by operation and gRPC code (or `http <status>`,
    /// or `transport` when the connection failed).
    pub errors: BTreeMap<String, u64>,
    /// From healing until the last failed call.
    pub recovery_s: f64,
    /// From the load's stop until recovery had settled every order.
    pub settle_s: f64,
    /// Whether every invariant held afterwards.
    pub invariants_held: bool,
    /// The breaches, with their rows; or what was checked.
    pub details: Vec<String>,
}

/// The faults in order; `short` is CI's round (each service killed once,
/// MariaDB and Redis restarted). The broker is stopped only in the full
/// round, when the bench runs one: tansu, the broker it runs, loses events
/// it acknowledged when stopped (BENCHMARKS.md), which CI cannot pass.
fn faults(short: bool, own_broker: bool) -> Vec<(Fault, Duration)> {
    let hold = Duration::from_secs(if short { 2 } else { 4 });
    let mut faults = vec![
        (Fault::Kill(Target::User), hold),
        (Fault::Kill(Target::Product), hold),
        (Fault::Kill(Target::Order), hold),
        (Fault::Kill(Target::Gateway), hold),
        (Fault::RestartMariadb, hold),
        (Fault::StopRedis, hold),
    ];
    if !short {
        if own_broker {
            faults.push((Fault::StopBroker, hold));
        }
        faults.push((Fault::FreezeProductSvc, Duration::from_secs(5)));
        faults.push((Fault::SlowNetwork, Duration::from_secs(5)));
    }
    faults
}

/// The servers the chaos and soak meshes run on, the bench's own so that
/// it can kill them, and the link between order-svc and product-svc.
pub(crate) struct Peers {
    pub(crate) mariadb: MariadbServer,
    pub(crate) redis: RedisServer,
    /// The bench's own broker (`--tansu`).
    broker: Option<Broker>,
    /// The brokers the mesh publishes to, its own or `--kafka-brokers`;
    /// the in-process bus when `None`.
    kafka: Option<String>,
    link: Link,
}

impl Peers {
    /// Starts MariaDB and Redis in `work`, and with `kafka` a broker when
    /// `--tansu` names one (else the mesh uses `--kafka-brokers` if given).
    pub(crate) async fn start(
        args: &crate::cli::RunArgs,
        work: &Path,
        kafka: bool,
    ) -> Result<Self, BenchError> {
        let broker = match (&args.tansu, kafka) {
            (Some(tansu), true) => {
                let s3 = args.s3_endpoint.as_deref().ok_or_else(|| {
                    BenchError::Setup(
                        "--tansu needs --s3-endpoint (or OMS_BENCH_S3_ENDPOINT) for the \
                         broker's storage: in memory it would lose its topics at a restart"
                            .into(),
                    )
                })?;
                Some(Broker::start(tansu.clone(), s3, work.join("broker")).await?)
            }
            _ => None,
        };
        let kafka = match &broker {
            Some(broker) => Some(broker.brokers()),
            None if kafka => args.kafka_brokers.clone(),
            None => None,
        };
        Ok(Self {
            mariadb: MariadbServer::start(work.join("mariadb")).await?,
            redis: RedisServer::start(work.join("redis")).await?,
            broker,
            kafka,
            link: Link::default(),
        })
    }

    /// The brokers the mesh publishes to, if Kafka.
    pub(crate) fn kafka(&self) -> Option<&str> {
        self.kafka.as_deref()
    }

    /// What the mesh runs on, in a line.
    pub(crate) fn describe(&self) -> String {
        format!(
            "its own MariaDB ({}) and Redis ({}), events {}",
            self.mariadb.url(),
            self.redis.url(),
            match (&self.broker, &self.kafka) {
                (Some(_), Some(kafka)) => format!("on its own Kafka broker ({kafka})"),
                (None, Some(kafka)) => format!("on Kafka at {kafka}"),
                _ => "on the in-process bus".to_owned(),
            }
        )
    }

    pub(crate) async fn stop(mut self) {
        if let Some(broker) = &mut self.broker {
            broker.kill().await;
        }
        self.redis.stop().await;
        self.mariadb.kill().await;
    }
}

/// The mesh of the chaos and soak scenarios: on `peers`, with short
/// recovery and reservation timings.
pub(crate) fn chaos_mesh(
    args: &crate::cli::RunArgs,
    bin_dir: &Path,
    work_dir: &Path,
    peers: &Peers,
) -> MeshOptions {
    MeshOptions {
        bin_dir: bin_dir.to_owned(),
        backend: Backend::Mariadb,
        mysql_url: Some(peers.mariadb.url()),
        redis_url: Some(peers.redis.url()),
        db_prefix: args.db_prefix.clone(),
        log_level: args.log_level.clone(),
        service_threads: args.service_threads,
        work_dir: work_dir.to_owned(),
        events: peers.kafka.clone().map_or(Events::InProcess, Events::Kafka),
        extra_env: TIMINGS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        product_link: Some(peers.link.clone()),
        names: None,
        tls: None,
    }
}

/// Runs every fault against one mesh; [`verdict`] tells whether the
/// invariants held.
pub async fn run(
    args: &crate::cli::RunArgs,
    bin_dir: &Path,
    work: &Path,
) -> Result<Vec<ChaosRecord>, BenchError> {
    let mut peers = Peers::start(args, &work.join("chaos-peers"), true).await?;
    let options = chaos_mesh(args, bin_dir, &work.join("chaos"), &peers);
    eprintln!("== chaos: mesh on {}", peers.describe());
    let mesh = Mesh::start(&options).await;
    let mut mesh = match mesh {
        Ok(mesh) => mesh,
        Err(e) => {
            peers.stop().await;
            return Err(e);
        }
    };
    let outcome = faults_on(args, &options, &mut mesh, &mut peers).await;
    if outcome.is_err() {
        for service in mesh.services() {
            eprintln!("{}", service.log_tail());
        }
    }
    let stopped = mesh.stop().await;
    peers.stop().await;
    stopped?;
    let records = outcome?;
    for record in records.iter().filter(|r| !r.invariants_held) {
        eprintln!("invariants broken after {}:", record.fault);
        for detail in &record.details {
            eprintln!("  {detail}");
        }
    }
    Ok(records)
}

/// The faults after which an invariant broke, as an error.
pub fn verdict(records: &[ChaosRecord]) -> Result<(), BenchError> {
    let broken: Vec<&str> = records
        .iter()
        .filter(|r| !r.invariants_held)
        .map(|r| r.fault.as_str())
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Failed(format!(
            "chaos: invariants broken after {}",
            broken.join(", ")
        )))
    }
}

async fn faults_on(
    args: &crate::cli::RunArgs,
    options: &MeshOptions,
    mesh: &mut Mesh,
    peers: &mut Peers,
) -> Result<Vec<ChaosRecord>, BenchError> {
    let load = Arc::new(Load::prepare(mesh, args.clients.clamp(1, 16)).await?);
    let mut checker = Checker::connect(mesh).await?;
    let mut records = Vec::new();
    let chosen = faults(args.smoke, peers.broker.is_some())
        .into_iter()
        .filter(|(fault, _)| {
            args.chaos_only
                .as_deref()
                .is_none_or(|only| fault.name().contains(only))
        });
    for (fault, hold) in chosen {
        eprintln!("  chaos: {}", fault.name());
        let record = one_fault(fault, hold, options, mesh, peers, &load, &mut checker).await?;
        eprintln!(
            "    {} requests, errors {:?}, recovered in {:.1} s, settled in {:.1} s, invariants {}",
            record.requests,
            record.errors,
            record.recovery_s,
            record.settle_s,
            if record.invariants_held {
                "held"
            } else {
                "BROKEN"
            }
        );
        records.push(record);
    }
    Ok(records)
}

async fn one_fault(
    fault: Fault,
    hold: Duration,
    options: &MeshOptions,
    mesh: &mut Mesh,
    peers: &mut Peers,
    load: &Arc<Load>,
    checker: &mut Checker,
) -> Result<ChaosRecord, BenchError> {
    load.reset();
    let running = load.start();

    // A pause, not a wait for a condition: the load runs a while before
    // the fault so that it hits calls in flight.
    tokio::time::sleep(STEADY).await;
    let healing = apply(fault, hold, options, mesh, peers).await;
    let healed_at = Instant::now();
    // Recovered once no call has failed for QUIET since healing.
    loop {
        let last = load.last_failure();
        let since = last.map_or(healed_at, |t| t.max(healed_at));
        if since.elapsed() >= QUIET || healed_at.elapsed() > RECOVERY_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
    healing?;

    let recovery = load
        .last_failure()
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(healed_at));
    let verified = checker.verify(load, peers.kafka.as_deref()).await?;
    let (requests, errors) = load.tally();
    Ok(ChaosRecord {
        fault: fault.name(),
        requests,
        errors,
        recovery_s: recovery.as_secs_f64(),
        settle_s: verified.settle.as_secs_f64(),
        invariants_held: verified.breaches.is_empty(),
        details: verified.details(),
    })
}

/// What is read after each fault, and what earlier checks found lost.
pub(crate) struct Checker {
    databases: Databases,
    /// Order events found missing after an earlier fault (order ID, type):
    /// reported once, where they went missing.
    lost_events: HashSet<(String, String)>,
}

/// What one check found.
pub(crate) struct Verified {
    /// From the load's stop until recovery had settled every order.
    pub(crate) settle: Duration,
    /// The breaches, with their rows.
    pub(crate) breaches: Vec<String>,
    /// What was checked, in a line.
    pub(crate) checked: String,
}

impl Verified {
    /// The breaches, or what was checked when there were none.
    pub(crate) fn details(self) -> Vec<String> {
        if self.breaches.is_empty() {
            vec![self.checked]
        } else {
            self.breaches
        }
    }
}

impl Checker {
    /// Reads the databases of `mesh` (on MariaDB).
    pub(crate) async fn connect(mesh: &Mesh) -> Result<Self, BenchError> {
        let (server, names) = mesh
            .mariadb()
            .ok_or_else(|| BenchError::Setup("the mesh is not on MariaDB".into()))?;
        Ok(Self {
            databases: Databases::connect(&server, &names[1], &names[2]).await?,
            lost_events: HashSet::new(),
        })
    }

    /// Lets recovery settle, then checks every invariant against what
    /// `load` saw (and the order topic on `kafka`).
    pub(crate) async fn verify(
        &mut self,
        load: &Load,
        kafka: Option<&str>,
    ) -> Result<Verified, BenchError> {
        let settle = self.databases.settle(EXPIRY_GRACE).await?;
        let acknowledged = load
            .acknowledged
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default();
        let mut breaches = self
            .databases
            .breaches(&Expected {
                initial_stock: &load.initial_stock,
                acknowledged: &acknowledged,
                expiry_grace: EXPIRY_GRACE,
            })
            .await?;
        let mut checked = format!(
            "stock of {} products, {} acknowledged orders, reservations and request IDs checked",
            load.initial_stock.len(),
            acknowledged.len()
        );
        if let Some(brokers) = kafka {
            let (events, event_breaches) = self
                .databases
                .event_breaches(brokers, &mut self.lost_events)
                .await?;
            breaches.extend(event_breaches);
            checked.push_str(&format!(
                "; {events} order events read back from {}",
                events::ORDER_TOPIC
            ));
        }
        Ok(Verified {
            settle,
            breaches,
            checked,
        })
    }
}

/// Injects `fault`, holds it, heals it.
async fn apply(
    fault: Fault,
    hold: Duration,
    options: &MeshOptions,
    mesh: &mut Mesh,
    peers: &mut Peers,
) -> Result<(), BenchError> {
    match fault {
        Fault::Kill(target) => {
            let service = target.of(mesh);
            service.kill().await;
            tokio::time::sleep(hold).await;
            service.restart(options).await
        }
        Fault::FreezeProductSvc => {
            let pid = mesh
                .product
                .pid()
                .ok_or_else(|| BenchError::Setup("product-svc is not running".into()))?;
            testkit::servers::peer::signal("-STOP", pid)?;
            tokio::time::sleep(hold).await;
            Ok(testkit::servers::peer::signal("-CONT", pid)?)
        }
        Fault::StopRedis => {
            peers.redis.stop().await;
            tokio::time::sleep(hold).await;
            Ok(peers.redis.resume().await?)
        }
        Fault::RestartMariadb => {
            peers.mariadb.kill().await;
            tokio::time::sleep(hold).await;
            Ok(peers.mariadb.resume().await?)
        }
        Fault::StopBroker => {
            let broker = peers
                .broker
                .as_mut()
                .ok_or_else(|| BenchError::Setup("the bench runs no broker".into()))?;
            broker.stop().await;
            tokio::time::sleep(hold).await;
            broker.resume().await
        }
        Fault::SlowNetwork => {
            peers.link.set_delay(SLOW_LINK);
            tokio::time::sleep(hold).await;
            peers.link.set_delay(Duration::ZERO);
            Ok(())
        }
    }
}

/// Where the load's calls go: the mesh's channel to each service (to its
/// one address, or to every replica of its name) and the gateways, which
/// the clients take in turns.
pub(crate) struct Targets {
    pub(crate) user: Balanced,
    pub(crate) product: Balanced,
    pub(crate) order: Balanced,
    pub(crate) gateways: Vec<SocketAddr>,
}

impl Targets {
    /// The services of `mesh` at their addresses.
    pub(crate) fn direct(mesh: &Mesh) -> Result<Self, BenchError> {
        let resolve = oms_config::ResolveConfig::default();
        Ok(Self {
            user: balanced_to(&mesh.user.addr.to_string(), resolve)?,
            product: balanced_to(&mesh.product.addr.to_string(), resolve)?,
            order: balanced_to(&mesh.order.addr.to_string(), resolve)?,
            gateways: vec![mesh.gateway.addr],
        })
    }
}

/// The mesh's own client channel to `peer` (`host:port`), found as
/// `resolve` says.
pub(crate) fn balanced_to(
    peer: &str,
    resolve: oms_config::ResolveConfig,
) -> Result<Balanced, BenchError> {
    let peer = oms_config::PeerAddr::parse(peer).map_err(BenchError::Setup)?;
    oms_runtime::channel::balanced(&peer, &resolve.into(), ChannelOptions::default())
        .map_err(|e| BenchError::Setup(e.to_string()))
}

/// The mixed load's clients and what they saw.
pub(crate) struct Load {
    clients: usize,
    orders: OrderServiceClient<Balanced>,
    catalogue: ProductServiceClient<Balanced>,
    auth: AuthServiceClient<Balanced>,
    /// The gateways the gateway calls take in turns (the replicas
    /// scenario adds one).
    gateways: Mutex<Vec<SocketAddr>>,
    gateway_turn: AtomicU64,
    /// (email, bearer token) per customer.
    customers: Vec<(String, MetadataValue<Ascii>)>,
    products: Vec<String>,
    initial_stock: HashMap<String, i64>,
    /// When each call ended and how: `None` for success, else its error.
    outcomes: Mutex<Vec<(Instant, Option<String>)>>,
    acknowledged: Mutex<HashSet<String>>,
    seq: AtomicU64,
}

/// Whether a client should try the same call again.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Unknown | Code::Internal
    )
}

impl Load {
    /// A catalogue and customers of its own on `mesh`, and channels to it.
    pub(crate) async fn prepare(mesh: &Mesh, clients: usize) -> Result<Self, BenchError> {
        Self::prepare_on(mesh, Targets::direct(mesh)?, clients).await
    }

    /// [`Self::prepare`], the load's calls going to `targets`.
    pub(crate) async fn prepare_on(
        mesh: &Mesh,
        targets: Targets,
        clients: usize,
    ) -> Result<Self, BenchError> {
        let users = mesh.channel(mesh.user.addr).await?;
        let admin = bearer(&login(&users, &mesh.admin_email, &mesh.admin_password).await?)?;
        let mut catalogue = ProductServiceClient::new(mesh.channel(mesh.product.addr).await?);
        let products =
            create_products(&mut catalogue, &admin, "Chaos", PRODUCTS, INITIAL_STOCK).await?;
        let initial_stock = products
            .iter()
            .map(|id| (id.clone(), INITIAL_STOCK))
            .collect();
        let mut customers = Vec::new();
        for i in 0..clients.min(8) {
            let email = format!("chaos-customer-{i}@example.com");
            let (_, token) = customer(&users, &email).await?;
            customers.push((email, bearer(&token)?));
        }
        Ok(Self {
            clients,
            orders: OrderServiceClient::new(targets.order),
            catalogue: ProductServiceClient::new(targets.product),
            auth: AuthServiceClient::new(targets.user),
            gateways: Mutex::new(targets.gateways),
            gateway_turn: AtomicU64::new(0),
            customers,
            products,
            initial_stock,
            outcomes: Mutex::new(Vec::new()),
            acknowledged: Mutex::new(HashSet::new()),
            seq: AtomicU64::new(0),
        })
    }

    /// The gateways the gateway calls take in turns from now on.
    pub(crate) fn set_gateways(&self, gateways: Vec<SocketAddr>) {
        if let Ok(mut current) = self.gateways.lock() {
            *current = gateways;
        }
    }

    /// Forgets the calls recorded so far.
    pub(crate) fn reset(&self) {
        if let Ok(mut outcomes) = self.outcomes.lock() {
            outcomes.clear();
        }
    }

    /// Its clients, calling until [`Running::stop`].
    pub(crate) fn start(self: &Arc<Self>) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..self.clients)
            .map(|client| tokio::spawn(Arc::clone(self).client(client, Arc::clone(&stop))))
            .collect();
        Running { stop, clients }
    }

    /// Records a call of `op`: `None` for success, else what failed.
    fn record(&self, op: &str, error: Option<String>) {
        if let Ok(mut outcomes) = self.outcomes.lock() {
            outcomes.push((Instant::now(), error.map(|e| format!("{op}: {e}"))));
        }
    }

    fn record_status(&self, op: &str, result: Result<(), &Status>) {
        self.record(
            op,
            result.err().map(|status| format!("{:?}", status.code())),
        );
    }

    /// When the last call failed (refusals are answers, not failures).
    pub(crate) fn last_failure(&self) -> Option<Instant> {
        let outcomes = self.outcomes.lock().ok()?;
        outcomes
            .iter()
            .rev()
            .find(|(_, outcome)| outcome.as_deref().is_some_and(is_failure))
            .map(|(at, _)| *at)
    }

    /// Calls made, and the failed ones by operation and code.
    pub(crate) fn tally(&self) -> (u64, BTreeMap<String, u64>) {
        let Ok(outcomes) = self.outcomes.lock() else {
            return (0, BTreeMap::new());
        };
        let mut errors = BTreeMap::new();
        for (_, outcome) in outcomes.iter() {
            if let Some(error) = outcome {
                *errors.entry(error.clone()).or_default() += 1;
            }
        }
        (outcomes.len() as u64, errors)
    }

    /// One client's loop until `stop`.
    async fn client(self: Arc<Self>, client: usize, stop: Arc<AtomicBool>) {
        // One connection per gateway, kept across calls.
        let mut connections: Vec<HttpClient> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            match (seq + client as u64) % 10 {
                0..=4 => self.create_order(client, seq, &stop).await,
                5..=7 => self.get_product(seq).await,
                8 => {
                    let Some(gateway) = self.next_gateway() else {
                        continue;
                    };
                    let at = match connections.iter().position(|c| c.addr() == gateway) {
                        Some(at) => at,
                        None => {
                            connections.push(HttpClient::new(gateway));
                            connections.len() - 1
                        }
                    };
                    if !self
                        .get_product_through_gateway(&mut connections[at], seq)
                        .await
                    {
                        // A fresh connection next time (the gateway may
                        // have been restarted).
                        connections[at] = HttpClient::new(gateway);
                    }
                }
                _ => self.login(client).await,
            }
        }
    }

    /// The gateway the next gateway call goes to. Calls take the gateways
    /// in turns across all clients, as a balancer in front of them would:
    /// taken per client instead, a replica's share followed how fast its
    /// few clients happened to go.
    fn next_gateway(&self) -> Option<SocketAddr> {
        let turn = self.gateway_turn.fetch_add(1, Ordering::Relaxed);
        let gateways = self.gateways.lock().ok()?;
        let index = usize::try_from(turn).unwrap_or(0) % gateways.len().max(1);
        gateways.get(index).copied()
    }

    fn product(&self, seq: u64) -> &str {
        let index = usize::try_from(seq).unwrap_or(0) % self.products.len().max(1);
        self.products.get(index).map_or("", String::as_str)
    }

    /// CreateOrder as a careful client places it: one request ID, retried
    /// on failures until an answer or RETRY_FOR; a third of the confirmed
    /// orders cancelled again.
    async fn create_order(&self, client: usize, seq: u64, stop: &AtomicBool) {
        let (_, token) = &self.customers[client % self.customers.len()];
        let request_id = uuid::Uuid::new_v4().to_string();
        let began = Instant::now();
        loop {
            let mut request = authed(
                order_pb::CreateOrderRequest {
                    lines: vec![LineItem {
                        product_id: self.product(seq).to_owned(),
                        quantity: 1,
                    }],
                    request_id: request_id.clone(),
                    ..Default::default()
                },
                token,
            );
            request.set_timeout(CALL_TIMEOUT);
            match self.orders.clone().create_order(request).await {
                Ok(reply) => {
                    self.record("CreateOrder", None);
                    let Some(order) = reply.into_inner().order else {
                        return;
                    };
                    if let Ok(mut acknowledged) = self.acknowledged.lock() {
                        acknowledged.insert(order.id.clone());
                    }
                    if order.status == order_pb::OrderStatus::Confirmed as i32
                        && seq.is_multiple_of(3)
                    {
                        self.cancel(token, &order.id, stop).await;
                    }
                    return;
                }
                Err(status) => {
                    self.record_status("CreateOrder", Err(&status));
                    if !retryable(status.code()) || began.elapsed() > RETRY_FOR {
                        return;
                    }
                    // The same request ID, a moment later.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn cancel(&self, token: &MetadataValue<Ascii>, order_id: &str, stop: &AtomicBool) {
        let began = Instant::now();
        loop {
            let mut request = authed(
                order_pb::CancelOrderRequest {
                    order_id: order_id.to_owned(),
                    reason: "chaos".to_owned(),
                },
                token,
            );
            request.set_timeout(CALL_TIMEOUT);
            match self.orders.clone().cancel_order(request).await {
                Ok(_) => return self.record("CancelOrder", None),
                Err(status) => {
                    self.record_status("CancelOrder", Err(&status));
                    if !retryable(status.code())
                        || began.elapsed() > RETRY_FOR
                        || stop.load(Ordering::Relaxed)
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// GetProduct, sent once more when the connection failed under it
    /// (UNAVAILABLE, or UNKNOWN for a stream reset: a replica that went
    /// away with the call): a read is safe to repeat.
    async fn get_product(&self, seq: u64) {
        let read = || {
            let mut catalogue = self.catalogue.clone();
            let mut request = tonic::Request::new(product_pb::GetProductRequest {
                product_id: self.product(seq).to_owned(),
            });
            request.set_timeout(CALL_TIMEOUT);
            async move { catalogue.get_product(request).await }
        };
        let mut result = read().await;
        if result
            .as_ref()
            .is_err_and(|s| matches!(s.code(), Code::Unavailable | Code::Unknown))
        {
            // gRPC's retry policy waits too: the channel has a moment to
            // learn that the address is gone.
            tokio::time::sleep(Duration::from_millis(100)).await;
            result = read().await;
        }
        self.record_status("GetProduct", result.as_ref().map(drop));
    }

    /// Whether the connection is still good.
    async fn get_product_through_gateway(&self, http: &mut HttpClient, seq: u64) -> bool {
        let path = format!("/v1/products/{}", self.product(seq));
        let sent = tokio::time::timeout(
            CALL_TIMEOUT,
            http.send(http::Method::GET, &path, None, None),
        )
        .await;
        match sent {
            Ok(Ok(reply)) if reply.status == 200 => {
                self.record(GATEWAY_GET, None);
                true
            }
            Ok(Ok(reply)) => {
                self.record(GATEWAY_GET, Some(format!("http {}", reply.status)));
                true
            }
            _ => {
                self.record(GATEWAY_GET, Some("transport".to_owned()));
                false
            }
        }
    }

    async fn login(&self, client: usize) {
        let (email, _) = &self.customers[client % self.customers.len()];
        let mut request = tonic::Request::new(user_pb::LoginRequest {
            email: email.clone(),
            password: CUSTOMER_PASSWORD.to_owned(),
        });
        request.set_timeout(CALL_TIMEOUT);
        let result = self.auth.clone().login(request).await;
        self.record_status("Login", result.as_ref().map(drop));
    }
}

/// A load's clients at work.
pub(crate) struct Running {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the clients and waits until each has ended its call.
    pub(crate) async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            let _ = client.await;
        }
    }
}

/// GetProduct through the gateway, as the report names it.
const GATEWAY_GET: &str = "GET /v1/products/{id}";

/// Whether a recorded error (`<op>: <code>`) is a failure, not a refusal.
fn is_failure(error: &str) -> bool {
    let error = error.rsplit(": ").next().unwrap_or(error);
    ![
        Code::FailedPrecondition,
        Code::NotFound,
        Code::InvalidArgument,
        Code::AlreadyExists,
    ]
    .iter()
    .any(|code| error == format!("{code:?}"))
        && !error.starts_with("http 4")
}
