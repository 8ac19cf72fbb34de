//! `release_hold`: give an outbid, losing or cancelled bidder their held money back.

use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError, Queue};
use crate::auctions::release::release_outbid_hold;
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

    fn subject(&self) -> i64 {
        self.hold_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let outcome = release_outbid_hold(&mut *ctx.pool.acquire().await?, self.hold_id).await?;
        tracing::debug!(hold.id = self.hold_id.0, ?outcome, "release");
        Ok(())
    }
}
