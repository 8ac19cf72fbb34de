//! The outbox: follow-up work recorded in the same transaction as the change that causes it, so
//! it can never be lost between a commit and a queue push. A relay moves rows to the job queues.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

/// Work that must follow a database change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUp {
    /// Release a hold that no longer leads its auction (outbid, lost, cancelled).
    ReleaseHold {
        /// The hold.
        hold_id: i64,
    },
    /// Pay the winner's hold to the seller and release the rest.
    SettleAuction {
        /// The closed auction.
        auction_id: i64,
    },
}

impl FollowUp {
    fn kind(&self) -> &'static str {
        match self {
            Self::ReleaseHold { .. } => "release_hold",
            Self::SettleAuction { .. } => "settle_auction",
        }
    }
}

/// Records follow-up work in the caller's transaction.
pub async fn record(conn: &mut PgConnection, follow_up: &FollowUp) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(follow_up).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("INSERT INTO outbox (kind, payload) VALUES ($1, $2)")
        .bind(follow_up.kind())
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Pending follow-ups, oldest first, at most `limit`.
pub async fn pending(conn: &mut PgConnection, limit: i64) -> Result<Vec<(i64, FollowUp)>, sqlx::Error> {
    let rows: Vec<(i64, serde_json::Value)> =
        sqlx::query_as("SELECT id, payload FROM outbox WHERE done_at IS NULL ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().filter_map(|(id, payload)| serde_json::from_value(payload).ok().map(|f| (id, f))).collect())
}

/// Marks a follow-up done.
pub async fn mark_done(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET done_at = now() WHERE id = $1 AND done_at IS NULL").bind(id).execute(conn).await?;
    Ok(())
}
