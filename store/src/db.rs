//! Database connections and migrations for SQLite (the embedded default)
//! and MySQL/MariaDB (production).

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use oms_config::DatabaseUrl;

/// Why the database could not be opened or migrated. The URL is shown with
/// its password redacted.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The directory of a SQLite file could not be created.
    #[error("cannot create the directory for {url}: {source}")]
    CreateDir {
        /// The database URL.
        url: DatabaseUrl,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer or refused us.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The database URL.
        url: DatabaseUrl,
        /// What the driver said.
        #[source]
        source: sea_orm::DbErr,
    },
    /// A migration failed.
    #[error("cannot migrate the database at {url}: {source}")]
    Migrate {
        /// The database URL.
        url: DatabaseUrl,
        /// What the driver said.
        #[source]
        source: sea_orm::DbErr,
    },
    /// The schema lacks migrations this build needs, and the service was
    /// told not to apply them itself.
    #[error(
        "the database at {url} lacks {count} migration(s) this build needs ({missing}); \
         run `<service> migrate` first (the migrate Job), or set OMS_MIGRATE_ON_START=true"
    )]
    SchemaBehind {
        /// The database URL.
        url: DatabaseUrl,
        /// How many are missing.
        count: usize,
        /// Their names, comma-separated.
        missing: String,
    },
}

/// Opens the service's database: brings its schema up to date when
/// `migrate` (the embedded default), or else only checks that every
/// migration this build knows has been applied and refuses to serve a
/// schema older than it needs. Migrations a newer build applied are fine:
/// they only add, so an old replica keeps working during a rollout.
pub async fn open<M: MigratorTrait>(
    url: &DatabaseUrl,
    pool: PoolOptions,
    migrate: bool,
) -> Result<DatabaseConnection, DbError> {
    if migrate {
        return connect_and_migrate::<M>(url, pool).await;
    }
    let db = connect(url, pool).await?;
    let pending = M::get_pending_migrations(&db)
        .await
        .map_err(|source| DbError::Migrate {
            url: url.clone(),
            source,
        })?;
    if !pending.is_empty() {
        let missing: Vec<String> = pending.iter().map(|m| m.name().to_owned()).collect();
        return Err(DbError::SchemaBehind {
            url: url.clone(),
            count: missing.len(),
            missing: missing.join(", "),
        });
    }
    Ok(db)
}

/// Pool and timeout settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Upper bound on open connections.
    pub max_connections: u32,
    /// How long to wait for the server at start-up or for a free connection.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a pool on `url` (creating a SQLite file and its directory if
/// needed) and brings the schema up to date with `M`.
pub async fn connect_and_migrate<M: MigratorTrait>(
    url: &DatabaseUrl,
    pool: PoolOptions,
) -> Result<DatabaseConnection, DbError> {
    let db = connect(url, pool).await?;
    M::up(&db, None).await.map_err(|source| DbError::Migrate {
        url: url.clone(),
        source,
    })?;
    Ok(db)
}

/// Opens a pool on `url` and checks that the server answers.
pub async fn connect(url: &DatabaseUrl, pool: PoolOptions) -> Result<DatabaseConnection, DbError> {
    if let Some(dir) = url
        .sqlite_path()
        .as_deref()
        .and_then(std::path::Path::parent)
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            url: url.clone(),
            source,
        })?;
    }
    let mut options = ConnectOptions::new(url.expose().to_owned());
    // SQLite has one writer at a time; many connections waiting on its
    // lock back off in sleeps and throughput collapses under load. One
    // connection queues callers in the pool instead, in order.
    let (max_connections, acquire_timeout) = if url.is_sqlite() {
        (1, pool.acquire_timeout.max(Duration::from_secs(30)))
    } else {
        (pool.max_connections, pool.acquire_timeout)
    };
    options
        .max_connections(max_connections)
        .connect_timeout(pool.acquire_timeout)
        .acquire_timeout(acquire_timeout)
        // Statements are traced by our own spans; sqlx's per-query info
        // lines would drown the logs.
        .sqlx_logging(false)
        // SQLite: WAL lets readers run beside the one writer; NORMAL sync is
        // WAL's recommended pairing (no corruption on power loss, only the
        // last commits at risk) and makes each commit cheap; writers queue
        // on the lock instead of failing at once.
        .map_sqlx_sqlite_opts(|opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        });
    let db = Database::connect(options)
        .await
        .map_err(|source| DbError::Connect {
            url: url.clone(),
            source,
        })?;
    db.ping().await.map_err(|source| DbError::Connect {
        url: url.clone(),
        source,
    })?;
    Ok(db)
}

