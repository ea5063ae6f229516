//! What one operation asks of a MariaDB server: the server's own
//! statement counters (`SHOW GLOBAL STATUS`) read before and after a run
//! of a known number of operations, divided by that number. The real
//! order's figures include what follows it off the request path (the
//! relays publishing and deleting its events, read until both outboxes
//! are empty), so they compare with the DB ceiling's, which has no such
//! tail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;

use crate::BenchError;

/// The counters read: every command a client sent (`Questions`, one per
/// round trip: sqlx sends one statement per command on MariaDB), and the
/// statements by kind. `Com_stmt_prepare` shows whether the services'
/// statement caches hold.
pub const COUNTERS: [&str; 9] = [
    "Questions",
    "Com_begin",
    "Com_commit",
    "Com_rollback",
    "Com_select",
    "Com_insert",
    "Com_update",
    "Com_delete",
    "Com_stmt_prepare",
];

/// One operation's statements, per operation.
#[derive(Debug, Clone, Serialize)]
pub struct StatementRecord {
    /// What ran (`CreateOrder 1 line gRPC`, the DB ceiling).
    pub operation: String,
    /// How many completed.
    pub ops: u64,
    /// Each counter of [`COUNTERS`] by its increase per operation.
    pub per_op: BTreeMap<String, f64>,
}

/// The counters at one moment.
#[derive(Debug, Clone)]
pub struct Counters(BTreeMap<String, u64>);

/// A connection to the server, for reading its counters.
pub struct Server(DatabaseConnection);

fn setup(what: &str) -> impl Fn(sea_orm::DbErr) -> BenchError + '_ {
    move |e| BenchError::Setup(format!("{what}: {e}"))
}

impl Server {
    /// Connects to `server_url` (no database needed).
    pub async fn connect(server_url: &str) -> Result<Self, BenchError> {
        sea_orm::Database::connect(server_url)
            .await
            .map(Self)
            .map_err(setup("cannot reach MariaDB"))
    }

    /// Reads [`COUNTERS`] now.
    pub async fn counters(&self) -> Result<Counters, BenchError> {
        let names = COUNTERS
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(",");
        let rows = self
            .0
            .query_all_raw(Statement::from_string(
                DbBackend::MySql,
                format!("SHOW GLOBAL STATUS WHERE Variable_name IN ({names})"),
            ))
            .await
            .map_err(setup("SHOW GLOBAL STATUS"))?;
        let mut counters = BTreeMap::new();
        for row in rows {
            let name: String = row
                .try_get("", "Variable_name")
                .map_err(setup("a status row"))?;
            let value: String = row.try_get("", "Value").map_err(setup("a status row"))?;
            let value = value.parse::<u64>().map_err(|e| {
                BenchError::Setup(format!("status {name} = {value:?} is not a count: {e}"))
            })?;
            counters.insert(name, value);
        }
        Ok(Counters(counters))
    }

    /// Waits until each of `tables` (`db`.`table` names) is empty, for at
    /// most `within`: an order's events are published (and their rows
    /// deleted) after its response.
    pub async fn wait_empty(&self, tables: &[String], within: Duration) -> Result<(), BenchError> {
        if tables.is_empty() {
            return Ok(());
        }
        let sql = tables
            .iter()
            .map(|t| format!("(SELECT COUNT(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(" + ");
        let began = Instant::now();
        loop {
            let row = self
                .0
                .query_one_raw(Statement::from_string(
                    DbBackend::MySql,
                    format!("SELECT CAST({sql} AS SIGNED) AS n"),
                ))
                .await
                .map_err(setup("counting outbox rows"))?;
            let left: i64 = match row {
                Some(row) => row
                    .try_get("", "n")
                    .map_err(setup("counting outbox rows"))?,
                None => 0,
            };
            if left == 0 {
                return Ok(());
            }
            if began.elapsed() > within {
                return Err(BenchError::Setup(format!(
                    "{left} outbox rows still unpublished {within:?} after the run"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Counters {
    /// What each counter rose by from `before`, per one of `ops`.
    pub fn per_op(&self, before: &Counters, ops: u64) -> BTreeMap<String, f64> {
        #[allow(clippy::cast_precision_loss)] // counts fit an f64
        self.0
            .iter()
            .map(|(name, after)| {
                let rose = after.saturating_sub(before.0.get(name).copied().unwrap_or(*after));
                (name.clone(), rose as f64 / ops.max(1) as f64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_op_divides_each_rise_and_skips_what_was_not_read_before() {
        let before = Counters(BTreeMap::from([
            ("Questions".to_owned(), 100),
            ("Com_commit".to_owned(), 10),
        ]));
        let after = Counters(BTreeMap::from([
            ("Questions".to_owned(), 1100),
            ("Com_commit".to_owned(), 410),
            ("Com_insert".to_owned(), 7),
        ]));
        let per_op = after.per_op(&before, 100);
        assert_eq!(per_op["Questions"], 10.0);
        assert_eq!(per_op["Com_commit"], 4.0);
        assert_eq!(per_op["Com_insert"], 0.0, "no reading before: no rise");
    }
}
