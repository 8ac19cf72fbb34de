//! `neighborbid-bench`: drives a running NeighborBid stack over HTTP and prints one JSON report.
//!
//! Progress goes to stderr; stdout carries only the report, so `… | jq` works.

mod client;
mod scenarios;
mod seed;
mod stats;

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::client::Api;

/// Benchmark a running NeighborBid server.
#[derive(Debug, Parser)]
#[command(name = "neighborbid-bench", version, about)]
struct Cli {
    /// What to measure.
    scenario: Scenario,
    /// Where the server listens (without `/api/v1`).
    #[arg(long, env = "BENCH_BASE_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// When set, `list` counts auctions and bids with SQL instead of paging the API.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// How long each measured phase runs.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Workers: keep-alive connections for `list` (default 32), bidders for `bids` (default 200).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: Option<u64>,
    /// An admin bearer token; `bids` then runs the ledger audit afterwards.
    #[arg(long, env = "BENCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// Seed ≥1,000 auctions and ≥10,000 bids, then hammer `GET /auctions`.
    List,
    /// Bidders racing on 100 auctions, then all on one hot auction.
    Bids,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest is built without a TLS backend choice of its own; rustls needs a process-wide one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let duration = Duration::from_secs(cli.duration_secs);
    let report = match cli.scenario {
        Scenario::List => {
            let concurrency = usize::try_from(cli.concurrency.unwrap_or(32))?;
            let api = Api::new(&cli.base_url, concurrency)?;
            scenarios::list::run(&api, cli.database_url.as_deref(), duration, concurrency).await?
        }
        Scenario::Bids => {
            let bidders = usize::try_from(cli.concurrency.unwrap_or(200))?;
            let api = Api::new(&cli.base_url, bidders)?;
            scenarios::bids::run(&api, duration, bidders, cli.admin_token.as_deref()).await?
        }
    };
    let mut report = report;
    report["base_url"] = cli.base_url.into();
    report["finished_at"] = chrono::Utc::now().to_rfc3339().into();
    let text = serde_json::to_string_pretty(&report).context("failed to render the report")?;
    println!("{text}");
    Ok(())
}
