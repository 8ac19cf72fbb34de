//! Whether the services a process depends on answer, within a short deadline.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::PgPool;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// PostgreSQL answers a trivial query.
pub async fn check_postgres(pool: &PgPool) -> Result<(), String> {
    let ping = sqlx::query!("SELECT 1 AS one").fetch_one(pool);
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// A Redis connection for short commands that connects lazily and reconnects by itself, failing
/// fast (500 ms) while Redis is away instead of stalling its callers.
pub fn redis_connection(client: &redis::Client) -> redis::RedisResult<ConnectionManager> {
    ConnectionManager::new_lazy_with_config(
        client.clone(),
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1),
    )
}

/// Redis answers `PING` on an existing connection.
pub async fn check_redis(conn: &ConnectionManager) -> Result<(), String> {
    let mut conn = conn.clone();
    let command = redis::cmd("PING");
    let ping = command.query_async::<String>(&mut conn);
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Waits until PostgreSQL (and Redis, when the process cannot work without it) answer, logging what
/// is missing once a second, so that a process started before its dependencies simply begins once
/// they are up.
pub async fn wait_until_ready(pool: &PgPool, redis: Option<&ConnectionManager>) {
    loop {
        let redis_check = async {
            match redis {
                Some(conn) => check_redis(conn).await,
                None => Ok(()),
            }
        };
        match tokio::join!(check_postgres(pool), redis_check) {
            (Ok(()), Ok(())) => return,
            (postgres, redis) => tracing::warn!(?postgres, ?redis, "waiting for dependencies"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
