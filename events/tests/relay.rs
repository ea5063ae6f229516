//! The relay on real databases (SQLite and MariaDB): every row published
//! once and in order per aggregate even with two relays on one outbox,
//! only acknowledged rows marked, and the inbox deciding "first time".

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]
// sea-orm's `MigrationTrait` names `SchemaManager` without its lifetime.
#![allow(elided_lifetimes_in_paths)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use events::bus::Bus;
use events::outbox::{NewEvent, Outbox, new_event_id};
use events::relay::{Relay, RelayConfig};
use events::{PublishError, Publisher, Record, Subscription};
use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::prelude::*;
use testkit::{TestDb, count_rows, eventually};

testkit::test_on_each_db!(
    two_relays_on_one_outbox_publish_each_row_once_in_order,
    only_acknowledged_rows_are_deleted_and_the_rest_retried,
    the_inbox_says_first_time_once,
    rows_an_earlier_build_marked_published_are_deleted_by_every_relay_without_failing,
);

#[derive(DeriveMigrationName)]
struct CreateTables;

#[async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::schema::create_outbox(manager).await?;
        events::schema::create_inbox(manager).await
    }
}

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateTables)]
    }
}

async fn open(db: &TestDb) -> DatabaseConnection {
    oms_store::db::connect_and_migrate::<Migrator>(db.url(), Default::default())
        .await
        .unwrap()
}

/// Writes `count` events, aggregates `a0`…`a4` in turn, each in its own
/// transaction; returns their IDs per aggregate, in order.
async fn write(
    db: &DatabaseConnection,
    outbox: &Outbox,
    count: usize,
) -> HashMap<String, Vec<String>> {
    let mut written: HashMap<String, Vec<String>> = HashMap::new();
    for n in 0..count {
        let aggregate = format!("a{}", n % 5);
        let id = new_event_id();
        let txn = db.begin().await.unwrap();
        outbox
            .add(
                &txn,
                NewEvent {
                    id: id.clone(),
                    aggregate_type: "test",
                    aggregate_id: aggregate.clone(),
                    event_type: "oms.test.v1.Happened".into(),
                    payload: vec![<u8 as TryFrom<usize>>::try_from(n % 256).unwrap()],
                    time: oms_core::time::now(),
                },
            )
            .await
            .unwrap();
        txn.commit().await.unwrap();
        outbox.committed();
        written.entry(aggregate).or_default().push(id);
    }
    written
}

fn config() -> RelayConfig {
    let mut config = RelayConfig::new("test", "test.events");
    config.poll = Duration::from_millis(50);
    config.batch = 7;
    config
}

async fn two_relays_on_one_outbox_publish_each_row_once_in_order(db: TestDb) {
    let conn = open(&db).await;
    let bus = Bus::new();
    let (first, second) = (Outbox::new(), Outbox::new());
    let _relays = [
        Relay::start(
            conn.clone(),
            Arc::new(bus.clone()),
            first.wake_handle(),
            config(),
        ),
        Relay::start(
            conn.clone(),
            Arc::new(bus.clone()),
            second.wake_handle(),
            config(),
        ),
    ];
    let written = write(&conn, &first, 60).await;

    let mut subscription = bus.subscribe("test.events", "check");
    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    for _ in 0..60 {
        let delivery = tokio::time::timeout(Duration::from_secs(30), subscription.next())
            .await
            .expect("all 60 published within 30 s")
            .unwrap();
        got.entry(delivery.record.key)
            .or_default()
            .push(delivery.record.id);
    }
    assert_eq!(got, written, "each aggregate's events, once, in order");
    testkit::outbox_drained(db.url()).await;
    // A row is published before it is deleted, and the bus appends as it
    // publishes: with every row gone, a second publication of any of them
    // would already be there to read.
    let more = futures_util::FutureExt::now_or_never(subscription.next());
    assert!(more.is_none(), "an extra delivery: {more:?}");
}

/// A bus that acknowledges `accept` records in all, then fails.
struct Flaky {
    inner: Bus,
    accept: AtomicUsize,
}

