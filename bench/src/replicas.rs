//! The replicas scenario: two replicas of user-svc, product-svc and
//! order-svc and two gateways, each replica on a loopback address of its
//! own (127.0.0.1, .2, .3) on its service's port, found by name through a
//! real DNS server (dnsmasq, its hosts file rewritten and re-read on
//! SIGHUP) that every service's channels and the bench's own ask
//! (`OMS_DNS_SERVER`). On the chaos scenario's MariaDB, Redis and broker
//! and under its mixed load, it measures 1+1+1 against 2+2+2 in the same
//! run, each replica's share of its service's calls (read from the
//! replica's own `/metrics`), a product-svc replica killed and started
//! again, a third added to DNS, and a product-svc consumer killed, with
//! the chaos invariants checked after each step.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::BenchError;
use crate::chaos::{Checker, Load, Peers, Targets, balanced_to, chaos_mesh};
use crate::mesh::{Mesh, MeshOptions, Names, Service};

/// The names' domain.
const DOMAIN: &str = "oms.bench";
/// A replica's share of its service's calls must lie in this range.
const FAIR_SHARE: (f64, f64) = (0.35, 0.65);
/// A restarted replica must be back to a fair share within this.
const RETURN_WITHIN: Duration = Duration::from_secs(10);
/// A replica added to DNS must serve this share within [`JOIN_WITHIN`].
const JOINED_SHARE: f64 = 0.20;
const JOIN_WITHIN: Duration = Duration::from_secs(15);
/// 2+2+2 may be this much slower than 1+1+1 (on two cores it cannot be
/// faster: every replica shares them).
const LEAST_THROUGHPUT_RATIO: f64 = 0.9;
/// Shares are read over windows this long while waiting for a replica.
const PROBE: Duration = Duration::from_secs(1);
/// A killed product-svc consumer stays down longer than the group's
/// session (6 s), so its partitions move while it is gone.
const CONSUMER_DOWN: Duration = Duration::from_secs(8);

/// One step of the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaRecord {
    /// e.g. `2+2+2`, `kill -9 product-svc@127.0.0.2`.
    pub step: String,
    /// Each replica's share of its service's calls during the step
    /// (`product-svc@127.0.0.2` → 0.49).
    pub shares: BTreeMap<String, f64>,
    /// Calls the load made, and the successful ones per second.
    pub requests: u64,
    pub throughput_per_s: f64,
    /// Failed calls by operation and code.
    pub errors: BTreeMap<String, u64>,
    /// How long the step's replica took to take its share (restart, join).
    pub recovery_s: Option<f64>,
    /// Whether every chaos invariant held after the step.
    pub invariants_held: bool,
    /// The step's targets that were missed; empty when all were met.
    pub missed: Vec<String>,
    /// The breaches, or what was checked.
    pub details: Vec<String>,
}

/// One replica: which service, where, and the process.
struct Replica {
    label: String,
    service: Service,
}

impl Replica {
    fn new(service: Service) -> Self {
        Self {
            label: label(&service),
            service,
        }
    }
}

/// `product-svc@127.0.0.2`.
fn label(service: &Service) -> String {
    format!("{}@{}", service.name, service.addr.ip())
}

