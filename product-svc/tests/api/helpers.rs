//! The mesh every test runs against, and small builders.

use oms_config::Env;
use oms_proto::common::v1::{LineItem, Money};
use oms_proto::product::v1::{
    self as pb, inventory_service_client::InventoryServiceClient,
    product_service_client::ProductServiceClient,
};
use testkit::clients::ServiceClient;
use testkit::{Spawned, TestDb, bearer, spawn, unique_name};
use tonic::Status;
use tonic::transport::Channel;

pub(crate) const WRITER_SECRET: &str = testkit::users::ORDER_SVC_SECRET;
pub(crate) const READER_SECRET: &str = "reporting test secret";

/// A user-svc and a product-svc wired together, and tokens for each kind
/// of caller.
pub(crate) struct Mesh {
    pub(crate) products: Spawned,
    pub(crate) users: Spawned,
    pub(crate) _users_db: TestDb,
    pub(crate) admin: String,
    pub(crate) customer: String,
    /// order-svc's token: `inventory:write`.
    pub(crate) writer: String,
    /// A reporting service's token: `products:read` only.
    pub(crate) reader: String,
    pub(crate) db_url: oms_config::DatabaseUrl,
    /// Where the relay publishes product-svc's events: the outbox holds
    /// an event only until the bus has it.
    pub(crate) bus: events::bus::Bus,
}

pub(crate) async fn start_users() -> (Spawned, TestDb) {
    let db = TestDb::sqlite();
    let env = testkit::users::user_svc_env(
        db.url().expose(),
        &[
            ServiceClient::order_svc(WRITER_SECRET),
            ServiceClient::new("reporting", READER_SECRET, &["products:read"]),
        ],
    );
    let config = user_svc::Config::from_env(&Env::from_pairs(env), "DATABASE_URL").unwrap();
    (spawn::<user_svc::App>(config).await, db)
}

/// A product-svc on `db` whose relay publishes to `bus` (replicas of one
/// mesh share it, as they would share a Kafka cluster).
pub(crate) async fn start_products(
    db: &TestDb,
    users: &Spawned,
    extra: &[(&str, &str)],
    bus: &events::bus::Bus,
) -> Spawned {
    let mut pairs: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), db.url().expose().to_owned()),
        ("USER_SVC_ADDR".into(), users.addr.to_string()),
        (
            "OMS_REDIS_KEY_PREFIX".into(),
            format!("{}:", unique_name("oms_test")),
        ),
    ];
    pairs.extend(testkit::users::product_svc_env());
    if !db.url().is_sqlite()
        && let Some(redis) = testkit::redis_url()
    {
        pairs.push(("REDIS_URL".into(), redis.expose().to_owned()));
    }
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut config =
        product_svc::Config::from_env(&Env::from_pairs(pairs), "DATABASE_URL").unwrap();
    if matches!(config.broker, events::Broker::InProcess(_)) {
        config.broker = events::Broker::InProcess(bus.clone());
    }
    spawn::<product_svc::App>(config).await
}

async fn service_token(users: &Spawned, client: &str, secret: &str, scope: &str) -> String {
    testkit::users::service_token(users.channel(), client, secret, &[scope])
        .await
        .unwrap()
}

/// A connection of the test's own to product-svc's database, migrated.
pub(crate) async fn migrated(db: &TestDb) -> sea_orm::DatabaseConnection {
    oms_store::db::connect_and_migrate::<product_svc::migration::Migrator>(
        db.url(),
        Default::default(),
    )
    .await
    .unwrap()
}

pub(crate) async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Mesh {
    let (users, users_db) = start_users().await;
    let bus = events::bus::Bus::new();
    let products = start_products(db, &users, extra, &bus).await;
    Mesh {
        admin: testkit::users::admin(users.channel()).await.unwrap().token,
        customer: testkit::users::customer(users.channel(), "shopper")
            .await
            .unwrap()
            .token,
        writer: service_token(&users, "order-svc", WRITER_SECRET, "inventory:write").await,
        reader: service_token(&users, "reporting", READER_SECRET, "products:read").await,
        products,
        users,
        _users_db: users_db,
        db_url: db.url().clone(),
        bus,
    }
}

impl Mesh {
    pub(crate) fn catalogue(&self) -> ProductServiceClient<Channel> {
        ProductServiceClient::new(self.products.channel())
    }

    pub(crate) fn inventory(&self) -> InventoryServiceClient<Channel> {
        InventoryServiceClient::new(self.products.channel())
    }

