//! The named job queues on Redis, and what operators need to see and act on them.
//!
//! Each queue is an apalis-redis storage named `{QUEUE_PREFIX}:{queue}` (explicit names: apalis
//! would otherwise name a queue after a Rust type path). Key layout per queue `q`, as apalis-redis
//! 1.0 writes it: `{q}:scheduled` (every push lands here first), `{q}:active`, `{q}:inflight:{worker}`,
//! `{q}:done`, `{q}:dead`, `{q}:data`, `{q}:meta:{id}`.

use std::collections::HashMap;
use std::time::Duration;

use apalis_redis::{Config, ConnectionManager, RedisStorage};
use redis::AsyncCommands;
use serde::Serialize;

/// The four queues.
pub const QUEUES: [Queue; 4] = [Queue::Release, Queue::Settlement, Queue::Email, Queue::Images];

/// A job queue: operators run workers per queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Releases outbid, losing and cancelled holds.
    Release,
    /// Pays closed auctions.
    Settlement,
    /// Sends recorded emails.
    Email,
    /// Validates and renders uploaded photos, and purges removed ones.
    Images,
}

impl Queue {
    /// The short name operators use (`--queues release,email`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Settlement => "settlement",
            Self::Email => "email",
            Self::Images => "images",
        }
    }

    /// Parses a short name.
    pub fn parse(name: &str) -> Option<Self> {
        QUEUES.into_iter().find(|q| q.as_str() == name.trim())
    }

    /// The Redis name of this queue under `prefix`.
    pub fn key(self, prefix: &str) -> String {
        format!("{prefix}:{}", self.as_str())
    }
}

/// How long without a heartbeat before a worker counts as dead and its jobs are handed out again:
/// 5 s × 2, so a killed worker's jobs come back within ~10 s.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
const MISSED_HEARTBEATS: usize = 2;

/// The storage of one queue, for pushing.
pub fn storage<T>(conn: ConnectionManager, prefix: &str, queue: Queue) -> RedisStorage<T> {
    worker_storage(conn, prefix, queue, 50)
}

/// The storage of one queue for a worker running `in_flight` jobs at once: each fetch takes up to
/// that many, so a worker never holds jobs it cannot start (another worker could run them, and a
/// killed one's would wait for its missed heartbeats).
pub fn worker_storage<T>(conn: ConnectionManager, prefix: &str, queue: Queue, in_flight: usize) -> RedisStorage<T> {
    let config = Config::default()
        .queue(queue.key(prefix))
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
        .batch_size(in_flight);
    RedisStorage::new(conn).with_config(config)
}

/// How many jobs a queue holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Depth {
    /// Pushed or waiting for a retry, not yet due or not yet fetched.
    pub scheduled: u64,
    /// Due and waiting for a worker.
    pub active: u64,
    /// Fetched by a worker and not finished.
    pub inflight: u64,
    /// Failed for good; waiting for an operator.
    pub dead: u64,
}

impl Depth {
    /// Jobs not yet taken by a worker: what the relay keeps bounded.
    pub fn backlog(self) -> u64 {
        self.scheduled + self.active
    }

    /// Publishes this depth of `queue` as the `neighborbid_queue_jobs` gauges.
    pub fn record(self, queue: Queue) {
        let name = queue.as_str();
        for (state, jobs) in
            [("scheduled", self.scheduled), ("active", self.active), ("inflight", self.inflight), ("dead", self.dead)]
        {
            metrics::gauge!(crate::metrics::QUEUE_JOBS, "queue" => name, "state" => state).set(jobs as f64);
        }
    }
}

