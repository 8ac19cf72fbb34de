//! The outbox: follow-up work recorded in the same transaction as the change that causes it, so
//! it can never be lost between a commit and a queue push. The relay (`jobs::relay`) moves rows to
//! the job queues; the reconciliation sweep (`jobs::sweep`) re-derives anything lost after that.

use sqlx::PgConnection;

use crate::jobs::Job;

/// Records `job` in the caller's transaction.
pub async fn record<J: Job>(conn: &mut PgConnection, job: &J) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(job).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query!("INSERT INTO outbox (kind, payload) VALUES ($1, $2)", J::NAME, payload).execute(conn).await?;
    Ok(())
}

/// Up to `limit` recorded `J` jobs not yet relayed, oldest first, locked so that concurrent relays
/// take different rows.
pub async fn claim_unrelayed<J: Job>(conn: &mut PgConnection, limit: i64) -> Result<Vec<(i64, J)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT id, payload FROM outbox WHERE relayed_at IS NULL AND kind = $1 ORDER BY id LIMIT $2
         FOR UPDATE SKIP LOCKED",
        J::NAME,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match serde_json::from_value(row.payload) {
            Ok(job) => Some((row.id, job)),
            Err(err) => {
                tracing::error!(outbox.id = row.id, job = J::NAME, error = %err, "unreadable outbox row");
                None
            }
        })
        .collect())
}

/// Marks outbox rows as handed to their queue.
pub async fn mark_relayed(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE outbox SET relayed_at = now() WHERE id = ANY($1)", ids).execute(conn).await?;
    Ok(())
}

/// How many outbox rows wait for the relay, and how long the oldest has waited (seconds; 0 when
/// none): the relay's backlog and lag.
pub async fn backlog(conn: &mut PgConnection) -> Result<(i64, f64), sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "rows!",
                  coalesce(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS "oldest_secs!"
           FROM outbox WHERE relayed_at IS NULL"#
    )
    .fetch_one(conn)
    .await?;
    Ok((row.rows, row.oldest_secs))
}
