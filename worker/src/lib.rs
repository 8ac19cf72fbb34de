//! The worker pool: one apalis worker per job whose queue this process serves (see
//! `neighborbid_shared::jobs`, where each job lives in a file of its own).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::prelude::*;
use apalis_redis::ConnectionManager;
use lettre::message::Mailbox;
use neighborbid_shared::config::Config;
use neighborbid_shared::email::Mailer;
use neighborbid_shared::jobs::queues::{self, Queue};
use neighborbid_shared::jobs::registry::JOBS;
use neighborbid_shared::jobs::{EmailBatcher, JobContext, ReleaseBatcher};
use neighborbid_shared::media::MediaStore;
use neighborbid_shared::photos::render::RenderSlots;
use sqlx::PgPool;

/// What this worker process serves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The queues to take jobs from.
    pub queues: Vec<Queue>,
    /// Jobs run at once, per queue.
    pub concurrency: usize,
}

/// What every job of this process may use, from the configuration.
pub fn job_context(config: &Config, pool: PgPool, redis: ConnectionManager) -> anyhow::Result<JobContext> {
    let mailer = Mailer::from_settings(config.mail_url.as_ref().map(|u| u.expose()), &config.mail_dir)
        .map_err(|e| anyhow::anyhow!("invalid mail settings: {e}"))?;
    let from: Mailbox = config.mail_from.parse().context("invalid MAIL_FROM")?;
    Ok(JobContext {
        pool: pool.clone(),
        redis,
        prefix: config.queue_prefix.clone(),
        fee_bps: config.platform_fee_bps,
        media: MediaStore::open(config).context("invalid media settings")?,
        render_slots: RenderSlots::per_core(),
        releases: ReleaseBatcher::start(pool.clone()),
        emails: EmailBatcher::start(pool, Arc::new(mailer), from),
    })
}

/// Serves `options.queues` until `shutdown` completes, then lets in-flight jobs finish (up to 30 s).
pub async fn run(
    config: &Config,
    pool: PgPool,
    redis: ConnectionManager,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    neighborbid_shared::metrics::install();
    let ctx = job_context(config, pool, redis.clone())?;
    // A worker whose Redis stream failed (Redis restarting, a flushed job's payload missing) is
    // started again rather than leaving its queue unserved.
    let mut monitor = Monitor::new()
        .should_restart(|worker, error| {
            tracing::error!(worker = worker.name(), %error, "worker stopped; restarting it");
            true
        })
        .shutdown_timeout(Duration::from_secs(30));
    for kind in JOBS.iter().filter(|kind| options.queues.contains(&kind.queue())) {
        monitor = kind.register(monitor, &ctx, options.concurrency);
    }
    let vacuum = tokio::spawn(vacuum_periodically(redis, ctx.prefix.clone(), options.queues.clone()));
    tracing::info!(queues = ?options.queues.iter().map(|q| q.as_str()).collect::<Vec<_>>(), "worker ready");
    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await;
    vacuum.abort();
    result.context("worker pool failed")
}

/// Removes finished jobs every few seconds, so Redis does not grow without bound and a follow-up
/// recorded again soon after its job finished (jobs are keyed by follow-up) is not ignored for long.
async fn vacuum_periodically(mut redis: ConnectionManager, prefix: String, queues: Vec<Queue>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        for queue in &queues {
            match queues::vacuum_done(&mut redis, &prefix, *queue).await {
                Ok(removed) => tracing::debug!(queue = queue.as_str(), removed, "vacuumed finished jobs"),
                Err(err) => tracing::warn!(queue = queue.as_str(), error = %err, "vacuum failed"),
            }
        }
    }
}
