//! Auction events: what watchers are told, stored in the transaction that causes them.
//!
//! Each auction's events carry `seq` = 1, 2, 3, … with no gaps: the auction row's `seq` column is
//! advanced under the row lock that every change to an auction already holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;

use crate::ids::AuctionId;

/// What happened to an auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A bid was accepted.
    BidPlaced,
    /// A late bid pushed the end back.
    AuctionExtended,
    /// Ended with a winner.
    AuctionClosed,
    /// Withdrawn by the seller.
    AuctionCancelled,
    /// The winner's money reached the seller.
    AuctionSettled,
    /// Ended without a valid winner.
    AuctionUnsold,
    /// A photo passed validation and is shown.
    PhotoAdded,
    /// The seller removed a shown photo.
    PhotoRemoved,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BidPlaced => "bid_placed",
            Self::AuctionExtended => "auction_extended",
            Self::AuctionClosed => "auction_closed",
            Self::AuctionCancelled => "auction_cancelled",
            Self::AuctionSettled => "auction_settled",
            Self::AuctionUnsold => "auction_unsold",
            Self::PhotoAdded => "photo_added",
            Self::PhotoRemoved => "photo_removed",
        }
    }
}

/// An event as stored and as sent to watchers: `{"type", "auction_id", "seq", "at", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// `bid_placed`, `auction_extended`, `auction_closed`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The auction.
    pub auction_id: AuctionId,
    /// 1, 2, 3, … per auction, without gaps.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub data: Value,
}

/// Appends events to an auction whose row the caller has locked, advancing its `seq`; returns them
/// as stored.
pub async fn append(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    events: &[(EventType, Value)],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    let data: Vec<Value> = events.iter().map(|(_, d)| d.clone()).collect();
    sqlx::query_as!(
        StoredEvent,
        r#"WITH bumped AS (UPDATE auctions SET seq = seq + cardinality($2::text[]) WHERE id = $1 RETURNING seq),
         inserted AS (
             INSERT INTO auction_events (auction_id, seq, type, data)
             SELECT $1, bumped.seq - cardinality($2::text[]) + e.n, e.type, e.data
             FROM bumped, unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS e(type, data, n)
             RETURNING type, auction_id, seq, at, data)
         SELECT type AS "kind!", auction_id AS "auction_id!: AuctionId", seq AS "seq!", at AS "at!", data AS "data!"
         FROM inserted ORDER BY seq"#,
        auction_id as AuctionId,
        &types as &[&str],
        &data,
    )
    .fetch_all(conn)
    .await
}

/// The auction's events with `seq` above `after_seq`, in order, at most `limit`.
pub async fn after(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as!(
        StoredEvent,
        r#"SELECT type AS kind, auction_id AS "auction_id: AuctionId", seq, at, data FROM auction_events
           WHERE auction_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"#,
        auction_id as AuctionId,
        after_seq,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// The Redis pub/sub channel of an auction's events under `prefix`.
pub fn channel(prefix: &str, auction_id: AuctionId) -> String {
    format!("{prefix}:auction:{auction_id}")
}

/// Publishes committed events to their auctions' channels in one round trip. Best effort: a lost
/// publish only delays watchers, whose servers catch up from the database.
pub async fn publish(redis: &mut redis::aio::ConnectionManager, prefix: &str, events: &[StoredEvent]) {
    if events.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for event in events {
        if let Ok(payload) = serde_json::to_string(event) {
            pipe.cmd("PUBLISH").arg(channel(prefix, event.auction_id)).arg(payload).ignore();
        }
    }
    if let Err(err) = pipe.query_async::<()>(redis).await {
        tracing::warn!(events = events.len(), error = %err, "events not published; watchers will catch up");
    }
}
