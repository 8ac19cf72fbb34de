//! `neighborbid-worker`: runs background jobs (settlement, refunds, images, email) from Redis queues.

use anyhow::Context;
use clap::Parser;
use neighborbid_shared::config::Config;
use neighborbid_shared::{db, health, shutdown, telemetry};

/// NeighborBid background worker. Run as many as you like; each takes jobs from the queues.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli {} = Cli::parse();
    let config = Config::from_env()?;
    let _telemetry = telemetry::init("neighborbid-worker", &config);
    let pool = db::connect(&config).context("failed to configure the database pool")?;
    let redis = redis::Client::open(config.redis_url.expose()).context("invalid REDIS_URL")?;
    tokio::select! {
        () = health::wait_until_ready(&pool, &redis) => tracing::info!("worker ready"),
        () = shutdown::signal() => return Ok(()),
    }
    shutdown::signal().await;
    pool.close().await;
    tracing::info!("worker stopped");
    Ok(())
}
