//! The named job queues on Redis, and what operators need to see and act on them.
//!
//! Each queue is an apalis-redis storage named `{QUEUE_PREFIX}:{queue}` (explicit names: apalis
//! would otherwise name a queue after a Rust type path). Key layout per queue `q`, as apalis-redis
//! 1.0 writes it: `{q}:scheduled` (every push lands here first), `{q}:active`, `{q}:inflight:{worker}`,
//! `{q}:done`, `{q}:dead`, `{q}:data`, `{q}:meta:{id}`, and `{q}:workers` (worker names scored by their
//! last heartbeat, in Unix seconds). Ours: `{q}:finished:{minute}` counts the jobs the vacuum found
//! finished in that minute (see [`super::monitor`]).

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

/// How often a worker beats; 5 s × [`MISSED_HEARTBEATS`] without one and it counts as dead and its
/// jobs are handed out again, so a killed worker's jobs come back within ~10 s.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const MISSED_HEARTBEATS: usize = 2;

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
        // Members are worker names; each worker's fetched jobs are in its own inflight set.
        pipe.scard(inflight_key(&q, worker));
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

/// The set of jobs worker `name` of queue key `q` has fetched and not finished.
pub(super) fn inflight_key(q: &str, name: &str) -> String {
    format!("{q}:inflight:{name}")
}

/// The dead jobs of a queue, at most `limit` of them, by id.
pub async fn dead_jobs(
    conn: &mut ConnectionManager,
    prefix: &str,
    queue: Queue,
    limit: usize,
) -> redis::RedisResult<Vec<DeadJob>> {
    let q = queue.key(prefix);
    let mut ids: Vec<String> = conn.smembers(format!("{q}:dead")).await?;
    ids.sort_unstable();
    ids.truncate(limit);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hgetall(format!("{q}:meta:{id}")).hget(format!("{q}:data"), id);
    }
    let found: Vec<(HashMap<String, String>, Option<String>)> = pipe.query_async(conn).await?;
    Ok(ids
        .into_iter()
        .zip(found)
        .map(|(id, (meta, payload))| DeadJob {
            payload,
            attempts: meta.get("attempts").cloned(),
            error: meta.get("result").cloned(),
            id,
        })
        .collect())
}

/// What retrying a dead job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Back on its queue, its attempts reset.
    Retried,
    /// No dead job of that id on that queue.
    NotDead,
    /// Its payload is gone from Redis: a worker fetching it would fail, so it stays dead (discard
    /// it; the sweep records the work again if it is still due).
    PayloadMissing,
}

/// Puts a dead job back on its queue with its attempts reset, in one atomic step.
pub async fn retry_dead(
    conn: &mut ConnectionManager,
    prefix: &str,
    queue: Queue,
    id: &str,
) -> redis::RedisResult<Retry> {
    const SCRIPT: &str = r#"
        if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
        if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 2 end
        redis.call('SREM', KEYS[1], ARGV[1])
        redis.call('HSET', KEYS[3], 'status', 'Pending', 'attempts', '0')
        redis.call('HDEL', KEYS[3], 'result', 'done_at')
        redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), ARGV[1])
        return 1"#;
    let q = queue.key(prefix);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let outcome: u8 = redis::Script::new(SCRIPT)
        .key(format!("{q}:dead"))
        .key(format!("{q}:data"))
        .key(format!("{q}:meta:{id}"))
        .key(format!("{q}:scheduled"))
        .arg(id)
        .arg(now)
        .invoke_async(conn)
        .await?;
    Ok(match outcome {
        1 => Retry::Retried,
        2 => Retry::PayloadMissing,
        _ => Retry::NotDead,
    })
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

/// Which of `ids` a worker of `queue` has taken and not yet finished (apalis-redis's status
/// `Running`, set when a worker leases a job and kept until its result is recorded).
pub async fn running(
    conn: &mut ConnectionManager,
    prefix: &str,
    queue: Queue,
    ids: &[String],
) -> redis::RedisResult<Vec<bool>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let q = queue.key(prefix);
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.hget(format!("{q}:meta:{id}"), "status");
    }
    let statuses: Vec<Option<String>> = pipe.query_async(conn).await?;
    Ok(statuses.into_iter().map(|status| status.as_deref() == Some("Running")).collect())
}

/// Removes finished jobs (their ids, payloads and metadata), 500 per round trip, and counts them in
/// the current minute's throughput counter ([`super::monitor::throughput`]). Each id is popped by
/// one vacuum only, so workers vacuuming the same queue never count a job twice. apalis-redis's own
/// vacuum also deletes the payloads of jobs waiting for a retry, which then kill the worker that
/// fetches them, so it is not used.
pub async fn vacuum_done(conn: &mut ConnectionManager, prefix: &str, queue: Queue) -> redis::RedisResult<u64> {
    const SCRIPT: &str = r#"
        local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
        for _, id in ipairs(ids) do
          redis.call('HDEL', KEYS[2], id)
          redis.call('DEL', KEYS[3] .. ':' .. id)
        end
        if #ids > 0 then
          redis.call('INCRBY', KEYS[4], #ids)
          redis.call('EXPIRE', KEYS[4], tonumber(ARGV[2]))
        end
        return #ids"#;
    let q = queue.key(prefix);
    let script = redis::Script::new(SCRIPT);
    let mut total = 0;
    loop {
        let minute = super::monitor::current_minute();
        let removed: u64 = script
            .key(format!("{q}:done"))
            .key(format!("{q}:data"))
            .key(format!("{q}:meta"))
            .key(super::monitor::finished_key(&q, minute))
            .arg(500)
            .arg(super::monitor::FINISHED_TTL_SECS)
            .invoke_async(conn)
            .await?;
        total += removed;
        if removed < 500 {
            return Ok(total);
        }
    }
}
