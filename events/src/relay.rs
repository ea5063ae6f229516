//! The relay: one task per service that publishes the outbox's rows in ID
//! order and deletes each only after the bus acknowledged it (at least
//! once; a crash between the two sends a row again, and consumers
//! deduplicate). The bus keeps what was published; the outbox holds only
//! what is still to go, so it stays small and each event costs one write
//! to remove instead of a mark and a later prune.
//!
//! It wakes when a transaction with events commits, and polls as a
//! fallback (another replica's commits, a missed wake). Only the holder of
//! the outbox lease publishes, so several replicas neither race nor break
//! one aggregate's order; a replica that dies loses the lease when it
//! expires. While the bus is down it backs off, and the rows wait.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use tokio::sync::Notify;

use crate::outbox::row;
use crate::schema::OutboxLease;
use crate::{Publisher, Record};

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The service, for metrics and logs (`order-svc`).
    pub service: &'static str,
    /// Where its events go (`oms.order.v1.events`).
    pub topic: &'static str,
    /// CloudEvents `source` (`/oms/order-svc`).
    pub source: String,
    /// Poll interval when nothing wakes it.
    pub poll: Duration,
    /// The shortest time from one round's start to the next: a wake after
    /// a quiet spell publishes at once, while under load commits gather
    /// and one round publishes many rows instead of each commit costing a
    /// round (two queries, a broker request) of its own.
    pub pace: Duration,
    /// Rows per publish.
    pub batch: u64,
    /// How long the lease lasts without renewal.
    pub lease: Duration,
    /// Longest wait between attempts while the bus is down.
    pub max_backoff: Duration,
}

