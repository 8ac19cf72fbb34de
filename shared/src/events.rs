//! Auction events: what watchers are told, stored in the transaction that causes them.
//!
//! Each auction's events carry `seq` = 1, 2, 3, … with no gaps: the auction row's `seq` column is
//! advanced under the row lock that every change to an auction already holds.

use serde_json::Value;
use sqlx::PgConnection;

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
        }
    }
}

/// Appends events to an auction whose row the caller has locked, advancing its `seq`; returns the
/// auction's new `seq`.
pub async fn append(
    conn: &mut PgConnection,
    auction_id: i64,
    events: &[(EventType, Value)],
) -> Result<i64, sqlx::Error> {
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    let data: Vec<Value> = events.iter().map(|(_, d)| d.clone()).collect();
    sqlx::query_scalar(
        "WITH bumped AS (UPDATE auctions SET seq = seq + cardinality($2::text[]) WHERE id = $1 RETURNING seq), \
         inserted AS ( \
             INSERT INTO auction_events (auction_id, seq, type, data) \
             SELECT $1, bumped.seq - cardinality($2::text[]) + e.n, e.type, e.data \
             FROM bumped, unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS e(type, data, n)) \
         SELECT seq FROM bumped",
    )
    .bind(auction_id)
    .bind(types)
    .bind(data)
    .fetch_one(conn)
    .await
}
