//! Kafka, through librdkafka: the relay's producer (idempotent, acks=all,
//! CloudEvents binary-mode headers) and consumer-group subscriptions that
//! commit offsets only when told.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use oms_config::{ConfigError, Env};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::{ConsumeError, Delivery, PublishError, Publisher, Record, Subscription};

/// The variable naming the brokers; unset means the in-process bus.
pub const BROKERS_VAR: &str = "OMS_KAFKA_BROKERS";

/// Where Kafka is and how topics are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Partitions of a topic created at start-up.
    pub partitions: i32,
    /// Replicas of a topic created at start-up.
    pub replication: i32,
    /// TLS to the brokers, when set.
    pub tls: Option<KafkaTls>,
}

/// TLS to the brokers: each broker's certificate verified, for the name
/// dialled, against a CA file or the system's CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaTls {
    /// The system's CAs (a managed Kafka with a public certificate).
    SystemRoots,
    /// The CA in this PEM file.
    Ca(std::path::PathBuf),
}

/// The variable turning TLS to the brokers on.
pub const TLS_VAR: &str = "OMS_KAFKA_TLS";
/// The variable naming the brokers' CA.
pub const TLS_CA_VAR: &str = "OMS_KAFKA_TLS_CA";

impl KafkaConfig {
    /// Reads `OMS_KAFKA_BROKERS`, `OMS_KAFKA_TOPIC_PARTITIONS` (1–1024,
    /// default 3), `OMS_KAFKA_TOPIC_REPLICATION` (1–16, default 1) and
    /// the TLS variables (`OMS_KAFKA_TLS`, `OMS_KAFKA_TLS_CA`); `None`
    /// without brokers.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let partitions = env.bounded("OMS_KAFKA_TOPIC_PARTITIONS", 3, 1..=1024)?;
        let replication = env.bounded("OMS_KAFKA_TOPIC_REPLICATION", 1, 1..=16)?;
        let Some(brokers) = env.get(BROKERS_VAR)? else {
            return Ok(None);
        };
        let brokers = brokers.trim().to_owned();
        let valid = !brokers.is_empty()
            && brokers.split(',').all(|b| {
                b.trim()
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            });
        if !valid {
            return Err(ConfigError::new(
                BROKERS_VAR,
                format!("{brokers:?} is not a list of host:port (e.g. kafka:9092,kafka-2:9092)"),
            ));
        }
        Ok(Some(Self {
            brokers,
            partitions,
            replication,
            tls: tls_from_env(env)?,
        }))
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.timeout.ms", "10000");
        if let Some(tls) = &self.tls {
            config
                .set("security.protocol", "ssl")
                // The broker's certificate must name the host dialled.
                .set("ssl.endpoint.identification.algorithm", "https");
            if let KafkaTls::Ca(ca) = tls {
                config.set("ssl.ca.location", ca.display().to_string());
            }
        }
        config
    }

    /// Creates `topics` unless they exist.
    pub async fn ensure_topics(&self, topics: &[&str]) -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = self
            .client()
            .create()
            .map_err(|e| format!("Kafka admin client: {e}"))?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                NewTopic::new(
                    t,
                    self.partitions,
                    TopicReplication::Fixed(self.replication),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(&new, &options)
            .await
            .map_err(|e| format!("creating topics on {}: {e}", self.brokers))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(format!("creating topic {topic}: {code}")),
            }
        }
        Ok(())
    }

    /// The relay's producer: idempotent with acks from all in-sync
    /// replicas, so a retried send neither duplicates nor reorders within
    /// a partition.
    pub fn producer(&self) -> Result<KafkaPublisher, String> {
        Ok(KafkaPublisher {
            producer: std::sync::Mutex::new(self.new_producer()?),
            config: self.clone(),
            topics_made: tokio::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn new_producer(&self) -> Result<FutureProducer, String> {
        self.client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // How long one send may take before it counts as failed and
            // the relay backs off and retries the rows.
            .set("message.timeout.ms", "10000")
            // The relay hands over a round's rows at once; a few ms let
            // librdkafka send them as one request per partition.
            .set("linger.ms", "5")
            .create()
            .map_err(|e| format!("Kafka producer for {}: {e}", self.brokers))
    }

    /// A subscription of `group` to `topic`, from the earliest offset when
    /// the group has none. The session settings keep group joins quick
    /// (tansu, the test broker, is slow to join with the defaults).
    pub fn subscribe(&self, topic: &str, group: &str) -> Result<KafkaSubscription, String> {
        let consumer: StreamConsumer = self
            .client()
            .set("group.id", group)
            // Offsets are committed by the subscription itself, after each
            // event's effect (see `commit`). Not librdkafka's auto-commit:
            // that commits once more when the consumer closes, and a close
            // while the broker is down then waits forever.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("max.poll.interval.ms", "60000")
            .create()
            .map_err(|e| format!("Kafka consumer for {}: {e}", self.brokers))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| format!("subscribing to {topic}: {e}"))?;
        Ok(KafkaSubscription {
            consumer,
            applied: std::collections::HashMap::new(),
            last_commit: tokio::time::Instant::now(),
        })
    }
}

/// Publishes to Kafka.
pub struct KafkaPublisher {
    /// Replaced after a fatal error: an idempotent producer the broker
    /// fenced (as a restarted broker may) fails every send for good.
    producer: std::sync::Mutex<FutureProducer>,
    config: KafkaConfig,
    /// Topics known to exist; each is created before its first publish,
    /// so a broker down at start-up delays events instead of the service.
    topics_made: tokio::sync::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher").finish_non_exhaustive()
    }
}

