//! The database ceiling for CreateOrder: the order's own path with its
//! RPCs taken out. order-svc's saga ([`order_svc::orders::Orders`]) runs
//! over a database of its own and reaches product-svc's reservation rules
//! ([`product_svc::inventory::Inventory`]) by a direct call where the mesh
//! makes a gRPC one; each side writes its events to its outbox, and each
//! outbox has its relay publishing to an in-process bus and deleting what
//! was acknowledged, as the services do with events in process. The
//! transactions are the real ones by construction (the same code sends
//! them), and a change to the store path moves the ceiling with the order.
//! What the mesh adds on top (gRPC, service tokens, authorization, access
//! lines, serialization) is what the ratio against it measures.

use std::sync::Arc;

use oms_config::{DatabaseUrl, RedisUrl};
use oms_core::money::Money;
use oms_store::db::PoolOptions;
use order_svc::inventory::{
    CallContext, Inventory, InventoryError, Line, Price, QuoteUse, Reservation, ReservationState,
    ReservedLine, Unavailable,
};
use order_svc::model::Status;
use order_svc::orders::Orders;
use product_svc::error::ProductError;
use product_svc::model::Hold;

use crate::BenchError;
use crate::driver::{Op, op};

/// Products in the catalogue; each order takes one unit of one, chosen as
/// the mesh's 1-line CreateOrder runs choose.
const PRODUCTS: usize = 200;

/// Units each product starts with: no run sells out.
const STOCK: i64 = 1_000_000_000;

/// How long a reservation holds stock: product-svc's default.
const RESERVATION_TTL: std::time::Duration =
    std::time::Duration::from_secs(product_svc::config::DEFAULT_RESERVATION_TTL_SECS);

/// How long the cache keeps a product: product-svc's default.
const CACHE_TTL: std::time::Duration =
    std::time::Duration::from_secs(product_svc::config::DEFAULT_CACHE_TTL_SECS);

/// The saga over both databases, and what keeps the relays running.
pub struct DbCeiling {
    orders: Orders,
    products: Vec<String>,
    /// One per outbox, stopped when the ceiling is dropped.
    _relays: Vec<events::relay::Relay>,
}

fn setup(what: &'static str) -> impl Fn(String) -> BenchError {
    move |e| BenchError::Setup(format!("db ceiling: {what}: {e}"))
}

/// `url` opened as a service opens its database (the default pool) and
/// migrated.
async fn migrated<M: sea_orm_migration::MigratorTrait>(
    url: &DatabaseUrl,
    what: &'static str,
) -> Result<sea_orm::DatabaseConnection, BenchError> {
    oms_store::db::open::<M>(url, PoolOptions::default(), true)
        .await
        .map_err(|e| setup(what)(e.to_string()))
}

impl DbCeiling {
    /// Opens and migrates both databases as the services do (the default
    /// pool), with product-svc's cache on `redis` (in memory without),
    /// starts both relays and creates the catalogue.
    pub async fn prepare(
        orders: &DatabaseUrl,
        products: &DatabaseUrl,
        redis: Option<&RedisUrl>,
    ) -> Result<Self, BenchError> {
        let orders_db =
            migrated::<order_svc::migration::Migrator>(orders, "orders database").await?;
        let products_db =
            migrated::<product_svc::migration::Migrator>(products, "products database").await?;
        let prefix = format!("oms-bench-ceiling-{}:", uuid::Uuid::new_v4().simple());
        let kv = oms_store::kv::open(redis, &prefix)
            .await
            .map_err(|e| setup("cache")(e.to_string()))?;
        let cache = product_svc::cache::ProductCache::new(kv, CACHE_TTL);

        // Two processes in the mesh, so two buses here.
        let (order_broker, product_broker) = (
            events::Broker::InProcess(events::bus::Bus::new()),
            events::Broker::InProcess(events::bus::Bus::new()),
        );
        let order_events = order_svc::order_events::OrderEvents::new(order_broker.outbox());
        let product_events =
            product_svc::product_events::ProductEvents::new(product_broker.outbox());
        let relays = [
            events::relay::Relay::for_service(
                &order_broker,
                orders_db.clone(),
                order_events.outbox(),
                "order-svc",
                events::ORDER_TOPIC,
            ),
            events::relay::Relay::for_service(
                &product_broker,
                products_db.clone(),
                product_events.outbox(),
                "product-svc",
                events::PRODUCT_TOPIC,
            ),
        ]
        .into_iter()
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, _>>()
        .map_err(setup("relay"))?;

        let catalogue = product_svc::catalogue::Catalogue::new(
            products_db.clone(),
            cache.clone(),
            product_events.clone(),
        );
        let mut ids = Vec::with_capacity(PRODUCTS);
        for i in 0..PRODUCTS {
            let product = catalogue
                .create(
                    product_svc::catalogue::NewProduct {
                        sku: format!("CEILING-{i}"),
                        name: format!("Ceiling product {i}"),
                        description: String::new(),
                        price: Money {
                            currency_code: "EUR".to_owned(),
                            amount_minor: 1000 + i64::try_from(i).unwrap_or(0),
                        },
                        stock_on_hand: STOCK,
                    },
                    "oms-bench",
                )
                .await
                .map_err(|e| setup("catalogue")(e.to_string()))?;
            ids.push(product.id);
        }
        let inventory = product_svc::inventory::Inventory::new(
            products_db,
            cache,
            RESERVATION_TTL,
            product_events,
        );
        Ok(Self {
            orders: Orders::new(orders_db, Arc::new(InProcess(inventory)), order_events),
            products: ids,
            _relays: relays,
        })
    }

