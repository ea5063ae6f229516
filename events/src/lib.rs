//! Events: every change a service makes is written, in the change's own
//! database transaction, as a row of its outbox ([`outbox`]); one relay
//! per service ([`relay`]) publishes the rows in order to a bus — Kafka
//! ([`kafka`]) or, for the one-process default, an in-process log
//! ([`bus`]) — and marks each published only once the bus acknowledged it.
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
