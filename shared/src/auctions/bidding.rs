//! The money-moving auction transactions: a bid, a buy-now, a cancellation.
//!
//! A bid and a buy-now are one statement each: the database function `place_bid`
//! (migrations/20261126000001_bid_engine.sql) claims the Idempotency-Key, locks the auction row,
//! applies the rules (mirrored by [`super::rules::decide_bid`]), moves the money and records the
//! bids, events and follow-up jobs, so the auction's row lock lasts one server-side statement and
//! no client round trip. Should PostgreSQL report a deadlock or serialization failure, the
//! statement is retried a bounded number of times.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgDatabaseError;
use sqlx::types::Json;
use sqlx::{Connection, PgPool};

use super::AuctionError;
use super::rules::Refusal;
use super::store::{self, Auction};
use crate::events::{self, EventType, StoredEvent};
use crate::idempotency;
use crate::ids::{AuctionId, BidId, UserId};
use crate::ledger::LedgerError;
use crate::money::Krw;
use crate::validation::ValidationError;

const MAX_ATTEMPTS: u32 = 5;
/// The SQLSTATE with which `place_bid` refuses a request; its message is the reason.
const REFUSED: &str = "NB001";

/// An accepted bid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bid {
    pub id: BidId,
    pub auction_id: AuctionId,
    pub bidder_id: UserId,
    pub bidder_username: String,
    pub amount: i64,
    pub buy_now: bool,
    /// Placed by the system for the bidder's maximum.
    #[serde(default)]
    pub auto: bool,
    /// The maximum its bidder asked for: in their own receipt only, never in history or events.
    #[serde(default)]
    pub max_amount: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A bid (or buy-now) and the auction as it stands after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BidReceipt {
    /// The requester's bid (a leader who only raised their maximum: their standing bid).
    pub bid: Bid,
    pub auction: Auction,
    /// The events it caused, for publishing once committed (empty for a replayed request).
    #[serde(skip)]
    pub events: Vec<StoredEvent>,
}

/// What `place_bid` returns.
#[derive(Deserialize)]
struct EngineAnswer {
    receipt: BidReceipt,
    events: Vec<StoredEvent>,
}

/// A bid of `amount`, and automatically up to `max_amount` if given, on `auction_id` by `bidder_id`.
#[tracing::instrument(
    skip(pool, amount, max_amount, idempotency_key),
    fields(auction.id = auction_id.0, user.id = bidder_id.0, bid.amount = amount.get())
)]
pub async fn place_bid(
    pool: &PgPool,
    auction_id: AuctionId,
    bidder_id: UserId,
    amount: Krw,
    max_amount: Option<Krw>,
    idempotency_key: Option<&str>,
) -> Result<BidReceipt, AuctionError> {
    let (amount, max_amount) = (amount.get(), max_amount.map(Krw::get));
    if max_amount.is_some_and(|max| max < amount) {
        return Err(max_below_amount().into());
    }
    let request_hash = idempotency::fingerprint("place_bid", &(auction_id, amount, max_amount));
    let request = EngineRequest { auction_id, user_id: bidder_id, amount: Some(amount), max_amount, buy_now: false };
    run_engine(pool, request, idempotency_key, &request_hash).await
}

/// Buys `auction_id` at its buy-now price: the auction closes at once with the buyer as winner.
#[tracing::instrument(skip(pool, idempotency_key), fields(auction.id = auction_id.0, user.id = buyer_id.0))]
pub async fn buy_now(
    pool: &PgPool,
    auction_id: AuctionId,
    buyer_id: UserId,
    idempotency_key: Option<&str>,
) -> Result<BidReceipt, AuctionError> {
    let request_hash = idempotency::fingerprint("buy_now", &auction_id);
    let request = EngineRequest { auction_id, user_id: buyer_id, amount: None, max_amount: None, buy_now: true };
    run_engine(pool, request, idempotency_key, &request_hash).await
}

struct EngineRequest {
    auction_id: AuctionId,
    user_id: UserId,
    amount: Option<i64>,
    max_amount: Option<i64>,
    buy_now: bool,
}

