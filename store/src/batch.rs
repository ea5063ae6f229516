//! Statements of one transaction sent as one command where the backend
//! allows it.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every
//! command is a hand-off to that thread and back: on SQLite, where a
//! service has one writing connection, those hand-offs are the serial
//! path every write waits on (BENCHMARKS.md). A change and the outbox row
//! that describes it go to SQLite as one multi-statement command instead
//! (sqlx binds each statement's `?` parameters from one shared list, in
//! order). MySQL's prepared statements hold one statement each, so there
//! the statements run one after another as before.
//!
//! Only ever inside a transaction: a statement that fails stops the batch
//! with the earlier ones applied, and the caller's rollback undoes them.

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, StatementBuilder, Value, Values,
};

/// Statements to run in order, in one transaction.
#[derive(Debug)]
pub struct Batch {
    backend: DbBackend,
    statements: Vec<Statement>,
}

impl Batch {
    /// An empty batch for `conn`'s backend.
    pub fn new(conn: &impl ConnectionTrait) -> Self {
        Self {
            backend: conn.get_database_backend(),
            statements: Vec::new(),
        }
    }

    /// Adds `statement` after the ones already in.
    pub fn push(&mut self, statement: &impl StatementBuilder) {
        let built = self.backend.build(statement);
        self.statements.push(built);
    }

    /// Adds `statement`, already built for this batch's backend.
    pub fn push_raw(&mut self, statement: Statement) {
        self.statements.push(statement);
    }

    /// Runs the statements in order in `txn` (the transaction they were
    /// built for) and returns the rows they changed, summed.
    pub async fn execute(self, txn: &impl ConnectionTrait) -> Result<u64, DbErr> {
        match self.backend {
            DbBackend::Sqlite if self.statements.len() > 1 => Ok(txn
                .execute_raw(join(self.statements))
                .await?
                .rows_affected()),
            _ => {
                let mut changed = 0;
                for statement in self.statements {
                    changed += txn.execute_raw(statement).await?.rows_affected();
                }
                Ok(changed)
            }
        }
    }

    /// Runs the statements in order in `txn`, then `select`, and returns
    /// the rows `select` read (on SQLite, all of it one command).
    pub async fn query_all(
        mut self,
        txn: &impl ConnectionTrait,
        select: &impl StatementBuilder,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let select = self.backend.build(select);
        if self.backend == DbBackend::Sqlite {
            self.statements.push(select);
            return self.rows(txn).await;
        }
        self.execute(txn).await?;
        txn.query_all_raw(select).await
    }

    /// Runs `guard` (an UPDATE whose WHERE clause holds a rule), then the
    /// statements; false if `guard` changed no row. On SQLite the
    /// statements run all the same, in the same command: on false the
    /// caller rolls the transaction back.
    pub async fn execute_if(
        self,
        txn: &impl ConnectionTrait,
        guard: &impl StatementBuilder,
    ) -> Result<bool, DbErr> {
        let guard = self.backend.build(guard);
        if self.backend == DbBackend::Sqlite {
            let rows = txn.query_all_raw(self.guarded(guard, None)).await?;
            return guard_changed(&rows);
        }
        if txn.execute_raw(guard).await?.rows_affected() == 0 {
            return Ok(false);
        }
        self.execute(txn).await?;
        Ok(true)
    }

    /// Runs `guard`, then the statements, then `select`, and returns the
    /// rows `select` read; `None` if `guard` changed no row (then, on
    /// SQLite, the statements ran all the same and the caller rolls back).
    pub async fn query_all_if(
        self,
        txn: &impl ConnectionTrait,
        guard: &impl StatementBuilder,
        select: &impl StatementBuilder,
    ) -> Result<Option<Vec<QueryResult>>, DbErr> {
        let guard = self.backend.build(guard);
        let select = self.backend.build(select);
        if self.backend == DbBackend::Sqlite {
            let mut rows = txn.query_all_raw(self.guarded(guard, Some(select))).await?;
            if !guard_changed(&rows)? {
                return Ok(None);
            }
            rows.remove(0);
            return Ok(Some(rows));
        }
        if txn.execute_raw(guard).await?.rows_affected() == 0 {
            return Ok(None);
        }
        self.execute(txn).await?;
        Ok(Some(txn.query_all_raw(select).await?))
    }

