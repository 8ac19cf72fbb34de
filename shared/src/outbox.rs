//! The outbox: follow-up work recorded in the same transaction as the change that causes it, so
//! it can never be lost between a commit and a queue push. The relay (`jobs::relay`) moves rows to
//! the job queues; the reconciliation sweep re-derives anything lost after that.

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
    /// Send one recorded email.
    SendEmail {
        /// The notification row.
        notification_id: i64,
    },
}

impl FollowUp {
    /// The stored kind, also the follow-up's queue.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ReleaseHold { .. } => "release_hold",
            Self::SettleAuction { .. } => "settle_auction",
            Self::SendEmail { .. } => "send_email",
        }
    }

    /// The id of the job that carries it out, the same however often it is recorded:
    /// `release_hold:42`. The queue refuses a second job with an id it still holds.
    pub fn job_id(&self) -> String {
        let subject = match self {
            Self::ReleaseHold { hold_id } => hold_id,
            Self::SettleAuction { auction_id } => auction_id,
            Self::SendEmail { notification_id } => notification_id,
        };
        format!("{}:{subject}", self.kind())
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

/// Up to `limit` follow-ups of `kind` not yet relayed, oldest first, locked so that concurrent
/// relays take different rows.
pub async fn claim_unrelayed(
    conn: &mut PgConnection,
    kind: &str,
    limit: i64,
) -> Result<Vec<(i64, FollowUp)>, sqlx::Error> {
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT id, payload FROM outbox WHERE relayed_at IS NULL AND kind = $1 ORDER BY id LIMIT $2 \
         FOR UPDATE SKIP LOCKED",
    )
    .bind(kind)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, payload)| match serde_json::from_value(payload) {
            Ok(follow_up) => Some((id, follow_up)),
            Err(err) => {
                tracing::error!(outbox.id = id, error = %err, "unreadable outbox row");
                None
            }
        })
        .collect())
}

/// Marks follow-ups as handed to their queue.
pub async fn mark_relayed(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET relayed_at = now() WHERE id = ANY($1)").bind(ids).execute(conn).await?;
    Ok(())
}
