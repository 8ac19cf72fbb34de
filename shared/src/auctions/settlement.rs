//! Settlement: a closed auction's winner pays the seller; every other hold on it is released. The
//! `settle_auction` job runs it.

use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::Status;
use crate::email::NotificationKind;
use crate::events::{self, EventType, StoredEvent};
use crate::ids::{AuctionId, HoldId, UserId};
use crate::jobs::release_hold::ReleaseHold;
use crate::ledger::LedgerError;
use crate::ledger::holds::{self, Ended};
use crate::notifications;
use crate::outbox;

/// What a settlement run did.
#[derive(Debug, Clone, PartialEq)]
pub enum SettleOutcome {
    /// The money moved and the auction is settled now; the event to publish.
    Settled(Vec<StoredEvent>),
    /// Not in `closed` (settled already, or not ended): a repeated delivery; nothing moved.
    NotClosed,
    /// No such auction.
    Missing,
}

/// How an auction ended, read under its row lock.
struct Outcome {
    status: Status,
    seller_id: UserId,
    winner_id: Option<UserId>,
    leader_hold_id: Option<HoldId>,
    price: i64,
}

/// Settles `auction_id` exactly once: under the auction's row lock, and only from `closed`, it
/// captures the winner's hold to the seller (`fee_bps` to the platform), marks the auction
/// `settled`, records the winner's and seller's emails, and records a release of every other open
/// hold. Each release is its own job, so one loser's account can never hold the sale up.
#[tracing::instrument(skip_all, fields(auction.id = auction_id.0))]
pub async fn settle_auction(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    fee_bps: u16,
) -> Result<SettleOutcome, LedgerError> {
    let mut tx = conn.begin().await?;
    let row = sqlx::query_as!(
        Outcome,
        r#"SELECT status AS "status: Status", seller_id AS "seller_id: UserId", winner_id AS "winner_id: UserId",
                  leader_hold_id AS "leader_hold_id: HoldId", current_price AS price
           FROM auctions WHERE id = $1 FOR UPDATE"#,
        auction_id as AuctionId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(Outcome { status, seller_id, winner_id, leader_hold_id, price }) = row else {
        tracing::warn!(auction.id = auction_id.0, "settlement for an auction that does not exist");
        return Ok(SettleOutcome::Missing);
    };
    let (Some(winner_id), Some(winning_hold), Status::Closed) = (winner_id, leader_hold_id, status) else {
        return Ok(SettleOutcome::NotClosed);
    };
    let losers = sqlx::query_scalar!(
        r#"SELECT id AS "id: HoldId" FROM holds WHERE auction_id = $1 AND status = 'open' AND id <> $2"#,
        auction_id as AuctionId,
        winning_hold as HoldId,
    )
    .fetch_all(&mut *tx)
    .await?;
    for hold_id in losers {
        outbox::record(&mut tx, &ReleaseHold { hold_id }).await?;
    }
    sqlx::query!("UPDATE auctions SET status = 'settled' WHERE id = $1", auction_id as AuctionId)
        .execute(&mut *tx)
        .await?;
    let settled = json!({ "winner_id": winner_id, "price": price });
    let events = events::append(&mut tx, auction_id, &[(EventType::AuctionSettled, settled)]).await?;
    notifications::record(&mut tx, NotificationKind::Won, auction_id, winner_id).await?;
    notifications::record(&mut tx, NotificationKind::Sold, auction_id, seller_id).await?;
    // Last, just before the commit: crediting the seller and the fee account locks rows that every
    // settlement of that seller (and every settlement at all, for fees) shares.
    if holds::capture(&mut tx, winning_hold, seller_id, fee_bps).await? == Ended::Already {
        tracing::error!(auction.id = auction_id.0, hold.id = winning_hold.0, "winning hold had already ended");
    }
    tx.commit().await?;
    Ok(SettleOutcome::Settled(events))
}
