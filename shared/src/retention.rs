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

async fn delete(conn: &mut PgConnection, sql: &'static str, older_than: Duration) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(sql).bind(secs(older_than)).bind(BATCH).execute(&mut *conn).await?.rows_affected();
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}

const OUTBOX: &str = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
     WHERE relayed_at < now() - make_interval(secs => $1) LIMIT $2)";
const IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE (user_id, key) IN \
     (SELECT user_id, key FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)";
const SESSIONS: &str = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
     WHERE least(expires_at, coalesce(revoked_at, 'infinity')) < now() - make_interval(secs => $1) LIMIT $2)";
const SENT_EMAILS: &str = "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications \
     WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2)";

/// Deletes everything past its retention period, a batch at a time.
pub async fn prune(conn: &mut PgConnection, retention: &Retention) -> Result<Pruned, sqlx::Error> {
    Ok(Pruned {
        outbox: delete(conn, OUTBOX, retention.outbox).await?,
        idempotency_keys: delete(conn, IDEMPOTENCY_KEYS, retention.idempotency_keys).await?,
        sessions: delete(conn, SESSIONS, retention.ended_sessions).await?,
        sent_emails: delete(conn, SENT_EMAILS, retention.sent_emails).await?,
    })
}
