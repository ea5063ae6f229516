//! The in-process bus: what the relay publishes to when no broker is
//! configured (the one-process `oms`), behind the same [`Publisher`] and
//! [`Subscription`] traits as Kafka. Each topic is a log in memory with
//! offsets; each consumer group resumes after what it committed. It keeps
//! at most [`CAPACITY`] events per topic, dropping the oldest (a group that
//! far behind has lost them, and a warning says so).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{ConsumeError, Delivery, PublishError, Publisher, Record, Subscription};

/// Events kept per topic.
pub const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
struct Log {
    /// Offset of `events[0]`.
    first: i64,
    events: VecDeque<Record>,
    /// Next offset to deliver, per group.
    committed: HashMap<String, i64>,
    appended: Arc<Notify>,
}

impl Log {
    fn next_offset(&self) -> i64 {
        self.first + i64::try_from(self.events.len()).unwrap_or(i64::MAX)
    }
}

/// Topics in memory, shared by the relays and consumers of one process.
#[derive(Clone, Default)]
pub struct Bus {
    topics: Arc<Mutex<HashMap<String, Log>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").finish_non_exhaustive()
    }
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<String, Log>> {
        self.topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What `topic` holds now, oldest first: for a reader that wants the
    /// whole log at once rather than a group's deliveries.
    pub fn records(&self, topic: &str) -> Vec<Record> {
        self.topics()
            .get(topic)
            .map(|log| log.events.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Deliveries of `topic` to `group`, from after its last commit (or
    /// from the oldest event kept, for a new group).
    pub fn subscribe(&self, topic: &str, group: &str) -> BusSubscription {
        let position = {
            let mut topics = self.topics();
            let log = topics.entry(topic.to_owned()).or_default();
            let first = log.first;
            *log.committed.entry(group.to_owned()).or_insert(first)
        };
        BusSubscription {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            position,
        }
    }
}

#[async_trait]
impl Publisher for Bus {
    async fn publish(
        &self,
        topic: &str,
        _source: &str,
        records: &[Record],
    ) -> Result<(), PublishError> {
        let mut topics = self.topics();
        let log = topics.entry(topic.to_owned()).or_default();
        log.events.extend(records.iter().cloned());
        while log.events.len() > CAPACITY {
            log.events.pop_front();
            log.first += 1;
        }
        log.appended.notify_waiters();
        Ok(())
    }
}

/// One group's deliveries of one topic.
#[derive(Debug)]
pub struct BusSubscription {
    bus: Bus,
    topic: String,
    group: String,
    /// Next offset to hand out.
    position: i64,
}

#[async_trait]
impl Subscription for BusSubscription {
    async fn next(&mut self) -> Result<Delivery, ConsumeError> {
        loop {
            let appended = {
                let mut topics = self.bus.topics();
                let log = topics.entry(self.topic.clone()).or_default();
                if self.position < log.first {
                    tracing::warn!(
                        topic = %self.topic,
                        group = %self.group,
                        lost = log.first - self.position,
                        "the in-process bus dropped events this group had not consumed"
                    );
                    self.position = log.first;
                }
                if self.position < log.next_offset() {
                    let index = usize::try_from(self.position - log.first).unwrap_or(usize::MAX);
                    if let Some(record) = log.events.get(index) {
                        let delivery = Delivery {
                            record: record.clone(),
                            topic: self.topic.clone(),
                            partition: 0,
                            offset: self.position,
                            headers: Vec::new(),
                        };
                        self.position += 1;
                        return Ok(delivery);
                    }
                }
                // Registered before the lock is released, so an append in
                // between is not missed.
                let appended = Arc::clone(&log.appended);
                let notified = appended.notified_owned();
                drop(topics);
                notified
            };
            appended.await;
        }
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), ConsumeError> {
        let mut topics = self.bus.topics();
        let log = topics.entry(self.topic.clone()).or_default();
        let next = delivery.offset + 1;
        let committed = log.committed.entry(self.group.clone()).or_insert(next);
        *committed = (*committed).max(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> Record {
        Record {
            id: format!("e{n}"),
            key: "k".into(),
            event_type: "t".into(),
            payload: vec![],
            time: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_group_resumes_after_its_commit_and_groups_are_independent() {
        let bus = Bus::new();
        bus.publish("t", "/s", &[record(0), record(1), record(2)])
            .await
            .unwrap();
        let mut a = bus.subscribe("t", "a");
        let first = a.next().await.unwrap();
        assert_eq!(first.record.id, "e0");
        a.commit(&first).await.unwrap();
        assert_eq!(a.next().await.unwrap().record.id, "e1");
        // Uncommitted: a new subscription of the group starts again at e1.
        let mut again = bus.subscribe("t", "a");
        assert_eq!(again.next().await.unwrap().record.id, "e1");
        let mut b = bus.subscribe("t", "b");
        assert_eq!(b.next().await.unwrap().record.id, "e0");
    }

    #[tokio::test]
    async fn next_waits_for_a_publish() {
        let bus = Bus::new();
        let mut sub = bus.subscribe("t", "g");
        let waiting = tokio::spawn(async move { sub.next().await.unwrap().record.id });
        tokio::task::yield_now().await;
        bus.publish("t", "/s", &[record(7)]).await.unwrap();
        let id = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, "e7");
    }
}