    pub(crate) async fn create(&self, sku: &str, price: i64, stock: i64) -> pb::Product {
        self.catalogue()
            .create_product(bearer(
                pb::CreateProductRequest {
                    product: Some(pb::Product {
                        sku: sku.into(),
                        name: format!("Product {sku}"),
                        description: "A thing".into(),
                        price: Some(usd(price)),
                        stock_on_hand: stock,
                        ..Default::default()
                    }),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap()
    }

    pub(crate) async fn get(&self, id: &str) -> pb::Product {
        self.catalogue()
            .get_product(pb::GetProductRequest {
                product_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap()
    }

    pub(crate) async fn reserve(
        &self,
        id: &str,
        lines: &[(&str, i32)],
    ) -> Result<pb::Reservation, Status> {
        self.reserve_with(id, lines, false).await
    }

    /// GetStockHistory of `product_id`, all of it, asked with `token`.
    pub(crate) async fn stock_history(
        &self,
        product_id: &str,
        token: &str,
    ) -> Result<Vec<pb::StockChange>, Status> {
        self.catalogue()
            .get_stock_history(bearer(
                pb::GetStockHistoryRequest {
                    product_id: product_id.into(),
                    max_changes: 0,
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().changes)
    }

    /// ReserveStock with `commit`: reserved and committed in one call.
    pub(crate) async fn take(
        &self,
        id: &str,
        lines: &[(&str, i32)],
    ) -> Result<pb::Reservation, Status> {
        self.reserve_with(id, lines, true).await
    }

    async fn reserve_with(
        &self,
        id: &str,
        lines: &[(&str, i32)],
        commit: bool,
    ) -> Result<pb::Reservation, Status> {
        self.inventory()
            .reserve_stock(bearer(
                pb::ReserveStockRequest {
                    reservation_id: id.into(),
                    lines: items(lines),
                    commit,
                    ..Default::default()
                },
                &self.writer,
            ))
            .await
            .map(|r| r.into_inner().reservation.unwrap())
    }

    pub(crate) async fn commit(&self, id: &str) -> Result<pb::Reservation, Status> {
        self.inventory()
            .commit_reservation(bearer(
                pb::CommitReservationRequest {
                    reservation_id: id.into(),
                },
                &self.writer,
            ))
            .await
            .map(|r| r.into_inner().reservation.unwrap())
    }

    pub(crate) async fn release(&self, id: &str) -> Result<pb::Reservation, Status> {
        self.inventory()
            .release_reservation(bearer(
                pb::ReleaseReservationRequest {
                    reservation_id: id.into(),
                },
                &self.writer,
            ))
            .await
            .map(|r| r.into_inner().reservation.unwrap())
    }

    pub(crate) async fn reservation(&self, id: &str) -> pb::Reservation {
        self.inventory()
            .get_reservation(bearer(
                pb::GetReservationRequest {
                    reservation_id: id.into(),
                },
                &self.writer,
            ))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap()
    }
}

pub(crate) fn usd(amount_minor: i64) -> Money {
    Money {
        currency_code: "USD".into(),
        amount_minor,
    }
}

pub(crate) fn items(lines: &[(&str, i32)]) -> Vec<LineItem> {
    lines
        .iter()
        .map(|(id, quantity)| LineItem {
            product_id: (*id).into(),
            quantity: *quantity,
        })
        .collect()
}

pub(crate) fn stock(p: &pb::Product) -> (i64, i64, i64) {
    (p.stock_on_hand, p.stock_reserved, p.stock_available)
}

/// A stock event's cause and the (on hand, reserved, available) it reports.
pub(crate) type StockReport = (String, i64, i64, i64);

/// The payloads of product `id`'s events of `event_type` (any product's,
/// for `None`) published so far, in order: read from the bus once the
/// outbox is empty, so every event written before the call is there.
pub(crate) async fn published(mesh: &Mesh, id: Option<&str>, event_type: &str) -> Vec<Vec<u8>> {
    testkit::outbox_drained(&mesh.db_url).await;
    mesh.bus
        .records(events::PRODUCT_TOPIC)
        .into_iter()
        .filter(|r| r.event_type == event_type && id.is_none_or(|id| r.key == id))
        .map(|r| r.payload)
        .collect()
}

/// Product `id`'s stock events, in order: each as its cause and the stock
/// it reports, and the product it carries (checked to agree with that
/// stock).
pub(crate) async fn stock_events(mesh: &Mesh, id: &str) -> Vec<(StockReport, pb::Product)> {
    use prost::Message as _;
    let payloads = published(mesh, Some(id), "oms.product.v1.ProductStockChanged").await;
    payloads
        .iter()
        .map(|payload| {
            let event = pb::ProductEvent::decode(payload.as_slice()).unwrap();
            let Some(pb::product_event::Change::StockChanged(change)) = event.change else {
                panic!("not a stock change: {event:?}");
            };
            let product = event.product.unwrap();
            assert_eq!(
                stock(&product),
                (
                    change.stock_on_hand,
                    change.stock_reserved,
                    change.stock_available
                ),
                "the event's product and its change agree"
            );
            assert_eq!(event.occur_time, product.update_time);
            let reported = (
                change.cause,
                change.stock_on_hand,
                change.stock_reserved,
                change.stock_available,
            );
            (reported, product)
        })
        .collect()
}