    /// One order of one line, placed by the saga; fails unless confirmed.
    pub fn op(self: &Arc<Self>) -> Op {
        let this = self.clone();
        op(move |client, seq| {
            let this = this.clone();
            async move { this.order(client, seq).await }
        })
    }

    async fn order(&self, client: usize, seq: u64) -> Result<(), String> {
        // A customer per client, as the mesh's runs log one in per client.
        let customer = uuid::Uuid::from_u128(client as u128 + 1).to_string();
        let product = self
            .products
            .get(crate::scenarios::pick(&self.products, client, seq))
            .ok_or("the ceiling's catalogue is empty")?;
        let order = self
            .orders
            .create(
                &CallContext::default(),
                &customer,
                &uuid::Uuid::new_v4().to_string(),
                vec![Line {
                    product_id: product.clone(),
                    quantity: 1,
                }],
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        match order.status {
            Status::Confirmed => Ok(()),
            other => Err(format!("the saga left the order {other:?}")),
        }
    }
}

/// product-svc's reservation rules as the saga's port, called directly.
#[derive(Debug)]
struct InProcess(product_svc::inventory::Inventory);

/// The ceiling measures orders that succeed: any error of product-svc's
/// ends the operation as an error, which the run counts, so telling a
/// refusal from an outage (as the gRPC client does) buys nothing here.
fn failed(e: ProductError) -> InventoryError {
    InventoryError::Unavailable(Unavailable {
        timed_out: false,
        message: e.to_string(),
    })
}

fn to_reservation(r: product_svc::model::Reservation) -> Reservation {
    use product_svc::model::State;
    Reservation {
        id: r.id,
        state: match r.state {
            State::Reserved => ReservationState::Reserved,
            State::Committed => ReservationState::Committed,
            State::Released => ReservationState::Released,
            State::Expired => ReservationState::Expired,
        },
        lines: r
            .lines
            .into_iter()
            .map(|l| ReservedLine {
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                quantity: l.quantity,
                unit_price: Price {
                    currency_code: l.currency_code,
                    amount_minor: l.unit_price_minor,
                },
            })
            .collect(),
    }
}

#[async_trait::async_trait]
impl Inventory for InProcess {
    async fn take(
        &self,
        _ctx: &CallContext,
        reservation_id: &str,
        lines: &[Line],
        quote: Option<&QuoteUse>,
    ) -> Result<Reservation, InventoryError> {
        let quote = quote.map(|q| product_svc::model::QuoteUse {
            quote_id: q.quote_id.clone(),
            customer_id: q.customer_id.clone(),
            order_id: q.order_id.clone(),
        });
        self.0
            .reserve(reservation_id, lines.to_vec(), quote, Hold::Committed)
            .await
            .map(to_reservation)
            .map_err(failed)
    }

    async fn release(
        &self,
        _ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<(), InventoryError> {
        match self.0.release(reservation_id).await {
            Ok(_) | Err(ProductError::ReservationNotFound(_)) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn get(
        &self,
        _ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<Option<Reservation>, InventoryError> {
        match self.0.get(reservation_id).await {
            Ok(r) => Ok(Some(to_reservation(r))),
            Err(ProductError::ReservationNotFound(_)) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }
}