    /// Returns every row the statements produce (their `RETURNING`
    /// clauses' and SELECTs'), in order; on SQLite in one command.
    /// MariaDB has no `UPDATE … RETURNING`: callers use that on SQLite only.
    pub async fn rows(self, txn: &impl ConnectionTrait) -> Result<Vec<QueryResult>, DbErr> {
        if self.backend == DbBackend::Sqlite {
            return txn.query_all_raw(join(self.statements)).await;
        }
        let mut rows = Vec::new();
        for statement in self.statements {
            rows.extend(txn.query_all_raw(statement).await?);
        }
        Ok(rows)
    }

    /// One SQLite command: `guard`, how many rows it changed (`changes()`
    /// is the row count of the last completed write, so read before any
    /// other), the statements, then `select` if any.
    fn guarded(self, guard: Statement, select: Option<Statement>) -> Statement {
        let count =
            Statement::from_string(self.backend, format!("SELECT changes() AS {GUARD_CHANGES}"));
        let mut statements = Vec::with_capacity(self.statements.len() + 3);
        statements.push(guard);
        statements.push(count);
        statements.extend(self.statements);
        statements.extend(select);
        join(statements)
    }
}

/// The column the guard's row count is read into.
const GUARD_CHANGES: &str = "oms_guard_changes";

/// Whether the guard changed a row: the first row holds its count.
fn guard_changed(rows: &[QueryResult]) -> Result<bool, DbErr> {
    let first = rows
        .first()
        .ok_or_else(|| DbErr::Custom("the guard's row count is missing".to_owned()))?;
    Ok(first.try_get::<i64>("", GUARD_CHANGES)? > 0)
}