/// CloudEvents `time`: RFC 3339, UTC.
fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(
        &self,
        topic: &str,
        source: &str,
        records: &[Record],
    ) -> Result<(), PublishError> {
        {
            let mut made = self.topics_made.lock().await;
            if !made.contains(topic) {
                self.config
                    .ensure_topics(&[topic])
                    .await
                    .map_err(|error| PublishError {
                        acknowledged: 0,
                        error,
                    })?;
                made.insert(topic.to_owned());
            }
        }
        let producer = self.current();
        let outcome = publish_with(&producer, topic, source, records).await;
        if outcome.is_err() {
            // Every record of the batch has its answer by now: nothing is in
            // flight on the old producer.
            self.replace(producer.client().fatal_error());
        }
        outcome
    }
}

impl KafkaPublisher {
    fn current(&self) -> FutureProducer {
        match self.producer.lock() {
            Ok(producer) => producer.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps the producer for a new one (a new producer ID) after a failed
    /// publish; the relay sends the rows it failed on again. A restarted
    /// broker may fence the old ID (tansu answers PRODUCER_FENCED to it for
    /// good, which librdkafka does not count as fatal), and a producer
    /// whose sends timed out is unsure of its own sequence numbers: a new
    /// one costs a connection after a failure, never a lost event.
    fn replace(&self, fatal: Option<(RDKafkaErrorCode, String)>) {
        match fatal {
            Some((code, reason)) => tracing::warn!(
                error = %format_args!("{code}: {reason}"),
                "the Kafka producer hit a fatal error; starting a new one"
            ),
            None => tracing::debug!("a publish failed; starting a new Kafka producer"),
        }
        match self.config.new_producer() {
            Ok(fresh) => match self.producer.lock() {
                Ok(mut producer) => *producer = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            },
            Err(e) => tracing::warn!(error = %e, "cannot start a new Kafka producer"),
        }
    }
}

/// Sends `records` on `producer`: all queued, then each acknowledgement
/// awaited in order (the idempotent producer keeps their order within a
/// partition).
async fn publish_with(
    producer: &FutureProducer,
    topic: &str,
    source: &str,
    records: &[Record],
) -> Result<(), PublishError> {
    let mut pending = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let time = rfc3339(record.time);
        let headers = OwnedHeaders::new_with_capacity(7)
            .insert(Header {
                key: "ce_specversion",
                value: Some("1.0"),
            })
            .insert(Header {
                key: "ce_id",
                value: Some(record.id.as_str()),
            })
            .insert(Header {
                key: "ce_source",
                value: Some(source),
            })
            .insert(Header {
                key: "ce_type",
                value: Some(record.event_type.as_str()),
            })
            .insert(Header {
                key: "ce_time",
                value: Some(time.as_str()),
            })
            .insert(Header {
                key: "ce_subject",
                value: Some(record.key.as_str()),
            })
            .insert(Header {
                key: "content-type",
                value: Some("application/protobuf"),
            });
        let message = FutureRecord::to(topic)
            .key(record.key.as_str())
            .payload(record.payload.as_slice())
            .headers(headers);
        match producer.send_result(message) {
            Ok(delivery) => pending.push(delivery),
            Err((e, _)) => {
                return Err(settle(pending, index, e.to_string()).await);
            }
        }
    }
    let total = pending.len();
    let outcome = settle(pending, total, String::new()).await;
    if outcome.acknowledged == total {
        Ok(())
    } else {
        Err(outcome)
    }
}

/// Waits for `pending` acknowledgements in order: how many succeeded from
/// the first, and the first error (or `queue_error` if all queued ones
/// succeeded but `queued` < the batch).
async fn settle(
    pending: Vec<rdkafka::producer::DeliveryFuture>,
    queued: usize,
    queue_error: String,
) -> PublishError {
    let mut acknowledged = 0;
    let mut error = None;
    for delivery in pending {
        let result = match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e.to_string()),
            Err(_) => Err("the producer was dropped".to_owned()),
        };
        match result {
            Ok(()) if error.is_none() => acknowledged += 1,
            Ok(()) => {}
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    debug_assert!(acknowledged <= queued);
    PublishError {
        acknowledged,
        error: error.unwrap_or(queue_error),
    }
}

/// One consumer group's subscription to a topic.
pub struct KafkaSubscription {
    consumer: StreamConsumer,
    /// Per partition, the offset after the last applied event, not yet
    /// sent to the broker.
    applied: std::collections::HashMap<(String, i32), i64>,
    /// When offsets last went to the broker.
    last_commit: tokio::time::Instant,
}

/// How often applied offsets go to the broker: one request per interval,
/// not one per event. Offsets not sent when the process stops mean
/// redeliveries, which the inbox absorbs.
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl KafkaSubscription {
    /// Sends the applied offsets to the broker without waiting for it.
    fn send_offsets(&mut self) -> Result<(), ConsumeError> {
        self.last_commit = tokio::time::Instant::now();
        if self.applied.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in self.applied.drain() {
            offsets
                .add_partition_offset(&topic, partition, Offset::Offset(next))
                .map_err(|e| ConsumeError::Bus(e.to_string()))?;
        }
        self.consumer
            .commit(&offsets, CommitMode::Async)
            .map_err(|e| ConsumeError::Bus(e.to_string()))
    }
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription").finish_non_exhaustive()
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Delivery, ConsumeError> {
        // While waiting, offsets applied since the last commit still go
        // out on time.
        let message = loop {
            let due = self.last_commit + COMMIT_EVERY;
            tokio::select! {
                message = self.consumer.recv() => break message,
                () = tokio::time::sleep_until(due), if !self.applied.is_empty() => {
                    if let Err(e) = self.send_offsets() {
                        tracing::warn!(error = %e, "committing consumer offsets failed");
                    }
                }
            }
        };
        let message = message.map_err(|e| ConsumeError::Bus(e.to_string()))?;
        let headers: Vec<(String, String)> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let header = |name: &str| -> Option<String> {
            headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let time = header("ce_time")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        Ok(Delivery {
            record: Record {
                id: header("ce_id").unwrap_or_default(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default(),
                event_type: header("ce_type").unwrap_or_default(),
                payload: message.payload().unwrap_or_default().to_vec(),
                time,
            },
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            headers,
        })
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), ConsumeError> {
        self.applied.insert(
            (delivery.topic.clone(), delivery.partition),
            delivery.offset + 1,
        );
        if self.last_commit.elapsed() >= COMMIT_EVERY {
            self.send_offsets()?;
        }
        Ok(())
    }
}

/// `OMS_KAFKA_TLS_CA` (a readable PEM file) turns TLS on verifying against
/// it; `OMS_KAFKA_TLS=true` alone, against the system's CAs.
fn tls_from_env(env: &Env) -> Result<Option<KafkaTls>, ConfigError> {
    let on = env.flag(TLS_VAR, false)?;
    match env.get(TLS_CA_VAR)? {
        Some(path) => {
            let path = std::path::PathBuf::from(path.trim());
            if !path.is_file() {
                return Err(ConfigError::new(
                    TLS_CA_VAR,
                    format!("{} is not a readable file", path.display()),
                ));
            }
            Ok(Some(KafkaTls::Ca(path)))
        }
        None if on => Ok(Some(KafkaTls::SystemRoots)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Option<KafkaConfig>, ConfigError> {
        let mut all = vec![(BROKERS_VAR, "kafka:9092")];
        all.extend_from_slice(pairs);
        KafkaConfig::from_env(&Env::from_pairs(all.iter().copied()))
    }

    #[test]
    fn tls_is_off_unless_asked_for_and_a_ca_must_be_a_file() {
        assert_eq!(config(&[]).unwrap().unwrap().tls, None);
        assert_eq!(
            config(&[(TLS_VAR, "true")]).unwrap().unwrap().tls,
            Some(KafkaTls::SystemRoots)
        );
        let ca = std::env::current_exe().unwrap();
        assert_eq!(
            config(&[(TLS_CA_VAR, ca.to_str().unwrap())])
                .unwrap()
                .unwrap()
                .tls,
            Some(KafkaTls::Ca(ca))
        );
        let error = config(&[(TLS_CA_VAR, "/no/such/ca.pem")]).unwrap_err();
        assert_eq!(error.var, TLS_CA_VAR, "{error}");
    }
}
