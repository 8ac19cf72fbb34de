//! The reconciliation sweep: re-derives from PostgreSQL any job that should have run by now and has
//! not, and records it in the outbox again. Redis may lose every queued job (a flush, a restart
//! without persistence) and the work still completes.
//!
//! Re-recording is harmless: every job is idempotent, and the queue holds one job per follow-up.
//! Work still waiting for the relay, or relayed within the grace period, is assumed to be on its way
//! and is not recorded again. Each job says what "overdue" means for it ([`super::Job::OVERDUE`]).

use sqlx::{Connection, PgConnection};

use super::registry::JOBS;

/// How long work may take, by default, before the sweep re-records it.
pub const DEFAULT_GRACE_SECS: i32 = 30;

/// How many jobs of each kind a sweep re-recorded, by job name; kinds with none are left out.
pub type Swept = Vec<(&'static str, u64)>;

/// Re-records every job overdue by more than `grace_secs`, in one transaction.
pub async fn sweep(conn: &mut PgConnection, grace_secs: i32) -> Result<Swept, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut swept = Swept::new();
    for kind in JOBS {
        // Not a checked macro: each job declares its own statement; the registry hands them over here.
        let recorded = sqlx::query(kind.overdue()).bind(grace_secs).execute(&mut *tx).await?.rows_affected();
        if recorded > 0 {
            swept.push((kind.name(), recorded));
        }
    }
    tx.commit().await?;
    for (job, recorded) in &swept {
        metrics::counter!(crate::metrics::SWEEP_RERECORDED, "job" => *job).increment(*recorded);
    }
    Ok(swept)
}
