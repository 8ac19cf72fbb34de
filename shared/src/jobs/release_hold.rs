//! `release_hold`: give an outbid, losing or cancelled bidder their held money back.
//!
//! A release is small, and one commit per hold made the commits, not the work, the limit (and
//! releases of one auction queue up on its row lock). So each delivery hands its hold to the
//! process's [`ReleaseBatcher`] and waits: one task sends every hold waiting at that moment as one
//! statement, and answers each delivery with its own hold's outcome. Under light load a batch is
//! one hold and adds no wait; under load batches grow by themselves. A batch does not wait for other
//! transactions: the holds whose auction or bidder's wallet is held at that moment are offered again
//! a moment later. Delivery, retry and the dead set stay per hold.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{Job, JobContext, JobError, Queue};
use crate::auctions::release::{ReleaseOutcome, Wait, release_outbid_holds};
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
    const IN_FLIGHT_PER_SLOT: usize = 32;

    fn subject(&self) -> i64 {
        self.hold_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let outcome = ctx.releases.release(self.hold_id).await?;
        tracing::debug!(hold.id = self.hold_id.0, ?outcome, "release");
        Ok(())
    }
}

/// The most holds released by one statement. A batch keeps the auctions and wallets it took locked
/// until it commits, and bids on those auctions or by those bidders wait for it meanwhile: with 256,
/// bids waited up to a quarter of a second for one batch under load, every bid turn of a web process
/// at once. A few dozen keep that wait short and still share the statement and its commit.
pub const MAX_BATCH: usize = 32;

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

/// A delivery waiting for its hold's outcome.
struct Waiter {
    hold_id: HoldId,
    reply: Reply,
    /// Batches that found its auction or its bidder's wallet held by another transaction.
    busy: u32,
}

/// How long a busy hold waits before it is offered again.
const BUSY_PAUSE: Duration = Duration::from_millis(5);
/// After this many busy answers a hold goes through the batch that waits for the bid.
const BUSY_TRIES: u32 = 4;

/// Takes every hold waiting (up to [`MAX_BATCH`]) and releases them in one statement that skips the
/// auctions and wallets other transactions hold at that moment; those holds are offered again after [`BUSY_PAUSE`],
/// and after [`BUSY_TRIES`] busy answers released by a statement that waits (a hot auction is never
/// free for long). Even that statement can leave a hold undecided: one that led its auction when the
/// statement chose whose wallets to take, and was outbid by the bid it then waited for. Such a hold
/// is offered again like a busy one, never dropped (its delivery would fail and wait for the queue's
/// retry). Answers each waiter, and repeats until every batcher is gone and no hold waits.
async fn release_batches(pool: PgPool, mut queue: mpsc::Receiver<(HoldId, Reply)>) {
    let mut arrived = Vec::with_capacity(MAX_BATCH);
    let mut busy: Vec<Waiter> = Vec::new();
    loop {
        if busy.is_empty() {
            if queue.recv_many(&mut arrived, MAX_BATCH).await == 0 {
                return;
            }
        } else {
            tokio::time::sleep(BUSY_PAUSE).await;
            while arrived.len() < MAX_BATCH
                && let Ok(waiting) = queue.try_recv()
            {
                arrived.push(waiting);
            }
        }
        let (stubborn, retried): (Vec<Waiter>, Vec<Waiter>) = busy.drain(..).partition(|w| w.busy >= BUSY_TRIES);
        let mut undecided = run_batch(&pool, stubborn, Wait::ForBids).await;
        let batch =
            retried.into_iter().chain(arrived.drain(..).map(|(hold_id, reply)| Waiter { hold_id, reply, busy: 0 }));
        busy = run_batch(&pool, batch.collect(), Wait::No).await;
        busy.append(&mut undecided);
    }
}

/// Releases `batch` in one statement and answers each waiter, except the busy ones:
/// they are returned, to be offered again.
async fn run_batch(pool: &PgPool, batch: Vec<Waiter>, wait: Wait) -> Vec<Waiter> {
    if batch.is_empty() {
        return batch;
    }
    let ids: Vec<HoldId> = batch.iter().map(|w| w.hold_id).collect();
    let outcomes = match pool.acquire().await {
        Ok(mut conn) => release_outbid_holds(&mut conn, &ids, wait).await.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let mut busy = Vec::new();
    for (k, mut waiter) in batch.into_iter().enumerate() {
        match outcomes.as_ref().map(|outcomes| outcomes[k]) {
            Ok(ReleaseOutcome::Busy) => {
                waiter.busy += 1;
                busy.push(waiter);
            }
            // A waiter that gave up (its delivery timed out) is retried by the queue.
            answer => {
                let _ = waiter.reply.send(answer.map_err(Clone::clone));
            }
        }
    }
    busy
}
