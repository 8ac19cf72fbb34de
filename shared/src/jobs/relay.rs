//! The outbox relay: moves recorded jobs into their queues, promptly and in batches, never letting
//! a queue's backlog grow past a bound (apalis-redis 1.0 stops a worker when 8,000 or more jobs fall
//! due at once). Safe with several replicas: rows are claimed with SKIP LOCKED.
//!
//! A crash between the push and the commit pushes a batch twice; jobs are idempotent. A queue lost
//! after the commit (Redis flushed) is repaired by the reconciliation sweep.
//!
//! Every job's id is [`job_id`] (`release_hold:42`), and apalis-redis ignores a push whose id it
//! still holds (waiting, retrying, dead, or done and not yet vacuumed). So a follow-up recorded
//! again, by the sweep or by a second cause, never runs twice at once, and one that keeps failing
//! leaves one dead job, not one per sweep.

use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_redis::ConnectionManager;
use futures::stream;
use sqlx::{Connection, PgConnection};

use super::registry::JOBS;
use super::{Job, job_id, queues};
use crate::metrics::RELAYED;
use crate::outbox;

/// At most this many jobs are pushed per queue per pass.
pub const BATCH: i64 = 500;
/// A queue's backlog (jobs not yet taken by a worker) is kept below this.
pub const MAX_BACKLOG: u64 = 2_000;

/// Why a relay pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// PostgreSQL failed; nothing was marked relayed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Redis failed; the claimed rows stay unrelayed.
    #[error("redis: {0}")]
    Redis(String),
}

impl RelayError {
    /// Redis (or apalis-redis over it) failed with `err`.
    fn redis(err: impl std::fmt::Display) -> Self {
        Self::Redis(err.to_string())
    }
}

/// One pass over every job kind; returns how many jobs were relayed.
pub async fn relay_once(db: &mut PgConnection, redis: &ConnectionManager, prefix: &str) -> Result<usize, RelayError> {
    let mut relayed = 0;
    for kind in JOBS {
        let depth = queues::depth(&mut redis.clone(), prefix, kind.queue()).await.map_err(RelayError::redis)?;
        // The relay reads every queue's depth anyway: publishing it costs no extra round trip.
        depth.record(kind.queue());
        let room = MAX_BACKLOG.saturating_sub(depth.backlog()).min(BATCH as u64) as i64;
        if room > 0 {
            let moved = kind.relay(db, redis, prefix, room).await?;
            metrics::counter!(RELAYED, "queue" => kind.queue().as_str()).increment(moved as u64);
            relayed += moved;
        }
    }
    Ok(relayed)
}

/// Claims up to `limit` recorded `J` jobs, pushes them to `J`'s queue and marks them relayed, in
/// one transaction.
pub async fn relay_batch<J: Job>(
    db: &mut PgConnection,
    redis: &ConnectionManager,
    prefix: &str,
    limit: i64,
) -> Result<usize, RelayError> {
    let mut tx = db.begin().await?;
    let batch = outbox::claim_unrelayed::<J>(&mut tx, limit).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    // apalis-redis ignores a push whose id it still holds. A job of the same id that a worker is
    // running may already have looked at the state this row's change came after, and the push
    // would be ignored: such rows stay unrelayed until that job has finished (the next pass, as a
    // rule). A waiting or dead job of that id stays as it is: a waiting one will look at the state
    // when it runs; a dead one waits for an operator.
    let job_ids: Vec<String> = batch.iter().map(|(_, job)| job_id(job)).collect();
    let running = queues::running(&mut redis.clone(), prefix, J::QUEUE, &job_ids).await.map_err(RelayError::redis)?;
    // Finished jobs are held too, until a worker vacuums them (every 5 s): a follow-up recorded
    // again right after its job finished (a hold that was leading when its release ran, outbid
    // again a moment later) would wait for the sweep. Clearing them lets it through. Only after
    // the look at what runs: a job that finished between this vacuum and that look would be
    // neither running nor cleared, and its push ignored, so the row marked relayed would wait
    // for the sweep (a minute). One that finishes after this vacuum was running at the look.
    queues::vacuum_done(&mut redis.clone(), prefix, J::QUEUE).await.map_err(RelayError::redis)?;
    let (ids, tasks): (Vec<i64>, Vec<_>) = batch
        .into_iter()
        .zip(job_ids)
        .zip(running)
        .filter(|(_, running)| !running)
        .map(|(((row, job), job_id), _)| (row, TaskBuilder::new(job).task_id(TaskId::from_string(job_id)).build()))
        .unzip();
    if ids.is_empty() {
        return Ok(0);
    }
    let mut storage = queues::storage::<J>(redis.clone(), prefix, J::QUEUE);
    storage.push_all(stream::iter(tasks)).await.map_err(RelayError::redis)?;
    outbox::mark_relayed(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(ids.len())
}
