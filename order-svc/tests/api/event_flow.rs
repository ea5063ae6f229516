//! Every order change an event: published in order under the order's key
//! (on the in-process bus, and on a real Kafka-protocol broker with
//! CloudEvents headers), and consumed by product-svc, which returns a
//! cancelled order's stock once, even when it was down at the time or the
//! event arrives twice.

use std::collections::HashMap;
use std::time::Duration;

use events::{Broker, Delivery, Subscription};
use kit::test_support::{TestDb, eventually};
use oms_proto::order::v1::{self as pb, order_event::Change};
use prost::Message as _;

use crate::helpers::*;

kit::test_on_each_db!(
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
        .unwrap();
    life_cycles(&mesh, &mut subscription).await;
}

/// The test broker (`OMS_TEST_KAFKA_BROKERS`), required under CI.
pub(crate) fn test_kafka() -> Option<Broker> {
    match std::env::var("OMS_TEST_KAFKA_BROKERS") {
        Ok(brokers) => Some(Broker::Kafka(events::kafka::KafkaConfig {
            brokers,
            partitions: 3,
            replication: 1,
        })),
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI sets OMS_TEST_KAFKA_BROKERS"
            );
            None
        }
    }
}

async fn on_kafka_each_event_carries_cloudevents_headers(db: TestDb) {
    let Some(kafka) = test_kafka() else { return };
    let mesh = start_on(&db, &[], kafka).await;
    let group = kit::test_support::unique_name("oms_test_group");
    let mut subscription = mesh
        .broker
        .subscribe(events::ORDER_TOPIC, &group)
        .await
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

    // The relay dies between publishing and marking: the event goes out
    // again, and product-svc applies it no second time.
    let orders_db = mesh.orders_db.clone();
    let republished = kit::test_support::execute(
        &orders_db,
        "UPDATE outbox SET publish_time = NULL WHERE event_type = 'oms.order.v1.OrderCancelled'",
    )
    .await;
    assert_eq!(republished, 1);
    let events_in_outbox = kit::test_support::count_rows(&orders_db, "outbox", "1 = 1").await;
    eventually(
        Duration::from_secs(30),
        "product-svc to consume the duplicate",
        || async {
            let consumed = consumed_by_product_svc();
            (consumed > events_in_outbox).then_some(())
        },
    )
    .await;
    assert_eq!(mesh.stock(&lamp.id).await, (10, 0, 10), "returned once");
    let applied =
        kit::test_support::count_rows(mesh.products_db.url(), "inbox", "consumer = 'product-svc'")
            .await;
    assert_eq!(
        applied, 1,
        "one cancellation applied, its duplicate skipped"
    );
}

/// Order events product-svc has consumed in this test process, from its
/// metric.
fn consumed_by_product_svc() -> i64 {
    kit::metrics::render()
        .lines()
        .find(|l| l.starts_with("events_consumed_total{") && l.contains("service=\"product-svc\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as i64)
}
