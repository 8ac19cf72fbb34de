//! What operators watch on the queues besides their depth: the workers' heartbeats and how many
//! jobs finish per minute.
//!
//! Throughput comes from the vacuum ([`super::queues::vacuum_done`]): apalis-redis moves a finished
//! job's id to `{q}:done`, and the workers empty that set every 5 s. The vacuum counts what it
//! removes in `{q}:finished:{minute}` (one counter per Unix minute, kept two hours), so a job counts
//! in the minute it was vacuumed, at most 5 s after it finished.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis_redis::ConnectionManager;
use chrono::{DateTime, Utc};

use super::queues::{self, HEARTBEAT, MISSED_HEARTBEATS, Queue};

/// How long a minute's counter is kept.
pub const FINISHED_TTL_SECS: u64 = 2 * 3600;

/// The Unix minute now.
pub fn current_minute() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60
}

/// The counter of jobs of queue key `q` vacuumed in Unix minute `minute`.
pub(super) fn finished_key(q: &str, minute: u64) -> String {
    format!("{q}:finished:{minute}")
}

/// Jobs finished in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// The minute's start.
    pub start: DateTime<Utc>,
    /// Jobs finished (and vacuumed) in it.
    pub finished: u64,
}

/// The last `minutes` minutes of finished jobs, oldest first; the last one is the current, partial,
/// minute.
pub async fn throughput(
    conn: &mut ConnectionManager,
    prefix: &str,
    queue: Queue,
    minutes: u64,
) -> redis::RedisResult<Vec<Minute>> {
    let q = queue.key(prefix);
    let now = current_minute();
    let range: Vec<u64> = (now.saturating_sub(minutes.saturating_sub(1))..=now).collect();
    let keys: Vec<String> = range.iter().map(|&m| finished_key(&q, m)).collect();
    let counts: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
    Ok(range
        .into_iter()
        .zip(counts)
        .map(|(minute, count)| Minute { start: unix_time(minute.saturating_mul(60)), finished: count.unwrap_or(0) })
        .collect())
}

/// A worker registered on a queue, as its heartbeats show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Its unique name (queue, host, pid, random).
    pub name: String,
    /// The queue it serves.
    pub queue: Queue,
    /// Its last heartbeat.
    pub last_heartbeat: DateTime<Utc>,
    /// Whether it beat recently enough that its jobs are not handed out to others.
    pub alive: bool,
    /// Jobs it has fetched and not finished.
    pub inflight: u64,
}

/// The workers registered on `queue`, most recent heartbeat first. A killed worker stays listed,
/// not alive, until another worker of the queue hands its jobs out again and removes it.
pub async fn workers(conn: &mut ConnectionManager, prefix: &str, queue: Queue) -> redis::RedisResult<Vec<Worker>> {
    let q = queue.key(prefix);
    // Scores are Unix seconds, which Redis hands back as doubles.
    let beats: Vec<(String, f64)> =
        redis::cmd("ZRANGE").arg(format!("{q}:workers")).arg(0).arg(-1).arg("WITHSCORES").query_async(conn).await?;
    if beats.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for (name, _) in &beats {
        pipe.scard(queues::inflight_key(&q, name));
    }
    let inflight: Vec<u64> = pipe.query_async(conn).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let dead_after = HEARTBEAT.saturating_mul(MISSED_HEARTBEATS as u32).as_secs();
    let mut workers: Vec<Worker> = beats
        .into_iter()
        .zip(inflight)
        .map(|((name, beat), inflight)| {
            let beat = beat.max(0.0) as u64;
            Worker {
                name,
                queue,
                last_heartbeat: unix_time(beat),
                alive: now.saturating_sub(beat) < dead_after,
                inflight,
            }
        })
        .collect();
    workers.sort_by(|a, b| b.last_heartbeat.cmp(&a.last_heartbeat).then_with(|| a.name.cmp(&b.name)));
    Ok(workers)
}

fn unix_time(secs: u64) -> DateTime<Utc> {
    DateTime::<Utc>::from(UNIX_EPOCH + Duration::from_secs(secs))
}
