//! Writing events: a row in the outbox, inside the transaction of the
//! change it describes, so there is no change without its event and no
//! event without its change. After the commit, the writer wakes the relay.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryTrait, Set};
use tokio::sync::Notify;

/// The `outbox` table (see [`crate::schema`]).
pub mod row {
    use sea_orm::entity::prelude::*;

    /// One event waiting to be published (the relay deletes it once the
    /// bus has it).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub aggregate_type: String,
        pub aggregate_id: String,
        pub event_type: String,
        pub payload: Vec<u8>,
        pub create_time: DateTimeUtc,
        /// Set only by builds before 2026-12-07, which kept published rows
        /// a week; the relay deletes such rows when it starts.
        pub publish_time: Option<DateTimeUtc>,
        pub attempts: i32,
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its ID, from [`new_event_id`] (the payload carries it too).
    pub id: String,
    /// `order`, `product`.
    pub aggregate_type: &'static str,
    /// The order or product ID: the message key.
    pub aggregate_id: String,
    /// The full protobuf name of the change.
    pub event_type: String,
    /// The event message, protobuf-encoded.
    pub payload: Vec<u8>,
    /// When the change was made.
    pub time: DateTime<Utc>,
}

/// A fresh event ID: UUIDv7, so IDs sort in the order they were made (the
/// relay publishes in ID order).
pub fn new_event_id() -> String {
    Uuid::now_v7().to_string()
}

/// Writes events into a service's outbox and wakes its relay.
#[derive(Debug, Clone)]
pub struct Outbox {
    wake: Arc<Notify>,
    /// False with events off: nothing is written.
    enabled: bool,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    /// An outbox whose relay waits on [`Outbox::wake_handle`].
    pub fn new() -> Self {
        Self {
            wake: Arc::default(),
            enabled: true,
        }
    }

    /// An outbox that writes nothing (`OMS_EVENTS=off`).
    pub fn off() -> Self {
        Self {
            wake: Arc::default(),
            enabled: false,
        }
    }

    /// Adds `event` in `txn`, the transaction of the change it describes.
    pub async fn add(&self, txn: &impl ConnectionTrait, event: NewEvent) -> Result<(), DbErr> {
        let mut batch = oms_store::batch::Batch::new(txn);
        self.stage(&mut batch, vec![event]);
        batch.execute(txn).await?;
        Ok(())
    }

    /// Adds the INSERT of `events` to `batch`, which runs in the
    /// transaction of the change they describe (on SQLite in the same
    /// command as that change's own statements).
    pub fn stage(&self, batch: &mut oms_store::batch::Batch, events: Vec<NewEvent>) {
        if !self.enabled || events.is_empty() {
            return;
        }
        let rows = events.into_iter().map(|event| row::ActiveModel {
            id: Set(event.id),
            aggregate_type: Set(event.aggregate_type.to_owned()),
            aggregate_id: Set(event.aggregate_id),
            event_type: Set(event.event_type),
            payload: Set(event.payload),
            create_time: Set(event.time),
            publish_time: Set(None),
            attempts: Set(0),
            last_error: Set(None),
        });
        batch.push(&row::Entity::insert_many(rows).into_query());
    }

    /// The event message `build` makes from a fresh event ID (the message
    /// carries its own ID), protobuf-encoded, about `aggregate_id` of
    /// `aggregate_type`, ready for [`Outbox::add`]. Nothing is built with
    /// events off.
    pub fn message<M: prost::Message>(
        &self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        event_type: &str,
        time: DateTime<Utc>,
        build: impl FnOnce(String) -> M,
    ) -> Option<NewEvent> {
        if !self.enabled {
            return None;
        }
        let id = new_event_id();
        let payload = build(id.clone()).encode_to_vec();
        Some(NewEvent {
            id,
            aggregate_type,
            aggregate_id: aggregate_id.to_owned(),
            event_type: event_type.to_owned(),
            payload,
            time,
        })
    }

    /// Whether events are written (not with `OMS_EVENTS=off`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Tells the relay that a transaction with events committed, so it
    /// publishes now rather than at its next poll.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// What the relay waits on.
    pub fn wake_handle(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }
}
