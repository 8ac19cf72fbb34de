//! The retention sweep: deletes records that have served their purpose, so tables that grow with
//! traffic do not grow forever. The ledger (transfers, holds), bids and auction events are never
//! deleted: they are the record of what happened.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgConnection;

use crate::config::Retention;

/// Rows deleted per table per statement, so one pass never holds long locks or bloats the WAL.
const BATCH: i64 = 5_000;

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Outbox rows relayed longer ago than their retention.
    pub outbox: u64,
    /// Stored `Idempotency-Key` answers past their retention.
    pub idempotency_keys: u64,
    /// Sessions expired or revoked longer ago than their retention.
    pub sessions: u64,
    /// Email notifications sent longer ago than their retention.
    pub sent_emails: u64,
}

fn secs(period: Duration) -> f64 {
    period.as_secs_f64()
}

/// Deletes the rows `$sql` selects (`$1`: their age in seconds, `$2`: the batch size) a batch at a
/// time until a short batch comes back; evaluates to how many went. A macro so that each statement
/// stays a literal the compiler checks against the schema.
macro_rules! delete_in_batches {
    ($conn:expr, $sql:literal, $older_than:expr) => {{
        let mut total = 0;
        loop {
            let deleted = sqlx::query!($sql, secs($older_than), BATCH).execute(&mut *$conn).await?.rows_affected();
            total += deleted;
            if deleted < BATCH as u64 {
                break total;
            }
        }
    }};
}

/// Deletes everything past its retention period, a batch at a time.
pub async fn prune(conn: &mut PgConnection, retention: &Retention) -> Result<Pruned, sqlx::Error> {
    Ok(Pruned {
        outbox: delete_in_batches!(
            conn,
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
             WHERE relayed_at < now() - make_interval(secs => $1) LIMIT $2)",
            retention.outbox
        ),
        idempotency_keys: delete_in_batches!(
            conn,
            "DELETE FROM idempotency_keys WHERE (user_id, key) IN (SELECT user_id, key FROM idempotency_keys
             WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)",
            retention.idempotency_keys
        ),
        sessions: delete_in_batches!(
            conn,
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions
             WHERE least(expires_at, coalesce(revoked_at, 'infinity')) < now() - make_interval(secs => $1) LIMIT $2)",
            retention.ended_sessions
        ),
        sent_emails: delete_in_batches!(
            conn,
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications
             WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2)",
            retention.sent_emails
        ),
    })
}
