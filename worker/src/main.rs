//! `neighborbid-worker`: runs background jobs (hold releases, settlement, email, photos) from the Redis queues,
//! and lets operators inspect and act on those queues.

use anyhow::Context;
use clap::{Parser, Subcommand};
use neighborbid_shared::config::Config;
use neighborbid_shared::jobs::queues::{self, QUEUES, Queue};
use neighborbid_shared::{db, health, metrics, shutdown, telemetry};
use neighborbid_worker::WorkerOptions;

/// NeighborBid background worker. Run as many as you like, per queue: each takes jobs from the
/// queues it is given.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Queues to serve, comma-separated: release, settlement, email, images.
    #[arg(long, value_delimiter = ',', default_values = ["release", "settlement", "email", "images"], value_parser = parse_queue)]
    queues: Vec<Queue>,
    /// Jobs run at once, per queue.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    concurrency: u16,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Show each queue's depth and its dead jobs (JSON).
    Jobs {
        #[command(subcommand)]
        action: Option<JobAction>,
    },
}

#[derive(Subcommand)]
enum JobAction {
    /// Put a dead job back on its queue.
    Retry {
        /// The job's queue.
        #[arg(value_parser = parse_queue)]
        queue: Queue,
        /// The job's id (from `jobs`).
        id: String,
    },
    /// Delete a dead job.
    Discard {
        /// The job's queue.
        #[arg(value_parser = parse_queue)]
        queue: Queue,
        /// The job's id (from `jobs`).
        id: String,
    },
}

fn parse_queue(name: &str) -> Result<Queue, String> {
    Queue::parse(name).ok_or_else(|| format!("unknown queue {name:?}; expected release, settlement, email or images"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env()?;
    let _telemetry = telemetry::init("neighborbid-worker", &config);
    let redis_client = redis::Client::open(config.redis_url.expose()).context("invalid REDIS_URL")?;
    if let Some(Command::Jobs { action }) = cli.command {
        let mut redis = redis_client.get_connection_manager().await.context("failed to connect to Redis")?;
        return jobs(&mut redis, &config.queue_prefix, action).await;
    }
    if let Some(addr) = config.metrics_addr {
        let server = metrics::serve(addr).await.with_context(|| format!("failed to listen on METRICS_ADDR {addr}"))?;
        tokio::spawn(server);
    }
    let pool = db::connect(&config).context("failed to configure the database pool")?;
    // A worker takes its jobs from Redis: it needs both.
    let probe = health::redis_connection(&redis_client).context("invalid REDIS_URL")?;
    tokio::select! {
        () = health::wait_until_ready(&pool, Some(&probe)) => {}
        () = shutdown::signal() => return Ok(()),
    }
    let redis = redis_client.get_connection_manager().await.context("failed to connect to Redis")?;
    let options = WorkerOptions { queues: cli.queues, concurrency: usize::from(cli.concurrency) };
    neighborbid_worker::run(&config, pool.clone(), redis, options, shutdown::signal()).await?;
    pool.close().await;
    tracing::info!("worker stopped");
    Ok(())
}

async fn jobs(
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
    action: Option<JobAction>,
) -> anyhow::Result<()> {
    match action {
        None => {
            let mut report = serde_json::Map::new();
            for queue in QUEUES {
                let depth = queues::depth(redis, prefix, queue).await?;
                let dead = queues::dead_jobs(redis, prefix, queue, usize::MAX).await?;
                report.insert(queue.as_str().into(), serde_json::json!({ "depth": depth, "dead_jobs": dead }));
            }
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Some(JobAction::Retry { queue, id }) => match queues::retry_dead(redis, prefix, queue, &id).await? {
            queues::Retry::Retried => println!("job {id} is back on the {} queue", queue.as_str()),
            queues::Retry::NotDead => anyhow::bail!("no dead job {id} in {}", queue.as_str()),
            queues::Retry::PayloadMissing => {
                anyhow::bail!("dead job {id} lost its payload and cannot run again; discard it")
            }
        },
        Some(JobAction::Discard { queue, id }) => {
            anyhow::ensure!(
                queues::discard_dead(redis, prefix, queue, &id).await?,
                "no dead job {id} in {}",
                queue.as_str()
            );
            println!("job {id} discarded");
        }
    }
    Ok(())
}
