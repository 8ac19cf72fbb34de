//! Closing ended auctions, exactly once with any number of scheduler replicas.
//!
//! One replica at a time closes (a transaction-scoped PostgreSQL advisory lock); each auction moves
//! out of `active` by a conditional update that re-checks `ends_at` on the locked row, so a bid that
//! extended the end, a buy-now or a cancellation that got there first simply wins the race.

use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::Status;
use crate::email::NotificationKind;
use crate::events::{self, EventType, StoredEvent};
use crate::ids::{AuctionId, HoldId, UserId};
use crate::jobs::release_hold::ReleaseHold;
use crate::jobs::settle_auction::SettleAuction;
use crate::metrics::{AUCTIONS_ENDED, CLOSE_LAG};
use crate::notifications::{self, NewNotification};
use crate::outbox;

/// The advisory lock key of the closer ("NBCLOSE" in ASCII).
const CLOSER_LOCK: i64 = 0x004e_4243_4c4f_5345;

/// What one closing pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Closed {
    /// Scheduled auctions whose start passed.
    pub activated: u64,
    /// Ended with a winner; settlement recorded.
    pub closed: usize,
    /// Ended without one; releases recorded.
    pub unsold: usize,
    /// Another replica held the closer's lock; this pass did nothing.
    pub skipped: bool,
    /// The events written, for publishing once committed.
    pub events: Vec<StoredEvent>,
}

/// An auction this pass ended.
struct Ended {
    id: AuctionId,
    status: Status,
    seller_id: UserId,
    winner_id: Option<UserId>,
    current_price: i64,
    /// Seconds from `ends_at` to this closing.
    lag_secs: f64,
}

/// Activates started auctions and closes up to `limit` ended ones, in one transaction.
#[tracing::instrument(skip_all)]
pub async fn close_due(conn: &mut PgConnection, limit: i64) -> Result<Closed, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let locked: bool = sqlx::query_scalar!(r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#, CLOSER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(Closed { skipped: true, ..Closed::default() });
    }
    let activated =
        sqlx::query!("UPDATE auctions SET status = 'active' WHERE status = 'scheduled' AND starts_at <= now()")
            .execute(&mut *tx)
            .await?
            .rows_affected();
    let ended = sqlx::query_as!(
        Ended,
        r#"UPDATE auctions a SET
             status = CASE WHEN a.leader_id IS NOT NULL
                            AND (a.reserve_price IS NULL OR a.current_price >= a.reserve_price)
                           THEN 'closed' ELSE 'unsold' END,
             winner_id = CASE WHEN a.reserve_price IS NULL OR a.current_price >= a.reserve_price
                              THEN a.leader_id END,
             ended_at = now()
         WHERE a.id IN (SELECT id FROM auctions WHERE status = 'active' AND ends_at <= now()
                        ORDER BY ends_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           AND a.status = 'active' AND a.ends_at <= now()
         RETURNING a.id AS "id: AuctionId", a.status AS "status: Status", a.seller_id AS "seller_id: UserId",
                   a.winner_id AS "winner_id: UserId", a.current_price,
                   EXTRACT(EPOCH FROM a.ended_at - a.ends_at)::float8 AS "lag_secs!""#,
        limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut result = Closed { activated, ..Closed::default() };
    for auction in &ended {
        if auction.status == Status::Closed {
            result.closed += 1;
            outbox::record(&mut tx, &SettleAuction { auction_id: auction.id }).await?;
            let data = json!({ "winner_id": auction.winner_id, "price": auction.current_price });
            result.events.extend(events::append(&mut tx, auction.id, &[(EventType::AuctionClosed, data)]).await?);
        } else {
            result.unsold += 1;
            let holds = sqlx::query_scalar!(
                r#"SELECT id AS "id: HoldId" FROM holds WHERE auction_id = $1 AND status = 'open'"#,
                auction.id as AuctionId,
            )
            .fetch_all(&mut *tx)
            .await?;
            for hold_id in holds {
                outbox::record(&mut tx, &ReleaseHold { hold_id }).await?;
            }
            result.events.extend(events::append(&mut tx, auction.id, &[(EventType::AuctionUnsold, json!({}))]).await?);
            let unsold =
                NewNotification::about_auction(NotificationKind::Unsold, auction.id, auction.seller_id, json!({}));
            notifications::record(&mut tx, &unsold).await?;
        }
    }
    tx.commit().await?;
    for auction in &ended {
        metrics::histogram!(CLOSE_LAG).record(auction.lag_secs);
    }
    metrics::counter!(AUCTIONS_ENDED, "outcome" => "closed").increment(result.closed as u64);
    metrics::counter!(AUCTIONS_ENDED, "outcome" => "unsold").increment(result.unsold as u64);
    Ok(result)
}
