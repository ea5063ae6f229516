//! The scenarios: what each one sets up and which operation it drives.
//! [`run`] goes through them for every backend and hands the numbers to
//! the report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use oms_proto::common::v1::LineItem;
use oms_proto::order::v1::{self as order_pb, order_service_client::OrderServiceClient};
use oms_proto::product::v1::{self as product_pb, product_service_client::ProductServiceClient};
use oms_proto::user::v1::{self as user_pb, auth_service_client::AuthServiceClient};
use tokio::sync::Mutex;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::BenchError;
use crate::cli::{RunArgs, Scenario};
use crate::driver::{Load, Op, Stats, alternate, op, run_once};
use crate::fixtures::{CUSTOMER_PASSWORD, authed, bearer, create_products, customer, login};
use crate::http_client::{HttpClient, Protocol};
use crate::mesh::{Backend, Events, Mesh, MeshOptions, channel};
use crate::procfs::CpuProbe;
use crate::report::{
    BASELINE_GATEWAY, BASELINE_GRPC, CEILING, DB_CEILING, EVENTS_OFF, FORWARDER, FORWARDER_H2,
    Footprint, Report, RunRecord, table_label,
};

/// ListOrders page size: page 100 exists with 10^3 orders.
const PAGE_SIZE: i32 = 10;
/// The customer whose orders are listed owns this many in both tables.
const PAGER_ORDERS: u64 = 1000;

/// Where the service binaries are: `--bin-dir`, or beside oms-bench.
fn bin_dir(args: &RunArgs) -> Result<PathBuf, BenchError> {
    match &args.bin_dir {
        Some(dir) => Ok(dir.clone()),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .ok_or_else(|| {
                BenchError::Setup(
                    "cannot tell where the service binaries are; pass --bin-dir".into(),
                )
            }),
    }
}

/// Runs the selected scenarios on every backend, then reports.
pub async fn run(args: RunArgs) -> Result<(), BenchError> {
    let bin_dir = bin_dir(&args)?;
    // Read before the run, so a wrong path fails in a second, not after it.
    let old = args
        .compare
        .as_deref()
        .map(crate::compare::load)
        .transpose()?;
    let load = Load {
        clients: args.clients.max(1),
        duration: args.duration,
        count: args.count,
        warmup: args.warmup,
    };
    let work = std::env::temp_dir().join(format!("oms-bench-{}", uuid::Uuid::new_v4().simple()));
    let mut report = Report::new(load, &args, &bin_dir);
    let wants = |s: Scenario| args.scenarios.contains(&s);

    // The ceiling server lives through the whole run: its rounds take
    // turns with GetProduct's on every backend.
    let ceiling = if wants(Scenario::Ceiling) {
        Some(Ceiling::start(load).await?)
    } else {
        None
    };
    let needs_mesh = args.scenarios.iter().any(|s| {
        !matches!(
            s,
            Scenario::Ceiling
                | Scenario::DbCeiling
                | Scenario::Chaos
                | Scenario::Soak
                | Scenario::Replicas
        )
    });
    if !needs_mesh && let Some(ceiling) = &ceiling {
        in_turns(&mut report, vec![ceiling.turn()], load, 1, None).await;
    }
    for &backend in &args.backends {
        if needs_mesh {
            let options = MeshOptions {
                bin_dir: bin_dir.clone(),
                backend,
                mysql_url: Some(args.mysql_url.clone()),
                redis_url: args.redis_url.clone(),
                db_prefix: args.db_prefix.clone(),
                log_level: args.log_level.clone(),
                service_threads: args.service_threads,
                work_dir: work.join(backend.name()),
                events: Events::InProcess,
                extra_env: Vec::new(),
                product_link: None,
                names: None,
                tls: None,
            };
            eprintln!(
                "== mesh on {} (binaries from {})",
                backend.name(),
                bin_dir.display()
            );
            let mesh = Mesh::start(&options).await?;
            let outcome = on_mesh(
                &mut report,
                &args,
                load,
                &options,
                &mesh,
                ceiling.as_ref(),
                &work,
            )
            .await;
            if outcome.is_err() {
                for service in mesh.services() {
                    eprintln!("{}", service.log_tail());
                }
            }
            mesh.stop().await?;
            outcome?;
        } else if wants(Scenario::DbCeiling) {
            let db = DbCeilingRun::prepare(&args, backend, &work).await?;
            in_turns(&mut report, vec![db.turn()], load, 1, Some(backend)).await;
            db.finish(&args).await?;
        }
    }
    if wants(Scenario::Chaos) {
        report.chaos = crate::chaos::run(&args, &bin_dir, &work).await?;
    }
    if wants(Scenario::Replicas) {
        report.replicas = crate::replicas::run(&args, &bin_dir, &work).await?;
    }
    if wants(Scenario::Soak) {
        let plot = args.out.with_extension("soak-rss.svg");
        report.soak = Some(crate::soak::run(&args, &bin_dir, &work, args.soak_for, &plot).await?);
    }
    if let Some(ceiling) = &ceiling {
        let rss = ceiling.server.pid().and_then(crate::procfs::rss_mib);
        report.note(format!(
            "ceiling server RSS after its runs: {:.1} MiB",
            rss.unwrap_or(0.0)
        ));
    }
    // A broken invariant is investigated from the services' logs: keep them.
    if crate::chaos::verdict(&report.chaos).is_ok()
        && crate::replicas::verdict(&report.replicas).is_ok()
    {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("the chaos run's logs are kept in {}", work.display());
    }
    report.finish();
    report.print();
    report.write(&args.out)?;
    eprintln!("results written to {}", args.out.display());
    if let (Some(path), Some(old)) = (&args.compare, &old) {
        let now = serde_json::to_value(&report)
            .map_err(|e| BenchError::Setup(format!("cannot compare: {e}")))?;
        println!(
            "\n## Beside {}\n\n{}",
            path.display(),
            crate::compare::tables(old, &now)
        );
    }
    // Numbers from failing operations mean nothing: say so in the exit code.
    let failed: Vec<String> = report
        .runs
        .iter()
        .filter(|r| r.stats.errors > 0 || r.stats.ok == 0)
        .map(|r| {
            format!(
                "{} {} via {} ({} errors, first: {})",
                r.scenario,
                r.variant,
                r.via,
                r.stats.errors,
                r.stats.first_error.as_deref().unwrap_or("none")
            )
        })
        .collect();
    if !failed.is_empty() {
        return Err(BenchError::Failed(failed.join("; ")));
    }
    crate::chaos::verdict(&report.chaos)?;
    crate::replicas::verdict(&report.replicas)?;
    crate::soak::verdict(report.soak.as_ref())
}

