//! The reconciliation sweep: re-derives from PostgreSQL any follow-up that should have happened by
//! now and has not, and records it in the outbox again. Redis may lose every queued job (a flush, a
//! restart without persistence) and the work still completes.
//!
//! Re-recording is harmless: every handler is idempotent. Work still waiting for the relay, or
//! relayed within the grace period, is assumed to be on its way and is not recorded again.

use sqlx::{Connection, PgConnection};

/// How long work may take, by default, before the sweep re-records it.
pub const DEFAULT_GRACE_SECS: i32 = 30;

/// What a sweep re-recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Holds that no longer lead their auction but are still open.
    pub releases: u64,
    /// Closed auctions not settled.
    pub settlements: u64,
    /// Emails recorded but not sent.
    pub emails: u64,
}

/// Re-records every follow-up overdue by more than `grace_secs`, in one transaction.
pub async fn sweep(conn: &mut PgConnection, grace_secs: i32) -> Result<Swept, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let releases = sqlx::query(
        "INSERT INTO outbox (kind, payload) \
         SELECT 'release_hold', jsonb_build_object('kind', 'release_hold', 'hold_id', h.id) \
         FROM holds h JOIN auctions a ON a.id = h.auction_id \
         WHERE h.status = 'open' \
           AND (a.status IN ('unsold', 'cancelled', 'settled') OR h.id IS DISTINCT FROM a.leader_hold_id) \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'release_hold' \
                           AND (o.payload ->> 'hold_id')::bigint = h.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))",
    )
    .bind(grace_secs)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let settlements = sqlx::query(
        "INSERT INTO outbox (kind, payload) \
         SELECT 'settle_auction', jsonb_build_object('kind', 'settle_auction', 'auction_id', a.id) \
         FROM auctions a \
         WHERE a.status = 'closed' AND a.ended_at < now() - make_interval(secs => $1) \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'settle_auction' \
                           AND (o.payload ->> 'auction_id')::bigint = a.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))",
    )
    .bind(grace_secs)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let emails = sqlx::query(
        "INSERT INTO outbox (kind, payload) \
         SELECT 'send_email', jsonb_build_object('kind', 'send_email', 'notification_id', n.id) \
         FROM notifications n \
         WHERE n.sent_at IS NULL AND n.created_at < now() - make_interval(secs => $1) \
           AND (n.sending_until IS NULL OR n.sending_until < now()) AND n.attempts < 10 \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'send_email' \
                           AND (o.payload ->> 'notification_id')::bigint = n.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))",
    )
    .bind(grace_secs)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Swept { releases, settlements, emails })
}
