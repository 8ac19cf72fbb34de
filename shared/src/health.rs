//! Whether the services every process depends on answer, within a short deadline.

use std::time::Duration;

use sqlx::PgPool;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// PostgreSQL answers a trivial query.
pub async fn check_postgres(pool: &PgPool) -> Result<(), String> {
    let ping = sqlx::query("SELECT 1").execute(pool);
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Redis answers `PING`.
pub async fn check_redis(client: &redis::Client) -> Result<(), String> {
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Waits until PostgreSQL and Redis both answer, logging what is missing once a second, so that a
/// process started before its dependencies simply begins once they are up.
pub async fn wait_until_ready(pool: &PgPool, redis: &redis::Client) {
    loop {
        match tokio::join!(check_postgres(pool), check_redis(redis)) {
            (Ok(()), Ok(())) => return,
            (postgres, redis) => tracing::warn!(?postgres, ?redis, "waiting for dependencies"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
