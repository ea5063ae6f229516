//! A Kafka-protocol broker of the bench's own (tansu, `--tansu PATH`), so
//! the chaos scenario can kill it and start it again. Its storage is a
//! bucket of an S3-compatible server (`--s3-endpoint`, e.g. moto from
//! `scripts/test-s3`): tansu's memory storage would forget every topic at
//! a restart, which is a wipe, not an outage. Also reads a topic back for
//! the invariants.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use events::Subscription as _;
use events::kafka::KafkaConfig;

use crate::BenchError;
use crate::http_client::HttpClient;
use testkit::servers::peer::{Peer, accepts};

/// A running (or killed) tansu broker.
pub struct Broker {
    peer: Peer,
}

impl Broker {
    /// Makes a bucket of its own at `s3_endpoint` and starts tansu on it
    /// in `dir`, on a free port of 127.0.0.1.
    pub async fn start(
        tansu: PathBuf,
        s3_endpoint: &str,
        dir: PathBuf,
    ) -> Result<Self, BenchError> {
        let bucket = format!("oms-bench-broker-{}", uuid::Uuid::new_v4().simple());
        create_bucket(s3_endpoint, &bucket).await?;
        let s3_endpoint = s3_endpoint.to_owned();
        let peer = Peer::new("tansu", tansu, dir, move |addr| {
            let url = format!("tcp://{addr}");
            let args = vec![
                "broker".into(),
                "--listener-url".into(),
                url.clone().into(),
                "--advertised-listener-url".into(),
                url.into(),
                "--storage-engine".into(),
                format!("s3://{bucket}/").into(),
            ];
            let env = [
                ("AWS_ACCESS_KEY_ID", "oms-bench"),
                ("AWS_SECRET_ACCESS_KEY", "oms-bench"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT", s3_endpoint.as_str()),
                ("AWS_ALLOW_HTTP", "true"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
            (args, env)
        })?;
        let mut broker = Self { peer };
        broker.resume().await?;
        Ok(broker)
    }

    /// `127.0.0.1:PORT`, for `OMS_KAFKA_BROKERS`.
    pub fn brokers(&self) -> String {
        self.peer.addr().to_string()
    }

    /// Stops it (SIGTERM, as an orchestrator stops it).
    pub async fn stop(&mut self) {
        self.peer.stop().await;
    }

    /// Kills it (SIGKILL).
    pub async fn kill(&mut self) {
        self.peer.kill().await;
    }

    /// Starts it again on the same port and bucket.
    pub async fn resume(&mut self) -> Result<(), BenchError> {
        Ok(self.peer.start(accepts).await?)
    }
}

/// `PUT /<bucket>` on the S3 endpoint (path style, as moto takes it).
async fn create_bucket(endpoint: &str, bucket: &str) -> Result<(), BenchError> {
    let host = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| {
            BenchError::Setup(format!(
                "--s3-endpoint {endpoint:?}: expected http://host:port"
            ))
        })?
        .trim_end_matches('/');
    let addr: SocketAddr = tokio::net::lookup_host(host)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| BenchError::Setup(format!("--s3-endpoint {endpoint:?}: unknown host")))?;
    let reply = HttpClient::new(addr)
        .send(http::Method::PUT, &format!("/{bucket}"), None, None)
        .await
        .map_err(|e| BenchError::Setup(format!("creating bucket {bucket} at {endpoint}: {e}")))?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "creating bucket {bucket} at {endpoint}: HTTP {}",
            reply.status
        )))
    }
}

/// One event as read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicEvent {
    /// The message key (the aggregate's ID).
    pub key: String,
    /// `ce_type`.
    pub event_type: String,
    /// `ce_id`.
    pub id: String,
}

/// Reads `topic` from its start with a consumer group of its own until
/// every key of `wanted` has shown up and nothing more came for a second,
/// or `within` has passed; returns what it read. (The broker's high
/// watermark is not trusted to say where the end is.)
pub async fn read_topic(
    brokers: &str,
    topic: &str,
    wanted: &HashSet<(String, String)>,
    within: Duration,
) -> Result<Vec<TopicEvent>, BenchError> {
    let config = KafkaConfig {
        brokers: brokers.to_owned(),
        partitions: 1,
        replication: 1,
        tls: None,
    };
    let group = format!("oms-bench-check-{}", uuid::Uuid::new_v4().simple());
    let mut subscription = config
        .subscribe(topic, &group)
        .map_err(|e| BenchError::Setup(format!("reading {topic}: {e}")))?;
    let deadline = Instant::now() + within;
    let mut events = Vec::new();
    let mut missing = wanted.clone();
    loop {
        let quiet = if missing.is_empty() {
            Duration::from_secs(1)
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        match tokio::time::timeout(quiet, subscription.next()).await {
            Ok(Ok(delivery)) => {
                let event = TopicEvent {
                    key: delivery.record.key,
                    event_type: delivery.record.event_type,
                    id: delivery.record.id,
                };
                missing.remove(&(event.key.clone(), event.event_type.clone()));
                events.push(event);
            }
            Ok(Err(e)) => {
                if Instant::now() > deadline {
                    return Err(BenchError::Setup(format!("reading {topic}: {e}")));
                }
            }
            Err(_) => return Ok(events),
        }
        if Instant::now() > deadline {
            return Ok(events);
        }
    }
}
