//! Every order change an event: published in order under the order's key
//! (on the in-process bus, and on a real Kafka-protocol broker with
//! CloudEvents headers), and consumed by product-svc, which returns a
//! cancelled order's stock once, even when it was down at the time or the
//! event arrives twice.

use std::collections::HashMap;
use std::time::Duration;

use events::{Broker, Delivery, Subscription};
use oms_proto::order::v1::{self as pb, order_event::Change};
use prost::Message as _;
use testkit::{TestDb, eventually};

use crate::helpers::*;

testkit::test_on_each_db!(
    an_order_life_cycle_is_published_in_order_under_its_key,
    on_kafka_each_event_carries_cloudevents_headers,
    stock_of_an_order_cancelled_while_product_svc_was_down_comes_back_once,
);

/// Reads `subscription` until every order in `wanted` has that many
/// events, and returns each order's deliveries in the order received.
async fn collect(
    subscription: &mut Box<dyn Subscription>,
    wanted: &[(&str, usize)],
) -> HashMap<String, Vec<(Delivery, pb::OrderEvent)>> {
    let mut seen: HashMap<String, Vec<(Delivery, pb::OrderEvent)>> = HashMap::new();
    let done = |seen: &HashMap<String, Vec<_>>| {
        wanted
            .iter()
            .all(|(id, n)| seen.get(*id).map_or(0, Vec::len) >= *n)
    };
    while !done(&seen) {
        let delivery = tokio::time::timeout(Duration::from_secs(60), subscription.next())
            .await
            .expect("the next event within 60 s")
            .unwrap();
        let event = pb::OrderEvent::decode(delivery.record.payload.as_slice()).unwrap();
        if wanted.iter().any(|(id, _)| *id == event.order_id) {
            seen.entry(event.order_id.clone())
                .or_default()
                .push((delivery, event));
        }
    }
    seen
}

fn kind(event: &pb::OrderEvent) -> String {
    match event.change.as_ref().unwrap() {
        Change::Created(_) => "created".into(),
        Change::Confirmed(_) => "confirmed".into(),
        Change::Failed(_) => "failed".into(),
        Change::Cancelled(c) => format!("cancelled from {:?}", c.previous_status()),
        Change::StatusChanged(c) => format!("{:?} -> {:?}", c.previous_status(), c.status()),
    }
}

/// Places, ships and delivers one order, places and cancels another, and
/// checks what `subscription` got for each.
async fn life_cycles(mesh: &Mesh, subscription: &mut Box<dyn Subscription>) -> Vec<Delivery> {
    let lamp = mesh.product("LAMP", 1500, 10).await;
    let kept = mesh
        .order(&mesh.alice, "kept", &[(&lamp.id, 2)])
        .await
        .unwrap();
    mesh.advance(&kept.id, pb::OrderStatus::Shipped).await;
    mesh.advance(&kept.id, pb::OrderStatus::Delivered).await;
    let dropped = mesh
        .order(&mesh.bob, "dropped", &[(&lamp.id, 1)])
        .await
        .unwrap();
    mesh.cancel(&mesh.bob, &dropped.id).await.unwrap();

    let seen = collect(subscription, &[(&kept.id, 4), (&dropped.id, 3)]).await;
    let kinds = |id: &str| -> Vec<String> { seen[id].iter().map(|(_, e)| kind(e)).collect() };
    assert_eq!(
        kinds(&kept.id),
        [
            "created",
            "confirmed",
            "Confirmed -> Shipped",
            "Shipped -> Delivered"
        ]
    );
    assert_eq!(
        kinds(&dropped.id),
        ["created", "confirmed", "cancelled from Confirmed"]
    );
    let mut all = Vec::new();
    for (id, customer) in [(&kept.id, &mesh.alice_id), (&dropped.id, &mesh.bob_id)] {
        for (delivery, event) in &seen[id] {
            assert_eq!(&delivery.record.key, id, "keyed by the order");
            assert_eq!(delivery.record.id, event.event_id);
            assert_eq!(&event.customer_id, customer);
            let type_name = match event.change.as_ref().unwrap() {
                Change::Created(_) => "OrderCreated",
                Change::Confirmed(_) => "OrderConfirmed",
                Change::Failed(_) => "OrderFailed",
                Change::Cancelled(_) => "OrderCancelled",
                Change::StatusChanged(_) => "OrderStatusChanged",
            };
            assert_eq!(
                delivery.record.event_type,
                format!("oms.order.v1.{type_name}")
            );
        }
        // The order as it was after each change.
        let last = &seen[id].last().unwrap().1;
        let now = mesh.get(&mesh.admin, id).await.unwrap();
        assert_eq!(last.order.as_ref().unwrap().status, now.status);
        all.extend(seen[id].iter().map(|(d, _)| d.clone()));
    }
    let confirmed = &seen[&kept.id][1].1;
    assert_eq!(
        confirmed.order.as_ref().unwrap().lines[0].unit_price,
        Some(usd(1500)),
        "the confirmed order with its price snapshot"
    );
    all
}