/// `oms-bench mesh`: one mesh with the bench's fixture, held up for tools
/// of the user's own until Ctrl-C (SIGINT).
pub async fn hold_mesh(args: RunArgs) -> Result<(), BenchError> {
    let bin_dir = bin_dir(&args)?;
    let backend = args.backends.first().copied().unwrap_or(Backend::Sqlite);
    let work = std::env::temp_dir().join(format!("oms-bench-{}", uuid::Uuid::new_v4().simple()));
    let options = MeshOptions {
        bin_dir,
        backend,
        mysql_url: Some(args.mysql_url.clone()),
        redis_url: args.redis_url.clone(),
        db_prefix: args.db_prefix.clone(),
        log_level: args.log_level.clone(),
        service_threads: args.service_threads,
        work_dir: work.join(backend.name()),
        events: match &args.kafka_brokers {
            Some(brokers) => Events::Kafka(brokers.clone()),
            None => Events::InProcess,
        },
        extra_env: Vec::new(),
        product_link: None,
        names: None,
        tls: None,
    };
    let mesh = Mesh::start(&options).await?;
    let prepared = fixture(&args, &mesh).await;
    if let Ok(prepared) = &prepared {
        warm(&mesh, prepared).await?;
        println!("gateway      http://{}", mesh.gateway.addr);
        println!("user-svc     {}", mesh.user.addr);
        println!("product-svc  {}", mesh.product.addr);
        println!("order-svc    {}", mesh.order.addr);
        println!(
            "a product    http://{}/v1/products/{}",
            mesh.gateway.addr,
            prepared.products.first().map_or("", String::as_str)
        );
        println!(
            "a customer   Bearer {}",
            prepared.customer_tokens.first().map_or("", String::as_str)
        );
        println!("logs         {}", work.display());
        println!("(Ctrl-C or SIGINT stops it)");
        let _ = tokio::signal::ctrl_c().await;
    }
    mesh.stop().await?;
    let _ = std::fs::remove_dir_all(&work);
    prepared.map(drop)
}

/// One operation of a set that takes turns, and the report row it makes.
struct Turn {
    label: String,
    op: Op,
    row: (&'static str, String, &'static str),
    probe: Option<CpuProbe>,
}

impl Turn {
    fn new(label: impl Into<String>, op: Op) -> Self {
        Self {
            label: label.into(),
            op,
            row: ("", String::new(), ""),
            probe: None,
        }
    }

    /// Charges the CPU time of `probe`'s processes to this operation.
    fn charging(mut self, probe: CpuProbe) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The report's scenario, variant and transport for this operation.
    fn records(mut self, scenario: &'static str, variant: &str, via: &'static str) -> Self {
        self.row = (scenario, variant.to_owned(), via);
        self
    }
}

/// Runs `turns` alternately for `rounds` rounds and reports each.
async fn in_turns(
    report: &mut Report,
    turns: Vec<Turn>,
    load: Load,
    rounds: u32,
    backend: Option<Backend>,
) {
    let (rows, ops): (Vec<_>, Vec<_>) = turns
        .into_iter()
        .map(|t| (t.row, (t.label, t.op, t.probe)))
        .unzip();
    for ((scenario, variant, via), stats) in
        rows.into_iter().zip(alternate(ops, load, rounds).await)
    {
        report.add(RunRecord::new(
            scenario, &variant, via, backend, load, stats,
        ));
    }
}

/// The ceiling server and a connection per client.
struct Ceiling {
    server: crate::ceiling::HelperProcess,
    clients: Arc<Vec<crate::ceiling::pb::ceiling_client::CeilingClient<Channel>>>,
}

impl Ceiling {
    async fn start(load: Load) -> Result<Self, BenchError> {
        let server = crate::ceiling::HelperProcess::ceiling().await?;
        let clients = grpc_clients(
            server.addr,
            load,
            crate::ceiling::pb::ceiling_client::CeilingClient::new,
        )
        .await?;
        Ok(Self { server, clients })
    }

