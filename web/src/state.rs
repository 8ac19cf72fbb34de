//! What every request handler shares.

use std::sync::Arc;

use neighborbid_shared::config::Config;
use sqlx::PgPool;

/// Shared, cheaply clonable handles to the process's resources.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL, the source of truth.
    pub pool: PgPool,
    /// Redis client; connections are opened per use so a Redis outage never blocks start-up.
    pub redis: redis::Client,
    /// The process configuration.
    pub config: Arc<Config>,
}

impl AppState {
    /// Builds the state; fails only on a malformed `REDIS_URL`.
    pub fn new(config: Config, pool: PgPool) -> Result<Self, redis::RedisError> {
        let redis = redis::Client::open(config.redis_url.expose())?;
        Ok(Self { pool, redis, config: Arc::new(config) })
    }
}