impl RelayConfig {
    /// `service`'s relay to `topic`, as CloudEvents source
    /// `/oms/<service>`. Defaults: poll every second, at most a round per
    /// 100 ms while woken, 100 rows at a time, 30 s lease, back off up to
    /// 30 s.
    pub fn new(service: &'static str, topic: &'static str) -> Self {
        Self {
            service,
            topic,
            source: format!("/oms/{service}"),
            poll: Duration::from_secs(1),
            pace: Duration::from_millis(100),
            batch: 100,
            lease: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Why a relay round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The outbox could not be read or written.
    #[error("outbox database: {0}")]
    Db(#[from] DbErr),
    /// The bus refused or did not acknowledge.
    #[error("publishing: {0}")]
    Publish(#[from] crate::PublishError),
}

/// A running relay; dropping it stops it.
#[derive(Debug)]
pub struct Relay {
    _task: oms_runtime::background::Background,
}

const LEASE_NAME: &str = "outbox";
/// How often rows marked by an earlier build are looked for: not only at
/// start, as replicas of that build may still mark rows during an upgrade.
const CLEAR_EVERY: Duration = Duration::from_secs(600);
const REPORT_EVERY: Duration = Duration::from_secs(5);

struct Runner {
    db: DatabaseConnection,
    publisher: Arc<dyn Publisher>,
    config: RelayConfig,
    /// This process, as lease holder.
    holder: String,
}

impl Relay {
    /// The relay of `service`'s `outbox` to `topic` on `broker`, started;
    /// `None` with events off (nothing is written to relay). The one way a
    /// service starts its relay.
    pub fn for_service(
        broker: &crate::Broker,
        db: DatabaseConnection,
        outbox: &crate::outbox::Outbox,
        service: &'static str,
        topic: &'static str,
    ) -> Result<Option<Self>, String> {
        Ok(broker.publisher()?.map(|publisher| {
            Self::start(
                db,
                publisher,
                outbox.wake_handle(),
                RelayConfig::new(service, topic),
            )
        }))
    }

    /// Starts relaying `db`'s outbox to `publisher`, woken by `wake` (from
    /// [`crate::outbox::Outbox::wake_handle`]).
    pub fn start(
        db: DatabaseConnection,
        publisher: Arc<dyn Publisher>,
        wake: Arc<Notify>,
        config: RelayConfig,
    ) -> Self {
        for name in ["outbox_published_total", "outbox_publish_errors_total"] {
            oms_telemetry::metrics::zero(name, &[("service", config.service)]);
        }
        let runner = Runner {
            db,
            publisher,
            config,
            holder: uuid::Uuid::new_v4().to_string(),
        };
        Self {
            _task: oms_runtime::background::Background::spawn(runner.run(wake)),
        }
    }
}

impl Runner {
    /// Relays until the task is dropped.
    async fn run(self, wake: Arc<Notify>) {
        let mut failures = 0u32;
        let mut last_clear: Option<tokio::time::Instant> = None;
        let mut last_report: Option<tokio::time::Instant> = None;
        let mut lease = None;
        loop {
            let round_start = tokio::time::Instant::now();
            match self.round(&mut lease).await {
                Ok(published) => {
                    if failures > 0 {
                        tracing::info!(
                            service = self.config.service,
                            "outbox relay publishing again"
                        );
                    }
                    failures = 0;
                    if published as u64 >= self.config.batch {
                        // A full batch: more is waiting.
                        continue;
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("outbox_publish_errors_total", "service" => self.config.service)
                        .increment(1);
                    // Once per outage at WARN; the metric counts every one.
                    if failures == 1 {
                        tracing::warn!(service = self.config.service, error = %e, "outbox relay cannot publish; backing off");
                    } else {
                        tracing::debug!(service = self.config.service, error = %e, "outbox relay still failing");
                    }
                    tokio::time::sleep(self.backoff(failures)).await;
                    continue;
                }
            }
            if last_clear.is_none_or(|at| at.elapsed() >= CLEAR_EVERY) {
                last_clear = Some(tokio::time::Instant::now());
                if let Err(e) = self.clear_marked().await {
                    metrics::counter!("outbox_prune_errors_total", "service" => self.config.service)
                        .increment(1);
                    tracing::warn!(service = self.config.service, error = %e, "deleting rows marked published failed");
                }
            }
            // The gauges cost two queries: not on every wake under load.
            if last_report.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
                last_report = Some(tokio::time::Instant::now());
                if let Err(e) = self.report().await {
                    tracing::debug!(error = %e, "outbox gauges");
                }
            }
            tokio::select! {
                () = wake.notified() => {
                    tokio::time::sleep_until(round_start + self.config.pace).await;
                }
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exponent = std::cmp::min(failures.saturating_sub(1), 10);
        (Duration::from_millis(100) * 2u32.pow(exponent)).min(self.config.max_backoff)
    }

    /// Publishes what is waiting, if this relay holds the lease; returns
    /// how many rows it published. `lease` is until when this relay knows
    /// it holds the lease.
    async fn round(&self, lease: &mut Option<tokio::time::Instant>) -> Result<usize, RelayError> {
        // Renewed once half of it is used up, not on every round: a write
        // per round would compete with the service's own on SQLite.
        let now = tokio::time::Instant::now();
        if lease.is_none_or(|until| until.saturating_duration_since(now) < self.config.lease / 2) {
            *lease = None;
            if !self.hold_lease().await? {
                return Ok(0);
            }
            *lease = Some(now + self.config.lease);
        }
        let rows = row::Entity::find()
            .filter(row::Column::PublishTime.is_null())
            .order_by_asc(row::Column::Id)
            .limit(self.config.batch)
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let records: Vec<Record> = rows
            .iter()
            .map(|r| Record {
                id: r.id.clone(),
                key: r.aggregate_id.clone(),
                event_type: r.event_type.clone(),
                payload: r.payload.clone(),
                time: r.create_time,
            })
            .collect();
        let outcome = self
            .publisher
            .publish(self.config.topic, &self.config.source, &records)
            .await;
        // Only the acknowledged prefix goes: a later row of the same
        // aggregate must not count as sent ahead of an earlier one.
        let acknowledged = match &outcome {
            Ok(()) => records.len(),
            Err(e) => e.acknowledged.min(records.len()),
        };
        let ids: Vec<String> = records[..acknowledged]
            .iter()
            .map(|r| r.id.clone())
            .collect();
        if !ids.is_empty() {
            row::Entity::delete_many()
                .filter(row::Column::Id.is_in(ids))
                .exec(&self.db)
                .await?;
            metrics::counter!("outbox_published_total", "service" => self.config.service)
                .increment(acknowledged as u64);
        }
        if let Err(e) = outcome {
            if let Some(failed) = records.get(acknowledged) {
                row::Entity::update_many()
                    .col_expr(
                        row::Column::Attempts,
                        Expr::col(row::Column::Attempts).add(1),
                    )
                    .col_expr(row::Column::LastError, Expr::value(clip(&e.error)))
                    .filter(row::Column::Id.eq(failed.id.clone()))
                    .exec(&self.db)
                    .await?;
            }
            return Err(e.into());
        }
        Ok(acknowledged)
    }

    /// Takes or renews the lease; false while another relay holds it.
    async fn hold_lease(&self) -> Result<bool, DbErr> {
        let now = oms_core::time::now();
        let until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let seed = Query::insert()
            .into_table(OutboxLease::Table)
            .columns([
                OutboxLease::Name,
                OutboxLease::Holder,
                OutboxLease::ExpireTime,
            ])
            .values([LEASE_NAME.into(), self.holder.clone().into(), until.into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .to_owned();
        match self.db.execute(&seed).await {
            Ok(_) => {}
            // Seeded before (by this relay or another).
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
            Err(e) => return Err(e),
        }
        let take = Query::update()
            .table(OutboxLease::Table)
            .value(OutboxLease::Holder, self.holder.clone())
            .value(OutboxLease::ExpireTime, until)
            .and_where(Expr::col(OutboxLease::Name).eq(LEASE_NAME))
            .and_where(
                Expr::col(OutboxLease::Holder)
                    .eq(self.holder.clone())
                    .or(Expr::col(OutboxLease::ExpireTime).lt(now)),
            )
            .to_owned();
        Ok(self.db.execute(&take).await?.rows_affected() == 1)
    }

    /// Deletes the rows a build before 2026-12-07 marked published (and
    /// kept for a week) instead of deleting them: one statement, which
    /// every replica may run at once.
    async fn clear_marked(&self) -> Result<(), DbErr> {
        let cleared = row::Entity::delete_many()
            .filter(row::Column::PublishTime.is_not_null())
            .exec(&self.db)
            .await?
            .rows_affected;
        if cleared > 0 {
            tracing::info!(
                service = self.config.service,
                cleared,
                "deleted outbox rows an earlier build marked published"
            );
        }
        Ok(())
    }

    /// Sets the backlog gauges: unpublished rows and the oldest one's age.
    async fn report(&self) -> Result<(), DbErr> {
        let waiting = row::Entity::find().filter(row::Column::PublishTime.is_null());
        let backlog = waiting.clone().count(&self.db).await?;
        let oldest = waiting
            .order_by_asc(row::Column::Id)
            .one(&self.db)
            .await?
            .map_or(0.0, |r| {
                std::cmp::max((Utc::now() - r.create_time).num_milliseconds(), 0) as f64 / 1000.0
            });
        #[allow(clippy::cast_precision_loss)] // a backlog fits an f64
        metrics::gauge!("outbox_backlog", "service" => self.config.service).set(backlog as f64);
        metrics::gauge!("outbox_oldest_unpublished_seconds", "service" => self.config.service)
            .set(oldest);
        Ok(())
    }
}

/// A bus error as stored: enough to read, never unbounded.
fn clip(error: &str) -> String {
    error.chars().take(500).collect()
}
