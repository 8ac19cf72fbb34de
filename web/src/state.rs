//! What every request handler shares.

use std::sync::Arc;

use anyhow::Context;

use neighborbid_shared::config::Config;
use neighborbid_shared::media::MediaStore;
use neighborbid_shared::rate_limit::Limiter;
use neighborbid_shared::users::HashingQueue;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

use crate::bid_line::BidLine;
use crate::live::{ConnectionCaps, Hub};

/// Shared, cheaply clonable handles to the process's resources.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL, the source of truth.
    pub pool: PgPool,
    /// Redis client, for the live-event hub's own connections.
    pub redis: redis::Client,
    /// One multiplexed Redis connection for short commands (readiness, rate limits). It connects
    /// lazily and reconnects by itself, so a Redis outage never blocks start-up.
    pub redis_conn: ConnectionManager,
    /// The process configuration.
    pub config: Arc<Config>,
    /// Live auction events for this process's WebSocket connections.
    pub hub: Arc<Hub>,
    /// How many WebSockets are open, in all and per client address.
    pub sockets: Arc<ConnectionCaps>,
    /// Rate limits; `None` when `RATE_LIMITS=off`.
    pub limiter: Option<Arc<Limiter>>,
    /// The bounded line for password hashing.
    pub hashing: Arc<HashingQueue>,
    /// Where photos live.
    pub media: MediaStore,
    /// The line bids and buy-nows wait in for PostgreSQL, served by `BID_CONCURRENCY` runners.
    pub bids: Arc<BidLine>,
}

impl AppState {
    /// Builds the state and starts the live-event hub; fails on a malformed `REDIS_URL` or unusable
    /// media settings. Call inside the Tokio runtime.
    pub fn new(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        neighborbid_shared::metrics::install();
        let media = MediaStore::open(&config).context("invalid media settings")?;
        let redis = redis::Client::open(config.redis_url.expose()).context("invalid REDIS_URL")?;
        let redis_conn = neighborbid_shared::health::redis_connection(&redis)?;
        let hub = Hub::start(pool.clone(), redis.clone(), config.queue_prefix.clone());
        let limiter =
            config.limits.rate_limits.then(|| Arc::new(Limiter::new(redis_conn.clone(), &config.queue_prefix)));
        let sockets =
            Arc::new(ConnectionCaps::new(config.limits.ws_max_connections, config.limits.ws_max_connections_per_ip));
        let hashing = Arc::new(HashingQueue::new(config.limits.hashing_queue));
        let bids = BidLine::start(pool.clone(), Arc::clone(&hub), config.limits.bid_concurrency);
        Ok(Self { pool, redis, redis_conn, config: Arc::new(config), hub, sockets, limiter, hashing, media, bids })
    }
}
