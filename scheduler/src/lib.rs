//! The scheduler: closes ended auctions every second (exactly once across replicas, by PostgreSQL
//! locks and conditional updates; apalis-cron fires on every replica), relays the outbox to the job
//! queues, sweeps for lost work every 30 seconds, deletes expired records every 10 minutes and
//! measures the outbox for `/metrics`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use apalis_redis::ConnectionManager;
use neighborbid_shared::auctions::closing::close_due;
use neighborbid_shared::config::Retention;
use neighborbid_shared::events;
use neighborbid_shared::jobs::{relay, sweep};
use neighborbid_shared::metrics::{CLOSES_PER_TICK, OUTBOX_BACKLOG, RELAY_LAG, SCHEDULER_FAILURES};
use neighborbid_shared::{outbox, retention};
use sqlx::PgPool;
use tokio::sync::Notify;

/// Auctions closed per transaction; a pass repeats while full batches come back.
const CLOSE_BATCH: i64 = 500;
/// How often the relay looks for new outbox rows when idle.
const RELAY_POLL: Duration = Duration::from_millis(50);
/// How often the outbox's backlog is measured for `/metrics`.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// How the scheduler paces its sweeps.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// When the reconciliation sweep runs (6-field cron, seconds first).
    pub sweep_schedule: String,
    /// How overdue work must be before the sweep re-records it.
    pub sweep_grace_secs: i32,
    /// When the retention sweep runs.
    pub prune_schedule: String,
    /// What the retention sweep deletes, by age.
    pub retention: Retention,
}

impl SchedulerOptions {
    /// The production pacing: reconcile every 30 s, prune every 10 minutes.
    pub fn new(retention: Retention) -> Self {
        Self {
            sweep_schedule: "*/30 * * * * *".into(),
            sweep_grace_secs: sweep::DEFAULT_GRACE_SECS,
            prune_schedule: "0 */10 * * * *".into(),
            retention,
        }
    }
}

/// A cron tick only wakes its task: apalis-cron 1.0 ends a schedule's worker when a handler runs
/// past the next tick, so the work itself (a close pass can take seconds) runs beside it.
async fn wake(_tick: Tick, task: Data<Arc<Notify>>) -> Result<(), BoxDynError> {
    task.notify_one();
    Ok(())
}

/// Closes ended auctions each time it is woken, repeating while full batches come back, and
/// publishes the closings to watchers.
async fn closer(pool: PgPool, mut redis: ConnectionManager, prefix: String, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        // Auctions this tick ended; `None` while another replica held the closer's lock.
        let mut ended = None;
        loop {
            let pass = match pool.acquire().await {
                Ok(mut conn) => close_due(&mut conn, CLOSE_BATCH).await,
                Err(err) => Err(err),
            };
            match pass {
                Ok(pass) => {
                    if !pass.skipped {
                        *ended.get_or_insert(0) += pass.closed + pass.unsold;
                    }
                    if pass.closed + pass.unsold > 0 || pass.activated > 0 {
                        tracing::info!(
                            closed = pass.closed,
                            unsold = pass.unsold,
                            activated = pass.activated,
                            "closed ended auctions"
                        );
                    }
                    events::publish(&mut redis, &prefix, &pass.events).await;
                    if pass.skipped || (pass.closed + pass.unsold) < CLOSE_BATCH as usize {
                        break;
                    }
                }
                Err(err) => {
                    metrics::counter!(SCHEDULER_FAILURES, "task" => "close").increment(1);
                    tracing::error!(error = %err, "closing pass failed");
                    break;
                }
            }
        }
        if let Some(ended) = ended {
            metrics::histogram!(CLOSES_PER_TICK).record(ended as f64);
        }
    }
}

/// Re-records overdue follow-ups each time it is woken.
async fn sweeper(pool: PgPool, wake: Arc<Notify>, grace_secs: i32) {
    loop {
        wake.notified().await;
        let swept = match pool.acquire().await {
            Ok(mut conn) => sweep::sweep(&mut conn, grace_secs).await,
            Err(err) => Err(err),
        };
        match swept {
            Ok(swept) if !swept.is_empty() => {
                tracing::warn!(?swept, "re-recorded overdue follow-ups")
            }
            Ok(_) => {}
            Err(err) => {
                metrics::counter!(SCHEDULER_FAILURES, "task" => "sweep").increment(1);
                tracing::error!(error = %err, "sweep failed");
            }
        }
    }
}

