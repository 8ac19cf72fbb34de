//! Bench users and auctions, and the idempotent data set the `list` scenario reads.
//!
//! Users are `bench_u{n}`: sellers are `n` in [`SELLERS`], bidders start at [`FIRST_BIDDER`], so no
//! bench user ever bids on its own auction.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use chrono::{SecondsFormat, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

use crate::client::{Api, Auction, MAX_AMOUNT, Session};

/// User numbers of the bench sellers.
pub const SELLERS: Range<u32> = 0..10;
/// The first bench bidder's user number.
pub const FIRST_BIDDER: u32 = 100;
/// Bidders used while seeding the list data set.
const SEED_BIDDERS: u32 = 50;
/// Sign-ups and logins hash passwords, so only a few run at once.
const SETUP_PARALLELISM: usize = 16;
/// What the `list` scenario needs in the database.
pub const MIN_AUCTIONS: i64 = 1_000;
/// The fixed bid increment of every bench auction.
pub const BID_INCREMENT: i64 = 1_000;
pub const MIN_BIDS: i64 = 10_000;

/// `bench_u{n}`.
pub fn username(n: u32) -> String {
    format!("bench_u{n}")
}

/// Signs up and logs in users `numbers`; with `fund`, makes sure each has a large balance.
pub async fn sign_in_many(api: &Api, numbers: Range<u32>, fund: bool) -> anyhow::Result<Vec<Session>> {
    let total = numbers.len();
    eprintln!("signing in {total} users {}..{}", username(numbers.start), numbers.end - 1);
    stream::iter(numbers)
        .map(|n| async move {
            let session = api.ensure_user(&username(n)).await?;
            if fund {
                // Bids hold money until they are outbid; keep far more than a run can hold.
                api.ensure_funds(&session, MAX_AMOUNT / 10).await?;
            }
            anyhow::Ok(session)
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .try_collect()
        .await
}

/// The body of a bench auction: active now, ending in 1–6 hours, never extended by late bids.
pub fn auction_body(label: &str) -> Value {
    let ends_at = Utc::now() + TimeDelta::seconds(rand::random_range(3_660..=21_540));
    json!({
        "title": format!("bench {label} {:08x}", rand::random::<u32>()),
        "description": "Created by neighborbid-bench.",
        "category_id": 1,
        "region_id": 111,
        "national": false,
        "condition": "good",
        "shipping_payer": "buyer",
        "start_price": rand::random_range(1..=100_i64) * 1_000,
        "bid_increment": BID_INCREMENT,
        "ends_at": ends_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "soft_close_seconds": 0,
    })
}

/// Creates `count` auctions, round-robin over `sellers`.
pub async fn create_auctions(
    api: &Api,
    sellers: &[Session],
    count: usize,
    label: &str,
) -> anyhow::Result<Vec<Auction>> {
    eprintln!("creating {count} {label} auction(s)");
    stream::iter(0..count)
        .map(|i| async move {
            let body = auction_body(label);
            api.create_auction(&sellers[i % sellers.len()], &body).await
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .try_collect()
        .await
}

/// What seeding found and added.
#[derive(Debug, Serialize)]
pub struct SeedReport {
    /// `database` (exact counts) or `http` (auctions the list shows and their `bid_count`s).
    pub counted_via: &'static str,
    pub auctions_before: i64,
    pub bids_before: i64,
    pub auctions_created: usize,
    pub bids_placed: u64,
}

/// Makes sure there are at least [`MIN_AUCTIONS`] auctions and [`MIN_BIDS`] bids.
pub async fn ensure_list_data(api: &Api, database_url: Option<&str>, workers: usize) -> anyhow::Result<SeedReport> {
    let (counted_via, auctions, bids) = match database_url {
        Some(url) => {
            let (a, b) = count_in_database(url).await?;
            ("database", a, b)
        }
        None => {
            let (a, b) = count_over_http(api).await?;
            ("http", a, b)
        }
    };
    eprintln!("found {auctions} auctions and {bids} bids ({counted_via})");
    let mut report =
        SeedReport { counted_via, auctions_before: auctions, bids_before: bids, auctions_created: 0, bids_placed: 0 };
    if auctions >= MIN_AUCTIONS && bids >= MIN_BIDS {
        return Ok(report);
    }
    let sellers = sign_in_many(api, SELLERS, false).await?;
    let bidders = sign_in_many(api, FIRST_BIDDER..FIRST_BIDDER + SEED_BIDDERS, true).await?;
    let need_auctions = usize::try_from(MIN_AUCTIONS - auctions).unwrap_or(0);
    let mut targets = create_auctions(api, &sellers, need_auctions, "list").await?;
    report.auctions_created = targets.len();

    let need_bids = u64::try_from(MIN_BIDS - bids).unwrap_or(0);
    if need_bids == 0 {
        return Ok(report);
    }
    if targets.len() < 100 {
        targets.extend(open_auctions_of(api, &sellers).await);
    }
    if targets.len() < 100 {
        targets.extend(create_auctions(api, &sellers, 100, "list").await?);
        report.auctions_created += 100;
    }
    report.bids_placed = place_seed_bids(api, &bidders, &targets, need_bids, workers).await?;
    Ok(report)
}

async fn count_in_database(url: &str) -> anyhow::Result<(i64, i64)> {
    let pool =
        PgPoolOptions::new().max_connections(1).connect(url).await.context("failed to connect to the database")?;
    let auctions: i64 = sqlx::query_scalar("SELECT count(*) FROM auctions")
        .fetch_one(&pool)
        .await
        .context("failed to count auctions")?;
    let bids: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bids").fetch_one(&pool).await.context("failed to count bids")?;
    pool.close().await;
    Ok((auctions, bids))
}

/// Pages through the default listing until both minimums are seen or the list ends.
async fn count_over_http(api: &Api) -> anyhow::Result<(i64, i64)> {
    let (mut auctions, mut bids) = (0_i64, 0_i64);
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=100&cursor={}", encode(c)),
            None => "limit=100".to_owned(),
        };
        let page = api.list_auctions(&query).await?;
        auctions += page.items.len() as i64;
        bids += page.items.iter().map(|a| a.bid_count).sum::<i64>();
        cursor = page.next_cursor;
        if cursor.is_none() || (auctions >= MIN_AUCTIONS && bids >= MIN_BIDS) {
            return Ok((auctions, bids));
        }
    }
}

/// Active auctions of the bench sellers (first page each); listing problems only shrink the set.
async fn open_auctions_of(api: &Api, sellers: &[Session]) -> Vec<Auction> {
    let mut found = Vec::new();
    for seller in sellers {
        let query = format!("seller_id={}&status=active&limit=100", seller.user_id);
        match api.list_auctions(&query).await {
            Ok(page) => found.extend(page.items.into_iter().filter(|a| a.status == "active")),
            Err(e) => eprintln!("could not list {}'s auctions: {e:#}", seller.username),
        }
    }
    found
}

/// Places `need` accepted bids at `min_next_bid` on random `targets` from random `bidders`.
async fn place_seed_bids(
    api: &Api,
    bidders: &[Session],
    targets: &[Auction],
    need: u64,
    workers: usize,
) -> anyhow::Result<u64> {
    eprintln!("placing {need} bids on {} auctions", targets.len());
    // The next acceptable amount per target; `None` once the auction stopped taking bids.
    let prices: Vec<Mutex<Option<i64>>> = targets.iter().map(|a| Mutex::new(Some(a.min_next_bid))).collect();
    let accepted = AtomicU64::new(0);
    let attempts = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let max_attempts = need * 5 + 1_000;

    let worker = || async {
        while accepted.load(Ordering::Relaxed) < need && attempts.fetch_add(1, Ordering::Relaxed) < max_attempts {
            if failures.load(Ordering::Relaxed) > 100 {
                anyhow::bail!("too many failed bids while seeding");
            }
            let idx = rand::random_range(0..targets.len());
            let Some(amount) = *prices[idx].lock().unwrap() else {
                continue;
            };
            let bidder = &bidders[rand::random_range(0..bidders.len())];
            let reply = match api.place_bid(bidder, targets[idx].id, amount).await {
                Ok(reply) => reply,
                Err(e) => {
                    eprintln!("seed bid failed: {e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let next = if reply.status.is_success() {
                let done = accepted.fetch_add(1, Ordering::Relaxed) + 1;
                if done.is_multiple_of(1_000) {
                    eprintln!("  {done}/{need} seed bids");
                }
                reply.body.pointer("/auction/min_next_bid").and_then(Value::as_i64)
            } else if reply.error_code() == Some("bid_too_low") {
                reply.minimum()
            } else if reply.status.is_server_error() {
                eprintln!("seed bid: {} {}", reply.status, reply.body);
                failures.fetch_add(1, Ordering::Relaxed);
                continue;
            } else if reply.error_code() == Some("auction_not_active") {
                *prices[idx].lock().unwrap() = None;
                continue;
            } else {
                // E.g. a bidder already leading; another bidder will try next time.
                continue;
            };
            let mut slot = prices[idx].lock().unwrap();
            if let Some(old) = *slot {
                *slot = Some(next.unwrap_or(amount + 1_000).max(old));
            }
        }
        anyhow::Ok(())
    };
    futures::future::try_join_all((0..workers).map(|_| worker())).await?;
    Ok(accepted.into_inner())
}

/// Percent-encodes an opaque cursor for a query string.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
