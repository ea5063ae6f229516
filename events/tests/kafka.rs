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
        tls: None,
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

/// A Kafka-protocol broker reached over TLS only: tansu (plaintext, on a
/// port of its own) behind socat's OpenSSL listener, which it advertises
/// as `localhost:<port>`, so every connection, bootstrap and metadata
/// alike, is TLS with a certificate of `ca` for `localhost`.
struct TlsBroker {
    tansu: testkit::servers::peer::Peer,
    tls: testkit::servers::peer::Peer,
    _dir: testkit::TempDir,
}

async fn tls_broker(ca: &testkit::TestCa) -> Option<TlsBroker> {
    use testkit::servers::peer::{Peer, accepts, find_program};
    let tansu = testkit::require_backend(testkit::TANSU_VAR)?;
    let Some(socat) = find_program("socat") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs socat"
        );
        eprintln!("!!! socat not installed: the Kafka TLS test did not run");
        return None;
    };
    let dir = testkit::TempDir::new("kafka_tls");
    let cert = ca.issue("broker", &["localhost"]);
    let mut tls = Peer::new("socat", socat, dir.path().join("socat"), |_| {
        (Vec::new(), Vec::new())
    })
    .unwrap();
    let advertised = format!("tcp://localhost:{}", tls.addr().port());
    let mut broker = Peer::new(
        "tansu",
        std::path::PathBuf::from(tansu),
        dir.path().join("tansu"),
        move |addr| {
            let args = vec![
                "broker".into(),
                "--listener-url".into(),
                format!("tcp://{addr}").into(),
                "--advertised-listener-url".into(),
                advertised.clone().into(),
                "--storage-engine".into(),
                "memory://tansu/".into(),
            ];
            (args, Vec::new())
        },
    )
    .unwrap();
    broker.start(accepts).await.unwrap();
    let upstream = broker.addr();
    let (cert, key) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    tls.set_command(move |addr| {
        let listen = format!(
            "OPENSSL-LISTEN:{},bind=127.0.0.1,reuseaddr,fork,cert={cert},key={key},verify=0",
            addr.port()
        );
        (
            vec![listen.into(), format!("TCP:{upstream}").into()],
            Vec::new(),
        )
    });
    tls.start(accepts).await.unwrap();
    Some(TlsBroker {
        tansu: broker,
        tls,
        _dir: dir,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_events_go_through_and_a_broker_of_another_ca_is_refused() {
    let ca = testkit::TestCa::new("kafka CA");
    let Some(broker) = tls_broker(&ca).await else {
        return;
    };
    let config = |tls| KafkaConfig {
        brokers: format!("localhost:{}", broker.tls.addr().port()),
        partitions: 1,
        replication: 1,
        tls,
    };
    let sealed = config(Some(events::kafka::KafkaTls::Ca(ca.ca_file().to_owned())));
    let topic = unique_name("oms_test_tls");
    sealed.ensure_topics(&[&topic]).await.unwrap();
    let sent: Vec<Record> = (0..3).map(|n| record("order-tls", n)).collect();
    sealed
        .producer()
        .unwrap()
        .publish(&topic, "/oms/test", &sent)
        .await
        .unwrap();
    let mut subscription = sealed
        .subscribe(&topic, &unique_name("oms_test_group"))
        .unwrap();
    for record in &sent {
        let delivery = tokio::time::timeout(Duration::from_secs(60), subscription.next())
            .await
            .expect("a record within 60 s")
            .unwrap();
        assert_eq!(delivery.record.id, record.id);
    }

    // A client that trusts another CA, and one that speaks plaintext, get
    // nothing through: the send times out unacknowledged.
    let other = testkit::TestCa::new("another CA");
    for (what, config) in [
        (
            "another CA",
            config(Some(events::kafka::KafkaTls::Ca(
                other.ca_file().to_owned(),
            ))),
        ),
        ("plaintext", config(None)),
    ] {
        let producer = config.producer().unwrap();
        let sent = tokio::time::timeout(
            Duration::from_secs(30),
            producer.publish(&topic, "/oms/test", &[record("order-tls", 9)]),
        )
        .await;
        assert!(
            !matches!(sent, Ok(Ok(_))),
            "a client with {what} published over TLS"
        );
    }
    drop(broker.tansu);
}
