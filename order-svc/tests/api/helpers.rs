//! Three services wired together as in production, and tokens for an
//! admin and two customers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use oms_config::Env;
use oms_proto::common::v1::{LineItem, Money};
use oms_proto::order::v1::{self as pb, order_service_client::OrderServiceClient};
use oms_proto::product::v1::{self as product_pb, product_service_client::ProductServiceClient};
use order_svc::inventory::{CallContext, Inventory, InventoryError, Line, QuoteUse, Reservation};
use testkit::{Relay, Spawned, TestDb, bearer, spawn};
use tonic::Status;
use tonic::transport::Channel;

use testkit::clients::ServiceClient;
use testkit::users::ORDER_SVC_SECRET as CLIENT_SECRET;

/// The three services and who can call them.
pub(crate) struct Mesh {
    pub(crate) users: Option<Spawned>,
    pub(crate) products: Option<Spawned>,
    pub(crate) orders: Spawned,
    /// Where order-svc (and product-svc) reach user-svc.
    pub(crate) users_relay: Relay,
    /// Where order-svc reaches product-svc.
    pub(crate) products_relay: Relay,
    pub(crate) users_db: TestDb,
    pub(crate) products_db: TestDb,
    /// What order-svc publishes to and product-svc consumes from: one
    /// in-process bus shared by both (as in `oms`), unless a test says.
    pub(crate) broker: events::Broker,
    pub(crate) orders_db: oms_config::DatabaseUrl,
    /// While set, the saga stalls once product-svc has taken the stock,
    /// as if order-svc had died before it could confirm the order.
    pub(crate) stall_after_take: Arc<AtomicBool>,
    pub(crate) admin: String,
    pub(crate) alice: String,
    pub(crate) alice_id: String,
    pub(crate) bob: String,
    pub(crate) bob_id: String,
}

/// user-svc on `db`, with a signing key of its own: every start is a key
/// rotation that drops the old key.
pub(crate) async fn start_users(db: &TestDb) -> Spawned {
    let env = testkit::users::user_svc_env(
        db.url().expose(),
        &[ServiceClient::order_svc(CLIENT_SECRET)],
    );
    let config = user_svc::Config::from_env(&Env::from_pairs(env), "DATABASE_URL").unwrap();
    spawn::<user_svc::App>(config).await
}

/// product-svc on `db`, trusting the user-svc at `users`, consuming order
/// events from `broker`.
pub(crate) async fn start_products(
    db: &TestDb,
    users: SocketAddr,
    broker: &events::Broker,
) -> Spawned {
    start_products_with(db, users, broker, &[]).await
}

/// [`start_products`] with `extra` env.
pub(crate) async fn start_products_with(
    db: &TestDb,
    users: SocketAddr,
    broker: &events::Broker,
    extra: &[(&str, &str)],
) -> Spawned {
    let mut pairs = vec![
        ("DATABASE_URL".to_owned(), db.url().expose().to_owned()),
        ("USER_SVC_ADDR".to_owned(), users.to_string()),
    ];
    pairs.extend(testkit::users::product_svc_env());
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let env = Env::from_pairs(pairs);
    let mut config = product_svc::Config::from_env(&env, "DATABASE_URL").unwrap();
    config.broker = broker.clone();
    spawn::<product_svc::App>(config).await
}

/// product-svc's inventory as order-svc reaches it, with a switch that
/// makes the saga hang once the stock is taken: a crash between taking
/// and confirming, seen from the saga, without a test-only knob in the
/// production configuration.
#[derive(Debug)]
struct StallableInventory {
    inner: order_svc::clients::GrpcInventory,
    stall_after_take: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Inventory for StallableInventory {
    async fn take(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
        lines: &[Line],
        quote: Option<&QuoteUse>,
    ) -> Result<Reservation, InventoryError> {
        let taken = self.inner.take(ctx, reservation_id, lines, quote).await;
        if self.stall_after_take.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        taken
    }

    async fn release(&self, ctx: &CallContext, reservation_id: &str) -> Result<(), InventoryError> {
        self.inner.release(ctx, reservation_id).await
    }

    async fn get(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<Option<Reservation>, InventoryError> {
        self.inner.get(ctx, reservation_id).await
    }
}

/// order-svc on `db`, wired to `users` and `products`, publishing to
/// `broker`, with `extra` env.
pub(crate) async fn start_orders(
    db: &oms_config::DatabaseUrl,
    users: SocketAddr,
    products: SocketAddr,
    extra: &[(&str, &str)],
    stall_after_take: Arc<AtomicBool>,
    broker: &events::Broker,
) -> Spawned {
    let mut pairs: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), db.expose().to_owned()),
        ("USER_SVC_ADDR".into(), users.to_string()),
        ("PRODUCT_SVC_ADDR".into(), products.to_string()),
        ("OMS_ORDER_SVC_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ("OMS_ORDER_CALL_TIMEOUT_MS".into(), "10000".into()),
    ];
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut config = order_svc::Config::from_env(&Env::from_pairs(pairs), "DATABASE_URL").unwrap();
    config.broker = broker.clone();
    let inventory = Arc::new(StallableInventory {
        inner: order_svc::clients::GrpcInventory::from_config(
            &config,
            &oms_runtime::channel::Dial::load("order-svc", config.base.resolve, &config.base.tls)
                .unwrap(),
        )
        .unwrap(),
        stall_after_take,
    });
    testkit::spawn_with(|l| order_svc::build_with(config, inventory, l)).await
}

