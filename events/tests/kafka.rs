//! The relay's Kafka path against a real Kafka-protocol broker
//! (`OMS_TEST_KAFKA_BROKERS`; tansu in CI): order kept under one key,
//! CloudEvents headers, consumer groups that resume after their commit.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use events::kafka::KafkaConfig;
use events::{Publisher, Record, Subscription};
use testkit::unique_name;

fn kafka() -> Option<KafkaConfig> {
    let brokers = testkit::require_backend(testkit::KAFKA_VAR)?;
    Some(KafkaConfig {
        brokers,
        partitions: 3,
        replication: 1,
    })
}

fn record(key: &str, n: u32) -> Record {
    Record {
        id: uuid::Uuid::now_v7().to_string(),
        key: key.to_owned(),
        event_type: format!("oms.test.v1.Step{n}"),
        payload: n.to_be_bytes().to_vec(),
        time: oms_core::time::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keys_records_arrive_in_order_with_cloudevents_headers() {
    let Some(kafka) = kafka() else { return };
    let topic = unique_name("oms_test_topic");
    kafka.ensure_topics(&[&topic]).await.unwrap();
    // Again: an existing topic is fine.
    kafka.ensure_topics(&[&topic]).await.unwrap();
    let producer = kafka.producer().unwrap();
    let sent: Vec<Record> = (0..6).map(|n| record("order-1", n)).collect();
    producer.publish(&topic, "/oms/test", &sent).await.unwrap();

    let group = unique_name("oms_test_group");
    let mut subscription = kafka.subscribe(&topic, &group).unwrap();
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let delivery = tokio::time::timeout(Duration::from_secs(60), subscription.next())
            .await
            .expect("a record within 60 s")
            .unwrap();
        got.push(delivery);
    }
    let ids: Vec<&str> = got.iter().map(|d| d.record.id.as_str()).collect();
    let expected: Vec<&str> = sent.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, expected, "one key's records in the order sent");
    for (delivery, record) in got.iter().zip(&sent) {
        assert_eq!(delivery.record.key, "order-1");
        assert_eq!(delivery.record.event_type, record.event_type);
        assert_eq!(delivery.record.payload, record.payload);
    }
    assert!(got.iter().all(|d| d.partition == got[0].partition));
}