async fn an_order_life_cycle_is_published_in_order_under_its_key(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let mut subscription = mesh
        .broker
        .subscribe(events::ORDER_TOPIC, "test")
        .await
        .unwrap()
        .unwrap();
    life_cycles(&mesh, &mut subscription).await;
}

/// The test broker (`OMS_TEST_KAFKA_BROKERS`), required under CI.
pub(crate) fn test_kafka() -> Option<Broker> {
    let brokers = testkit::require_backend(testkit::KAFKA_VAR)?;
    Some(Broker::Kafka(events::kafka::KafkaConfig {
        brokers,
        partitions: 3,
        replication: 1,
        tls: None,
    }))
}

async fn on_kafka_each_event_carries_cloudevents_headers(db: TestDb) {
    let Some(kafka) = test_kafka() else { return };
    let mesh = start_on(&db, &[], kafka).await;
    let group = testkit::unique_name("oms_test_group");
    let mut subscription = mesh
        .broker
        .subscribe(events::ORDER_TOPIC, &group)
        .await
        .unwrap()
        .unwrap();
    for delivery in life_cycles(&mesh, &mut subscription).await {
        let header = |name: &str| {
            delivery
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("header {name} missing: {:?}", delivery.headers))
        };
        assert_eq!(header("ce_specversion"), "1.0");
        assert_eq!(header("ce_id"), delivery.record.id);
        assert_eq!(header("ce_source"), "/oms/order-svc");
        assert_eq!(header("ce_type"), delivery.record.event_type);
        assert_eq!(header("ce_subject"), delivery.record.key);
        assert_eq!(header("content-type"), "application/protobuf");
        assert!(
            chrono::DateTime::parse_from_rfc3339(&header("ce_time")).is_ok(),
            "ce_time is RFC 3339"
        );
    }
}

async fn stock_of_an_order_cancelled_while_product_svc_was_down_comes_back_once(db: TestDb) {
    // Recovery off: only the event can return the stock.
    let mut mesh = start(&db, &[("OMS_ORDER_RECOVERY_SECS", "3600")]).await;
    let lamp = mesh.product("LAMP", 1500, 10).await;
    let order = mesh
        .order(&mesh.alice, "c-1", &[(&lamp.id, 4)])
        .await
        .unwrap();
    assert_eq!(mesh.stock(&lamp.id).await, (6, 0, 6));

    mesh.stop_products().await;
    let cancelled = mesh.cancel(&mesh.alice, &order.id).await.unwrap();
    assert_eq!(cancelled.status(), pb::OrderStatus::Cancelled);
    mesh.restart_products().await;
    eventually(
        Duration::from_secs(30),
        "the stock to come back",
        || async { (mesh.stock(&lamp.id).await == (10, 0, 10)).then_some(()) },
    )
    .await;

    // The relay dies between publishing and deleting: the event goes out
    // again, and product-svc applies it no second time.
    let cancelled = mesh.published("oms.order.v1.OrderCancelled").await;
    assert_eq!(cancelled.len(), 1);
    events::Publisher::publish(
        mesh.bus(),
        events::ORDER_TOPIC,
        "/oms/order-svc",
        &cancelled,
    )
    .await
    .unwrap();
    let events_on_bus = i64::try_from(mesh.bus().records(events::ORDER_TOPIC).len()).unwrap();
    eventually(
        Duration::from_secs(30),
        "product-svc to consume the duplicate",
        || async { (consumed_by_product_svc() >= events_on_bus).then_some(()) },
    )
    .await;
    assert_eq!(mesh.stock(&lamp.id).await, (10, 0, 10), "returned once");
    let applied =
        testkit::count_rows(mesh.products_db.url(), "inbox", "consumer = 'product-svc'").await;
    assert_eq!(
        applied, 1,
        "one cancellation applied, its duplicate skipped"
    );
}

