//! The money-moving auction transactions: a bid, a buy-now, a cancellation.
//!
//! Each is one PostgreSQL transaction that locks the auction row first and only then touches holds
//! and accounts, the one lock order every writer follows, so two transactions cannot wait on each
//! other in a cycle. Should PostgreSQL still report a deadlock or serialization failure, the whole
//! transaction is retried a bounded number of times.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use super::rules::{self, AuctionState};
use super::store::{self, Auction};
use super::{AuctionError, Status};
use crate::events::{self, EventType, StoredEvent};
use crate::idempotency::{self, Claim};
use crate::ids::{AccountId, AuctionId, BidId, HoldId, UserId};
use crate::jobs::release_hold::ReleaseHold;
use crate::jobs::settle_auction::SettleAuction;
use crate::ledger::holds::{self, ForBid, Hold};
use crate::ledger::{LedgerError, UserAccounts};
use crate::money::Krw;
use crate::outbox;

const MAX_ATTEMPTS: u32 = 5;

/// An accepted bid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bid {
    pub id: BidId,
    pub auction_id: AuctionId,
    pub bidder_id: UserId,
    pub bidder_username: String,
    pub amount: i64,
    pub buy_now: bool,
    pub created_at: DateTime<Utc>,
}

/// A bid (or buy-now) and the auction as it stands after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BidReceipt {
    pub bid: Bid,
    pub auction: Auction,
    /// The events it caused, for publishing once committed (empty for a replayed request).
    #[serde(skip)]
    pub events: Vec<StoredEvent>,
}

