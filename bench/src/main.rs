//! `neighborbid-bench`: drives a running NeighborBid stack and prints one JSON report.
//!
//! `list`, `bids`, `flood` and `photos` go through the HTTP API, `fanout` and `chat` also through WebSockets; `close` and `jobs` seed and observe PostgreSQL directly
//! to measure the scheduler and the workers. Progress goes to stderr; stdout carries only the report,
//! so `… | jq` works.

mod client;
mod procfs;
mod scenarios;
mod seed;
mod sql_seed;
mod stats;
mod ws;

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::client::Api;

/// Benchmark a running NeighborBid stack.
///
/// `close` and `jobs` need --database-url (the stack's DATABASE_URL) and a running stack: two
/// `neighborbid-scheduler` and two `neighborbid-worker` processes on the same DATABASE_URL and
/// REDIS_URL (the web server is optional); for `close` the workers send mail to the bench's SMTP
/// sink (MAIL_URL=smtp://127.0.0.1:2525).
///
/// `fanout` opens 5,000 WebSockets at once: raise the open-files limit first (`ulimit -n 65536`, in
/// the bench's shell and for the web server), and run the bench on the web server's host so it can
/// read the server's memory from /proc.
///
/// `flood` sends each bench user's sign-up and login as its own client via `X-Forwarded-For`: start
/// the web with `TRUSTED_PROXIES=127.0.0.1` (or the bench host's address), or the per-address login
/// and sign-up limits throttle the setup (it waits out `Retry-After`, slowly).
#[derive(Debug, Parser)]
#[command(name = "neighborbid-bench", version, about, long_about)]
struct Cli {
    /// What to measure.
    scenario: Scenario,
    /// Where the server listens (without `/api/v1`).
    #[arg(long, env = "BENCH_BASE_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Required by `close` and `jobs`; when set, `list` counts auctions and bids with SQL instead of
    /// paging the API.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// How long each measured phase runs (default 10; `flood`: 20, after a 5 s baseline).
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Workers: keep-alive connections for `list` (default 32), bidders for `bids` (default 16, as many pgbench clients) and
    /// `fanout` (default 50), bogus-login tasks for `flood` (default 500).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: Option<u64>,
    /// An admin bearer token; `bids` then runs the ledger audit afterwards.
    #[arg(long, env = "BENCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// `close`: where the in-process SMTP sink listens (start the workers with MAIL_URL=smtp://<this>).
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp_listen: String,
    /// `jobs`: how many holds to seed and release.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    jobs: u64,
    /// `jobs`: seed the holds on active auctions that none of them leads, so that each release is an
    /// outbid with its notification and email.
    #[arg(long)]
    outbid: bool,
    /// `fanout` and `chat`: the web server whose VmRSS to sample (default: the one process named
    /// `neighborbid-web`).
    #[arg(long)]
    web_pid: Option<u32>,
    /// `flood`: the flood's source addresses; 1 sends from the bench's own address, more spreads the
    /// logins over that many fake addresses (198.18.0.0/15) in `X-Forwarded-For`, like a botnet.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(scenarios::flood::MAX_FLOOD_IPS)))]
    flood_ips: u32,
    /// `photos`: how many photos to upload.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    photos: u64,
    /// Open-loop arrivals per second. `bids`: the one rate to measure after the closed loop
    /// (default: 50 %, 80 % and 100 % of the closed loop's rate); `fanout`: bids on the hot auction
    /// in its judged phase (default: 80 % of its saturated rate); `flood`: legitimate requests
    /// (reads and bids by signed-in users, default 50); `photos`: uploads (default 50); `chat`: messages
    /// (default 200).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// Seed ≥1,000 auctions and ≥10,000 bids, then hammer `GET /auctions`.
    List,
    /// Bidders racing on 100 auctions, then all on one hot auction: closed loop with --concurrency
    /// (16) bidders, then open loop at --rate (or 50/80/100 % of the closed loop's rate), and, with
    /// --database-url, pgbench's bid-shaped reference transaction on the same PostgreSQL. Targets:
    /// accepted/s >= 50 % of the reference in both phases, p99 <= 50 ms at 80 % of the maximum rate.
    Bids,
    /// Seed (SQL) 1,000 active auctions, each led by one bid, all ending 5 s later at the same second;
    /// report seconds from the end until all are closed (target <= 2 s), settled (<= 10 s) and every
    /// email sent (<= 10 s), counting mail in an SMTP sink on --smtp-listen. Gives up after 120 s.
    Close,
    /// Seed (SQL) --jobs open holds on unsold auctions (--outbid: on active auctions, each release an
    /// outbid with its notification and email) and, in the same transaction, one `release_hold`
    /// outbox row each; report releases/s from the commit until every hold is released (target >=
    /// 2,000/s): the outbox relay and the release workers end to end.
    Jobs,
    /// WebSocket fan-out: 1,000 watchers on one auction while 50 bidders bid as fast as they are
    /// answered (the most events a second the server fans out; latency reported, not judged), then
    /// at --rate bids a second (default 80 % of that), then 5,000 watchers on 500 auctions; reports
    /// event latency (target p50 <= 10 ms, p99 <= 50 ms), gaps (0), early closes and the web
    /// server's RSS (<= 150 MB with 5,000 watchers). Needs `ulimit -n 65536`.
    Fanout,
    /// --concurrency (500) tasks sending bogus logins for --duration-secs (20) while 20 signed-in users
    /// read and bid at --rate (50/s), after a 5 s baseline without the flood; reports the legitimate
    /// traffic's p50/p99 (target p99 <= 200 ms) and errors (transport, 5xx, 429; target 0) and how
    /// many flood logins got 429 or 503. Start the web with TRUSTED_PROXIES=127.0.0.1.
    Flood,
    /// 2,000 users on `/ws/me` (one socket each, 200 of them sellers, two conversations each) while
    /// messages go open loop at --rate (200/s) between random conversations' parties: message
    /// accepted → recipient's socket p50 (target <= 10 ms) and p99 (<= 50 ms), messages lost (0), gaps
    /// (0) and the web server's RSS. Needs an open-files limit above 2,200.
    Chat,
    /// --photos (400) uploads of a 2-megapixel JPEG, open loop at --rate (50) a second, while the
    /// `images` workers render them: upload p50/p99 (target p99 <= 50 ms), photos processed per second from the
    /// rows' timestamps (target >= 40/s with 2 workers on 2 cores) and each worker's peak RSS (<= 300
    /// MB). Needs --database-url and a stack with `neighborbid-worker --queues images` on this host.
    Photos,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest is built without a TLS backend choice of its own; rustls needs a process-wide one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let duration = Duration::from_secs(cli.duration_secs.unwrap_or(10));
    let report = match cli.scenario {
        Scenario::List => {
            let concurrency = usize::try_from(cli.concurrency.unwrap_or(32))?;
            let api = Api::new(&cli.base_url, concurrency)?;
            scenarios::list::run(&api, cli.database_url.as_deref(), duration, concurrency).await?
        }
        Scenario::Bids => {
            let bidders = usize::try_from(cli.concurrency.unwrap_or(16))?;
            let api = Api::new(&cli.base_url, 256)?;
            let options = scenarios::bids::Options {
                duration,
                bidders,
                rates: cli.rate.map(|r| vec![f64::from(r)]).unwrap_or_default(),
                admin_token: cli.admin_token.as_deref(),
                database_url: cli.database_url.as_deref(),
            };
            scenarios::bids::run(&api, options).await?
        }
        Scenario::Fanout => {
            let bidders = usize::try_from(cli.concurrency.unwrap_or(50))?;
            let api = Api::new(&cli.base_url, bidders)?;
            let hot_rate = cli.rate.map(f64::from);
            scenarios::fanout::run(&api, &cli.base_url, duration, bidders, hot_rate, cli.web_pid).await?
        }
        Scenario::Chat => {
            let api = Api::new(&cli.base_url, 64)?;
            let options = scenarios::chat::Options { duration, rate: cli.rate.unwrap_or(200), web_pid: cli.web_pid };
            scenarios::chat::run(&api, &cli.base_url, options).await?
        }
        Scenario::Flood => {
            let concurrency = usize::try_from(cli.concurrency.unwrap_or(500))?;
            let duration = Duration::from_secs(cli.duration_secs.unwrap_or(20));
            let options = scenarios::flood::Options {
                duration,
                concurrency,
                flood_ips: cli.flood_ips,
                rate: cli.rate.unwrap_or(50),
            };
            let api = Api::new(&cli.base_url, 16)?;
            scenarios::flood::run(&api, &cli.base_url, options).await?
        }
        Scenario::Photos => {
            let api = Api::new(&cli.base_url, 4)?;
            let count = usize::try_from(cli.photos)?;
            scenarios::photos::run(&api, &cli.base_url, database_url(&cli)?, count, cli.rate.unwrap_or(50)).await?
        }
        Scenario::Close => scenarios::close::run(database_url(&cli)?, &cli.smtp_listen).await?,
        Scenario::Jobs => scenarios::jobs::run(database_url(&cli)?, cli.jobs, cli.outbid).await?,
    };
    let mut report = report;
    if matches!(
        cli.scenario,
        Scenario::List | Scenario::Bids | Scenario::Chat | Scenario::Fanout | Scenario::Flood | Scenario::Photos
    ) {
        report["base_url"] = cli.base_url.into();
    }
    report["finished_at"] = chrono::Utc::now().to_rfc3339().into();
    let text = serde_json::to_string_pretty(&report).context("failed to render the report")?;
    println!("{text}");
    Ok(())
}

/// The database URL the SQL scenarios cannot run without.
fn database_url(cli: &Cli) -> anyhow::Result<&str> {
    cli.database_url
        .as_deref()
        .context("this scenario needs --database-url (or DATABASE_URL): it seeds and watches PostgreSQL")
}