/// Deletes what is past its retention each time it is woken. Every replica may run it: a second
/// pass at the same moment finds less or nothing to delete.
async fn pruner(pool: PgPool, wake: Arc<Notify>, retention: Retention) {
    loop {
        wake.notified().await;
        let pruned = match pool.acquire().await {
            Ok(mut conn) => retention::prune(&mut conn, &retention).await,
            Err(err) => Err(err),
        };
        match pruned {
            Ok(pruned) => tracing::info!(?pruned, "pruned records past their retention"),
            Err(err) => {
                metrics::counter!(SCHEDULER_FAILURES, "task" => "prune").increment(1);
                tracing::error!(error = %err, "retention sweep failed");
            }
        }
    }
}

/// Moves outbox rows to the queues for as long as the scheduler runs, pausing only when there is
/// nothing to move.
async fn relay_loop(pool: PgPool, redis: ConnectionManager, prefix: String) {
    loop {
        let moved = match pool.acquire().await {
            Ok(mut conn) => relay::relay_once(&mut conn, &redis, &prefix).await,
            Err(err) => Err(err.into()),
        };
        match moved {
            Ok(0) => tokio::time::sleep(RELAY_POLL).await,
            Ok(n) => tracing::debug!(relayed = n, "relayed follow-ups"),
            Err(err) => {
                metrics::counter!(SCHEDULER_FAILURES, "task" => "relay").increment(1);
                tracing::warn!(error = %err, "relay pass failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Publishes the outbox's backlog and the relay's lag every few seconds. (Queue depths are
/// published by the relay, which reads them on every pass.)
async fn sampler(pool: PgPool) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    loop {
        every.tick().await;
        let sampled = match pool.acquire().await {
            Ok(mut conn) => outbox::backlog(&mut conn).await,
            Err(err) => Err(err),
        };
        match sampled {
            Ok((rows, oldest_secs)) => {
                metrics::gauge!(OUTBOX_BACKLOG).set(rows as f64);
                metrics::gauge!(RELAY_LAG).set(oldest_secs);
            }
            Err(err) => {
                metrics::counter!(SCHEDULER_FAILURES, "task" => "sample").increment(1);
                tracing::warn!(error = %err, "sampling the outbox failed");
            }
        }
    }
}

/// Runs the scheduler until `shutdown` completes.
pub async fn run(
    pool: PgPool,
    redis: ConnectionManager,
    queue_prefix: String,
    options: SchedulerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    neighborbid_shared::metrics::install();
    let every_second = cron::Schedule::from_str("* * * * * *")?;
    let sweep_schedule = cron::Schedule::from_str(&options.sweep_schedule)?;
    let prune_schedule = cron::Schedule::from_str(&options.prune_schedule)?;
    let (close_wake, sweep_wake, prune_wake) =
        (Arc::new(Notify::new()), Arc::new(Notify::new()), Arc::new(Notify::new()));
    let tasks = [
        tokio::spawn(closer(pool.clone(), redis.clone(), queue_prefix.clone(), close_wake.clone())),
        tokio::spawn(sweeper(pool.clone(), sweep_wake.clone(), options.sweep_grace_secs)),
        tokio::spawn(pruner(pool.clone(), prune_wake.clone(), options.retention)),
        tokio::spawn(relay_loop(pool.clone(), redis, queue_prefix)),
        tokio::spawn(sampler(pool)),
    ];
    let suffix = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let (close_name, sweep_name, prune_name) =
        (format!("close-{suffix}"), format!("sweep-{suffix}"), format!("prune-{suffix}"));
    let monitor = Monitor::new()
        .register(move |_| {
            WorkerBuilder::new(close_name.clone())
                .backend(CronScheduler::new(every_second.clone()))
                .data(close_wake.clone())
                .build(wake)
        })
        .register(move |_| {
            WorkerBuilder::new(sweep_name.clone())
                .backend(CronScheduler::new(sweep_schedule.clone()))
                .data(sweep_wake.clone())
                .build(wake)
        })
        .register(move |_| {
            WorkerBuilder::new(prune_name.clone())
                .backend(CronScheduler::new(prune_schedule.clone()))
                .data(prune_wake.clone())
                .build(wake)
        })
        .should_restart(|worker, error| {
            tracing::error!(worker = worker.name(), %error, "schedule stopped; restarting it");
            true
        })
        .shutdown_timeout(Duration::from_secs(10));
    tracing::info!("scheduler ready");
    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await;
    for task in tasks {
        task.abort();
    }
    result.map_err(Into::into)
}
