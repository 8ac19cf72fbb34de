//! The money-moving auction transactions: a bid, a buy-now, a cancellation.
//!
//! A bid and a buy-now are one statement each: the database function `place_bid`
//! (migrations/20261126000001_bid_engine.sql) claims the Idempotency-Key, locks the auction row,
//! applies the rules (mirrored by [`super::rules::decide_bid`]), moves the money and records the
//! bids, events and follow-up jobs, so the auction's row lock lasts one server-side statement and
//! no client round trip. Several requests for one auction can go as one statement too
//! ([`place_together`], `place_bids` in migrations/20261205000001_bid_batches.sql): each decided as
//! if alone, in turn, under one row lock and one commit. Should PostgreSQL report a deadlock or
//! serialization failure, the statement is retried a bounded number of times.

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
#[derive(Debug, Deserialize)]
struct EngineAnswer {
    receipt: BidReceipt,
    events: Vec<StoredEvent>,
}

/// A bid of `amount`, and automatically up to `max_amount` if given, on `auction_id` by `bidder_id`.
pub async fn place_bid(
    pool: &PgPool,
    auction_id: AuctionId,
    bidder_id: UserId,
    amount: Krw,
    max_amount: Option<Krw>,
    idempotency_key: Option<&str>,
) -> Result<BidReceipt, AuctionError> {
    let order = BidOrder::bid(auction_id, bidder_id, amount, max_amount, idempotency_key)?;
    place(pool, &order).await
}

/// A checked request for the engine: a bid or a buy-now.
#[derive(Debug, Clone)]
pub struct BidOrder {
    auction_id: AuctionId,
    user_id: UserId,
    amount: Option<i64>,
    max_amount: Option<i64>,
    buy_now: bool,
    idempotency_key: Option<String>,
    request_hash: Vec<u8>,
}

impl BidOrder {
    /// A bid of `amount`, and automatically up to `max_amount` if given; refused when the maximum
    /// is below the amount or the Idempotency-Key is malformed.
    pub fn bid(
        auction_id: AuctionId,
        bidder_id: UserId,
        amount: Krw,
        max_amount: Option<Krw>,
        idempotency_key: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let (amount, max_amount) = (amount.get(), max_amount.map(Krw::get));
        if max_amount.is_some_and(|max| max < amount) {
            return Err(max_below_amount());
        }
        Self::new(auction_id, bidder_id, Some(amount), max_amount, idempotency_key, "place_bid")
    }

    /// A purchase at the buy-now price: the auction closes at once with the buyer as winner.
    pub fn buy_now(
        auction_id: AuctionId,
        buyer_id: UserId,
        idempotency_key: Option<&str>,
    ) -> Result<Self, ValidationError> {
        Self::new(auction_id, buyer_id, None, None, idempotency_key, "buy_now")
    }

    fn new(
        auction_id: AuctionId,
        user_id: UserId,
        amount: Option<i64>,
        max_amount: Option<i64>,
        idempotency_key: Option<&str>,
        endpoint: &str,
    ) -> Result<Self, ValidationError> {
        if let Some(key) = idempotency_key {
            idempotency::check_key(key)?;
        }
        let request_hash = match amount {
            Some(amount) => idempotency::fingerprint(endpoint, &(auction_id, amount, max_amount)),
            None => idempotency::fingerprint(endpoint, &auction_id),
        };
        let buy_now = amount.is_none();
        let idempotency_key = idempotency_key.map(str::to_owned);
        Ok(Self { auction_id, user_id, amount, max_amount, buy_now, idempotency_key, request_hash })
    }

    /// The auction it is for.
    pub fn auction_id(&self) -> AuctionId {
        self.auction_id
    }
}

/// Runs one order in one statement (`place_bid`).
#[tracing::instrument(
    skip_all,
    fields(auction.id = order.auction_id.0, user.id = order.user_id.0, bid.amount = order.amount, bid.buy_now = order.buy_now)
)]
pub async fn place(pool: &PgPool, order: &BidOrder) -> Result<BidReceipt, AuctionError> {
    let mut attempt = 1;
    loop {
        let answer = sqlx::query_scalar!(
            r#"SELECT place_bid($1, $2, $3, $4, $5, $6, $7) AS "answer!: Json<EngineAnswer>""#,
            order.auction_id as AuctionId,
            order.user_id as UserId,
            order.amount,
            order.max_amount,
            order.buy_now,
            order.idempotency_key.as_deref(),
            &order.request_hash,
        )
        .fetch_one(pool)
        .await;
        match answer {
            Ok(Json(answer)) => return Ok(answer.into_receipt()),
            Err(err) if attempt < MAX_ATTEMPTS && crate::db::is_retryable(&err) => {
                tracing::debug!(attempt, error = %err, "retrying the bid");
                attempt += 1;
            }
            Err(err) => return Err(refusal(&err, order.user_id).unwrap_or_else(|| err.into())),
        }
    }
}