/// Runs the scenario; [`verdict`] tells whether its targets were met.
pub async fn run(
    args: &crate::cli::RunArgs,
    bin_dir: &Path,
    work: &Path,
) -> Result<Vec<ReplicaRecord>, BenchError> {
    let dnsmasq = args.dnsmasq.as_deref().ok_or_else(|| {
        BenchError::Setup(
            "the replicas scenario needs dnsmasq: --dnsmasq (or OMS_BENCH_DNSMASQ), e.g. \
             `scripts/ensure-tools dnsmasq`"
                .into(),
        )
    })?;
    let peers = Peers::start(args, &work.join("replicas-peers"), true).await?;
    let first = IpAddr::from([127, 0, 0, 1]);
    let names = hosts(&[
        ("user-svc", first),
        ("product-svc", first),
        ("order-svc", first),
    ]);
    let dns =
        match testkit::Dnsmasq::start_program(&dnsmasq.display().to_string(), &borrowed(&names))
            .await
        {
            Ok(dns) => dns,
            Err(e) => {
                peers.stop().await;
                return Err(BenchError::Setup(e));
            }
        };
    let mut options = chaos_mesh(args, bin_dir, &work.join("replicas"), &peers);
    options.product_link = None;
    options.names = Some(Names {
        dns: dns.addr(),
        domain: DOMAIN,
    });
    eprintln!(
        "== replicas: mesh on {}, names answered by dnsmasq at {}",
        peers.describe(),
        dns.addr()
    );
    let mut mesh = match Mesh::start(&options).await {
        Ok(mesh) => mesh,
        Err(e) => {
            peers.stop().await;
            return Err(e);
        }
    };
    let mut twins = Vec::new();
    let outcome = steps(args, &options, &mut mesh, &mut twins, &dns, &peers).await;
    if outcome.is_err() {
        for service in mesh.services() {
            eprintln!("{}", service.log_tail());
        }
    }
    for twin in &mut twins {
        twin.service.kill().await;
    }
    let stopped = mesh.stop().await;
    peers.stop().await;
    stopped?;
    outcome
}

/// The targets missed in `records`, as an error.
pub fn verdict(records: &[ReplicaRecord]) -> Result<(), BenchError> {
    let missed: Vec<String> = records
        .iter()
        .flat_map(|r| {
            let broken = (!r.invariants_held).then(|| format!("{}: invariants broken", r.step));
            r.missed
                .iter()
                .map(move |m| format!("{}: {m}", r.step))
                .chain(broken)
        })
        .collect();
    if missed.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Failed(format!(
            "replicas: {}",
            missed.join("; ")
        )))
    }
}

/// The hosts file's lines for `(service, address)`.
fn hosts(entries: &[(&str, IpAddr)]) -> Vec<(IpAddr, String)> {
    entries
        .iter()
        .map(|(service, ip)| (*ip, format!("{service}.{DOMAIN}")))
        .collect()
}

/// The lines as testkit's dnsmasq takes them.
fn borrowed(hosts: &[(IpAddr, String)]) -> Vec<(IpAddr, &str)> {
    hosts
        .iter()
        .map(|(ip, name)| (*ip, name.as_str()))
        .collect()
}

/// Tells `dns` the addresses of each service's replicas in `replicas`
/// (gateways are not named: clients are given them).
fn publish(dns: &testkit::Dnsmasq, replicas: &[Probe]) -> Result<(), BenchError> {
    let entries: Vec<(&str, IpAddr)> = replicas
        .iter()
        .filter(|r| r.service != "gateway")
        .map(|r| (r.service, r.ip))
        .collect();
    dns.try_set_hosts(&borrowed(&hosts(&entries)))
        .map_err(BenchError::Setup)
}

