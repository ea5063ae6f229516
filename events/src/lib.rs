//! Events: every change a service makes is written, in the change's own
//! database transaction, as a row of its outbox ([`outbox`]); one relay
//! per service ([`relay`]) publishes the rows in order to a bus — Kafka
//! ([`kafka`]) or, for the one-process default, an in-process log
//! ([`bus`]) — and deletes each only once the bus acknowledged it.
//! Consumers ([`consume`]) apply each event once, by recording its ID in an
//! inbox ([`inbox`]) in the same transaction as its effect.

pub mod bus;
pub mod consume;
pub mod inbox;
pub mod kafka;
pub mod outbox;
pub mod relay;
pub mod schema;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The topic of order events.
pub const ORDER_TOPIC: &str = "oms.order.v1.events";
/// The topic of product events.
pub const PRODUCT_TOPIC: &str = "oms.product.v1.events";

/// One event as it travels: what a relay publishes and a consumer gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The event's ID (the outbox row's UUIDv7; CloudEvents `id`).
    pub id: String,
    /// The aggregate the event is about (the message key: one aggregate's
    /// events stay in order).
    pub key: String,
    /// The full protobuf name of the change (CloudEvents `type`).
    pub event_type: String,
    /// The event message, protobuf-encoded.
    pub payload: Vec<u8>,
    /// When the change was made.
    pub time: DateTime<Utc>,
}

/// Why a publish stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error} (after {acknowledged} acknowledged)")]
pub struct PublishError {
    /// How many of the records, from the first, the bus acknowledged.
    pub acknowledged: usize,
    /// What went wrong with the next one.
    pub error: String,
}

/// A bus the relay publishes to.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `records` to `topic` in order, as coming from `source`
    /// (CloudEvents `source`, e.g. `/oms/order-svc`), and returns once the
    /// bus has acknowledged every one, or says how many it acknowledged
    /// before the first failure.
    async fn publish(
        &self,
        topic: &str,
        source: &str,
        records: &[Record],
    ) -> Result<(), PublishError>;
}

/// One event handed to a consumer, with where it came from.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event.
    pub record: Record,
    /// The topic.
    pub topic: String,
    /// Partition (0 on the in-process bus).
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record's headers as sent (Kafka's CloudEvents headers; none on
    /// the in-process bus).
    pub headers: Vec<(String, String)>,
}

/// Why a subscription failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The bus failed; the consumer retries.
    #[error("consuming from the bus: {0}")]
    Bus(String),
}

/// Deliveries of one topic to one consumer group.
#[async_trait]
pub trait Subscription: Send + 'static {
    /// The next event (waits for one).
    async fn next(&mut self) -> Result<Delivery, ConsumeError>;
    /// Records that `delivery` and everything before it in its partition
    /// is done with; after a restart the group resumes after it.
    async fn commit(&mut self, delivery: &Delivery) -> Result<(), ConsumeError>;
}

/// Where a service's events go and come from: Kafka when
/// `OMS_KAFKA_BROKERS` is set, else an in-process [`bus::Bus`] (which the
/// one-process `oms` shares between its services); or nowhere with
/// `OMS_EVENTS=off` (no outbox rows, no relay, no consumer: what the
/// benchmark compares against).
#[derive(Debug, Clone)]
pub enum Broker {
    /// A Kafka cluster.
    Kafka(kafka::KafkaConfig),
    /// The in-process bus.
    InProcess(bus::Bus),
    /// Events off.
    Off,
}

/// The variable that turns events off.
pub const EVENTS_VAR: &str = "OMS_EVENTS";

impl Broker {
    /// Kafka if configured, else a new in-process bus; `Off` when
    /// `OMS_EVENTS=off`.
    pub fn from_env(env: &oms_config::Env) -> Result<Self, oms_config::ConfigError> {
        let kafka = kafka::KafkaConfig::from_env(env)?;
        let on = match env.get(EVENTS_VAR)?.as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(oms_config::ConfigError::new(
                    EVENTS_VAR,
                    format!("{other:?} is neither on nor off"),
                ));
            }
        };
        Ok(match (on, kafka) {
            (false, Some(_)) => {
                return Err(oms_config::ConfigError::new(
                    EVENTS_VAR,
                    format!("is off, but {} names brokers", kafka::BROKERS_VAR),
                ));
            }
            (false, None) => Self::Off,
            (true, Some(kafka)) => Self::Kafka(kafka),
            (true, None) => Self::InProcess(bus::Bus::new()),
        })
    }

    /// The outbox a service writes to: one that drops events when they are
    /// off.
    pub fn outbox(&self) -> outbox::Outbox {
        match self {
            Self::Off => outbox::Outbox::off(),
            _ => outbox::Outbox::new(),
        }
    }

    /// A publisher for the relay (on Kafka, topics are created before
    /// their first event); `None` when events are off.
    pub fn publisher(&self) -> Result<Option<std::sync::Arc<dyn Publisher>>, String> {
        match self {
            Self::Kafka(kafka) => Ok(Some(std::sync::Arc::new(kafka.producer()?))),
            Self::InProcess(bus) => Ok(Some(std::sync::Arc::new(bus.clone()))),
            Self::Off => Ok(None),
        }
    }

    /// `group`'s subscription to `topic`; on Kafka, creates it first;
    /// `None` when events are off.
    pub async fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> Result<Option<Box<dyn Subscription>>, String> {
        match self {
            Self::Kafka(kafka) => {
                kafka.ensure_topics(&[topic]).await?;
                Ok(Some(Box::new(kafka.subscribe(topic, group)?)))
            }
            Self::InProcess(bus) => Ok(Some(Box::new(bus.subscribe(topic, group)))),
            Self::Off => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use oms_config::Env;

    use super::*;

    fn broker(pairs: &[(&str, &str)]) -> Result<Broker, oms_config::ConfigError> {
        Broker::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn events_are_on_in_process_by_default_on_kafka_when_named_and_off_when_asked() {
        assert!(matches!(broker(&[]), Ok(Broker::InProcess(_))));
        assert!(matches!(
            broker(&[(kafka::BROKERS_VAR, "k1:9092,k2:9092")]),
            Ok(Broker::Kafka(k)) if k.brokers == "k1:9092,k2:9092" && k.partitions == 3
        ));
        assert!(matches!(broker(&[(EVENTS_VAR, "off")]), Ok(Broker::Off)));
        for bad in [
            vec![(EVENTS_VAR, "maybe")],
            vec![(EVENTS_VAR, "off"), (kafka::BROKERS_VAR, "k:9092")],
            vec![(kafka::BROKERS_VAR, "no-port")],
            vec![
                (kafka::BROKERS_VAR, "k:9092"),
                ("OMS_KAFKA_TOPIC_PARTITIONS", "0"),
            ],
        ] {
            assert!(broker(&bad).is_err(), "{bad:?} must be refused");
        }
    }
}