    fn turn(&self) -> Turn {
        let clients = self.clients.clone();
        let ping = op(move |c, _| {
            let mut client = clients[c].clone();
            async move { client.ping(()).await.map(drop).map_err(|s| s.to_string()) }
        });
        let probe = CpuProbe::new(
            self.server
                .pid()
                .map(|pid| ("ceiling-server".to_owned(), pid))
                .into_iter()
                .collect(),
            CpuProbe::client_and_database(),
        );
        Turn::new("ceiling: empty RPC (plain tonic)", ping)
            .records("ceiling", CEILING, "grpc")
            .charging(probe)
    }
}

/// What the mesh scenarios share: tokens, products, connections.
#[derive(Clone)]
struct Fixture {
    /// When the customers' access tokens were issued (they live 15 min).
    issued: std::time::Instant,
    products: Arc<Vec<String>>,
    hot_product: String,
    customers: Arc<Vec<(String, MetadataValue<Ascii>)>>,
    customer_tokens: Arc<Vec<String>>,
}

type Customers = (Vec<(String, MetadataValue<Ascii>)>, Vec<String>);

/// Up to 8 customers (registered first when `register`), logged in.
async fn customers_logged_in(
    users: &Channel,
    clients: usize,
    register: bool,
) -> Result<Customers, BenchError> {
    let mut customers = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..clients.clamp(1, 8) {
        let email = format!("bench-customer-{i}@example.com");
        let token = if register {
            customer(users, &email).await?.1
        } else {
            login(users, &email, CUSTOMER_PASSWORD).await?
        };
        customers.push((email, bearer(&token)?));
        tokens.push(token);
    }
    Ok((customers, tokens))
}

impl Fixture {
    /// Fresh access tokens once the old ones are 5 minutes old, so long
    /// runs never send expired ones.
    async fn renewed(&mut self, mesh: &Mesh, clients: usize) -> Result<&Self, BenchError> {
        if self.issued.elapsed() > std::time::Duration::from_secs(300) {
            let users = mesh.channel(mesh.user.addr).await?;
            let (customers, tokens) = customers_logged_in(&users, clients, false).await?;
            self.customers = Arc::new(customers);
            self.customer_tokens = Arc::new(tokens);
            self.issued = std::time::Instant::now();
        }
        Ok(self)
    }
}

async fn fixture(args: &RunArgs, mesh: &Mesh) -> Result<Fixture, BenchError> {
    let users = mesh.channel(mesh.user.addr).await?;
    let admin = bearer(&login(&users, &mesh.admin_email, &mesh.admin_password).await?)?;
    let mut catalogue = ProductServiceClient::new(mesh.channel(mesh.product.addr).await?);
    // Enough stock that no run sells out: the runs measure placing orders,
    // not refusing them.
    let mut products = create_products(
        &mut catalogue,
        &admin,
        "Bench",
        args.products.max(5) + 1,
        1_000_000_000,
    )
    .await?;
    let hot_product = products.pop().unwrap_or_default();
    let (customers, tokens) = customers_logged_in(&users, args.clients, true).await?;
    Ok(Fixture {
        issued: std::time::Instant::now(),
        products: Arc::new(products),
        hot_product,
        customers: Arc::new(customers),
        customer_tokens: Arc::new(tokens),
    })
}

