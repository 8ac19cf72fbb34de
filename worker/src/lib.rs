//! The worker pool: apalis workers on the Redis queues, one per queue this process serves.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::layers::retry::backoff::{ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::layers::retry::{BackoffRetryPolicy, HasherRng, RetryPolicy};
use apalis::prelude::*;
use apalis_redis::ConnectionManager;
use lettre::message::Mailbox;
use neighborbid_shared::config::Config;
use neighborbid_shared::email::Mailer;
use neighborbid_shared::events;
use neighborbid_shared::jobs::email::{EmailJob, EmailJobError, send_notification};
use neighborbid_shared::jobs::queues::{self, Queue};
use neighborbid_shared::jobs::refund::{RefundJob, release_outbid_hold};
use neighborbid_shared::jobs::settlement::{SettleOutcome, SettlementJob, settle_auction};
use neighborbid_shared::ledger::LedgerError;
use sqlx::PgPool;

/// What this worker process serves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The queues to take jobs from.
    pub queues: Vec<Queue>,
    /// Jobs run at once, per queue.
    pub concurrency: usize,
}

/// What every handler needs.
#[derive(Clone)]
struct Ctx {
    pool: PgPool,
    redis: ConnectionManager,
    prefix: String,
    mailer: Arc<Mailer>,
    from: Mailbox,
    fee_bps: u16,
}

/// Database failures are worth retrying; anything else is a bug or bad data and goes to the dead set.
fn ledger_failure(err: LedgerError) -> BoxDynError {
    match err {
        LedgerError::Database(e) => e.into(),
        other => AbortError::new(other.to_string()).into(),
    }
}

async fn refund(job: RefundJob, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let mut conn = ctx.pool.acquire().await?;
    let outcome = release_outbid_hold(&mut conn, job.hold_id).await.map_err(ledger_failure)?;
    tracing::debug!(hold.id = job.hold_id, ?outcome, "refund");
    Ok(())
}

async fn settlement(job: SettlementJob, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let mut conn = ctx.pool.acquire().await?;
    let outcome = settle_auction(&mut conn, job.auction_id, ctx.fee_bps).await.map_err(ledger_failure)?;
    tracing::info!(auction.id = job.auction_id, settled = matches!(outcome, SettleOutcome::Settled(_)), "settlement");
    if let SettleOutcome::Settled(events) = outcome {
        events::publish(&mut ctx.redis.clone(), &ctx.prefix, &events).await;
    }
    Ok(())
}

async fn email(job: EmailJob, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let mut conn = ctx.pool.acquire().await?;
    match send_notification(&mut conn, &ctx.mailer, &ctx.from, job.notification_id).await {
        Ok(outcome) => {
            tracing::info!(notification.id = job.notification_id, ?outcome, "email");
            Ok(())
        }
        Err(EmailJobError::Transient(e)) => Err(e.into()),
        Err(EmailJobError::Permanent(e)) => Err(AbortError::new(e).into()),
    }
}

/// A name no other worker process uses: apalis refuses a name whose registration still looks alive.
fn worker_name(queue: Queue) -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into());
    format!("{}-{host}-{}-{:08x}", queue.as_str(), std::process::id(), rand::random::<u32>())
}

fn retry_policy() -> BackoffRetryPolicy<ExponentialBackoff> {
    let backoff =
        ExponentialBackoffMaker::new(Duration::from_millis(200), Duration::from_secs(5), 0.5, HasherRng::default())
            .expect("the backoff bounds are valid")
            .make_backoff();
    RetryPolicy::retries(3).with_backoff(backoff)
}

/// How often idle workers look for new jobs.
const POLL: Duration = Duration::from_millis(50);

macro_rules! queue_worker {
    ($redis:expr, $prefix:expr, $queue:expr, $job:ty, $ctx:expr, $concurrency:expr, $handler:expr) => {{
        let (redis, prefix, ctx, name) = ($redis.clone(), $prefix.clone(), $ctx.clone(), worker_name($queue));
        move |_restarts: usize| {
            WorkerBuilder::new(name.clone())
                .backend(queues::storage::<$job>(redis.clone(), &prefix, $queue).poll_with_interval(POLL))
                .enable_tracing()
                .catch_panic()
                .retry(retry_policy())
                .timeout(Duration::from_secs(60))
                .concurrency($concurrency)
                .data(ctx.clone())
                .build($handler)
        }
    }};
}

/// Serves `options.queues` until `shutdown` completes, then lets in-flight jobs finish (up to 30 s).
pub async fn run(
    config: &Config,
    pool: PgPool,
    redis: ConnectionManager,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mailer = Mailer::from_settings(config.mail_url.as_ref().map(|u| u.expose()), &config.mail_dir)
        .map_err(|e| anyhow::anyhow!("invalid mail settings: {e}"))?;
    let from: Mailbox = config.mail_from.parse().context("invalid MAIL_FROM")?;
    let prefix = config.queue_prefix.clone();
    let ctx = Ctx {
        pool,
        redis: redis.clone(),
        prefix: prefix.clone(),
        mailer: Arc::new(mailer),
        from,
        fee_bps: config.platform_fee_bps,
    };
    // A worker whose Redis stream failed (Redis restarting, a flushed job's payload missing) is
    // started again rather than leaving its queue unserved.
    let mut monitor = Monitor::new()
        .should_restart(|worker, error| {
            tracing::error!(worker = worker.name(), %error, "worker stopped; restarting it");
            true
        })
        .shutdown_timeout(Duration::from_secs(30));
    for queue in options.queues.iter().copied() {
        let n = options.concurrency;
        monitor = match queue {
            Queue::Refund => monitor.register(queue_worker!(redis, prefix, queue, RefundJob, ctx, n, refund)),
            Queue::Settlement => {
                monitor.register(queue_worker!(redis, prefix, queue, SettlementJob, ctx, n, settlement))
            }
            Queue::Email => monitor.register(queue_worker!(redis, prefix, queue, EmailJob, ctx, n, email)),
        };
    }
    let vacuum = tokio::spawn(vacuum_periodically(redis, prefix, options.queues.clone()));
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
