//! Looking into a service's database after the fact.

use oms_config::DatabaseUrl;
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// A connection of the test's own to the database at `url`.
async fn reopen(url: &DatabaseUrl) -> DatabaseConnection {
    match oms_store::db::connect(url, oms_store::db::PoolOptions::default()).await {
        Ok(db) => db,
        Err(e) => panic!("reopening {url}: {e}"),
    }
}

/// Asserts that each table exists in the database at `url` (the
/// migrations ran) by counting its rows.
pub async fn assert_tables(url: &DatabaseUrl, tables: &[&str]) {
    let db = reopen(url).await;
    for table in tables {
        let counted = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await;
        assert!(counted.is_ok(), "table {table} is missing: {counted:?}");
    }
    let _ = db.close().await;
}

/// Asserts how many rows `table` holds in the database at `url`.
pub async fn assert_row_count(url: &DatabaseUrl, table: &str, expected: i64) {
    assert_eq!(
        count_rows(url, table, "1 = 1").await,
        expected,
        "rows in {table}"
    );
}

/// How many rows of `table` match the SQL condition `filter`.
pub async fn count_rows(url: &DatabaseUrl, table: &str, filter: &str) -> i64 {
    let db = reopen(url).await;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}"),
        ))
        .await;
    let count = match row {
        Ok(Some(row)) => row.try_get::<i64>("", "n"),
        other => panic!("counting {table}: {other:?}"),
    };
    let _ = db.close().await;
    match count {
        Ok(n) => n,
        Err(e) => panic!("counting {table}: {e}"),
    }
}

/// Waits (20 s at most) until the service's outbox at `url` is empty: the
/// relay deletes a row once the bus has it, so every event written before
/// the call is then on the bus.
pub async fn outbox_drained(url: &DatabaseUrl) {
    crate::eventually(
        std::time::Duration::from_secs(20),
        "the outbox published",
        || async { (count_rows(url, "outbox", "1 = 1").await == 0).then_some(()) },
    )
    .await;
}

/// Runs `sql` on the database at `url` behind the service's back (to show
/// that an answer came from a cache, say); returns the rows it changed.
pub async fn execute(url: &DatabaseUrl, sql: &str) -> u64 {
    let db = reopen(url).await;
    let changed = match db.execute_unprepared(sql).await {
        Ok(result) => result.rows_affected(),
        Err(e) => panic!("{sql}: {e}"),
    };
    let _ = db.close().await;
    changed
}