async fn on_mesh(
    report: &mut Report,
    args: &RunArgs,
    load: Load,
    options: &MeshOptions,
    mesh: &Mesh,
    ceiling: Option<&Ceiling>,
    work: &std::path::Path,
) -> Result<(), BenchError> {
    let wants = |s: Scenario| args.scenarios.contains(&s);
    let backend = options.backend;
    let mut footprint: Vec<Footprint> = mesh
        .services()
        .iter()
        .map(|s| Footprint::at_start(backend, s.name, s.startup, s.pid()))
        .collect();
    let mut fixture = fixture(args, mesh).await?;
    let on = Some(backend);

    // Another build's mesh, whose runs take turns with this one's.
    let mut baseline = match &args.baseline_bin_dir {
        Some(dir) if wants(Scenario::GetProduct) || wants(Scenario::CreateOrder) => {
            let options = MeshOptions {
                bin_dir: dir.clone(),
                work_dir: options
                    .work_dir
                    .with_file_name(format!("{}-baseline", backend.name())),
                ..options.clone()
            };
            eprintln!(
                "== baseline mesh on {} (binaries from {})",
                backend.name(),
                dir.display()
            );
            let started = Mesh::start(&options).await?;
            match self::fixture(args, &started).await {
                Ok(prepared) => Some((started, prepared)),
                Err(e) => {
                    started.stop().await?;
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    let outcome = mesh_runs(
        report,
        args,
        load,
        (mesh, &mut fixture),
        baseline.as_mut().map(|(m, f)| (&*m, f)),
        ceiling,
        work,
        backend,
    )
    .await;
    if let Some((started, _)) = baseline {
        started.stop().await?;
    }
    outcome?;

    if wants(Scenario::Events) {
        events_cost(report, args, load, options, mesh, &mut fixture).await?;
    }

    if wants(Scenario::Tls) {
        tls_cost(report, args, load, options, mesh, &mut fixture).await?;
    }

    if wants(Scenario::ListOrders) {
        list_orders(report, args, load, backend, mesh, &fixture).await?;
    }

    if wants(Scenario::Login) {
        let stats = run_once(
            "Login (argon2id)",
            load,
            login_op(mesh, &fixture, load).await?,
            Some(&mesh.cpu_probe()),
        )
        .await;
        report.add(RunRecord::new(
            "login",
            "argon2id verify",
            "grpc",
            on,
            load,
            stats,
        ));
    }

    if wants(Scenario::Footprint) {
        for (entry, service) in footprint.iter_mut().zip(mesh.services()) {
            entry.after_load(service.pid());
        }
        report.footprint.extend(footprint);
    }
    Ok(())
}

/// GetProduct and CreateOrder (with the DB ceiling), on this mesh and, given
/// one, on the baseline mesh in the same turns.
#[allow(clippy::too_many_arguments)]
async fn mesh_runs(
    report: &mut Report,
    args: &RunArgs,
    load: Load,
    (mesh, fixture): (&Mesh, &mut Fixture),
    mut baseline: Option<(&Mesh, &mut Fixture)>,
    ceiling: Option<&Ceiling>,
    work: &std::path::Path,
    backend: Backend,
) -> Result<(), BenchError> {
    let wants = |s: Scenario| args.scenarios.contains(&s);
    let on = Some(backend);
    if wants(Scenario::GetProduct) {
        warm(mesh, fixture).await?;
        let forwarder = crate::ceiling::HelperProcess::start(
            "forwarder",
            &[
                "forwarder",
                "--addr",
                "127.0.0.1:0",
                "--product",
                &mesh.product.addr.to_string(),
            ],
        )
        .await?;
        // The mesh's processes and the forwarder's, so both turns are
        // charged the same idle services.
        let with_forwarder = || {
            let mut services: Vec<(String, u32)> = mesh
                .services()
                .iter()
                .filter_map(|s| s.pid().map(|pid| (s.name.to_owned(), pid)))
                .collect();
            services.extend(forwarder.pid().map(|pid| ("forwarder".to_owned(), pid)));
            CpuProbe::new(services, CpuProbe::client_and_database())
        };
        let mut turns = vec![
            Turn::new(
                "GetProduct forwarder",
                get_product_http_at(forwarder.addr, fixture, load, Protocol::Http1),
            )
            .records("get-product", "cache warm", FORWARDER)
            .charging(with_forwarder()),
            Turn::new(
                "GetProduct forwarder HTTP/2",
                get_product_http_at(forwarder.addr, fixture, load, Protocol::H2c),
            )
            .records("get-product", "cache warm", FORWARDER_H2)
            .charging(with_forwarder()),
            Turn::new(
                "GetProduct gRPC",
                get_product_grpc(mesh, fixture, load).await?,
            )
            .records("get-product", "cache warm", "grpc")
            .charging(mesh.cpu_probe()),
            Turn::new(
                "GetProduct gateway",
                get_product_http(mesh, fixture, load, Protocol::Http1),
            )
            .records("get-product", "cache warm", "gateway")
            .charging(with_forwarder()),
            Turn::new(
                "GetProduct gateway HTTP/2",
                get_product_http(mesh, fixture, load, Protocol::H2c),
            )
            .records("get-product", "cache warm", crate::report::GATEWAY_H2)
            .charging(with_forwarder()),
        ];
        if let Some((other, prepared)) = baseline.as_ref() {
            let (other, prepared): (&Mesh, &Fixture) = (other, prepared);
            warm(other, prepared).await?;
            turns.push(
                Turn::new(
                    "GetProduct gRPC, baseline",
                    get_product_grpc(other, prepared, load).await?,
                )
                .records("get-product", "cache warm", BASELINE_GRPC)
                .charging(other.cpu_probe()),
            );
            turns.push(
                Turn::new(
                    "GetProduct gateway, baseline",
                    get_product_http(other, prepared, load, Protocol::Http1),
                )
                .records("get-product", "cache warm", BASELINE_GATEWAY)
                .charging(other.cpu_probe()),
            );
        }
        if let Some(ceiling) = ceiling {
            turns.push(ceiling.turn());
        }
        in_turns(report, turns, load, args.rounds, on).await;
    } else if let Some(ceiling) = ceiling {
        in_turns(report, vec![ceiling.turn()], load, 1, on).await;
    }

    // CreateOrder's 1-line runs take turns with the DB ceiling's (on
    // databases of its own, the mesh idle meanwhile): that ratio is the one
    // the target is stated in.
    let db = if wants(Scenario::DbCeiling) {
        Some(DbCeilingRun::prepare(args, backend, work).await?)
    } else {
        None
    };
    if wants(Scenario::CreateOrder) {
        for (variant, lines) in [
            ("1 line", Lines::One),
            ("5 lines", Lines::Five),
            ("hot product", Lines::Hot),
        ] {
            let fresh = fixture.renewed(mesh, load.clients).await?;
            let mut turns = vec![
                Turn::new(
                    format!("CreateOrder {variant} gRPC"),
                    create_order_grpc(mesh, fresh, load, lines).await?,
                )
                .records("create-order", variant, "grpc")
                .charging(mesh.cpu_probe()),
                Turn::new(
                    format!("CreateOrder {variant} gateway"),
                    create_order_http(mesh, fresh, load, lines),
                )
                .records("create-order", variant, "gateway")
                .charging(mesh.cpu_probe()),
            ];
            if let (Lines::One, Some((other, prepared))) = (lines, baseline.as_mut()) {
                let other: &Mesh = other;
                let prepared = prepared.renewed(other, load.clients).await?;
                turns.push(
                    Turn::new(
                        format!("CreateOrder {variant} gRPC, baseline"),
                        create_order_grpc(other, prepared, load, lines).await?,
                    )
                    .records("create-order", variant, BASELINE_GRPC)
                    .charging(other.cpu_probe()),
                );
            }
            if let (Lines::One, Some(db)) = (lines, &db) {
                turns.push(db.turn());
            }
            in_turns(report, turns, load, args.rounds, on).await;
        }
    } else if let Some(db) = &db {
        in_turns(report, vec![db.turn()], load, 1, on).await;
    }
    if wants(Scenario::CreateOrder)
        && let Some((server, databases)) = mesh.mariadb()
    {
        statements_per_order(
            report,
            load,
            (mesh, fixture),
            db.as_ref(),
            &server,
            &databases,
        )
        .await?;
    }
    if let Some(db) = db {
        db.finish(args).await?;
    }

    Ok(())
}

/// Orders placed in each statement count: enough that the mesh's idle
/// statements (relay polls, health checks) add under 0.05 per order.
const STATEMENT_ORDERS: u64 = 2000;

/// MariaDB's statements per order: CreateOrder (1 line, gRPC) alone on the
/// mesh, counted until both outboxes are empty, then the DB ceiling's
/// loop alone, each for [`STATEMENT_ORDERS`] operations (a twentieth in
/// a smoke run).
async fn statements_per_order(
    report: &mut Report,
    load: Load,
    (mesh, fixture): (&Mesh, &mut Fixture),
    db: Option<&DbCeilingRun>,
    server_url: &str,
    databases: &[String],
) -> Result<(), BenchError> {
    let server = crate::statements::Server::connect(server_url).await?;
    // users, products, orders: the two that keep an outbox.
    let outboxes: Vec<String> = databases
        .iter()
        .skip(1)
        .map(|db| format!("`{db}`.outbox"))
        .collect();
    // A smoke run (windows under a second) only checks that counting works.
    let orders = if load.duration >= std::time::Duration::from_secs(5) {
        STATEMENT_ORDERS
    } else {
        STATEMENT_ORDERS / 20
    };
    let counted = Load {
        count: Some(orders),
        warmup: std::time::Duration::ZERO,
        ..load
    };
    let fresh = fixture.renewed(mesh, load.clients).await?;
    let mut runs = vec![(
        "CreateOrder 1 line gRPC".to_owned(),
        create_order_grpc(mesh, fresh, counted, Lines::One).await?,
        outboxes,
    )];
    if let Some(db) = db {
        let outboxes = db.created.iter().map(|d| format!("`{d}`.outbox")).collect();
        runs.push((db.label.clone(), db.ceiling.op(), outboxes));
    }
    for (operation, op, outboxes) in runs {
        server.wait_empty(&outboxes, PUBLISHED_WITHIN).await?;
        let before = server.counters().await?;
        let stats = run_once(&operation, counted, op, None).await;
        server.wait_empty(&outboxes, PUBLISHED_WITHIN).await?;
        let after = server.counters().await?;
        report.statements.push(crate::statements::StatementRecord {
            per_op: after.per_op(&before, stats.ok),
            operation,
            ops: stats.ok,
        });
    }
    Ok(())
}

/// How long an order's events may take to leave the outbox after it.
const PUBLISHED_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Every product read once, so the runs read the cache.
async fn warm(mesh: &Mesh, fixture: &Fixture) -> Result<(), BenchError> {
    let mut catalogue = ProductServiceClient::new(mesh.channel(mesh.product.addr).await?);
    for id in fixture.products.iter() {
        catalogue
            .get_product(product_pb::GetProductRequest {
                product_id: id.clone(),
            })
            .await
            .map_err(BenchError::call("warm the product cache"))?;
    }
    Ok(())
}

/// What the outbox costs: CreateOrder (1 line, gRPC) on this mesh (events
/// on, in process) in turns with the same on a mesh with events off and,
/// given brokers, on one publishing to Kafka. The meshes are alike but
/// for `OMS_EVENTS`/`OMS_KAFKA_BROKERS`, on the same backend.
async fn events_cost(
    report: &mut Report,
    args: &RunArgs,
    load: Load,
    options: &MeshOptions,
    mesh: &Mesh,
    fixture_on: &mut Fixture,
) -> Result<(), BenchError> {
    let backend = options.backend;
    let mut settings = vec![(EVENTS_OFF, Events::Off)];
    if let Some(brokers) = &args.kafka_brokers {
        settings.push(("kafka", Events::Kafka(brokers.clone())));
    }
    let mut others = Vec::new();
    for (name, events) in settings {
        let other = MeshOptions {
            events,
            work_dir: options
                .work_dir
                .with_file_name(format!("{}-events-{name}", backend.name())),
            ..options.clone()
        };
        eprintln!("== mesh on {} with events {name}", backend.name());
        let started = Mesh::start(&other).await?;
        let prepared = fixture(args, &started).await;
        match prepared {
            Ok(prepared) => others.push((name, started, prepared)),
            Err(e) => {
                started.stop().await?;
                return Err(e);
            }
        }
    }
    let fresh = fixture_on.renewed(mesh, load.clients).await?;
    let mut turns = vec![
        Turn::new(
            "CreateOrder 1 line, events in process",
            create_order_grpc(mesh, fresh, load, Lines::One).await?,
        )
        .records("events", "in process", "grpc")
        .charging(mesh.cpu_probe()),
    ];
    for (name, other, prepared) in &others {
        turns.push(
            Turn::new(
                format!("CreateOrder 1 line, events {name}"),
                create_order_grpc(other, prepared, load, Lines::One).await?,
            )
            .records("events", name, "grpc")
            .charging(other.cpu_probe()),
        );
    }
    in_turns(report, turns, load, args.rounds, Some(backend)).await;
    for (_, other, _) in others {
        other.stop().await?;
    }
    Ok(())
}

/// What mutual TLS costs: GetProduct (cache warm) and CreateOrder (1
/// line) over gRPC on this mesh in turns with the same on a mesh alike
/// but for mutual TLS on every link, the bench's connections included
/// (each client keeps its connection, as a real one would: the handshake
/// is paid once, the encryption on every call).
async fn tls_cost(
    report: &mut Report,
    args: &RunArgs,
    load: Load,
    options: &MeshOptions,
    mesh: &Mesh,
    fixture_plain: &mut Fixture,
) -> Result<(), BenchError> {
    let backend = options.backend;
    let sealed_options = MeshOptions {
        tls: Some(crate::mesh::MeshTls::new()?),
        work_dir: options
            .work_dir
            .with_file_name(format!("{}-mutual-tls", backend.name())),
        ..options.clone()
    };
    eprintln!("== mesh on {} with mutual TLS", backend.name());
    let sealed = Mesh::start(&sealed_options).await?;
    let outcome = async {
        let mut fixture_sealed = fixture(args, &sealed).await?;
        warm(mesh, fixture_plain).await?;
        warm(&sealed, &fixture_sealed).await?;
        let turns = vec![
            Turn::new(
                "GetProduct gRPC, plaintext",
                get_product_grpc(mesh, fixture_plain, load).await?,
            )
            .records("tls", "GetProduct", "grpc")
            .charging(mesh.cpu_probe()),
            Turn::new(
                "GetProduct gRPC, mutual TLS",
                get_product_grpc(&sealed, &fixture_sealed, load).await?,
            )
            .records("tls", "GetProduct", crate::report::GRPC_MTLS)
            .charging(sealed.cpu_probe()),
        ];
        in_turns(report, turns, load, args.rounds, Some(backend)).await;
        let plain = fixture_plain.renewed(mesh, load.clients).await?;
        let turns = vec![
            Turn::new(
                "CreateOrder 1 line gRPC, plaintext",
                create_order_grpc(mesh, plain, load, Lines::One).await?,
            )
            .records("tls", "CreateOrder 1 line", "grpc")
            .charging(mesh.cpu_probe()),
            Turn::new(
                "CreateOrder 1 line gRPC, mutual TLS",
                create_order_grpc(
                    &sealed,
                    fixture_sealed.renewed(&sealed, load.clients).await?,
                    load,
                    Lines::One,
                )
                .await?,
            )
            .records("tls", "CreateOrder 1 line", crate::report::GRPC_MTLS)
            .charging(sealed.cpu_probe()),
        ];
        in_turns(report, turns, load, args.rounds, Some(backend)).await;
        Ok::<(), BenchError>(())
    }
    .await;
    sealed.stop().await?;
    outcome
}

/// `clients` gRPC clients, one connection each.
async fn grpc_clients<C>(
    addr: std::net::SocketAddr,
    load: Load,
    make: impl Fn(Channel) -> C,
) -> Result<Arc<Vec<C>>, BenchError> {
    let mut clients = Vec::with_capacity(load.clients);
    for _ in 0..load.clients {
        clients.push(make(channel(addr).await?));
    }
    Ok(Arc::new(clients))
}

/// [`grpc_clients`] of `mesh`'s service at `addr`, dialled as the mesh
/// is (over mutual TLS when it is).
async fn mesh_clients<C>(
    mesh: &Mesh,
    addr: std::net::SocketAddr,
    load: Load,
    make: impl Fn(Channel) -> C,
) -> Result<Arc<Vec<C>>, BenchError> {
    let mut clients = Vec::with_capacity(load.clients);
    for _ in 0..load.clients {
        clients.push(make(mesh.channel(addr).await?));
    }
    Ok(Arc::new(clients))
}

/// `clients` connections to the gateway (HTTP/1.1 keep-alive, or h2c).
fn http_clients(addr: SocketAddr, load: Load, protocol: Protocol) -> Arc<Vec<Mutex<HttpClient>>> {
    Arc::new(
        (0..load.clients)
            .map(|_| Mutex::new(HttpClient::speaking(addr, protocol)))
            .collect(),
    )
}

/// Spreads clients over the products: client `c`'s `seq`-th pick.
pub(crate) fn pick(products: &[String], client: usize, seq: u64) -> usize {
    let n = products.len().max(1) as u64;
    usize::try_from((client as u64 * 7919 + seq * 13) % n).unwrap_or(0)
}

async fn get_product_grpc(mesh: &Mesh, fixture: &Fixture, load: Load) -> Result<Op, BenchError> {
    let clients = mesh_clients(mesh, mesh.product.addr, load, ProductServiceClient::new).await?;
    let products = fixture.products.clone();
    Ok(op(move |c, seq| {
        let mut client = clients[c].clone();
        let product_id = products[pick(&products, c, seq)].clone();
        async move {
            let product = client
                .get_product(product_pb::GetProductRequest {
                    product_id: product_id.clone(),
                })
                .await
                .map_err(|s| s.to_string())?
                .into_inner()
                .product;
            match product {
                Some(p) if p.id == product_id => Ok(()),
                other => Err(format!("GetProduct answered {other:?}")),
            }
        }
    }))
}

fn get_product_http(mesh: &Mesh, fixture: &Fixture, load: Load, protocol: Protocol) -> Op {
    get_product_http_at(mesh.gateway.addr, fixture, load, protocol)
}

/// GetProduct as `GET /v1/products/{id}` to `addr` (the gateway, or the
/// bare forwarder).
fn get_product_http_at(addr: SocketAddr, fixture: &Fixture, load: Load, protocol: Protocol) -> Op {
    let clients = http_clients(addr, load, protocol);
    let products = fixture.products.clone();
    op(move |c, seq| {
        let clients = clients.clone();
        let path = format!("/v1/products/{}", products[pick(&products, c, seq)]);
        async move {
            let reply = clients[c]
                .lock()
                .await
                .send(http::Method::GET, &path, None, None)
                .await?;
            if reply.status == 200 {
                Ok(())
            } else {
                Err(format!(
                    "GET {path}: {} {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ))
            }
        }
    })
}

#[derive(Debug, Clone, Copy)]
enum Lines {
    /// One line, a different product each time.
    One,
    /// Five distinct products.
    Five,
    /// One line, always the same product: one hot row.
    Hot,
}

fn order_lines(fixture: &Fixture, lines: Lines, client: usize, seq: u64) -> Vec<LineItem> {
    let products = &fixture.products;
    let line = |product_id: &str| LineItem {
        product_id: product_id.to_owned(),
        quantity: 1,
    };
    match lines {
        Lines::One => vec![line(&products[pick(products, client, seq)])],
        Lines::Five => {
            let first = pick(products, client, seq);
            (0..5)
                .map(|k| line(&products[(first + k) % products.len()]))
                .collect()
        }
        Lines::Hot => vec![line(&fixture.hot_product)],
    }
}

async fn create_order_grpc(
    mesh: &Mesh,
    fixture: &Fixture,
    load: Load,
    lines: Lines,
) -> Result<Op, BenchError> {
    let clients = mesh_clients(mesh, mesh.order.addr, load, OrderServiceClient::new).await?;
    let fixture = Arc::new(fixture.clone());
    Ok(op(move |c, seq| {
        let mut client = clients[c].clone();
        let token = &fixture.customers[c % fixture.customers.len()].1;
        let request = authed(
            order_pb::CreateOrderRequest {
                lines: order_lines(&fixture, lines, c, seq),
                request_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            },
            token,
        );
        async move {
            let order = client
                .create_order(request)
                .await
                .map_err(|s| s.to_string())?
                .into_inner()
                .order;
            match order {
                Some(o) if o.status == order_pb::OrderStatus::Confirmed as i32 => Ok(()),
                other => Err(format!("CreateOrder answered {other:?}")),
            }
        }
    }))
}

fn create_order_http(mesh: &Mesh, fixture: &Fixture, load: Load, lines: Lines) -> Op {
    let clients = http_clients(mesh.gateway.addr, load, Protocol::Http1);
    let fixture = Arc::new(fixture.clone());
    op(move |c, seq| {
        let clients = clients.clone();
        let token = fixture.customer_tokens[c % fixture.customer_tokens.len()].clone();
        let lines: Vec<serde_json::Value> = order_lines(&fixture, lines, c, seq)
            .into_iter()
            .map(|l| serde_json::json!({ "productId": l.product_id, "quantity": l.quantity }))
            .collect();
        let body =
            serde_json::json!({ "lines": lines, "requestId": uuid::Uuid::new_v4().to_string() });
        async move {
            let reply = clients[c]
                .lock()
                .await
                .send(
                    http::Method::POST,
                    "/v1/orders",
                    Some(&token),
                    Some(Bytes::from(body.to_string())),
                )
                .await?;
            let confirmed = reply
                .body
                .windows(22)
                .any(|w| w == b"ORDER_STATUS_CONFIRMED");
            if reply.status == 200 && confirmed {
                Ok(())
            } else {
                Err(format!(
                    "POST /v1/orders: {} {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ))
            }
        }
    })
}

async fn login_op(mesh: &Mesh, fixture: &Fixture, load: Load) -> Result<Op, BenchError> {
    let clients = mesh_clients(mesh, mesh.user.addr, load, AuthServiceClient::new).await?;
    let emails: Arc<Vec<String>> = Arc::new(
        fixture
            .customers
            .iter()
            .map(|(email, _)| email.clone())
            .collect(),
    );
    Ok(op(move |c, _| {
        let mut client = clients[c].clone();
        let email = emails[c % emails.len()].clone();
        async move {
            let reply = client
                .login(user_pb::LoginRequest {
                    email,
                    password: CUSTOMER_PASSWORD.to_owned(),
                })
                .await
                .map_err(|s| s.to_string())?
                .into_inner();
            if reply.access_token.is_empty() {
                Err("Login answered without a token".to_owned())
            } else {
                Ok(())
            }
        }
    }))
}

/// The page token of page `page` (1-based) of the caller's orders.
async fn page_token(
    client: &mut OrderServiceClient<Channel>,
    token: &MetadataValue<Ascii>,
    page: u32,
) -> Result<String, BenchError> {
    let mut page_token = String::new();
    for _ in 1..page {
        page_token = client
            .list_orders(authed(
                order_pb::ListOrdersRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map_err(BenchError::call("walk the order pages"))?
            .into_inner()
            .next_page_token;
        if page_token.is_empty() {
            return Err(BenchError::Setup(format!(
                "the orders ran out before page {page}"
            )));
        }
    }
    Ok(page_token)
}

fn list_page(
    clients: Arc<Vec<OrderServiceClient<Channel>>>,
    token: MetadataValue<Ascii>,
    page_token: String,
) -> Op {
    op(move |c, _| {
        let mut client = clients[c].clone();
        let request = authed(
            order_pb::ListOrdersRequest {
                page_size: PAGE_SIZE,
                page_token: page_token.clone(),
                ..Default::default()
            },
            &token,
        );
        async move {
            let orders = client
                .list_orders(request)
                .await
                .map_err(|s| s.to_string())?
                .into_inner()
                .orders;
            if orders.len() == PAGE_SIZE as usize {
                Ok(())
            } else {
                Err(format!(
                    "a page of {} orders, not {PAGE_SIZE}",
                    orders.len()
                ))
            }
        }
    })
}

async fn list_orders(
    report: &mut Report,
    args: &RunArgs,
    load: Load,
    backend: Backend,
    mesh: &Mesh,
    fixture: &Fixture,
) -> Result<(), BenchError> {
    let users = mesh.channel(mesh.user.addr).await?;
    let pager_email = "bench-pager@example.com";
    let (pager_id, _) = customer(&users, pager_email).await?;
    let seeder = crate::seed::Seeder::connect(&mesh.orders_db, fixture.products[0].clone()).await?;
    let clients = mesh_clients(mesh, mesh.order.addr, load, OrderServiceClient::new).await?;
    let mut walker = OrderServiceClient::new(mesh.channel(mesh.order.addr).await?);

    eprintln!("  seeding {PAGER_ORDERS} orders of one customer");
    seeder.orders(Some(&pager_id), PAGER_ORDERS).await?;
    let mut table = PAGER_ORDERS;
    for target in [PAGER_ORDERS, args.big_table.max(PAGER_ORDERS)] {
        if target > table {
            eprintln!(
                "  seeding {} orders of other customers (table: {target})",
                target - table
            );
            seeder.orders(None, target - table).await?;
            table = target;
        }
        // Seeding a large table can outlast an access token.
        let pager = bearer(&login(&users, pager_email, CUSTOMER_PASSWORD).await?)?;
        let size = table_label(table);
        for page in [1u32, 100] {
            let page_token = page_token(&mut walker, &pager, page).await?;
            let variant = format!("{size} orders, page {page}");
            let stats: Stats = run_once(
                &format!("ListOrders {variant}"),
                load,
                list_page(clients.clone(), pager.clone(), page_token),
                Some(&mesh.cpu_probe()),
            )
            .await;
            let mut record =
                RunRecord::new("list-orders", &variant, "grpc", Some(backend), load, stats);
            record.table_rows = Some(table);
            report.add(record);
        }
        if target == PAGER_ORDERS && args.big_table <= PAGER_ORDERS {
            break;
        }
    }
    Ok(())
}

/// The DB ceiling on databases of its own, and what to drop afterwards.
struct DbCeilingRun {
    ceiling: Arc<crate::db_ceiling::DbCeiling>,
    label: String,
    created: Vec<String>,
}

impl DbCeilingRun {
    async fn prepare(
        args: &RunArgs,
        backend: Backend,
        work: &std::path::Path,
    ) -> Result<Self, BenchError> {
        let (urls, created) = match backend {
            Backend::Sqlite => {
                let dir = work.join("db-ceiling");
                let file = |name: &str| {
                    oms_config::DatabaseUrl::sqlite_file(&dir.join(format!("{name}.db")))
                };
                ([file("orders"), file("products")], Vec::new())
            }
            Backend::Mariadb => {
                let server = args.mysql_url.trim_end_matches('/');
                let names = crate::mesh::create_databases(
                    server,
                    &args.db_prefix,
                    &["ceil_orders", "ceil_products"],
                )
                .await?;
                let url = |db: &str| {
                    oms_config::DatabaseUrl::parse(&format!("{server}/{db}"))
                        .map_err(BenchError::Setup)
                };
                ([url(&names[0])?, url(&names[1])?], names)
            }
        };
        let redis = args
            .redis_url
            .as_deref()
            .map(oms_config::RedisUrl::parse)
            .transpose()
            .map_err(BenchError::Setup)?;
        match crate::db_ceiling::DbCeiling::prepare(&urls[0], &urls[1], redis.as_ref()).await {
            Ok(ceiling) => Ok(Self {
                ceiling: Arc::new(ceiling),
                label: format!("DB ceiling ({}): the saga, no RPCs", backend.name()),
                created,
            }),
            Err(e) => {
                if !created.is_empty() {
                    crate::mesh::drop_databases(args.mysql_url.trim_end_matches('/'), &created)
                        .await?;
                }
                Err(e)
            }
        }
    }

    fn turn(&self) -> Turn {
        // The loop runs in the bench's own process: that is its "service".
        let probe = CpuProbe::new(
            vec![("oms-bench".to_owned(), std::process::id())],
            CpuProbe::client_and_database()
                .into_iter()
                .filter(|(name, _)| name != "oms-bench")
                .collect(),
        );
        Turn::new(self.label.clone(), self.ceiling.op())
            .records("db-ceiling", DB_CEILING, "sea-orm")
            .charging(probe)
    }

    /// Drops the MariaDB databases (SQLite files go with the work dir).
    async fn finish(self, args: &RunArgs) -> Result<(), BenchError> {
        if !self.created.is_empty() {
            crate::mesh::drop_databases(args.mysql_url.trim_end_matches('/'), &self.created)
                .await?;
        }
        Ok(())
    }
}
