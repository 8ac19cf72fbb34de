//! The physical reference for `bids`: pgbench running a bid-shaped transaction on the same
//! PostgreSQL — lock the auction, move the bidder's money available → held, insert the transfer and
//! the bid, update the auction, insert an outbox row — in tables of its own (schema
//! `bench_reference`, dropped afterwards), so the wallet the audit checks is never touched.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

/// The transaction pgbench runs: one statement per step, as an application would send them.
const SCRIPT: &str = r"\set auction random(1, :auctions)
\set bidder random(1, 1000)
BEGIN;
SELECT current_price FROM bench_reference.auctions WHERE id = :auction FOR UPDATE;
UPDATE bench_reference.accounts SET balance = balance + CASE WHEN id = :bidder * 2 THEN -1000 ELSE 1000 END
    WHERE id IN (:bidder * 2, :bidder * 2 + 1);
INSERT INTO bench_reference.transfers (from_account, to_account, amount, auction_id)
    VALUES (:bidder * 2, :bidder * 2 + 1, 1000, :auction);
INSERT INTO bench_reference.bids (auction_id, bidder_id, amount)
    SELECT :auction, :bidder, current_price + 1000 FROM bench_reference.auctions WHERE id = :auction;
UPDATE bench_reference.auctions SET current_price = current_price + 1000, bid_count = bid_count + 1,
    leader_id = :bidder WHERE id = :auction;
INSERT INTO bench_reference.outbox (kind, payload) VALUES ('release_hold', '{}');
END;
";

const SCHEMA: &str = "
DROP SCHEMA IF EXISTS bench_reference CASCADE;
CREATE SCHEMA bench_reference;
CREATE TABLE bench_reference.accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0));
INSERT INTO bench_reference.accounts SELECT g, CASE WHEN g % 2 = 0 THEN 1000000000000 ELSE 0 END
    FROM generate_series(2, 2001) g;
CREATE TABLE bench_reference.auctions (id BIGINT PRIMARY KEY, current_price BIGINT NOT NULL,
    bid_count INTEGER NOT NULL DEFAULT 0, leader_id BIGINT);
INSERT INTO bench_reference.auctions (id, current_price) SELECT g, 10000 FROM generate_series(1, 100) g;
CREATE TABLE bench_reference.transfers (id BIGSERIAL PRIMARY KEY, from_account BIGINT NOT NULL,
    to_account BIGINT NOT NULL, amount BIGINT NOT NULL, auction_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE bench_reference.bids (id BIGSERIAL PRIMARY KEY, auction_id BIGINT NOT NULL, bidder_id BIGINT NOT NULL,
    amount BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE INDEX ON bench_reference.bids (auction_id, id DESC);
CREATE TABLE bench_reference.outbox (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now());
";

/// Runs the reference over `auctions` auctions (1 = one hot auction) with `clients` pgbench
/// clients for `duration`; reports its transactions per second.
pub async fn run(database_url: &str, auctions: u32, clients: usize, duration: Duration) -> anyhow::Result<Value> {
    let mut conn = PgConnection::connect(database_url).await.context("the reference needs the database")?;
    conn.execute(SCHEMA).await.context("failed to create the reference tables")?;
    let report = pgbench(database_url, SCRIPT, clients, duration, &[("auctions", auctions as usize)]).await;
    conn.execute("DROP SCHEMA bench_reference CASCADE").await?;
    let report = report?;
    Ok(json!({
        "auctions": auctions,
        "clients": clients,
        "tps": report.tps,
        "latency_average_ms": report.latency_average_ms,
    }))
}

/// What pgbench reported of a run.
pub struct PgbenchReport {
    pub tps: f64,
    pub latency_average_ms: Option<f64>,
}

/// Runs `script` with `clients` pgbench clients (prepared statements) for `duration`, each of
/// `defines` set as a pgbench variable.
pub async fn pgbench(
    database_url: &str,
    script: &str,
    clients: usize,
    duration: Duration,
    defines: &[(&str, usize)],
) -> anyhow::Result<PgbenchReport> {
    let path =
        std::env::temp_dir().join(format!("neighborbid-bench-{}-{}.sql", std::process::id(), rand::random::<u32>()));
    std::fs::write(&path, script)?;
    let mut command = tokio::process::Command::new("pgbench");
    command.args(["--no-vacuum", "--protocol=prepared", "--file"]).arg(&path).args([
        "--client",
        &clients.to_string(),
        "--jobs",
        "2",
        "--time",
        &duration.as_secs().max(1).to_string(),
    ]);
    for (name, value) in defines {
        command.args(["--define", &format!("{name}={value}")]);
    }
    let output = command
        .arg(database_url)
        .output()
        .await
        .context("pgbench did not start (it comes with PostgreSQL's client packages)");
    let _ = std::fs::remove_file(&path);
    let output = output?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("pgbench failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    }
    Ok(PgbenchReport {
        tps: parse(&stdout, "tps = ").context("no tps in pgbench's output")?,
        latency_average_ms: parse(&stdout, "latency average = "),
    })
}

/// The number after `prefix` on its line of pgbench's report.
fn parse(report: &str, prefix: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.starts_with(prefix))?;
    line[prefix.len()..].split_whitespace().next()?.parse().ok()
}
