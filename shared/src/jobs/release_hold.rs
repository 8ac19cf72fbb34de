//! `release_hold`: give an outbid, losing or cancelled bidder their held money back.
//!
//! A release is small, and one commit per hold made the commits, not the work, the limit (and
//! releases of one auction queue up on its row lock). So each delivery hands its hold to the
//! process's [`ReleaseBatcher`] and waits: one task sends every hold waiting at that moment as one
//! statement, and answers each delivery with its own hold's outcome. Under light load a batch is
//! one hold and adds no wait; under load batches grow by themselves. Delivery, retry and the dead
//! set stay per hold.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{Job, JobContext, JobError, Queue};
use crate::auctions::release::{ReleaseOutcome, release_outbid_holds};
use crate::ids::HoldId;

/// Release one hold, unless it leads its auction again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseHold {
    /// The hold.
    pub hold_id: HoldId,
}

impl Job for ReleaseHold {
    const NAME: &'static str = "release_hold";
    const QUEUE: Queue = Queue::Release;
    /// Open holds that do not lead a live auction.
    const OVERDUE: &'static str = "INSERT INTO outbox (kind, payload) \
         SELECT 'release_hold', jsonb_build_object('hold_id', h.id) \
         FROM holds h JOIN auctions a ON a.id = h.auction_id \
         WHERE h.status = 'open' \
           AND (a.status IN ('unsold', 'cancelled', 'settled') OR h.id IS DISTINCT FROM a.leader_hold_id) \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'release_hold' \
                           AND (o.payload ->> 'hold_id')::bigint = h.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))";
    /// A delivery waits on the shared batch, not on a connection of its own.
    const IN_FLIGHT_PER_SLOT: usize = MAX_BATCH / 8;

    fn subject(&self) -> i64 {
        self.hold_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let outcome = ctx.releases.release(self.hold_id).await?;
        tracing::debug!(hold.id = self.hold_id.0, ?outcome, "release");
        Ok(())
    }
}

/// The most holds released by one statement.
pub const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<ReleaseOutcome, String>>;

/// Gathers the holds this process's deliveries are waiting to release into one statement at a time.
#[derive(Debug, Clone)]
pub struct ReleaseBatcher {
    waiting: mpsc::Sender<(HoldId, Reply)>,
}

impl ReleaseBatcher {
    /// Starts the batching task on `pool`; it ends when the last clone of the batcher is dropped.
    pub fn start(pool: PgPool) -> Self {
        let (waiting, queue) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(release_batches(pool, queue));
        Self { waiting }
    }

    /// Releases `hold_id` in the next batch and returns what happened to it.
    pub async fn release(&self, hold_id: HoldId) -> Result<ReleaseOutcome, JobError> {
        let (reply, outcome) = oneshot::channel();
        self.waiting.send((hold_id, reply)).await.map_err(|_| JobError::Retry("the release batcher stopped".into()))?;
        outcome.await.map_err(|_| JobError::Retry("the release batch was dropped".into()))?.map_err(JobError::Retry)
    }
}

/// Takes every hold waiting (up to [`MAX_BATCH`]), releases them in one statement, answers each
/// waiter, and repeats until every batcher is gone.
async fn release_batches(pool: PgPool, mut queue: mpsc::Receiver<(HoldId, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ids: Vec<HoldId> = batch.iter().map(|(id, _)| *id).collect();
        let outcomes = match pool.acquire().await {
            Ok(mut conn) => release_outbid_holds(&mut conn, &ids).await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        for (k, (_, reply)) in batch.drain(..).enumerate() {
            // A waiter that gave up (its delivery timed out) is retried by the queue.
            let _ = reply.send(outcomes.as_ref().map(|outcomes| outcomes[k]).map_err(Clone::clone));
        }
    }
}