/// Runs `$body` (an expression using `$conn: &mut PgConnection`) in a transaction, retrying the
/// whole transaction when PostgreSQL asks for a retry.
macro_rules! in_transaction {
    ($pool:expr, |$conn:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let mut tx = $pool.begin().await?;
            let result = {
                let $conn: &mut PgConnection = &mut tx;
                $body.await
            };
            let result = match result {
                Ok(value) => tx.commit().await.map(|()| value).map_err(AuctionError::from),
                Err(err) => Err(err),
            };
            match result {
                Err(err) if attempt < MAX_ATTEMPTS && is_retryable(&err) => {
                    tracing::debug!(attempt, error = %err, "retrying transaction");
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}

fn is_retryable(err: &AuctionError) -> bool {
    match err {
        AuctionError::Database(e) | AuctionError::Ledger(LedgerError::Database(e)) => crate::db::is_retryable(e),
        _ => false,
    }
}

/// The auction row, locked for this transaction, with what the rules need, the acting user's
/// wallet accounts, and the database clock.
struct Locked {
    state: AuctionState,
    leader_hold_id: Option<HoldId>,
    actor_accounts: Option<UserAccounts>,
    now: DateTime<Utc>,
}

struct LockedRow {
    status: Status,
    seller_id: UserId,
    start_price: i64,
    current_price: i64,
    bid_count: i32,
    bid_increment: Option<i64>,
    buy_now_price: Option<i64>,
    leader_id: Option<UserId>,
    leader_hold_id: Option<HoldId>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    soft_close_seconds: i32,
    now: DateTime<Utc>,
    available_account: Option<AccountId>,
    held_account: Option<AccountId>,
}

/// Locks the auction row (and reads the actor's account ids, which never change).
async fn lock_auction(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    actor_id: UserId,
) -> Result<Locked, AuctionError> {
    let row = sqlx::query_as!(
        LockedRow,
        r#"SELECT a.status AS "status: Status", a.seller_id AS "seller_id: UserId", a.start_price, a.current_price,
                  a.bid_count, a.bid_increment, a.buy_now_price, a.leader_id AS "leader_id: UserId",
                  a.leader_hold_id AS "leader_hold_id: HoldId", a.starts_at, a.ends_at,
                  a.soft_close_seconds, clock_timestamp() AS "now!",
                  (SELECT id FROM accounts WHERE user_id = $2 AND kind = 'available') AS "available_account: AccountId",
                  (SELECT id FROM accounts WHERE user_id = $2 AND kind = 'held') AS "held_account: AccountId"
           FROM auctions a WHERE a.id = $1 FOR UPDATE"#,
        auction_id as AuctionId,
        actor_id as UserId,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(AuctionError::NotFound)?;
    Ok(Locked {
        state: AuctionState {
            status: row.status,
            seller_id: row.seller_id,
            start_price: row.start_price,
            current_price: row.current_price,
            bid_count: row.bid_count,
            bid_increment: row.bid_increment,
            buy_now_price: row.buy_now_price,
            leader_id: row.leader_id,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            soft_close_seconds: row.soft_close_seconds,
        },
        leader_hold_id: row.leader_hold_id,
        actor_accounts: row
            .available_account
            .zip(row.held_account)
            .map(|(available, held)| UserAccounts { available, held }),
        now: row.now,
    })
}

async fn insert_bid(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    bidder_id: UserId,
    amount: i64,
    buy_now: bool,
) -> Result<Bid, sqlx::Error> {
    sqlx::query_as!(
        Bid,
        r#"INSERT INTO bids (auction_id, bidder_id, amount, buy_now) VALUES ($1, $2, $3, $4)
           RETURNING id AS "id: BidId", auction_id AS "auction_id: AuctionId", bidder_id AS "bidder_id: UserId",
                     (SELECT username FROM users WHERE id = $2) AS "bidder_username!", amount, buy_now, created_at"#,
        auction_id as AuctionId,
        bidder_id as UserId,
        amount,
        buy_now,
    )
    .fetch_one(conn)
    .await
}

/// Holds the bidder's money for `amount` (only the difference over their open hold) and records
/// the release of the previous leader's hold when the lead changes hands.
async fn take_the_lead(conn: &mut PgConnection, locked: &Locked, bid: &Bid) -> Result<Hold, AuctionError> {
    let accounts = locked.actor_accounts.ok_or(LedgerError::NoWallet(bid.bidder_id))?;
    // Read after the auction lock is granted, in a statement of its own: under READ COMMITTED a
    // row joined into the locking statement would come from before the wait, and a release that
    // committed meanwhile would go unseen.
    let existing = holds::open_hold(conn, bid.bidder_id, bid.auction_id).await?;
    let for_bid = ForBid { bidder_id: bid.bidder_id, auction_id: bid.auction_id, bid_id: bid.id };
    let hold = holds::hold_up_to(conn, accounts, existing, for_bid, Krw::from_trusted(bid.amount)).await?;
    if let Some(previous) = locked.leader_hold_id.filter(|id| *id != hold.id) {
        outbox::record(conn, &ReleaseHold { hold_id: previous }).await?;
    }
    Ok(hold)
}

fn bid_event(bid: &Bid, auction: &AuctionState) -> (EventType, serde_json::Value) {
    (
        EventType::BidPlaced,
        json!({
            "bid_id": bid.id,
            "amount": bid.amount,
            "bidder": { "id": bid.bidder_id, "username": bid.bidder_username },
            "buy_now": bid.buy_now,
            "bid_count": auction.bid_count,
            "min_next_bid": auction.min_next_bid(),
            "ends_at": auction.ends_at,
        }),
    )
}

/// The stored first result when `key` was used before for this request; claims it otherwise.
async fn replayed(
    conn: &mut PgConnection,
    user_id: UserId,
    key: Option<&str>,
    request_hash: &[u8],
) -> Result<Option<BidReceipt>, AuctionError> {
    let Some(key) = key else { return Ok(None) };
    match idempotency::claim(conn, user_id, key, request_hash).await? {
        Claim::Replay(receipt) => Ok(Some(receipt)),
        Claim::New => Ok(None),
    }
}

/// Stores the result under `key`, if the request had one.
async fn remember(
    conn: &mut PgConnection,
    user_id: UserId,
    key: Option<&str>,
    receipt: &BidReceipt,
) -> Result<(), AuctionError> {
    if let Some(key) = key {
        idempotency::complete(conn, user_id, key, receipt).await?;
    }
    Ok(())
}

/// A bid of `amount` on `auction_id` by `bidder_id`.
#[tracing::instrument(
    skip(pool, amount, idempotency_key),
    fields(
        auction_id = auction_id.0,
        bidder_id = bidder_id.0,
        auction.id = auction_id.0,
        user.id = bidder_id.0,
        bid.amount = amount.get()
    )
)]
pub async fn place_bid(
    pool: &PgPool,
    auction_id: AuctionId,
    bidder_id: UserId,
    amount: Krw,
    idempotency_key: Option<&str>,
) -> Result<BidReceipt, AuctionError> {
    if idempotency_key.is_none() {
        refuse_early_if_too_low(pool, auction_id, amount).await?;
    }
    let request_hash = idempotency::fingerprint("place_bid", &(auction_id, amount));
    in_transaction!(pool, |conn| place_bid_once(conn, auction_id, bidder_id, amount, idempotency_key, &request_hash))
}

/// Refuses a bid below the minimum from a plain read, without queueing for the auction's row lock.
/// Sound because the minimum never falls: a bid too low now is too low at any later moment. On a
/// busy auction most losing bids end here, so they do not slow the winning ones. (With an
/// Idempotency-Key the full path runs, so a repeat still gets its first result.)
async fn refuse_early_if_too_low(pool: &PgPool, auction_id: AuctionId, amount: Krw) -> Result<(), AuctionError> {
    let snapshot = sqlx::query!(
        "SELECT start_price, bid_count, current_price, bid_increment FROM auctions WHERE id = $1",
        auction_id as AuctionId
    )
    .fetch_optional(pool)
    .await?
    .ok_or(AuctionError::NotFound)?;
    let minimum =
        rules::min_next_bid(snapshot.start_price, snapshot.bid_count, snapshot.current_price, snapshot.bid_increment);
    if amount.get() < minimum {
        return Err(rules::Refusal::TooLow { minimum }.into());
    }
    Ok(())
}

async fn place_bid_once(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    bidder_id: UserId,
    amount: Krw,
    idempotency_key: Option<&str>,
    request_hash: &[u8],
) -> Result<BidReceipt, AuctionError> {
    if let Some(receipt) = replayed(conn, bidder_id, idempotency_key, request_hash).await? {
        return Ok(receipt);
    }
    let locked = lock_auction(conn, auction_id, bidder_id).await?;
    let accepted = rules::check_bid(&locked.state, bidder_id, amount.get(), locked.now)?;
    let bid = insert_bid(conn, auction_id, bidder_id, amount.get(), false).await?;
    let hold = take_the_lead(conn, &locked, &bid).await?;
    sqlx::query!(
        "UPDATE auctions SET current_price = $2, leader_id = $3, leader_hold_id = $4,
                             bid_count = bid_count + 1, status = 'active', ends_at = coalesce($5, ends_at)
         WHERE id = $1",
        auction_id as AuctionId,
        amount.get(),
        bidder_id as UserId,
        hold.id as HoldId,
        accepted.extended_to,
    )
    .execute(&mut *conn)
    .await?;
    let after = AuctionState {
        current_price: amount.get(),
        bid_count: locked.state.bid_count + 1,
        leader_id: Some(bidder_id),
        ends_at: accepted.extended_to.unwrap_or(locked.state.ends_at),
        ..locked.state
    };
    let mut happened = vec![bid_event(&bid, &after)];
    if let Some(ends_at) = accepted.extended_to {
        happened.push((EventType::AuctionExtended, json!({ "ends_at": ends_at })));
    }
    let events = events::append(conn, auction_id, &happened).await?;
    let auction = store::find(conn, auction_id).await?.ok_or(AuctionError::NotFound)?;
    let receipt = BidReceipt { bid, auction, events };
    remember(conn, bidder_id, idempotency_key, &receipt).await?;
    Ok(receipt)
}

/// Buys `auction_id` at its buy-now price: the auction closes at once with the buyer as winner.
#[tracing::instrument(
    skip(pool, idempotency_key),
    fields(auction_id = auction_id.0, buyer_id = buyer_id.0, auction.id = auction_id.0, user.id = buyer_id.0)
)]
pub async fn buy_now(
    pool: &PgPool,
    auction_id: AuctionId,
    buyer_id: UserId,
    idempotency_key: Option<&str>,
) -> Result<BidReceipt, AuctionError> {
    let request_hash = idempotency::fingerprint("buy_now", &auction_id);
    in_transaction!(pool, |conn| buy_now_once(conn, auction_id, buyer_id, idempotency_key, &request_hash))
}