async fn steps(
    args: &crate::cli::RunArgs,
    options: &MeshOptions,
    mesh: &mut Mesh,
    twins: &mut Vec<Replica>,
    dns: &testkit::Dnsmasq,
    peers: &Peers,
) -> Result<Vec<ReplicaRecord>, BenchError> {
    let window = if args.smoke {
        Duration::from_secs(5)
    } else {
        args.duration.max(Duration::from_secs(10))
    };
    let resolve = oms_config::ResolveConfig {
        interval: Duration::from_secs(1),
        dns_server: Some(dns.addr()),
    };
    let by_name = |service: &Service| {
        balanced_to(
            &format!("{}.{DOMAIN}:{}", service.name, service.addr.port()),
            resolve,
        )
    };
    let targets = Targets {
        user: by_name(&mesh.user)?,
        product: by_name(&mesh.product)?,
        order: by_name(&mesh.order)?,
        gateways: vec![mesh.gateway.addr],
    };
    let load = Arc::new(Load::prepare_on(mesh, targets, args.clients.clamp(8, 16)).await?);
    let mut checker = Checker::connect(mesh).await?;
    let kafka = peers.kafka();
    let mut records = Vec::new();

    // 1+1+1: the names answer one address each. A warm-up first (caches,
    // tokens, connections), so the first window is not the only cold one.
    eprintln!("  replicas: 1+1+1");
    measure(&load, args.warmup.max(Duration::from_secs(1)), &[]).await?;
    let single = measure(&load, window, &probes(mesh.services()).await).await?;
    let one = single.record("1+1+1", &load, &mut checker, kafka).await?;
    let baseline = one.throughput_per_s;
    records.push(one);

    // 2+2+2: a twin of each on 127.0.0.2, added to the names; two gateways.
    eprintln!("  replicas: 2+2+2");
    let second = IpAddr::from([127, 0, 0, 2]);
    for service in [&mesh.user, &mesh.product, &mesh.order, &mesh.gateway] {
        twins.push(Replica::new(service.twin(options, second).await?));
    }
    let all = probes(everyone(mesh, twins)).await;
    publish(dns, &all)?;
    load.set_gateways(vec![mesh.gateway.addr, twins[3].service.addr]);
    let labels: Vec<&str> = twins.iter().map(|t| t.label.as_str()).collect();
    serving(&load, &all, &labels, JOIN_WITHIN).await?;
    let both = measure(&load, window, &all).await?;
    let mut two = both.record("2+2+2", &load, &mut checker, kafka).await?;
    let ratio = two.throughput_per_s / baseline.max(f64::MIN_POSITIVE);
    // A smoke round's windows are seconds of a debug build: its ratio is
    // shown, and judged only in a full run.
    if ratio < LEAST_THROUGHPUT_RATIO && !args.smoke {
        two.missed.push(format!(
            "throughput {:.0}/s is {ratio:.2} × 1+1+1's {baseline:.0}/s (< {LEAST_THROUGHPUT_RATIO})",
            two.throughput_per_s
        ));
    }
    two.details
        .push(format!("throughput 2+2+2 / 1+1+1 = {ratio:.2}"));
    records.push(two);

    // kill -9 of product-svc's twin: reads go on (sent again once at most),
    // orders retried on their request IDs are all accounted for, and the
    // twin takes its share again soon after it is back.
    let step = format!("kill -9 {}, restart", twins[1].label);
    eprintln!("  replicas: {step}");
    load.reset();
    let running = load.start();
    let before = counts(&all).await;
    // Paced, not waits for a condition: the kill hits calls in flight, and
    // the twin stays down for two seconds of load.
    tokio::time::sleep(Duration::from_secs(1)).await;
    twins[1].service.kill().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    twins[1].service.restart(options).await?;
    let restarted = Instant::now();
    // The restarted twin has a `/metrics` port of its own.
    let all = probes(everyone(mesh, twins)).await;
    let back = poll_share(&all, &twins[1].label, FAIR_SHARE.0, RETURN_WITHIN).await;
    running.stop().await;
    let after = counts(&all).await;
    // The shares over the whole step include the twin's time down: shown,
    // not judged.
    let mut killed = Window {
        shares: shares(&all, &before, &after),
        judged: false,
        elapsed: restarted.elapsed() + Duration::from_secs(3),
        recovery: back.map(|at| at.saturating_duration_since(restarted)),
    }
    .record(&step, &load, &mut checker, kafka)
    .await?;
    if back.is_none() {
        killed.missed.push(format!(
            "{} not back to {:.0} % within {} s of its restart",
            twins[1].label,
            FAIR_SHARE.0 * 100.0,
            RETURN_WITHIN.as_secs()
        ));
    }
    let read_errors: u64 = killed
        .errors
        .iter()
        .filter(|(e, _)| e.starts_with("GetProduct"))
        .map(|(_, n)| n)
        .sum();
    if read_errors > 0 {
        killed.missed.push(format!(
            "{read_errors} GetProduct calls failed even when sent again"
        ));
    }
    records.push(killed);

    // A third product-svc replica, added to the name.
    let third = IpAddr::from([127, 0, 0, 3]);
    let added = Replica::new(mesh.product.twin(options, third).await?);
    let step = format!("{} added to DNS", added.label);
    eprintln!("  replicas: {step}");
    twins.push(added);
    let all = probes(everyone(mesh, twins)).await;
    load.reset();
    let running = load.start();
    let began = Instant::now();
    publish(dns, &all)?;
    let joined = poll_share(&all, &twins[4].label, JOINED_SHARE, JOIN_WITHIN).await;
    running.stop().await;
    let mut join = Window {
        shares: BTreeMap::new(),
        judged: false,
        elapsed: began.elapsed(),
        recovery: joined.map(|at| at.saturating_duration_since(began)),
    }
    .record(&step, &load, &mut checker, kafka)
    .await?;
    if joined.is_none() {
        join.missed.push(format!(
            "{} did not serve {:.0} % within {} s",
            twins[4].label,
            JOINED_SHARE * 100.0,
            JOIN_WITHIN.as_secs()
        ));
    }
    records.push(join);

    // A product-svc consumer killed while orders are cancelled: its
    // partitions move, every cancelled order's stock comes back once.
    let step = format!("kill -9 consumer {}", label(&mesh.product));
    eprintln!("  replicas: {step}");
    load.reset();
    let running = load.start();
    let began = Instant::now();
    mesh.product.kill().await;
    // Down for longer than the group session, then a second of load on
    // the restarted member: paced, not waits for a condition.
    tokio::time::sleep(CONSUMER_DOWN).await;
    mesh.product.restart(options).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.stop().await;
    let consumer = Window {
        shares: BTreeMap::new(),
        judged: false,
        elapsed: began.elapsed(),
        recovery: None,
    }
    .record(&step, &load, &mut checker, kafka)
    .await?;
    records.push(consumer);
    Ok(records)
}

