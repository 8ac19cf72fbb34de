//! The line that bids and buy-nows wait in for PostgreSQL.
//!
//! `BID_CONCURRENCY` runners serve it in arrival order, one batch of an auction at a time. A runner
//! takes the first waiting request whose auction no other runner is serving and, with it, every
//! other waiting request for that auction (up to [`MAX_BATCH`], in arrival order): a lone request
//! runs as `place_bid`, several as one `place_bids`, which decides each as if it ran alone after
//! the ones before it, under one row lock and one commit. A hot auction's bids then queue in this
//! process instead of for its row, and pay for the lock and the commit once per batch rather than
//! once a bid, while the other runners serve other auctions.
//!
//! The runner publishes a batch's events in the order they happened, then answers each request.
//! Should a batch fail as a whole (nothing of it is then kept), its requests run one by one, so an
//! error is only ever the answer of the request that caused it.
//! Runners are tasks of their own, so a request that goes away (its client hung up) never leaves
//! a batch half answered; a request whose client has gone before its turn comes is dropped unrun.

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use neighborbid_shared::auctions::AuctionError;
use neighborbid_shared::auctions::bidding::{self, BidOrder, BidReceipt};
use neighborbid_shared::ids::AuctionId;
use neighborbid_shared::metrics::BID_BATCH_SIZE;
use sqlx::PgPool;
use tokio::sync::{Notify, oneshot};

use crate::live::Hub;

/// At most this many requests go in one `place_bids`: each is a subtransaction, and PostgreSQL
/// keeps up to 64 of a transaction's in its fast path.
pub const MAX_BATCH: usize = 32;

type Answer = Result<BidReceipt, AuctionError>;

struct Waiting {
    order: BidOrder,
    answer: oneshot::Sender<Answer>,
}

/// The process's line of bids and buy-nows waiting for PostgreSQL.
pub struct BidLine {
    queue: Mutex<Queue>,
    arrived: Notify,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Auctions a runner has a batch of in PostgreSQL.
    serving: HashSet<AuctionId>,
}

impl BidLine {
    /// Opens the line and starts its `runners`. Call inside the Tokio runtime.
    pub fn start(pool: PgPool, hub: Arc<Hub>, runners: NonZeroUsize) -> Arc<Self> {
        let line = Arc::new(Self { queue: Mutex::new(Queue::default()), arrived: Notify::new() });
        for _ in 0..runners.get() {
            tokio::spawn(serve(Arc::clone(&line), pool.clone(), Arc::clone(&hub)));
        }
        line
    }

    /// Places `order` when its turn comes; its events are published by then.
    pub async fn place(&self, order: BidOrder) -> Answer {
        let (answer, answered) = oneshot::channel();
        self.queue().waiting.push_back(Waiting { order, answer });
        self.arrived.notify_one();
        // The runners live as long as the process; a dropped answer means one panicked.
        answered.await.unwrap_or(Err(AuctionError::Database(sqlx::Error::WorkerCrashed)))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().expect("the line is never poisoned")
    }

    /// The first waiting request for an auction no runner is serving, and every other waiting one
    /// for that auction, in arrival order; the auction is then being served until [`Self::served`].
    fn next_batch(&self) -> Vec<Waiting> {
        let mut queue = self.queue();
        let Queue { waiting, serving } = &mut *queue;
        waiting.retain(|w| !w.answer.is_closed());
        let Some(front) = waiting.iter().position(|w| !serving.contains(&w.order.auction_id())) else {
            return Vec::new();
        };
        let auction_id = waiting[front].order.auction_id();
        let mut batch = Vec::new();
        let mut i = front;
        while i < waiting.len() && batch.len() < MAX_BATCH {
            if waiting[i].order.auction_id() == auction_id {
                batch.extend(waiting.remove(i));
            } else {
                i += 1;
            }
        }
        serving.insert(auction_id);
        batch
    }

    /// The batch of `auction_id` is answered: its next batch may go, on an idle runner too.
    fn served(&self, auction_id: AuctionId) {
        self.queue().serving.remove(&auction_id);
        self.arrived.notify_one();
    }
}

/// One runner: takes batches from the line for as long as the process lives.
async fn serve(line: Arc<BidLine>, pool: PgPool, hub: Arc<Hub>) {
    loop {
        let batch = line.next_batch();
        if batch.is_empty() {
            line.arrived.notified().await;
            continue;
        }
        let auction_id = batch[0].order.auction_id();
        // A task of its own, so that a panic costs this batch its answers, not the line a runner.
        let run = tokio::spawn(run_batch(pool.clone(), Arc::clone(&hub), batch));
        if let Err(err) = run.await {
            tracing::error!(error = %err, "a batch of bids panicked");
        }
        line.served(auction_id);
    }
}

async fn run_batch(pool: PgPool, hub: Arc<Hub>, batch: Vec<Waiting>) {
    let (orders, answers): (Vec<BidOrder>, Vec<_>) = batch.into_iter().map(|w| (w.order, w.answer)).unzip();
    metrics::histogram!(BID_BATCH_SIZE).record(orders.len() as f64);
    let mut outcomes = match orders.as_slice() {
        [order] => vec![bidding::place(&pool, order).await],
        [first, ..] => match bidding::place_together(&pool, first.auction_id(), &orders).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // Nothing of the batch was kept: each request runs alone, so an error is only its own.
                tracing::warn!(error = %err, size = orders.len(), "a batch of bids failed; placing them one by one");
                let mut outcomes = Vec::with_capacity(orders.len());
                for order in &orders {
                    outcomes.push(bidding::place(&pool, order).await);
                }
                outcomes
            }
        },
        [] => return,
    };
    for receipt in outcomes.iter_mut().flatten() {
        hub.publish(&std::mem::take(&mut receipt.events));
    }
    for (answer, outcome) in answers.into_iter().zip(outcomes) {
        // An answer nobody waits for any more (the client hung up) is dropped.
        let _ = answer.send(outcome);
    }
}