/// Starts the mesh with the orders database `db` and extra order-svc env.
pub(crate) async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Mesh {
    start_on(
        db,
        extra,
        events::Broker::InProcess(events::bus::Bus::new()),
    )
    .await
}

/// [`start`] with events on `broker`.
pub(crate) async fn start_on(db: &TestDb, extra: &[(&str, &str)], broker: events::Broker) -> Mesh {
    start_with(
        db,
        MeshOptions {
            orders_env: extra,
            broker: Some(broker),
            ..MeshOptions::default()
        },
    )
    .await
}

/// How [`start_with`] differs from [`start`].
#[derive(Default)]
pub(crate) struct MeshOptions<'a> {
    /// order-svc's extra environment.
    pub(crate) orders_env: &'a [(&'a str, &'a str)],
    /// product-svc's extra environment.
    pub(crate) products_env: &'a [(&'a str, &'a str)],
    /// Where events go (in process unless set).
    pub(crate) broker: Option<events::Broker>,
    /// product-svc on the same backend as order-svc (else SQLite), for
    /// tests of what product-svc stores.
    pub(crate) products_on_same_backend: bool,
    /// product-svc's database, when the test made it (for a twin on it).
    pub(crate) products_db: Option<TestDb>,
}

/// The mesh with `options`.
pub(crate) async fn start_with(db: &TestDb, options: MeshOptions<'_>) -> Mesh {
    let extra = options.orders_env;
    let broker = options
        .broker
        .unwrap_or_else(|| events::Broker::InProcess(events::bus::Bus::new()));
    let users_db = TestDb::sqlite();
    let products_db = if let Some(given) = options.products_db {
        given
    } else if options.products_on_same_backend && !db.url().is_sqlite() {
        TestDb::mysql()
            .await
            .expect("a MariaDB test database for product-svc")
    } else {
        TestDb::sqlite()
    };
    // Clients reach user-svc and product-svc through relays, so a test
    // can restart either on a fresh port behind the same address.
    let users = start_users(&users_db).await;
    let users_relay = Relay::start(Some(users.addr)).await;
    let products = start_products_with(
        &products_db,
        users_relay.addr,
        &broker,
        options.products_env,
    )
    .await;
    let products_relay = Relay::start(Some(products.addr)).await;
    let stall_after_take = Arc::new(AtomicBool::new(false));
    let orders = start_orders(
        db.url(),
        users_relay.addr,
        products_relay.addr,
        extra,
        stall_after_take.clone(),
        &broker,
    )
    .await;
    let admin = testkit::users::admin(users.channel()).await.unwrap().token;
    let alice = testkit::users::customer(users.channel(), "alice")
        .await
        .unwrap();
    let bob = testkit::users::customer(users.channel(), "bob")
        .await
        .unwrap();
    Mesh {
        users_relay,
        products_relay,
        users: Some(users),
        products: Some(products),
        orders,
        users_db,
        products_db,
        broker,
        orders_db: db.url().clone(),
        stall_after_take,
        admin,
        alice: alice.token,
        alice_id: alice.user_id,
        bob: bob.token,
        bob_id: bob.user_id,
    }
}

pub(crate) fn usd(amount_minor: i64) -> Money {
    Money {
        currency_code: "USD".into(),
        amount_minor,
    }
}

pub(crate) fn lines(items: &[(&str, i32)]) -> Vec<LineItem> {
    items
        .iter()
        .map(|(id, quantity)| LineItem {
            product_id: (*id).into(),
            quantity: *quantity,
        })
        .collect()
}

impl Mesh {
    /// The in-process bus order-svc's relay publishes to.
    pub(crate) fn bus(&self) -> &events::bus::Bus {
        match &self.broker {
            events::Broker::InProcess(bus) => bus,
            _ => panic!("this mesh's events do not go to the in-process bus"),
        }
    }

    /// Order events of `event_type` on the bus now.
    pub(crate) fn on_bus(&self, event_type: &str) -> Vec<events::Record> {
        self.bus()
            .records(events::ORDER_TOPIC)
            .into_iter()
            .filter(|r| r.event_type == event_type)
            .collect()
    }