#[async_trait]
impl Publisher for Flaky {
    async fn publish(
        &self,
        topic: &str,
        source: &str,
        records: &[Record],
    ) -> Result<(), PublishError> {
        let room = self.accept.load(Ordering::SeqCst).min(records.len());
        self.inner.publish(topic, source, &records[..room]).await?;
        self.accept.fetch_sub(room, Ordering::SeqCst);
        if room < records.len() {
            return Err(PublishError {
                acknowledged: room,
                error: "broker went away".into(),
            });
        }
        Ok(())
    }
}

async fn only_acknowledged_rows_are_deleted_and_the_rest_retried(db: TestDb) {
    let conn = open(&db).await;
    let outbox = Outbox::new();
    write(&conn, &outbox, 5).await;
    let flaky = Arc::new(Flaky {
        inner: Bus::new(),
        accept: AtomicUsize::new(3),
    });
    let relay = Relay::start(conn.clone(), flaky.clone(), outbox.wake_handle(), config());
    eventually(Duration::from_secs(10), "the failure recorded", || async {
        (count_rows(db.url(), "outbox", "attempts > 0").await == 1).then_some(())
    })
    .await;
    assert_eq!(
        count_rows(db.url(), "outbox", "1 = 1").await,
        2,
        "the three acknowledged rows deleted, the rest kept"
    );
    assert_eq!(
        flaky.inner.records("test.events").len(),
        3,
        "the three on the bus"
    );
    assert_eq!(
        count_rows(db.url(), "outbox", "last_error = 'broker went away'").await,
        1
    );
    // The broker is back: the rest goes out, after the first three.
    flaky.accept.store(100, Ordering::SeqCst);
    testkit::outbox_drained(db.url()).await;
    drop(relay);
    let mut subscription = flaky.inner.subscribe("test.events", "check");
    let mut payloads = Vec::new();
    for _ in 0..5 {
        payloads.push(subscription.next().await.unwrap().record.payload[0]);
    }
    assert_eq!(payloads, [0, 1, 2, 3, 4]);
}

async fn the_inbox_says_first_time_once(db: TestDb) {
    let conn = open(&db).await;
    let txn = conn.begin().await.unwrap();
    assert!(
        events::inbox::first_time(&txn, "product-svc", "e1")
            .await
            .unwrap()
    );
    txn.commit().await.unwrap();
    let txn = conn.begin().await.unwrap();
    assert!(
        !events::inbox::first_time(&txn, "product-svc", "e1")
            .await
            .unwrap()
    );
    // The transaction is still usable after the refused insert.
    assert!(
        events::inbox::first_time(&txn, "another-svc", "e1")
            .await
            .unwrap()
    );
    txn.commit().await.unwrap();
    assert_eq!(count_rows(db.url(), "inbox", "event_id = 'e1'").await, 2);
}

async fn rows_an_earlier_build_marked_published_are_deleted_by_every_relay_without_failing(
    db: TestDb,
) {
    oms_telemetry::metrics::install();
    let conn = open(&db).await;
    let bus = Bus::new();
    let outbox = Outbox::new();
    // Rows an earlier build published and marked (it kept them a week),
    // then a few not yet published.
    write(&conn, &outbox, 200).await;
    conn.execute(
        &Query::update()
            .table(Alias::new("outbox"))
            .value(Alias::new("publish_time"), oms_core::time::now())
            .to_owned(),
    )
    .await
    .unwrap();
    let recent = write(&conn, &outbox, 5).await;
    // Both clear at their start, over the same rows.
    let _relays = [
        Relay::start(
            conn.clone(),
            Arc::new(bus.clone()),
            outbox.wake_handle(),
            config(),
        ),
        Relay::start(
            conn.clone(),
            Arc::new(bus.clone()),
            outbox.wake_handle(),
            config(),
        ),
    ];
    testkit::outbox_drained(db.url()).await;
    let published: Vec<String> = bus
        .records("test.events")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut wanted: Vec<String> = recent.into_values().flatten().collect();
    wanted.sort();
    let mut got = published.clone();
    got.sort();
    assert_eq!(
        got, wanted,
        "only the unmarked rows published, once: {published:?}"
    );
    assert_eq!(
        testkit::counter("outbox_prune_errors_total", "service=\"test\""),
        0,
        "neither relay's clearing failed"
    );
}
