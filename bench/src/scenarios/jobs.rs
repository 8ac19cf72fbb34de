//! `jobs`: raw outbox relay + worker throughput on `release_hold` jobs.
//!
//! N open 1,000 KRW holds on `unsold` auctions (200 funded bidders, up to 200 holds per auction) and
//! one `release_hold` outbox row per hold are inserted in one transaction; from its commit,
//! PostgreSQL is polled every 50 ms until every hold is released. With `--outbid` the auctions are
//! active instead, and no hold leads: each release is then an outbid, with the bidder's notification,
//! its event and its email, as the releases a bidding war causes.
//!
//! Holds and outbox rows share the transaction on purpose: holds on an unsold auction with no
//! release recorded are exactly what the reconciliation sweep looks for, and a sweep firing between
//! two commits would record a second release for every hold.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::sql_seed::{self, AuctionState};
use crate::stats::{Check, all_pass, rate, round};

const BIDDERS: i64 = 200;
const HOLD: i64 = 1_000;
const POLL: Duration = Duration::from_millis(50);
const TARGET_PER_SEC: f64 = 2_000.0;

/// What was seeded and when it became visible.
struct Seeded {
    run_id: String,
    auctions: usize,
    auction_ids: Vec<i64>,
    committed: Instant,
    committed_at: DateTime<Utc>,
    seed_secs: f64,
}

/// Runs the scenario with `jobs` holds to release.
pub async fn run(database_url: &str, jobs: u64, outbid: bool) -> anyhow::Result<Value> {
    let n = i64::try_from(jobs)?;
    let pool = sql_seed::connect(database_url).await?;
    let seeded = seed(&pool, n, outbid).await?;
    eprintln!(
        "committed {n} holds and release_hold outbox rows in {:.3} s; waiting for the releases",
        seeded.seed_secs
    );
    // Slower than 500 releases/s on average (and past two minutes) is a failed run anyway.
    let give_up = Duration::from_secs_f64((n as f64 / 500.0).max(120.0));
    let (open, elapsed) = watch(&pool, &seeded, n, give_up).await?;
    let timed_out = open > 0;
    let released = n - open;
    let per_sec = rate(u64::try_from(released)?, elapsed);
    let details = from_rows(&pool, &seeded, n).await?;
    pool.close().await;
    let checks = vec![Check::at_least("releases_per_sec", TARGET_PER_SEC, if timed_out { 0.0 } else { per_sec })];
    Ok(json!({
        "scenario": "jobs",
        "run_id": seeded.run_id,
        "jobs": n,
        "outbid": outbid,
        "bidders": BIDDERS,
        "auctions": seeded.auctions,
        "seed_secs": round(seeded.seed_secs),
        "committed_at": seeded.committed_at.to_rfc3339(),
        "poll_interval_ms": POLL.as_millis() as u64,
        "timed_out": timed_out,
        "released": released,
        "still_open": open,
        "elapsed_secs": round(elapsed.as_secs_f64()),
        "releases_per_sec": per_sec,
        "from_rows": details,
        "checks": checks,
        "pass": all_pass(&checks),
    }))
}