/// Where the calls of each of `services` are counted.
async fn probes<'a>(services: impl IntoIterator<Item = &'a Service>) -> Vec<Probe> {
    let mut probes = Vec::new();
    for service in services {
        probes.push(Probe::of(service).await);
    }
    probes
}

/// The mesh's services and the twins.
fn everyone<'a>(mesh: &'a Mesh, twins: &'a [Replica]) -> impl Iterator<Item = &'a Service> {
    mesh.services()
        .into_iter()
        .chain(twins.iter().map(|t| &t.service))
}

/// Where one replica's calls are counted.
#[derive(Debug, Clone)]
struct Probe {
    label: String,
    service: &'static str,
    ip: IpAddr,
    metrics: Option<SocketAddr>,
}

impl Probe {
    async fn of(service: &Service) -> Self {
        Self {
            label: label(service),
            service: service.name,
            ip: service.addr.ip(),
            metrics: service.metrics_addr().await,
        }
    }
}

/// What one measured window saw.
struct Window {
    shares: BTreeMap<String, f64>,
    /// Whether each share must lie in [`FAIR_SHARE`].
    judged: bool,
    elapsed: Duration,
    recovery: Option<Duration>,
}

impl Window {
    /// The step's record: the load's tally, the shares checked against
    /// the fair range, the invariants.
    async fn record(
        self,
        step: &str,
        load: &Load,
        checker: &mut Checker,
        kafka: Option<&str>,
    ) -> Result<ReplicaRecord, BenchError> {
        let (requests, errors) = load.tally();
        let failed: u64 = errors.values().sum();
        let verified = checker.verify(load, kafka).await?;
        let missed = self
            .shares
            .iter()
            .filter(|_| self.judged)
            .filter(|(_, share)| !(FAIR_SHARE.0..=FAIR_SHARE.1).contains(*share))
            .map(|(label, share)| {
                format!(
                    "{label} served {:.0} % of its service's calls, outside {:.0}–{:.0} %",
                    share * 100.0,
                    FAIR_SHARE.0 * 100.0,
                    FAIR_SHARE.1 * 100.0
                )
            })
            .collect();
        Ok(ReplicaRecord {
            step: step.to_owned(),
            shares: self.shares,
            requests,
            throughput_per_s: requests.saturating_sub(failed) as f64
                / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
            errors,
            recovery_s: self.recovery.map(|d| d.as_secs_f64()),
            invariants_held: verified.breaches.is_empty(),
            missed,
            details: verified.details(),
        })
    }
}

