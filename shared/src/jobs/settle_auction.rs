//! `settle_auction`: the winner of a closed auction pays the seller.

use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError, Queue};
use crate::auctions::settlement::{SettleOutcome, settle_auction};
use crate::events;
use crate::ids::AuctionId;

/// Settle one closed auction, then tell its watchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleAuction {
    /// The closed auction.
    pub auction_id: AuctionId,
}

impl Job for SettleAuction {
    const NAME: &'static str = "settle_auction";
    const QUEUE: Queue = Queue::Settlement;
    /// Auctions closed longer ago than the grace period and still not settled.
    const OVERDUE: &'static str = "INSERT INTO outbox (kind, payload) \
         SELECT 'settle_auction', jsonb_build_object('auction_id', a.id) \
         FROM auctions a \
         WHERE a.status = 'closed' AND a.ended_at < now() - make_interval(secs => $1) \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'settle_auction' \
                           AND (o.payload ->> 'auction_id')::bigint = a.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))";

    fn subject(&self) -> i64 {
        self.auction_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let outcome = settle_auction(&mut *ctx.pool.acquire().await?, self.auction_id, ctx.fee_bps).await?;
        tracing::info!(
            auction.id = self.auction_id.0,
            settled = matches!(outcome, SettleOutcome::Settled(_)),
            "settlement"
        );
        if let SettleOutcome::Settled(events) = outcome {
            events::publish(&mut ctx.redis.clone(), &ctx.prefix, &events).await;
        }
        Ok(())
    }
}
