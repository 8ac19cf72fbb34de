//! Settlement: a closed auction's winner pays the seller; every other hold on it is released. The
//! `settle_auction` job runs it.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::Status;
use crate::email::NotificationKind;
use crate::events::{self, EventType, StoredEvent};
use crate::ids::{AccountId, AuctionId, HoldId, UserId};
use crate::jobs::release_hold::ReleaseHold;
use crate::ledger::holds::{self, Ended};
use crate::ledger::{FEES_ACCOUNT, LedgerError};
use crate::metrics::SETTLEMENT_LAG;
use crate::notifications::{self, NewNotification};
use crate::outbox;
use crate::talk::conversations;

/// What a settlement run did.
#[derive(Debug, Clone, PartialEq)]
pub enum SettleOutcome {
    /// The money moved and the auction (with any others settled in its batch) is settled now; the
    /// events to publish.
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
    ended_at: Option<DateTime<Utc>>,
}

/// A closed auction to settle.
struct Sale {
    auction_id: AuctionId,
    winner_id: UserId,
    winning_hold: HoldId,
    price: i64,
    /// When it closed, for the settlement lag.
    ended_at: Option<DateTime<Utc>>,
}

/// At most this many of one seller's closed auctions are settled in one transaction.
pub const BATCH: i64 = 100;

/// Settles `auction_id` exactly once: under the auction's row lock, and only from `closed`, it
/// captures the price from the winner's hold to the seller (`fee_bps` to the platform), marks the
/// auction `settled`, records the winner's and seller's emails, and records a release of every
/// other open hold. Each release is its own job, so one loser's account can never hold the sale up.
///
/// In the same transaction it settles up to [`BATCH`] − 1 more closed auctions of the same seller
/// that no one else has locked: a seller whose many auctions end together is credited once per
/// batch, not once per transaction in a queue on their account row. (Their own jobs, arriving
/// later, find them settled.) Each sale still has its own capture, fee and ledger line.
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
                  leader_hold_id AS "leader_hold_id: HoldId", current_price AS price, ended_at
           FROM auctions WHERE id = $1 FOR UPDATE"#,
        auction_id as AuctionId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(Outcome { status, seller_id, winner_id, leader_hold_id, price, ended_at }) = row else {
        tracing::warn!(auction.id = auction_id.0, "settlement for an auction that does not exist");
        return Ok(SettleOutcome::Missing);
    };
    let (Some(winner_id), Some(winning_hold), Status::Closed) = (winner_id, leader_hold_id, status) else {
        return Ok(SettleOutcome::NotClosed);
    };
    let mut sales = vec![Sale { auction_id, winner_id, winning_hold, price, ended_at }];
    // SKIP LOCKED: never wait for a second auction's lock, so two batches cannot wait on each other.
    sales.extend(
        sqlx::query_as!(
            Sale,
            r#"SELECT id AS "auction_id: AuctionId", winner_id AS "winner_id!: UserId",
                      leader_hold_id AS "winning_hold!: HoldId", current_price AS price, ended_at
               FROM auctions
               WHERE seller_id = $1 AND status = 'closed' AND id <> $2
                 AND winner_id IS NOT NULL AND leader_hold_id IS NOT NULL
               ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED"#,
            seller_id as UserId,
            auction_id as AuctionId,
            BATCH - 1,
        )
        .fetch_all(&mut *tx)
        .await?,
    );
    // Each sale's notifications advance the winner's and the seller's event counters, on their user rows.
    // Two settlements of one seller's auctions (batches with winners in common) took those rows in
    // sale order, each could hold one the other waited for, and one of them failed as a deadlock
    // after a second's wait. All are locked at once, in id order, before any is changed.
    let users: Vec<UserId> = sales.iter().map(|s| s.winner_id).chain([seller_id]).collect();
    sqlx::query!("SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE", &users as &[UserId])
        .fetch_all(&mut *tx)
        .await?;
    let mut events = Vec::with_capacity(sales.len());
    for sale in &sales {
        events.extend(record_sale(&mut tx, sale, seller_id).await?);
    }
    // Last, just before the commit: the seller's and the fee account's rows are shared by every
    // settlement of that seller (and of everyone, for fees). All accounts are locked at once in id
    // order, the order every multi-account statement takes, so settlements cannot deadlock.
    sqlx::query!(
        "SELECT id FROM accounts WHERE user_id = ANY($1) OR id = $2 ORDER BY id FOR UPDATE",
        &users as &[UserId],
        FEES_ACCOUNT as AccountId,
    )
    .fetch_all(&mut *tx)
    .await?;
    for sale in &sales {
        if holds::capture(&mut tx, sale.winning_hold, seller_id, sale.price, fee_bps).await? == Ended::Already {
            tracing::error!(
                auction.id = sale.auction_id.0,
                hold.id = sale.winning_hold.0,
                "winning hold had already ended"
            );
        }
    }
    tx.commit().await?;
    let now = Utc::now();
    for ended_at in sales.iter().filter_map(|sale| sale.ended_at) {
        metrics::histogram!(SETTLEMENT_LAG).record((now - ended_at).as_seconds_f64());
    }
    if sales.len() > 1 {
        tracing::info!(auction.id = auction_id.0, batch = sales.len(), "settled a batch of one seller's auctions");
    }
    Ok(SettleOutcome::Settled(events))
}

/// Everything of one sale but the money: the losers' releases, the status, the event, the emails.
async fn record_sale(conn: &mut PgConnection, sale: &Sale, seller_id: UserId) -> Result<Vec<StoredEvent>, LedgerError> {
    let losers = sqlx::query_scalar!(
        r#"SELECT id AS "id: HoldId" FROM holds WHERE auction_id = $1 AND status = 'open' AND id <> $2"#,
        sale.auction_id as AuctionId,
        sale.winning_hold as HoldId,
    )
    .fetch_all(&mut *conn)
    .await?;
    for hold_id in losers {
        outbox::record(conn, &ReleaseHold { hold_id }).await?;
    }
    sqlx::query!("UPDATE auctions SET status = 'settled' WHERE id = $1", sale.auction_id as AuctionId)
        .execute(&mut *conn)
        .await?;
    let settled = json!({ "winner_id": sale.winner_id, "price": sale.price });
    let events = events::append(conn, sale.auction_id, &[(EventType::AuctionSettled, settled)]).await?;
    let price = json!({ "price": sale.price });
    for (kind, recipient) in [(NotificationKind::Won, sale.winner_id), (NotificationKind::Sold, seller_id)] {
        // The recipients' streams catch their `notification` events up from the database.
        notifications::record(conn, &NewNotification::about_auction(kind, sale.auction_id, recipient, price.clone()))
            .await?;
    }
    conversations::open_after_sale(conn, sale.auction_id, sale.winner_id, seller_id, sale.price).await?;
    Ok(events)
}
