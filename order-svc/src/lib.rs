//! order-svc: orders, placed through a saga that reserves and commits stock
//! in product-svc with a service token from user-svc.
//!
//! - [`config`]: what the service reads from the environment.
//! - `api`: the gRPC layer (`oms.order.v1` OrderService).
//! - [`model`]: what an order is (domain values).
//! - [`orders`]: the order rules and the CreateOrder saga.
//! - [`recovery`]: finishes what a crash or failed call left half-done.
//! - [`inventory`]: the port the saga reaches product-svc through, in
//!   domain terms.
//! - [`clients`]: service tokens and the port over gRPC, with deadlines
//!   and retries.
//! - [`input`]: request fields parsed into valid values.
//! - [`store`]: sea-orm entities and queries; [`migration`]: the schema.
//! - [`error`]: every failure and its one mapping to the wire.
//!
//! [`App`] is the service built (listeners bound, recovery and relay
//! running) and then run until stopped; `oms`, the binary and the tests
//! build it alike (tests on a `127.0.0.1:0` listener of their own).

#![forbid(unsafe_code)]

mod api;
pub mod clients;
pub mod config;
pub mod error;
pub mod input;
pub mod inventory;
pub mod migration;
pub mod model;
pub mod order_events;
pub mod orders;
#[cfg(test)]
mod properties;
pub mod recovery;
pub mod store;
pub mod watch_slots;
mod wire;

#[cfg(test)]
mod saga_tests;

use std::sync::Arc;

use oms_runtime::StartupError;
use oms_runtime::channel::Dial;
use tokio::net::TcpListener;

pub use config::{ADDR_VAR, CLIENT_SECRET_VAR, Config};

/// The `ErrorInfo.domain` of this service's errors.
pub const DOMAIN: &str = "order.oms";

/// What reflection and health advertise for this service.
pub const SERVICE_INFO: oms_runtime::server::ServiceInfo = oms_runtime::server::ServiceInfo {
    name: "order-svc",
    grpc_services: &[oms_proto::service_names::ORDER],
    descriptors: oms_proto::FILE_DESCRIPTOR_SET,
    polled: &[],
};

/// order-svc as a binary: its commands and configuration, in the runtime's service shape
/// (`order-svc --help`).
#[derive(Debug)]
pub struct Binary;

impl oms_runtime::service::Service for Binary {
    const NAME: &'static str = SERVICE_INFO.name;
    const SUMMARY: &'static str =
        "orders, placed through a saga over product-svc reservations (gRPC oms.order.v1)";
    const PROBE: oms_runtime::healthcheck::Probe = oms_runtime::healthcheck::Probe::Grpc;
    type Config = Config;
    type App = App;

    const MIGRATE: Option<fn(Config) -> oms_runtime::service::Work> =
        Some(oms_runtime::service::migrate::<Self>);

    fn config(env: &oms_config::Env) -> Result<Config, oms_config::ConfigError> {
        Config::from_env(env, "DATABASE_URL")
    }
}

/// order-svc, built: its database open (and migrated), recovery and the
/// relay running, its listeners bound; it reaches product-svc over gRPC.
pub type App = oms_runtime::app::GrpcApp<Binary>;

impl oms_runtime::app::GrpcService for Binary {
    type Config = Config;
    type Migrator = migration::Migrator;
    const INFO: oms_runtime::server::ServiceInfo = SERVICE_INFO;
    const ADDR_VAR: &'static str = ADDR_VAR;

    fn base(config: &Config) -> &oms_config::ServiceBase {
        &config.base
    }

    async fn build(
        config: Config,
        listener: TcpListener,
    ) -> Result<oms_runtime::app::GrpcParts, StartupError> {
        let dial = Dial::load(SERVICE_INFO.name, config.base.resolve, &config.base.tls)?;
        let inventory = Arc::new(clients::GrpcInventory::from_config(&config, &dial)?);
        build_parts(config, dial, inventory, listener).await
    }
}

/// order-svc built with the inventory port given: tests pass one that
/// fails where they want it to (`App::build` reaches product-svc).
pub async fn build_with(
    config: Config,
    inventory: Arc<dyn inventory::Inventory>,
    listener: TcpListener,
) -> Result<App, StartupError> {
    let limits = config.base.grpc_limits;
    let dial = Dial::load(SERVICE_INFO.name, config.base.resolve, &config.base.tls)?;
    build_parts(config, dial, inventory, listener)
        .await
        .map(|parts| App::from_parts(limits, parts))
}

async fn build_parts(
    config: Config,
    dial: Dial,
    inventory: Arc<dyn inventory::Inventory>,
    listener: TcpListener,
) -> Result<oms_runtime::app::GrpcParts, StartupError> {
    let mut owned = oms_runtime::app::Owned::default();
    let metrics_listener =
        oms_runtime::server::bind_optional(config.base.metrics_addr, config::METRICS_ADDR_VAR)
            .await?;
    let db = oms_store::db::open::<migration::Migrator>(
        &config.base.database_url,
        Default::default(),
        config.base.migrate_on_start,
    )
    .await?;
    owned.hold(oms_store::db::sample_pool(SERVICE_INFO.name, &db));
    for outcome in orders::SAGA_OUTCOMES {
        oms_telemetry::metrics::zero("oms_saga_outcomes_total", &[("outcome", outcome)]);
    }
    for outcome in ["resolved", "deferred"] {
        oms_telemetry::metrics::zero("oms_order_recoveries_total", &[("outcome", outcome)]);
    }
    let order_events = order_events::OrderEvents::new(config.broker.outbox());
    let orders = orders::Orders::new(db.clone(), inventory, order_events.clone());
    owned.hold(
        ::events::relay::Relay::for_service(
            &config.broker,
            db,
            order_events.outbox(),
            SERVICE_INFO.name,
            ::events::ORDER_TOPIC,
        )
        .map_err(|e| StartupError::setup(::events::kafka::BROKERS_VAR, e))?,
    );
    // Each recovery step is its own conditional update: stopping between
    // two is safe, and the next start picks up.
    owned.hold(oms_runtime::background::every(
        "recovery resolved unfinished orders",
        config.recovery_interval,
        {
            let orders = orders.clone();
            let age = config.recovery_age;
            move || {
                let orders = orders.clone();
                async move { recovery::recover(&orders, age).await }
            }
        },
    ));

    let routes = api::routes(api::State {
        orders,
        watchers: watch_slots::WatchSlots::new(api::MAX_WATCHERS, config.watches_per_user),
    });
    let secret = config.client_secret.clone().ok_or_else(|| {
        oms_config::ConfigError::new(
            CLIENT_SECRET_VAR,
            "must be set: order-svc's OAuth2 client secret at user-svc",
        )
    })?;
    let auth = oms_runtime::auth::layer_for(
        &config.user_svc_addr,
        &dial,
        &config.base.jwt_issuer,
        None,
        oms_runtime::auth::ClientCredentials {
            client_id: config.client_id.clone(),
            secret,
        },
    )?;
    Ok(oms_runtime::app::GrpcParts {
        routes,
        auth,
        listener,
        tls: dial.tls,
        metrics_listener,
        owned,
    })
}
