//! `neighborbid-scheduler`: closes ended auctions exactly once, relays the outbox to the job
//! queues and runs reconciliation sweeps. Several replicas may run.

use anyhow::Context;
use clap::Parser;
use neighborbid_shared::config::Config;
use neighborbid_shared::{db, health, metrics, shutdown, telemetry};

/// NeighborBid scheduler. Several replicas may run; PostgreSQL locks keep each task exactly-once.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli {} = Cli::parse();
    let config = Config::from_env()?;
    let _telemetry = telemetry::init("neighborbid-scheduler", &config);
    if let Some(addr) = config.metrics_addr {
        let server = metrics::serve(addr).await.with_context(|| format!("failed to listen on METRICS_ADDR {addr}"))?;
        tokio::spawn(server);
    }
    let pool = db::connect(&config).context("failed to configure the database pool")?;
    let redis_client = redis::Client::open(config.redis_url.expose()).context("invalid REDIS_URL")?;
    // Closing auctions needs only PostgreSQL; the relay and event publishing wait for Redis by
    // themselves (the connection is made lazily and remade after any loss).
    tokio::select! {
        () = health::wait_until_ready(&pool, None) => {}
        () = shutdown::signal() => return Ok(()),
    }
    let redis = health::redis_connection(&redis_client).context("invalid REDIS_URL")?;
    let options = neighborbid_scheduler::SchedulerOptions::new(config.retention);
    neighborbid_scheduler::run(pool.clone(), redis, config.queue_prefix.clone(), options, shutdown::signal()).await?;
    pool.close().await;
    tracing::info!("scheduler stopped");
    Ok(())
}