/// Order events product-svc has consumed in this test process, from its
/// metric.
fn consumed_by_product_svc() -> i64 {
    oms_telemetry::metrics::render()
        .lines()
        .find(|l| l.starts_with("events_consumed_total{") && l.contains("service=\"product-svc\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as i64)
}

/// A tansu of the test's own behind a relay the test can cut: tansu
/// advertises the relay's address, so every client connection goes through
/// it, and cutting it is a broker outage that loses nothing.
struct OwnBroker {
    relay: testkit::Relay,
    upstream: std::net::SocketAddr,
    process: std::process::Child,
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The TCP port a process listens on, from /proc (tansu binds port 0 but
/// does not say which port it got).
fn listening_port(pid: u32) -> Option<u16> {
    let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        if *state != "0A" || !sockets.iter().any(|s| s == inode) {
            return None;
        }
        u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
    })
}

async fn own_broker() -> Option<OwnBroker> {
    let tansu = testkit::require_backend(testkit::TANSU_VAR)?;
    let relay = testkit::Relay::start(None).await;
    let process = std::process::Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            "tcp://127.0.0.1:0",
            "--advertised-listener-url",
            &format!("tcp://{}", relay.addr),
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tansu");
    let pid = process.id();
    let port = eventually(Duration::from_secs(10), "tansu to listen", || async move {
        listening_port(pid)
    })
    .await;
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    relay.point_to(Some(upstream));
    Some(OwnBroker {
        relay,
        upstream,
        process,
    })
}

testkit::test_on_each_db!(while_the_broker_is_down_orders_succeed_and_their_events_wait);

async fn while_the_broker_is_down_orders_succeed_and_their_events_wait(db: TestDb) {
    let Some(broker) = own_broker().await else {
        return;
    };
    let kafka = Broker::Kafka(events::kafka::KafkaConfig {
        brokers: broker.relay.addr.to_string(),
        partitions: 1,
        replication: 1,
        tls: None,
    });
    let mesh = start_on(&db, &[], kafka).await;
    let unpublished =
        || async { testkit::count_rows(&mesh.orders_db, "outbox", "publish_time IS NULL").await };
    let lamp = mesh.product("LAMP", 1500, 50).await;
    let mut placed = vec![
        mesh.order(&mesh.alice, "before", &[(&lamp.id, 1)])
            .await
            .unwrap(),
    ];
    eventually(
        Duration::from_secs(60),
        "the first order's events out",
        || async { (unpublished().await == 0).then_some(()) },
    )
    .await;

    broker.relay.point_to(None);
    for n in 0..3 {
        let order = mesh
            .order(&mesh.alice, &format!("during-{n}"), &[(&lamp.id, 1)])
            .await
            .expect("no order fails while the broker is down");
        assert_eq!(order.status(), pb::OrderStatus::Confirmed);
        placed.push(order);
    }
    assert_eq!(
        unpublished().await,
        6,
        "the backlog: created + confirmed × 3"
    );

    broker.relay.point_to(Some(broker.upstream));
    eventually(Duration::from_secs(90), "the backlog to drain", || async {
        (unpublished().await == 0).then_some(())
    })
    .await;
    let mut subscription = mesh
        .broker
        .subscribe(events::ORDER_TOPIC, "after-the-outage")
        .await
        .unwrap()
        .unwrap();
    let wanted: Vec<(&str, usize)> = placed.iter().map(|o| (o.id.as_str(), 2)).collect();
    let seen = collect(&mut subscription, &wanted).await;
    for order in &placed {
        let kinds: Vec<String> = seen[&order.id].iter().map(|(_, e)| kind(e)).collect();
        assert_eq!(kinds, ["created", "confirmed"], "nothing lost, in order");
    }
}

testkit::test_on_each_db!(watching_an_order_streams_each_change_until_it_is_final);

async fn watching_an_order_streams_each_change_until_it_is_final(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let lamp = mesh.product("LAMP", 1500, 10).await;
    let order = mesh
        .order(&mesh.alice, "w-1", &[(&lamp.id, 1)])
        .await
        .unwrap();
    let watch = |token: &str, order_id: &str| mesh.watch(token, order_id);

    let others = watch(&mesh.bob, &order.id).await.unwrap_err();
    assert_eq!(others.code(), tonic::Code::NotFound);
    let malformed = watch(&mesh.alice, "42").await.unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);

    let mut stream = watch(&mesh.alice, &order.id).await.unwrap().into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .map(|m| m.order.unwrap().status())
    };
    assert_eq!(
        next().await,
        Some(pb::OrderStatus::Confirmed),
        "as it is now"
    );
    mesh.advance(&order.id, pb::OrderStatus::Shipped).await;
    assert_eq!(next().await, Some(pb::OrderStatus::Shipped));
    mesh.advance(&order.id, pb::OrderStatus::Delivered).await;
    assert_eq!(next().await, Some(pb::OrderStatus::Delivered));
    assert_eq!(next().await, None, "a final state ends the stream");
}

testkit::test_on_each_db!(one_user_cannot_take_every_watch_slot);