/// The queue's depth, in two round trips.
pub async fn depth(conn: &mut ConnectionManager, prefix: &str, queue: Queue) -> redis::RedisResult<Depth> {
    let q = queue.key(prefix);
    let (scheduled, active, dead, workers): (u64, u64, u64, Vec<String>) = redis::pipe()
        .zcard(format!("{q}:scheduled"))
        .llen(format!("{q}:active"))
        .scard(format!("{q}:dead"))
        .zrange(format!("{q}:workers"), 0, -1)
        .query_async(conn)
        .await?;
    let mut pipe = redis::pipe();
    for worker in &workers {
        // Members are the workers' inflight set keys.
        pipe.scard(worker);
    }
    let inflight: Vec<u64> = if workers.is_empty() { Vec::new() } else { pipe.query_async(conn).await? };
    Ok(Depth { scheduled, active, inflight: inflight.iter().sum(), dead })
}

/// A job that failed for good.
#[derive(Debug, Clone, Serialize)]
pub struct DeadJob {
    /// The job's id.
    pub id: String,
    /// Its payload, as JSON.
    pub payload: Option<String>,
    /// How many times it ran.
    pub attempts: Option<String>,
    /// The last error.
    pub error: Option<String>,
}

/// The dead jobs of a queue.
pub async fn dead_jobs(conn: &mut ConnectionManager, prefix: &str, queue: Queue) -> redis::RedisResult<Vec<DeadJob>> {
    let q = queue.key(prefix);
    let ids: Vec<String> = conn.smembers(format!("{q}:dead")).await?;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        let meta: HashMap<String, String> = conn.hgetall(format!("{q}:meta:{id}")).await?;
        let payload: Option<String> = conn.hget(format!("{q}:data"), &id).await?;
        jobs.push(DeadJob { payload, attempts: meta.get("attempts").cloned(), error: meta.get("result").cloned(), id });
    }
    Ok(jobs)
}

/// Puts a dead job back on its queue with its attempts reset; false when no such dead job exists.
pub async fn retry_dead(
    conn: &mut ConnectionManager,
    prefix: &str,
    queue: Queue,
    id: &str,
) -> redis::RedisResult<bool> {
    let q = queue.key(prefix);
    let removed: u32 = conn.srem(format!("{q}:dead"), id).await?;
    if removed == 0 {
        return Ok(false);
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    redis::pipe()
        .atomic()
        .hset_multiple(format!("{q}:meta:{id}"), &[("status", "Pending"), ("attempts", "0")])
        .hdel(format!("{q}:meta:{id}"), &["result", "done_at"])
        .zadd(format!("{q}:scheduled"), id, now)
        .query_async::<()>(conn)
        .await?;
    Ok(true)
}

/// Deletes a dead job; false when no such dead job exists.
pub async fn discard_dead(
    conn: &mut ConnectionManager,
    prefix: &str,
    queue: Queue,
    id: &str,
) -> redis::RedisResult<bool> {
    let q = queue.key(prefix);
    let (removed, (), ()): (u32, (), ()) = redis::pipe()
        .atomic()
        .srem(format!("{q}:dead"), id)
        .hdel(format!("{q}:data"), id)
        .del(format!("{q}:meta:{id}"))
        .query_async(conn)
        .await?;
    Ok(removed == 1)
}

/// Removes finished jobs (their ids, payloads and metadata), 500 per round trip. apalis-redis's own
/// vacuum also deletes the payloads of jobs waiting for a retry, which then kill the worker that
/// fetches them, so it is not used.
pub async fn vacuum_done(conn: &mut ConnectionManager, prefix: &str, queue: Queue) -> redis::RedisResult<u64> {
    const SCRIPT: &str = r#"
        local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
        for _, id in ipairs(ids) do
          redis.call('HDEL', KEYS[2], id)
          redis.call('DEL', KEYS[3] .. ':' .. id)
        end
        return #ids"#;
    let q = queue.key(prefix);
    let script = redis::Script::new(SCRIPT);
    let mut total = 0;
    loop {
        let removed: u64 = script
            .key(format!("{q}:done"))
            .key(format!("{q}:data"))
            .key(format!("{q}:meta"))
            .arg(500)
            .invoke_async(conn)
            .await?;
        total += removed;
        if removed < 500 {
            return Ok(total);
        }
    }
}
