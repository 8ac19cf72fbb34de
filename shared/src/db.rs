//! Connecting to PostgreSQL and keeping its schema current.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::Config;

/// The schema migrations in `migrations/`, compiled into every binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Whether a process's commits wait for PostgreSQL to flush them to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commits {
    /// Each commit returns once it is on disk: what a client is told happened survives a crash of
    /// the database server. The web's commits (bids, deposits, sign-ups) are these.
    Durable,
    /// Commits return before their flush (`synchronous_commit = off`): a crash of the database
    /// server (not of our process) may undo the last fraction of a second of them, never part of
    /// one. For follow-up work only, which the reconciliation sweep re-derives from what the
    /// database then holds. A later durable commit that saw one makes it durable too: the log is
    /// flushed in order. The worker's and the scheduler's commits are these.
    Deferred,
}

/// Opens the connection pool. Connections are made lazily, so a database that is still starting is
/// reported by readiness checks instead of failing the process at once.
pub fn connect(config: &Config, commits: Commits) -> Result<PgPool, sqlx::Error> {
    let mut options: PgConnectOptions = config.database_url.expose().parse()?;
    if commits == Commits::Deferred {
        options = options.options([("synchronous_commit", "off")]);
    }
    Ok(PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_web_waits_for_the_disk_and_follow_up_processes_do_not() {
        let config = Config::from_lookup(|name| std::env::var(name).ok()).expect("the test's configuration is valid");
        for (commits, setting) in [(Commits::Durable, "on"), (Commits::Deferred, "off")] {
            let pool = connect(&config, commits).unwrap();
            let shown: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&pool).await.unwrap();
            assert_eq!(shown, setting, "{commits:?}");
            pool.close().await;
        }
    }
}