async fn one_user_cannot_take_every_watch_slot(db: TestDb) {
    let mesh = start(&db, &[("OMS_WATCH_MAX_PER_USER", "3")]).await;
    let lamp = mesh.product("LAMP", 1500, 10).await;
    let alices = mesh
        .order(&mesh.alice, "share-a", &[(&lamp.id, 1)])
        .await
        .unwrap();
    let bobs = mesh
        .order(&mesh.bob, "share-b", &[(&lamp.id, 1)])
        .await
        .unwrap();
    let watch = |token: &str, order_id: &str| mesh.watch(token, order_id);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(watch(&mesh.alice, &alices.id).await.unwrap().into_inner());
    }
    let refused = watch(&mesh.alice, &alices.id).await.unwrap_err();
    assert_eq!(
        (refused.code(), testkit::error_reason(&refused).as_str()),
        (tonic::Code::ResourceExhausted, "TOO_MANY_OWN_WATCHES"),
        "{refused:?}"
    );
    // Everyone else still gets a slot.
    let _bobs_watch = watch(&mesh.bob, &bobs.id).await.unwrap();
    // A watch closed is a slot of Alice's again, once order-svc sees it go.
    drop(held.pop());
    eventually(Duration::from_secs(10), "Alice's slot to come back", || {
        let attempt = watch(&mesh.alice, &alices.id);
        async move { attempt.await.ok() }
    })
    .await;
}

/// Places `n` orders of one unit each (request IDs from `tag`), cancels
/// them while order-svc cannot reach product-svc (so only the events can
/// return the stock), and waits until every one's stock is back and its
/// cancellation applied once: `applied` rows in product-svc's inbox.
async fn cancel_unreached_and_see_the_stock_back(
    mesh: &Mesh,
    lamp: &str,
    tag: &str,
    n: usize,
    applied: i64,
) {
    let mut placed = Vec::new();
    for i in 0..n {
        let order = mesh
            .order(&mesh.alice, &format!("{tag}-{i}"), &[(lamp, 1)])
            .await
            .unwrap();
        placed.push(order.id);
    }
    let products = mesh.products.as_ref().unwrap().addr;
    mesh.products_relay.point_to(None);
    for id in &placed {
        let cancelled = mesh.cancel(&mesh.alice, id).await.unwrap();
        assert_eq!(cancelled.status(), pb::OrderStatus::Cancelled);
    }
    mesh.products_relay.point_to(Some(products));
    let inbox = || async {
        testkit::count_rows(mesh.products_db.url(), "inbox", "consumer = 'product-svc'").await
    };
    eventually(
        Duration::from_secs(60),
        "every cancellation applied from its event",
        || async { (inbox().await >= applied).then_some(()) },
    )
    .await;
    assert_eq!(inbox().await, applied, "each cancellation applied once");
    assert_eq!(
        mesh.stock(lamp).await,
        (100, 0, 100),
        "every unit back once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kafka_two_product_svc_replicas_share_the_group_and_a_survivor_takes_over() {
    oms_telemetry::init_for_tests();
    // product-svc's replicas share a MariaDB database and the Redis cache;
    // the broker is the test's own, so no other test's product-svc joins
    // the group.
    let Some((products_db, prefix)) = testkit::backends::shared_by_twins().await else {
        return;
    };
    let Some(orders_db) = TestDb::mysql().await else {
        return;
    };
    let Some(broker) = own_broker().await else {
        return;
    };
    let Some(redis) = testkit::redis_url() else {
        return;
    };
    let kafka = Broker::Kafka(events::kafka::KafkaConfig {
        brokers: broker.relay.addr.to_string(),
        partitions: 4,
        replication: 1,
        tls: None,
    });
    let shared = [
        ("REDIS_URL", redis.expose()),
        ("OMS_REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    let mesh = start_with(
        &orders_db,
        MeshOptions {
            // Recovery off: only the events return the stock.
            orders_env: &[("OMS_ORDER_RECOVERY_SECS", "3600")],
            products_env: &shared,
            broker: Some(kafka),
            products_db: Some(products_db),
            ..MeshOptions::default()
        },
    )
    .await;
    let twin = start_products_with(
        &mesh.products_db,
        mesh.users_relay.addr,
        &mesh.broker,
        &shared,
    )
    .await;
    let lamp = mesh.product("LAMP", 1500, 100).await;

    // Two members of group `product-svc`: orders keyed over four
    // partitions, every cancellation applied once between them.
    cancel_unreached_and_see_the_stock_back(&mesh, &lamp.id, "both", 12, 12).await;

    // One member goes: the group gives its partitions to the other, which
    // applies every later cancellation (and skips any it is handed again).
    twin.stop().await.unwrap();
    cancel_unreached_and_see_the_stock_back(&mesh, &lamp.id, "survivor", 12, 24).await;
}
