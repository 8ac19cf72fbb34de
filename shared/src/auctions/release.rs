//! Releasing a hold that no longer leads its auction (outbid, lost, cancelled), and telling its
//! bidder they were outbid. The `release_hold` job runs it.

use sqlx::{Connection, PgConnection};

use super::Status;
use crate::email::NotificationKind;
use crate::ids::{AuctionId, HoldId, UserId};
use crate::ledger::LedgerError;
use crate::ledger::holds::{self, Ended};
use crate::notifications;

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The hold's money went back to the bidder's available balance.
    Released,
    /// Already released or captured: a repeated delivery; nothing moved.
    AlreadyEnded,
    /// The hold leads its live or closed auction again (its owner re-bid): it must stay.
    StillLeading,
    /// No such hold.
    Missing,
}

/// Releases `hold_id` unless it is the leading hold of an auction that is still live or awaiting
/// settlement. Locks the auction row first, the order every bid uses, so it cannot deadlock with
/// bids; runs in its own transaction; a second run is a no-op.
#[tracing::instrument(skip_all, fields(hold.id = hold_id.0))]
pub async fn release_outbid_hold(conn: &mut PgConnection, hold_id: HoldId) -> Result<ReleaseOutcome, LedgerError> {
    let mut tx = conn.begin().await?;
    let auction = sqlx::query!(
        r#"SELECT a.id AS "id: AuctionId", a.leader_hold_id AS "leader_hold_id: HoldId", a.status AS "status: Status"
           FROM auctions a WHERE a.id = (SELECT auction_id FROM holds WHERE id = $1) FOR UPDATE"#,
        hold_id as HoldId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((auction_id, leader_hold_id, status)) = auction.map(|a| (a.id, a.leader_hold_id, a.status)) else {
        tracing::warn!(hold.id = hold_id.0, "release of a hold that does not exist");
        return Ok(ReleaseOutcome::Missing);
    };
    let auction_needs_it = matches!(status, Status::Scheduled | Status::Active | Status::Closed);
    if auction_needs_it && leader_hold_id == Some(hold_id) {
        return Ok(ReleaseOutcome::StillLeading);
    }
    let outcome = match holds::release(&mut tx, hold_id).await? {
        Ended::Now => ReleaseOutcome::Released,
        Ended::Already => ReleaseOutcome::AlreadyEnded,
    };
    if outcome == ReleaseOutcome::Released && auction_needs_it {
        let bidder =
            sqlx::query_scalar!(r#"SELECT user_id AS "user_id: UserId" FROM holds WHERE id = $1"#, hold_id as HoldId)
                .fetch_one(&mut *tx)
                .await?;
        notifications::record(&mut tx, NotificationKind::Outbid, auction_id, bidder).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}