async fn run_engine(
    pool: &PgPool,
    request: EngineRequest,
    idempotency_key: Option<&str>,
    request_hash: &[u8],
) -> Result<BidReceipt, AuctionError> {
    if let Some(key) = idempotency_key {
        idempotency::check_key(key)?;
    }
    let mut attempt = 1;
    loop {
        let answer = sqlx::query_scalar!(
            r#"SELECT place_bid($1, $2, $3, $4, $5, $6, $7) AS "answer!: Json<EngineAnswer>""#,
            request.auction_id as AuctionId,
            request.user_id as UserId,
            request.amount,
            request.max_amount,
            request.buy_now,
            idempotency_key,
            request_hash,
        )
        .fetch_one(pool)
        .await;
        match answer {
            Ok(Json(EngineAnswer { mut receipt, events })) => {
                receipt.events = events;
                return Ok(receipt);
            }
            Err(err) if attempt < MAX_ATTEMPTS && crate::db::is_retryable(&err) => {
                tracing::debug!(attempt, error = %err, "retrying the bid");
                attempt += 1;
            }
            Err(err) => return Err(refusal(&err, request.user_id).unwrap_or_else(|| err.into())),
        }
    }
}

/// The refusal `place_bid` raised, if that is what `err` is.
fn refusal(err: &sqlx::Error, user_id: UserId) -> Option<AuctionError> {
    let db = err.as_database_error()?.try_downcast_ref::<PgDatabaseError>()?;
    if db.code() != REFUSED {
        return None;
    }
    let detail = || db.detail().and_then(|d| d.parse::<i64>().ok()).unwrap_or_default();
    Some(match db.message() {
        "not_found" => AuctionError::NotFound,
        "own_auction" => Refusal::OwnAuction.into(),
        "not_active" => Refusal::NotActive.into(),
        "too_low" => Refusal::TooLow { minimum: detail() }.into(),
        "maximum_not_raised" => Refusal::MaximumNotRaised { maximum: detail() }.into(),
        "buy_now_unavailable" => Refusal::BuyNowUnavailable.into(),
        "idempotency_key_reused" => AuctionError::IdempotencyKeyReused,
        "no_wallet" => LedgerError::NoWallet(user_id).into(),
        "max_below_amount" => max_below_amount().into(),
        other => {
            tracing::error!(reason = other, "place_bid refused for a reason this code does not know");
            return None;
        }
    })
}

fn max_below_amount() -> ValidationError {
    ValidationError::new("max_amount", "max_below_amount", "max_amount must be at least amount")
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
#[tracing::instrument(skip(pool), fields(auction.id = auction_id.0, user.id = seller_id.0))]
pub async fn cancel(pool: &PgPool, auction_id: AuctionId, seller_id: UserId) -> Result<Cancelled, AuctionError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let locked = sqlx::query!(
        r#"SELECT seller_id AS "seller_id: UserId", bid_count,
                  status IN ('scheduled', 'active') AND clock_timestamp() < ends_at AS "still_open!",
                  clock_timestamp() AS "now!"
           FROM auctions WHERE id = $1 FOR UPDATE"#,
        auction_id as AuctionId,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AuctionError::NotFound)?;
    if locked.seller_id != seller_id {
        return Err(AuctionError::NotSeller);
    }
    if locked.bid_count > 0 {
        return Err(AuctionError::HasBids);
    }
    if !locked.still_open {
        return Err(Refusal::NotActive.into());
    }
    sqlx::query!(
        "UPDATE auctions SET status = 'cancelled', ended_at = $2 WHERE id = $1",
        auction_id as AuctionId,
        locked.now
    )
    .execute(&mut *tx)
    .await?;
    let events = events::append(&mut tx, auction_id, &[(EventType::AuctionCancelled, json!({}))]).await?;
    let auction = store::find(&mut tx, auction_id).await?.ok_or(AuctionError::NotFound)?;
    tx.commit().await?;
    Ok(Cancelled { auction, events })
}