/// One SQLite command from several statements: their texts separated by
/// `;`, their values in the same order.
fn join(statements: Vec<Statement>) -> Statement {
    let backend = statements
        .first()
        .map_or(DbBackend::Sqlite, |s| s.db_backend);
    let mut sql = String::new();
    let mut values: Vec<Value> = Vec::new();
    for statement in statements {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&statement.sql);
        if let Some(Values(more)) = statement.values {
            values.extend(more);
        }
    }
    Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{
        Alias, Expr, ExprTrait as _, InsertStatement, Query, UpdateStatement,
    };
    use sea_orm::{Database, TransactionTrait};

    use super::*;

    async fn sqlite() -> sea_orm::DatabaseConnection {
        let db = Database::connect("sqlite::memory:").await.expect("sqlite");
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .await
            .expect("table");
        db
    }

    fn insert(id: i64, name: &str) -> InsertStatement {
        Query::insert()
            .into_table(Alias::new("t"))
            .columns([Alias::new("id"), Alias::new("name")])
            .values_panic([id.into(), name.into()])
            .to_owned()
    }

    fn names_in(rows: &[QueryResult]) -> Vec<String> {
        rows.iter()
            .map(|row| row.try_get::<String>("", "name").expect("name"))
            .collect()
    }

    async fn names(db: &impl ConnectionTrait) -> Vec<String> {
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT name FROM t ORDER BY id",
            ))
            .await
            .expect("select");
        names_in(&rows)
    }

    #[tokio::test]
    async fn each_statement_gets_its_own_values_in_order() {
        let db = sqlite().await;
        let txn = db.begin().await.expect("begin");
        let mut batch = Batch::new(&txn);
        batch.push(&insert(1, "one"));
        batch.push(&insert(2, "two; DROP TABLE t"));
        batch.push(&insert(3, "three"));
        assert_eq!(batch.execute(&txn).await.expect("batch"), 3);
        txn.commit().await.expect("commit");
        assert_eq!(names(&db).await, ["one", "two; DROP TABLE t", "three"]);
    }

    #[tokio::test]
    async fn a_query_after_the_statements_reads_what_they_wrote() {
        let db = sqlite().await;
        let txn = db.begin().await.expect("begin");
        let mut batch = Batch::new(&txn);
        batch.push(&insert(1, "one"));
        batch.push(&insert(2, "two"));
        let select = Query::select()
            .column(Alias::new("name"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("id")).gt(1))
            .to_owned();
        let rows = batch.query_all(&txn, &select).await.expect("batch");
        assert_eq!(names_in(&rows), ["two"]);
    }

    fn rename(id: i64, name: &str) -> UpdateStatement {
        Query::update()
            .table(Alias::new("t"))
            .value(Alias::new("name"), name)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned()
    }

    /// A table holding (1, "one"), a transaction on it, and a batch in
    /// that transaction inserting (2, "two").
    async fn one_row_and_a_batch_adding_two() -> (
        sea_orm::DatabaseConnection,
        sea_orm::DatabaseTransaction,
        Batch,
    ) {
        let db = sqlite().await;
        db.execute(&insert(1, "one")).await.expect("seed");
        let txn = db.begin().await.expect("begin");
        let mut batch = Batch::new(&txn);
        batch.push(&insert(2, "two"));
        (db, txn, batch)
    }

    #[tokio::test]
    async fn a_guard_that_changes_a_row_lets_the_statements_stand() {
        let (db, txn, batch) = one_row_and_a_batch_adding_two().await;
        assert!(
            batch
                .execute_if(&txn, &rename(1, "uno"))
                .await
                .expect("batch")
        );
        txn.commit().await.expect("commit");
        assert_eq!(names(&db).await, ["uno", "two"]);
    }

    #[tokio::test]
    async fn a_guard_that_changes_nothing_says_so_and_rollback_undoes_the_rest() {
        let (db, txn, batch) = one_row_and_a_batch_adding_two().await;
        assert!(
            !batch
                .execute_if(&txn, &rename(9, "none"))
                .await
                .expect("batch")
        );
        txn.rollback().await.expect("rollback");
        assert_eq!(names(&db).await, ["one"]);
    }

    #[tokio::test]
    async fn a_guarded_query_reads_only_when_the_guard_changed_a_row() {
        let db = sqlite().await;
        db.execute(&insert(1, "one")).await.expect("seed");
        let select = Query::select()
            .column(Alias::new("name"))
            .from(Alias::new("t"))
            .to_owned();
        let txn = db.begin().await.expect("begin");
        let rows = Batch::new(&txn)
            .query_all_if(&txn, &rename(1, "uno"), &select)
            .await
            .expect("batch")
            .expect("the guard changed a row");
        assert_eq!(names_in(&rows), ["uno"]);
        let missed = Batch::new(&txn)
            .query_all_if(&txn, &rename(9, "none"), &select)
            .await
            .expect("batch");
        assert!(missed.is_none());
    }

    #[tokio::test]
    async fn rows_returns_what_each_statement_returns() {
        let (_db, txn, mut batch) = one_row_and_a_batch_adding_two().await;
        for (id, name) in [(1, "uno"), (3, "none"), (2, "dos")] {
            batch.push(rename(id, name).returning_col(Alias::new("name")));
        }
        let rows = batch.rows(&txn).await.expect("batch");
        assert_eq!(names_in(&rows), ["uno", "dos"]);
    }

    #[tokio::test]
    async fn a_failing_statement_stops_the_batch_and_rollback_undoes_the_rest() {
        let db = sqlite().await;
        db.execute(&insert(2, "taken")).await.expect("seed");
        let txn = db.begin().await.expect("begin");
        let mut batch = Batch::new(&txn);
        batch.push(&insert(1, "one"));
        batch.push(&insert(2, "duplicate"));
        batch.push(&insert(3, "three"));
        let error = batch.execute(&txn).await.expect_err("a duplicate key");
        assert!(
            matches!(
                error.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ),
            "{error}"
        );
        txn.rollback().await.expect("rollback");
        assert_eq!(names(&db).await, ["taken"]);
    }
}