/// Seeds users, auctions (unsold, or active for an hour more when `outbid`), `n` holds and their
/// outbox rows in one transaction.
async fn seed(pool: &PgPool, n: i64, outbid: bool) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let run_id = sql_seed::run_id();
    let auctions = (n + BIDDERS - 1) / BIDDERS;
    let (state, described) = if outbid {
        (AuctionState::ActiveUntil(chrono::Utc::now() + chrono::Duration::hours(1)), "active")
    } else {
        (AuctionState::Unsold, "unsold")
    };
    eprintln!("seeding run {run_id}: {BIDDERS} bidders, {auctions} {described} auctions, {n} open holds");
    let mut tx = pool.begin().await?;
    let seller = sql_seed::create_users(&mut tx, &format!("bench_{run_id}_s"), 1, 0).await?[0];
    let bidders = sql_seed::create_users(&mut tx, &format!("bench_{run_id}_j"), BIDDERS, auctions * HOLD).await?;
    let title = format!("bench jobs {run_id}");
    let auction_ids = sql_seed::create_auctions(&mut tx, seller, auctions, &title, state).await?;
    let count = usize::try_from(n)?;
    let users: Vec<i64> = (0..count).map(|k| bidders[k % bidders.len()]).collect();
    let on: Vec<i64> = (0..count).map(|k| auction_ids[k / bidders.len()]).collect();
    let holds = sql_seed::open_holds(&mut tx, &users, &on).await?;
    sqlx::query(
        "INSERT INTO outbox (kind, payload, created_at) \
         SELECT 'release_hold', jsonb_build_object('kind', 'release_hold', 'hold_id', id), clock_timestamp() \
         FROM unnest($1::bigint[]) AS h(id)",
    )
    .bind(&holds)
    .execute(&mut *tx)
    .await
    .context("failed to insert the outbox rows")?;
    tx.commit().await.context("failed to commit the seed")?;
    let committed = Instant::now();
    let committed_at = sql_seed::db_now(&mut *pool.acquire().await?).await?;
    let seed_secs = (committed - started).as_secs_f64();
    Ok(Seeded { run_id, auctions: auction_ids.len(), auction_ids, committed, committed_at, seed_secs })
}

/// Polls until no hold of the run is open or `give_up` passed; returns the open count and the time
/// since the commit.
async fn watch(pool: &PgPool, seeded: &Seeded, n: i64, give_up: Duration) -> anyhow::Result<(i64, Duration)> {
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_report = Duration::from_secs(1);
    loop {
        ticker.tick().await;
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM holds WHERE auction_id = ANY($1) AND status = 'open'")
            .bind(&seeded.auction_ids)
            .fetch_one(pool)
            .await
            .context("failed to poll the holds")?;
        let elapsed = seeded.committed.elapsed();
        if open == 0 {
            eprintln!("{:>7.3} s: all {n} holds released", elapsed.as_secs_f64());
            return Ok((open, elapsed));
        }
        if elapsed >= next_report {
            next_report += Duration::from_secs(1);
            let done = n - open;
            eprintln!("{:>7.3} s: {done}/{n} released ({:.0}/s)", elapsed.as_secs_f64(), rate(done as u64, elapsed));
        }
        if elapsed >= give_up {
            eprintln!("giving up after {give_up:?} with {open} holds still open");
            return Ok((open, elapsed));
        }
    }
}

/// Exact counts and the last release's own timestamp (no poll granularity).
async fn from_rows(pool: &PgPool, seeded: &Seeded, n: i64) -> anyhow::Result<Value> {
    let (released, captured, last_secs, outbox, unrelayed): (i64, i64, Option<f64>, i64, i64) = sqlx::query_as(
        "WITH h AS (SELECT id, status, ended_at FROM holds WHERE auction_id = ANY($1)), \
              o AS (SELECT o.relayed_at FROM outbox o \
                    WHERE o.kind = 'release_hold' AND (o.payload ->> 'hold_id')::bigint IN (SELECT id FROM h)) \
         SELECT (SELECT count(*) FROM h WHERE status = 'released'), \
                (SELECT count(*) FROM h WHERE status = 'captured'), \
                (SELECT extract(epoch FROM max(ended_at) - $2)::float8 FROM h), \
                (SELECT count(*) FROM o), \
                (SELECT count(*) FROM o WHERE relayed_at IS NULL)",
    )
    .bind(&seeded.auction_ids)
    .bind(seeded.committed_at)
    .fetch_one(pool)
    .await
    .context("failed to read the final counts")?;
    let per_sec = last_secs.filter(|s| *s > 0.0).map(|s| round(released as f64 / s));
    Ok(json!({
        "released": released,
        "captured": captured,
        "last_release_secs_after_commit": last_secs.map(round),
        "releases_per_sec": per_sec,
        "release_outbox_rows": outbox,
        // Rows beyond one per job: the reconciliation sweep re-recorded releases still open after its
        // grace period (30 s by default), i.e. the run was slower than jobs / 30 s.
        "release_outbox_rows_rerecorded": outbox - n,
        "release_outbox_rows_unrelayed": unrelayed,
    }))
}
