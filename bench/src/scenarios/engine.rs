//! The bid engine without the web, for `bids`: pgbench calling `place_bid` (the statement the web
//! runs for a lone bid) straight on the stack's PostgreSQL, with the same clients and duration as
//! the reference, on fresh auctions of the phase. Set beside the reference and the HTTP closed
//! loop, it splits the gap between them: what the engine costs against the reference, and what the
//! HTTP path and the follow-up work add.
//!
//! The bids are real (the phase's bidders on the phase's auctions), so the ledger audit covers them
//! and the stack's workers release the holds they outbid while pgbench runs, as they do in the
//! closed loop. Each call bids the auction's minimum from a plain read; a bid another client's made
//! too low meanwhile is refused (a lost race, as over HTTP) and not counted.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

/// pgbench's script: a random auction and bidder of the phase, picked by position.
const SCRIPT: &str = r"\set auction random(1, :auctions)
\set bidder random(1, :bidders)
SELECT bench_engine.bid(:auction, :bidder);
";

/// The phase's auctions and bidders by position, and one bid at the minimum. A refusal (SQLSTATE
/// NB001, `place_bid`'s) answers 0 instead of failing pgbench's client.
const SCHEMA: &str = "
DROP SCHEMA IF EXISTS bench_engine CASCADE;
CREATE SCHEMA bench_engine;
CREATE TABLE bench_engine.auctions (position INTEGER PRIMARY KEY, id BIGINT NOT NULL);
CREATE TABLE bench_engine.bidders (position INTEGER PRIMARY KEY, id BIGINT NOT NULL);
CREATE FUNCTION bench_engine.bid(p_auction INTEGER, p_bidder INTEGER) RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    auction BIGINT := (SELECT id FROM bench_engine.auctions WHERE position = p_auction);
    bidder BIGINT := (SELECT id FROM bench_engine.bidders WHERE position = p_bidder);
    minimum BIGINT;
BEGIN
    SELECT min_next_bid(start_price, bid_count, current_price, bid_increment) INTO minimum
    FROM public.auctions WHERE id = auction;
    PERFORM place_bid(auction, bidder, minimum, NULL, false, NULL, NULL);
    RETURN 1;
EXCEPTION WHEN SQLSTATE 'NB001' THEN
    RETURN 0;
END $$;
";

/// The bids the phase's bidders made on `auctions` (their own, not the automatic answers).
const ACCEPTED: &str = "SELECT count(*) FROM bids WHERE auction_id = ANY($1) AND NOT auto";

/// Runs `place_bid` from `clients` pgbench clients for `duration`, each call one of `bidders`
/// bidding on one of `auctions`; reports calls and accepted bids per second.
pub async fn run(
    database_url: &str,
    auctions: &[i64],
    bidders: &[i64],
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Value> {
    let mut conn = PgConnection::connect(database_url).await.context("the engine run needs the database")?;
    conn.execute(SCHEMA).await.context("failed to create the engine run's schema")?;
    sqlx::query(
        "WITH auctions AS (INSERT INTO bench_engine.auctions (position, id) \
                           SELECT n, id FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, n)) \
         INSERT INTO bench_engine.bidders (position, id) \
         SELECT n, id FROM unnest($2::bigint[]) WITH ORDINALITY AS t(id, n)",
    )
    .bind(auctions)
    .bind(bidders)
    .execute(&mut conn)
    .await?;
    let before: i64 = sqlx::query_scalar(ACCEPTED).bind(auctions).fetch_one(&mut conn).await?;
    let report = super::reference::pgbench(
        database_url,
        SCRIPT,
        clients,
        duration,
        &[("auctions", auctions.len()), ("bidders", bidders.len())],
    )
    .await;
    let after: i64 = sqlx::query_scalar(ACCEPTED).bind(auctions).fetch_one(&mut conn).await?;
    conn.execute("DROP SCHEMA bench_engine CASCADE").await?;
    let report = report?;
    if report.tps <= 0.0 {
        bail!("pgbench made no calls of place_bid");
    }
    let secs = duration.as_secs().max(1) as f64;
    Ok(json!({
        "auctions": auctions.len(),
        "clients": clients,
        "calls_per_sec": report.tps,
        "accepted_per_sec": crate::stats::round((after - before) as f64 / secs),
        "latency_average_ms": report.latency_average_ms,
    }))
}