async fn buy_now_once(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    buyer_id: UserId,
    idempotency_key: Option<&str>,
    request_hash: &[u8],
) -> Result<BidReceipt, AuctionError> {
    if let Some(receipt) = replayed(conn, buyer_id, idempotency_key, request_hash).await? {
        return Ok(receipt);
    }
    let locked = lock_auction(conn, auction_id, buyer_id).await?;
    let price = rules::check_buy_now(&locked.state, buyer_id, locked.now)?;
    let bid = insert_bid(conn, auction_id, buyer_id, price, true).await?;
    let hold = take_the_lead(conn, &locked, &bid).await?;
    sqlx::query!(
        "UPDATE auctions SET current_price = $2, leader_id = $3, leader_hold_id = $4, winner_id = $3,
                             bid_count = bid_count + 1, status = 'closed', ended_at = $5
         WHERE id = $1",
        auction_id as AuctionId,
        price,
        buyer_id as UserId,
        hold.id as HoldId,
        locked.now,
    )
    .execute(&mut *conn)
    .await?;
    outbox::record(conn, &SettleAuction { auction_id }).await?;
    let after = AuctionState {
        status: Status::Closed,
        current_price: price,
        bid_count: locked.state.bid_count + 1,
        leader_id: Some(buyer_id),
        ..locked.state
    };
    let closed = json!({ "winner_id": buyer_id, "price": price, "buy_now": true });
    let events =
        events::append(conn, auction_id, &[bid_event(&bid, &after), (EventType::AuctionClosed, closed)]).await?;
    let auction = store::find(conn, auction_id).await?.ok_or(AuctionError::NotFound)?;
    let receipt = BidReceipt { bid, auction, events };
    remember(conn, buyer_id, idempotency_key, &receipt).await?;
    Ok(receipt)
}