/// Runs orders for one auction together, in the given order, in one statement (`place_bids`):
/// one row lock and one commit for all of them. Each order is decided as if it ran alone right
/// after the ones before it; one's refusal is its own answer and leaves the others as they are.
/// An error of the database is every order's.
#[tracing::instrument(skip_all, fields(bids = orders.len()))]
pub async fn place_together(
    pool: &PgPool,
    auction_id: AuctionId,
    orders: &[BidOrder],
) -> Result<Vec<Result<BidReceipt, AuctionError>>, AuctionError> {
    debug_assert!(orders.iter().all(|order| order.auction_id == auction_id), "one auction per batch");
    let column = |f: fn(&BidOrder) -> Option<i64>| orders.iter().map(f).collect::<Vec<_>>();
    let (amounts, max_amounts) = (column(|o| o.amount), column(|o| o.max_amount));
    let bidders: Vec<i64> = orders.iter().map(|o| o.user_id.0).collect();
    let buy_nows: Vec<bool> = orders.iter().map(|o| o.buy_now).collect();
    let keys: Vec<Option<String>> = orders.iter().map(|o| o.idempotency_key.clone()).collect();
    let hashes: Vec<Vec<u8>> = orders.iter().map(|o| o.request_hash.clone()).collect();
    let mut attempt = 1;
    loop {
        let rows = sqlx::query!(
            r#"SELECT answer AS "answer: Json<EngineAnswer>", refusal, refusal_detail
               FROM place_bids($1, $2, $3, $4, $5, $6, $7)"#,
            auction_id as AuctionId,
            &bidders,
            &amounts as &[Option<i64>],
            &max_amounts as &[Option<i64>],
            &buy_nows,
            &keys as &[Option<String>],
            &hashes,
        )
        .fetch_all(pool)
        .await;
        match rows {
            Ok(rows) if rows.len() == orders.len() => {
                return Ok(rows
                    .into_iter()
                    .zip(orders)
                    .map(|(row, order)| match (row.answer, row.refusal) {
                        (Some(Json(answer)), _) => Ok(answer.into_receipt()),
                        (None, Some(reason)) => Err(refused(&reason, row.refusal_detail.as_deref(), order.user_id)
                            .unwrap_or_else(|| unknown_refusal(&reason))),
                        (None, None) => Err(unknown_refusal("no answer")),
                    })
                    .collect());
            }
            Ok(rows) => {
                return Err(sqlx::Error::Protocol(format!(
                    "place_bids answered {} of {} orders",
                    rows.len(),
                    orders.len()
                ))
                .into());
            }
            Err(err) if attempt < MAX_ATTEMPTS && crate::db::is_retryable(&err) => {
                tracing::debug!(attempt, error = %err, "retrying the bids");
                attempt += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

impl EngineAnswer {
    fn into_receipt(self) -> BidReceipt {
        let EngineAnswer { mut receipt, events } = self;
        receipt.events = events;
        receipt
    }
}

/// The refusal `place_bid` raised, if that is what `err` is.
fn refusal(err: &sqlx::Error, user_id: UserId) -> Option<AuctionError> {
    let db = err.as_database_error()?.try_downcast_ref::<PgDatabaseError>()?;
    if db.code() != REFUSED {
        return None;
    }
    refused(db.message(), db.detail(), user_id)
}

/// What `place_bid`'s refusal `reason` (with its `detail`) means; `None` for a reason this code
/// does not know.
fn refused(reason: &str, detail: Option<&str>, user_id: UserId) -> Option<AuctionError> {
    let detail = || detail.and_then(|d| d.parse::<i64>().ok()).unwrap_or_default();
    Some(match reason {
        "not_found" => AuctionError::NotFound,
        "own_auction" => Refusal::OwnAuction.into(),
        "not_active" => Refusal::NotActive.into(),
        "too_low" => Refusal::TooLow { minimum: detail() }.into(),
        "maximum_not_raised" => Refusal::MaximumNotRaised { maximum: detail() }.into(),
        "buy_now_unavailable" => Refusal::BuyNowUnavailable.into(),
        "idempotency_key_reused" => AuctionError::IdempotencyKeyReused,
        "no_wallet" => LedgerError::NoWallet(user_id).into(),
        "insufficient_funds" => LedgerError::InsufficientFunds.into(),
        "max_below_amount" => max_below_amount().into(),
        other => {
            tracing::error!(reason = other, "place_bid refused for a reason this code does not know");
            return None;
        }
    })
}

fn unknown_refusal(reason: &str) -> AuctionError {
    sqlx::Error::Protocol(format!("place_bids refused for a reason this code does not know: {reason}")).into()
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