/// Runs the load for `window` and reads every replica's share of its
/// service's calls.
async fn measure(
    load: &Arc<Load>,
    window: Duration,
    replicas: &[Probe],
) -> Result<Window, BenchError> {
    load.reset();
    let before = counts(replicas).await;
    let began = Instant::now();
    let running = load.start();
    // The measured window itself, not a wait for a condition.
    tokio::time::sleep(window).await;
    running.stop().await;
    let elapsed = began.elapsed();
    let after = counts(replicas).await;
    Ok(Window {
        shares: shares(replicas, &before, &after),
        judged: true,
        elapsed,
        recovery: None,
    })
}

/// Runs the load until each of `labels` has served calls over a
/// [`PROBE`] window, at most `within` for all.
async fn serving(
    load: &Arc<Load>,
    replicas: &[Probe],
    labels: &[&str],
    within: Duration,
) -> Result<(), BenchError> {
    let running = load.start();
    let began = Instant::now();
    let mut late = None;
    for label in labels {
        let left = within.saturating_sub(began.elapsed());
        if poll_share(replicas, label, f64::MIN_POSITIVE, left)
            .await
            .is_none()
        {
            late = Some(*label);
            break;
        }
    }
    running.stop().await;
    match late {
        None => Ok(()),
        Some(label) => Err(BenchError::Setup(format!(
            "{label} took no calls within {} s of being added",
            within.as_secs()
        ))),
    }
}

/// When `label` first served at least `least` of its service's calls over
/// a [`PROBE`] window (while a load runs), if within `within`.
async fn poll_share(
    replicas: &[Probe],
    label: &str,
    least: f64,
    within: Duration,
) -> Option<Instant> {
    let began = Instant::now();
    let mut before = counts(replicas).await;
    while began.elapsed() < within {
        // One probe window of calls, then the shares over it.
        tokio::time::sleep(PROBE).await;
        let after = counts(replicas).await;
        let share = shares(replicas, &before, &after)
            .get(label)
            .copied()
            .unwrap_or(0.0);
        if share >= least {
            return Some(Instant::now());
        }
        before = after;
    }
    None
}

/// Each replica's count of served calls now (`None` while unreachable).
async fn counts(replicas: &[Probe]) -> Vec<Option<u64>> {
    let mut counts = Vec::with_capacity(replicas.len());
    for replica in replicas {
        counts.push(match replica.metrics {
            Some(addr) => served(addr, replica.service).await,
            None => None,
        });
    }
    counts
}

/// Each replica's share of its service's calls between two readings.
fn shares(
    replicas: &[Probe],
    before: &[Option<u64>],
    after: &[Option<u64>],
) -> BTreeMap<String, f64> {
    let delta = |i: usize| match (
        before.get(i).copied().flatten(),
        after.get(i).copied().flatten(),
    ) {
        // A restarted replica counts from zero again.
        (Some(b), Some(a)) if a >= b => a - b,
        (_, Some(a)) => a,
        _ => 0,
    };
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, replica) in replicas.iter().enumerate() {
        *total.entry(replica.service).or_default() += delta(i);
    }
    replicas
        .iter()
        .enumerate()
        .filter(|(_, r)| replicas.iter().filter(|o| o.service == r.service).count() > 1)
        .map(|(i, r)| {
            let all = total.get(r.service).copied().unwrap_or(0).max(1);
            (r.label.clone(), delta(i) as f64 / all as f64)
        })
        .collect()
}

/// The calls a replica has served, from its `/metrics`: every gRPC call
/// it handled, or for a gateway every API request (not its own
/// `/metrics` and probes).
async fn served(metrics: SocketAddr, service: &str) -> Option<u64> {
    let mut client = crate::http_client::HttpClient::new(metrics);
    let reply = tokio::time::timeout(
        Duration::from_secs(2),
        client.send(http::Method::GET, "/metrics", None, None),
    )
    .await
    .ok()?
    .ok()?;
    if reply.status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&reply.body);
    let (name, skip): (&str, &[&str]) = if service == "gateway" {
        (
            "http_server_requests_total{",
            &[
                "route=\"/metrics\"",
                "route=\"/readyz\"",
                "route=\"/healthz\"",
            ],
        )
    } else {
        ("grpc_server_handled_total{", &["grpc.health.v1"])
    };
    Some(
        text.lines()
            .filter(|line| line.starts_with(name))
            .filter(|line| !skip.iter().any(|s| line.contains(s)))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum(),
    )
}
