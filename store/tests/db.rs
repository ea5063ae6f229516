//! How database failures are classified, on a real MariaDB: a connection
//! the server kills in the middle of a transaction is "unavailable" (the
//! client may retry), a statement the server refuses is not.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use oms_store::db::{PoolOptions, connect, is_unavailable};
use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
use testkit::TestDb;

#[tokio::test]
async fn a_connection_killed_mid_transaction_is_unavailable_and_bad_sql_is_not() {
    let Some(test_db) = TestDb::mysql().await else {
        eprintln!("skipped: OMS_TEST_MYSQL_URL is unset");
        return;
    };
    let db = connect(test_db.url(), PoolOptions::default())
        .await
        .unwrap();
    let refused = db.execute_unprepared("SELEC 1").await.unwrap_err();
    assert!(!is_unavailable(&refused), "{refused}");

    let txn = db.begin().await.unwrap();
    let row = txn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::MySql,
            "SELECT CAST(CONNECTION_ID() AS SIGNED)",
        ))
        .await
        .unwrap()
        .unwrap();
    let id: i64 = row.try_get_by_index(0).unwrap();
    // Another connection kills this one, as a server restart does.
    let killer = connect(test_db.url(), PoolOptions::default())
        .await
        .unwrap();
    killer
        .execute_unprepared(&format!("KILL CONNECTION {id}"))
        .await
        .unwrap();
    let cut = txn.execute_unprepared("SELECT 1").await.unwrap_err();
    assert!(is_unavailable(&cut), "{cut:?}");
}
