//! What every request handler shares.

use std::sync::Arc;

use neighborbid_shared::config::Config;
use sqlx::PgPool;

use crate::live::Hub;

/// Shared, cheaply clonable handles to the process's resources.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL, the source of truth.
    pub pool: PgPool,
    /// Redis client; connections are opened per use so a Redis outage never blocks start-up.
    pub redis: redis::Client,
    /// The process configuration.
    pub config: Arc<Config>,
    /// Live auction events for this process's WebSocket connections.
    pub hub: Arc<Hub>,
}

impl AppState {
    /// Builds the state and starts the live-event hub; fails only on a malformed `REDIS_URL`.
    /// Call inside the Tokio runtime.
    pub fn new(config: Config, pool: PgPool) -> Result<Self, redis::RedisError> {
        let redis = redis::Client::open(config.redis_url.expose())?;
        let hub = Hub::start(pool.clone(), redis.clone(), config.queue_prefix.clone());
        Ok(Self { pool, redis, config: Arc::new(config), hub })
    }
}