/// Whether `error` means the database server is down or unreachable —
/// no connection to be had, one cut mid-statement, the server shutting
/// down — so the same call may succeed once it is back (answered
/// UNAVAILABLE), rather than a bug or a refused statement (INTERNAL).
pub fn is_unavailable(error: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as SqlxError;
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            match error.as_ref() {
                SqlxError::Io(_)
                | SqlxError::Tls(_)
                | SqlxError::PoolTimedOut
                | SqlxError::PoolClosed
                | SqlxError::WorkerCrashed => true,
                SqlxError::Database(error) => {
                    // SQLSTATE class 08 is "connection exception"; MySQL's
                    // 1053 is a server shutting down, MariaDB's 1927 a
                    // connection it killed (as it does to all at shutdown).
                    error.code().is_some_and(|state| state.starts_with("08"))
                        || error
                            .try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>()
                            .is_some_and(|e| matches!(e.number(), 1053 | 1927))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Schema helpers shared by the services' migrations.
pub mod schema {
    use sea_orm_migration::prelude::{Alias, ColumnDef, IntoIden};

    /// A UTC timestamp with microseconds that works on both backends:
    /// `DATETIME(6)` on MySQL (no 2038 limit, unlike `TIMESTAMP`), text in
    /// SQLite's flexible typing.
    pub fn timestamp(column: impl IntoIden) -> ColumnDef {
        ColumnDef::new(column)
            .custom(Alias::new("DATETIME(6)"))
            .not_null()
            .to_owned()
    }

    /// [`timestamp`], for a time that may not have come yet.
    pub fn timestamp_null(column: impl IntoIden) -> ColumnDef {
        ColumnDef::new(column)
            .custom(Alias::new("DATETIME(6)"))
            .null()
            .to_owned()
    }

    /// A UUID primary or foreign key, stored as its 36-character text.
    pub fn uuid_text(column: impl IntoIden) -> ColumnDef {
        ColumnDef::new(column).string_len(36).not_null().to_owned()
    }
}

/// Reports `db` pool gauges under `service` whenever metrics are scraped,
/// until the guard is dropped.
pub fn sample_pool(
    service: &'static str,
    db: &DatabaseConnection,
) -> oms_telemetry::metrics::SamplerGuard {
    let db = db.clone();
    oms_telemetry::metrics::on_scrape(move || {
        let (size, idle, max) = match db.get_database_backend() {
            sea_orm::DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            sea_orm::DbBackend::MySql => {
                let pool = db.get_mysql_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => return,
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        metrics::gauge!("db_pool_connections", "service" => service, "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("db_pool_connections", "service" => service, "state" => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
        metrics::gauge!("db_pool_max_connections", "service" => service).set(f64::from(max));
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::sqlx::Error as SqlxError;
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

    use super::is_unavailable;

    fn exec(error: SqlxError) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(error)))
    }

    #[test]
    fn a_server_out_of_reach_is_unavailable_and_a_refused_statement_is_not() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_unavailable(&exec(SqlxError::Io(reset))));
        assert!(is_unavailable(&exec(SqlxError::PoolTimedOut)));
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
        assert!(!is_unavailable(&exec(SqlxError::RowNotFound)));
        assert!(!is_unavailable(&exec(SqlxError::Protocol(
            "bad packet".into()
        ))));
        assert!(!is_unavailable(&DbErr::RecordNotFound("x".into())));
        assert!(!is_unavailable(&DbErr::Custom("bug".into())));
    }
}
