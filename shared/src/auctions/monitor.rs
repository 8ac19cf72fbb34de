//! What operators watch about closing: the auctions due to close next (the closer is behind when
//! their `ends_at` has passed), and the recently ended ones with how long their settlement took.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::Status;
use crate::ids::AuctionId;

/// An open auction, by when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    /// The auction.
    pub id: AuctionId,
    /// Its title, as the seller wrote it (untrusted).
    pub title: String,
    /// `scheduled` or `active`.
    pub status: Status,
    /// When bidding ends; in the past, the closer has not reached it yet.
    pub ends_at: DateTime<Utc>,
    /// Bids so far.
    pub bid_count: i32,
    /// The current price, KRW.
    pub current_price: i64,
}

/// An auction that ended, and how its follow-up went.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// The auction.
    pub id: AuctionId,
    /// Its title, as the seller wrote it (untrusted).
    pub title: String,
    /// `closed` (waiting for settlement), `settled` or `unsold`.
    pub status: Status,
    /// When bidding was due to end.
    pub ends_at: DateTime<Utc>,
    /// When it ended: the closer's pass, or a buy-now before `ends_at`.
    pub closed_at: DateTime<Utc>,
    /// When the winner's money reached the seller (its `auction_settled` event).
    pub settled_at: Option<DateTime<Utc>>,
}

impl Ended {
    /// When it was due to end: `ends_at`, or the buy-now that ended it earlier.
    pub fn due_at(&self) -> DateTime<Utc> {
        self.ends_at.min(self.closed_at)
    }

    /// How long after it was due the closer ended it.
    pub fn close_lag(&self) -> chrono::TimeDelta {
        self.closed_at - self.due_at()
    }

    /// How long after it was due the money moved; `None` until it has.
    pub fn settlement_lag(&self) -> Option<chrono::TimeDelta> {
        self.settled_at.map(|settled| settled - self.due_at())
    }
}

/// The `limit` open auctions that end next, overdue ones first.
pub async fn closing_next(conn: &mut PgConnection, limit: i64) -> Result<Vec<Closing>, sqlx::Error> {
    sqlx::query_as!(
        Closing,
        r#"SELECT id AS "id: AuctionId", title, status AS "status: Status", ends_at, bid_count, current_price
           FROM auctions WHERE status IN ('scheduled', 'active')
           ORDER BY ends_at, id LIMIT $1"#,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// The `limit` auctions that ended most recently (closed by the closer or by a buy-now; cancelled
/// ones are not listed), newest first.
pub async fn recently_ended(conn: &mut PgConnection, limit: i64) -> Result<Vec<Ended>, sqlx::Error> {
    sqlx::query_as!(
        Ended,
        r#"SELECT a.id AS "id: AuctionId", a.title, a.status AS "status: Status", a.ends_at,
                  a.ended_at AS "closed_at!",
                  (SELECT max(e.at) FROM auction_events e
                   WHERE e.auction_id = a.id AND e.type = 'auction_settled') AS settled_at
           FROM auctions a
           WHERE a.ended_at IS NOT NULL AND a.status IN ('closed', 'settled', 'unsold')
           ORDER BY a.ended_at DESC, a.id DESC LIMIT $1"#,
        limit,
    )
    .fetch_all(conn)
    .await
}
