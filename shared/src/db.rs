//! Connecting to PostgreSQL and keeping its schema current.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::config::Config;

/// The schema migrations in `migrations/`, compiled into every binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens the connection pool. Connections are made lazily, so a database that is still starting is
/// reported by readiness checks instead of failing the process at once.
pub fn connect(config: &Config) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(config.database_url.expose())
}

/// Applies pending migrations. sqlx holds a PostgreSQL advisory lock while it migrates, so several
/// processes starting at once apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether `err` is a violation of the named constraint (unique index, check, foreign key).
pub fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.constraint() == Some(constraint))
}

/// Whether `err` is PostgreSQL asking the transaction to be retried (serialization failure or a
/// detected deadlock): safe to run the whole transaction again.
pub fn is_retryable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}
