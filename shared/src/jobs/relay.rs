//! The outbox relay: moves recorded follow-ups into their job queues, promptly and in batches,
//! never letting a queue's backlog grow past a bound (apalis-redis 1.0 stops a worker when 8,000 or
//! more jobs fall due at once). Safe with several replicas: rows are claimed with SKIP LOCKED.
//!
//! A crash between the push and the commit pushes a batch twice; handlers are idempotent. A queue
//! lost after the commit (Redis flushed) is repaired by the reconciliation sweep.
//!
//! Every job's id is its follow-up's [`FollowUp::job_id`] (`release_hold:42`), and apalis-redis
//! ignores a push whose id it still holds (waiting, retrying, dead, or done and not yet vacuumed).
//! So a follow-up recorded again, by the sweep or by a second cause, never runs twice at once, and
//! one that keeps failing leaves one dead job, not one per sweep.

use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_redis::ConnectionManager;
use futures::stream;
use sqlx::{Connection, PgConnection};

use super::email::EmailJob;
use super::queues::{self, Queue};
use super::refund::RefundJob;
use super::settlement::SettlementJob;
use crate::outbox::{self, FollowUp};

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

/// Pushes jobs, each with its id, to one queue's storage.
async fn push<T>(conn: ConnectionManager, prefix: &str, queue: Queue, jobs: Vec<(String, T)>) -> Result<(), RelayError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
{
    let mut storage = queues::storage::<T>(conn, prefix, queue);
    let tasks = jobs.into_iter().map(|(id, job)| TaskBuilder::new(job).task_id(TaskId::from_string(id)).build());
    storage.push_all(stream::iter(tasks)).await.map_err(|e| RelayError::Redis(e.to_string()))
}

fn queue_of(kind: &str) -> Option<Queue> {
    match kind {
        "release_hold" => Some(Queue::Refund),
        "settle_auction" => Some(Queue::Settlement),
        "send_email" => Some(Queue::Email),
        _ => None,
    }
}

/// One pass over every queue; returns how many follow-ups were relayed.
pub async fn relay_once(db: &mut PgConnection, redis: &ConnectionManager, prefix: &str) -> Result<usize, RelayError> {
    let mut relayed = 0;
    for kind in ["release_hold", "settle_auction", "send_email"] {
        let queue = queue_of(kind).expect("every kind has a queue");
        let mut conn = redis.clone();
        let backlog =
            queues::depth(&mut conn, prefix, queue).await.map_err(|e| RelayError::Redis(e.to_string()))?.backlog();
        let room = MAX_BACKLOG.saturating_sub(backlog).min(BATCH as u64) as i64;
        if room == 0 {
            continue;
        }
        let mut tx = db.begin().await?;
        let batch = outbox::claim_unrelayed(&mut tx, kind, room).await?;
        if batch.is_empty() {
            continue;
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        let follow_ups = batch.into_iter().map(|(_, f)| f);
        match queue {
            Queue::Refund => {
                let jobs = follow_ups
                    .filter_map(|f| match f {
                        FollowUp::ReleaseHold { hold_id } => Some((f.job_id(), RefundJob { hold_id })),
                        _ => None,
                    })
                    .collect();
                push(redis.clone(), prefix, queue, jobs).await?;
            }
            Queue::Settlement => {
                let jobs = follow_ups
                    .filter_map(|f| match f {
                        FollowUp::SettleAuction { auction_id } => Some((f.job_id(), SettlementJob { auction_id })),
                        _ => None,
                    })
                    .collect();
                push(redis.clone(), prefix, queue, jobs).await?;
            }
            Queue::Email => {
                let jobs = follow_ups
                    .filter_map(|f| match f {
                        FollowUp::SendEmail { notification_id } => Some((f.job_id(), EmailJob { notification_id })),
                        _ => None,
                    })
                    .collect();
                push(redis.clone(), prefix, queue, jobs).await?;
            }
        }
        outbox::mark_relayed(&mut tx, &ids).await?;
        tx.commit().await?;
        relayed += ids.len();
    }
    Ok(relayed)
}