/// A withdrawn auction and the event that tells its watchers.
#[derive(Debug, Clone)]
pub struct Cancelled {
    /// The auction, now `cancelled`.
    pub auction: Auction,
    /// The `auction_cancelled` event, for publishing once committed.
    pub events: Vec<StoredEvent>,
}

/// Withdraws an auction; only its seller may, and only before the first bid.
#[tracing::instrument(
    skip(pool),
    fields(auction_id = auction_id.0, seller_id = seller_id.0, auction.id = auction_id.0, user.id = seller_id.0)
)]
pub async fn cancel(pool: &PgPool, auction_id: AuctionId, seller_id: UserId) -> Result<Cancelled, AuctionError> {
    in_transaction!(pool, |conn| cancel_once(conn, auction_id, seller_id))
}

async fn cancel_once(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    seller_id: UserId,
) -> Result<Cancelled, AuctionError> {
    let locked = lock_auction(conn, auction_id, seller_id).await?;
    if locked.state.seller_id != seller_id {
        return Err(AuctionError::NotSeller);
    }
    if locked.state.bid_count > 0 {
        return Err(AuctionError::HasBids);
    }
    let still_open =
        matches!(locked.state.status, Status::Scheduled | Status::Active) && locked.now < locked.state.ends_at;
    if !still_open {
        return Err(rules::Refusal::NotActive.into());
    }
    sqlx::query!(
        "UPDATE auctions SET status = 'cancelled', ended_at = $2 WHERE id = $1",
        auction_id as AuctionId,
        locked.now
    )
    .execute(&mut *conn)
    .await?;
    let events = events::append(conn, auction_id, &[(EventType::AuctionCancelled, json!({}))]).await?;
    let auction = store::find(conn, auction_id).await?.ok_or(AuctionError::NotFound)?;
    Ok(Cancelled { auction, events })
}