    /// Order events of `event_type` published so far: read once order-svc's
    /// outbox is empty (the relay deletes a row once the bus has it), so
    /// every event written before the call is there.
    pub(crate) async fn published(&self, event_type: &str) -> Vec<events::Record> {
        testkit::outbox_drained(&self.orders_db).await;
        self.on_bus(event_type)
    }

    /// Stops product-svc: its relay refuses every connection until
    /// [`Mesh::restart_products`].
    pub(crate) async fn stop_products(&mut self) {
        self.products_relay.point_to(None);
        if let Some(products) = self.products.take() {
            products.stop().await.unwrap();
        }
    }

    /// Starts product-svc again on its database (a fresh port, behind the
    /// same relay) with an empty JWKS cache.
    pub(crate) async fn restart_products(&mut self) {
        self.stop_products().await;
        let products = start_products(&self.products_db, self.users_relay.addr, &self.broker).await;
        self.products_relay.point_to(Some(products.addr));
        self.products = Some(products);
    }

    /// Stops user-svc: its relay refuses every connection.
    pub(crate) async fn stop_users(&mut self) {
        self.users_relay.point_to(None);
        if let Some(users) = self.users.take() {
            users.stop().await.unwrap();
        }
    }

    /// Starts user-svc again on its database with a new signing key.
    pub(crate) async fn restart_users(&mut self) {
        self.stop_users().await;
        let users = start_users(&self.users_db).await;
        self.users_relay.point_to(Some(users.addr));
        self.users = Some(users);
    }

    pub(crate) fn orders(&self) -> OrderServiceClient<Channel> {
        OrderServiceClient::new(self.orders.channel())
    }

    /// WatchOrder as `token`; the stream, or its refusal.
    pub(crate) fn watch(
        &self,
        token: &str,
        order_id: &str,
    ) -> impl std::future::Future<
        Output = Result<tonic::Response<tonic::codec::Streaming<pb::WatchOrderResponse>>, Status>,
    > + use<> {
        let mut orders = self.orders();
        let request = testkit::bearer(
            pb::WatchOrderRequest {
                order_id: order_id.into(),
            },
            token,
        );
        async move { orders.watch_order(request).await }
    }

    pub(crate) fn catalogue(&self) -> ProductServiceClient<Channel> {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.products_relay.addr))
                .unwrap()
                .connect_lazy();
        ProductServiceClient::new(channel)
    }

    pub(crate) async fn product(&self, sku: &str, price: i64, stock: i64) -> product_pb::Product {
        self.catalogue()
            .create_product(bearer(
                product_pb::CreateProductRequest {
                    product: Some(product_pb::Product {
                        sku: sku.into(),
                        name: format!("Product {sku}"),
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

    pub(crate) async fn stock(&self, product_id: &str) -> (i64, i64, i64) {
        let p = self
            .catalogue()
            .get_product(product_pb::GetProductRequest {
                product_id: product_id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        (p.stock_on_hand, p.stock_reserved, p.stock_available)
    }

    pub(crate) async fn set_price(&self, product_id: &str, price: i64) {
        self.catalogue()
            .update_product(bearer(
                product_pb::UpdateProductRequest {
                    product: Some(product_pb::Product {
                        id: product_id.into(),
                        price: Some(usd(price)),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["price".into()],
                    }),
                },
                &self.admin,
            ))
            .await
            .unwrap();
    }

    pub(crate) async fn order(
        &self,
        token: &str,
        request_id: &str,
        items: &[(&str, i32)],
    ) -> Result<pb::Order, Status> {
        self.orders()
            .create_order(bearer(
                pb::CreateOrderRequest {
                    lines: lines(items),
                    request_id: request_id.into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().order.unwrap())
    }

    pub(crate) async fn get(&self, token: &str, order_id: &str) -> Result<pb::Order, Status> {
        self.orders()
            .get_order(bearer(
                pb::GetOrderRequest {
                    order_id: order_id.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().order.unwrap())
    }

    pub(crate) async fn cancel(&self, token: &str, order_id: &str) -> Result<pb::Order, Status> {
        self.orders()
            .cancel_order(bearer(
                pb::CancelOrderRequest {
                    order_id: order_id.into(),
                    reason: "changed my mind".into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().order.unwrap())
    }

    /// Moves an order on (as the admin).
    pub(crate) async fn advance(&self, order_id: &str, status: pb::OrderStatus) -> pb::Order {
        self.orders()
            .update_order_status(bearer(
                pb::UpdateOrderStatusRequest {
                    order_id: order_id.into(),
                    status: status.into(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
    }

    /// Orders of a status in the orders database.
    pub(crate) async fn count_orders(&self, status: &str) -> i64 {
        testkit::count_rows(&self.orders_db, "orders", &format!("status = '{status}'")).await
    }

    /// Reservations of a state in the products database.
    pub(crate) async fn count_reservations(&self, state: &str) -> i64 {
        testkit::count_rows(
            self.products_db.url(),
            "reservations",
            &format!("state = '{state}'"),
        )
        .await
    }
}
