//! `bids`: many funded bidders outbidding each other on fresh auctions.
//!
//! Two phases: "spread" over 100 auctions, then "hot" with every bidder on one auction. Each phase
//! runs closed-loop first (every bidder bids again as soon as answered: the maximum rate), then
//! open-loop at fixed arrival rates (`--rate`, or 50 %, 80 % and 100 % of that maximum), where
//! latency counts from when a bid was due, so a slow server cannot hide its queue. With a database
//! URL, pgbench runs a bid-shaped reference transaction on the same PostgreSQL for the same time,
//! and the report gives our accepted bids per second as a share of it; each measured run is then
//! also followed by a wait until it has no releases or emails left owed (`follow_up_drain_secs`), and
//! each closed loop reports how many of them an accepted bid caused (`follow_ups_per_accepted_bid`).
//! Then pgbench calls `place_bid` straight for as long (`engine`, see `engine.rs`): the engine
//! without HTTP, and without the web's batching of one auction's waiting bids.
//! Bidders bid the last amount they know to be acceptable (from bid answers and `bid_too_low` details) rather than reading the
//! auction first, so the server sees as many bid attempts as it can take.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::client::{Api, Auction, Session};
use crate::procfs;
use crate::seed::{self, FIRST_BIDDER, SELLERS};
use crate::stats::{Check, LatencySummary, all_pass, merge_counts, rate};

/// What one bidder last learned about one auction.
#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: i64,
    min_next: i64,
    /// The next amount to hand out: concurrent bidders climb a shared ladder of distinct amounts,
    /// as a crowd outbidding each other does, instead of all offering the same minimum.
    ladder: i64,
    leader: Option<i64>,
    open: bool,
}

/// The shared view of the phase's auctions.
struct Board {
    ids: Vec<i64>,
    slots: Vec<Mutex<Slot>>,
}

impl Board {
    fn new(auctions: &[Auction]) -> Self {
        Self {
            ids: auctions.iter().map(|a| a.id).collect(),
            slots: auctions
                .iter()
                .map(|a| {
                    Mutex::new(Slot {
                        seq: a.seq,
                        min_next: a.min_next_bid,
                        ladder: a.min_next_bid,
                        leader: a.leader_id,
                        open: a.status == "active",
                    })
                })
                .collect(),
        }
    }

    fn get(&self, idx: usize) -> Slot {
        *self.slots[idx].lock().unwrap()
    }

    /// Answers arrive out of order: the price only rises, and the leader follows the newest `seq`.
    fn observe(&self, idx: usize, a: &Auction) {
        let mut slot = self.slots[idx].lock().unwrap();
        slot.min_next = slot.min_next.max(a.min_next_bid);
        if a.seq >= slot.seq {
            slot.seq = a.seq;
            slot.leader = a.leader_id;
            slot.open = a.status == "active";
        }
    }

    /// Takes the next rung of the auction's ladder: at least the known minimum, and above every
    /// amount already handed to another bidder.
    fn claim(&self, idx: usize) -> i64 {
        let mut slot = self.slots[idx].lock().unwrap();
        let amount = slot.ladder.max(slot.min_next);
        slot.ladder = amount + seed::BID_INCREMENT;
        amount
    }

    fn raise(&self, idx: usize, minimum: i64) {
        let mut slot = self.slots[idx].lock().unwrap();
        slot.min_next = slot.min_next.max(minimum);
    }

    fn close(&self, idx: usize) {
        self.slots[idx].lock().unwrap().open = false;
    }

    fn all_closed(&self) -> bool {
        (0..self.slots.len()).all(|i| !self.get(i).open)
    }
}

#[derive(Default)]
struct Tally {
    accepted_latencies: Vec<Duration>,
    attempt_latencies: Vec<Duration>,
    lost_races: u64,
    errors_5xx: BTreeMap<u16, u64>,
    other_4xx: BTreeMap<String, u64>,
    transport_errors: u64,
    refresh_gets: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.accepted_latencies.extend(other.accepted_latencies);
        self.attempt_latencies.extend(other.attempt_latencies);
        self.lost_races += other.lost_races;
        merge_counts(&mut self.errors_5xx, &other.errors_5xx);
        merge_counts(&mut self.other_4xx, &other.other_4xx);
        self.transport_errors += other.transport_errors;
        self.refresh_gets += other.refresh_gets;
    }
}

/// How the scenario runs.
pub struct Options<'a> {
    pub duration: Duration,
    /// Closed-loop bidders (and pgbench clients).
    pub bidders: usize,
    /// Open-loop arrival rates; empty for 50 %, 80 % and 100 % of each phase's closed-loop rate.
    pub rates: Vec<f64>,
    pub admin_token: Option<&'a str>,
    /// Where pgbench runs the reference transaction; no reference without it.
    pub database_url: Option<&'a str>,
}

/// Open-loop arrivals are spread over this many signed-in bidders, so that one bidder rarely has
/// two bids in flight.
const OPEN_LOOP_BIDDERS: u32 = 200;
/// Our accepted bids per second as a share of the reference's transactions per second.
const MIN_SHARE_OF_REFERENCE: f64 = 0.5;
/// The open-loop rate, as a share of the closed-loop maximum, at which p99 must stay within 50 ms.
const LOADED: f64 = 0.8;

/// Runs the scenario and returns its report.
pub async fn run(api: &Api, options: Options<'_>) -> anyhow::Result<Value> {
    let Options { duration, bidders, admin_token, database_url, .. } = options;
    let sellers = seed::sign_in_many(api, SELLERS, false).await?;
    let count = u32::try_from(bidders)?.max(OPEN_LOOP_BIDDERS);
    let crowd = seed::sign_in_many(api, FIRST_BIDDER..FIRST_BIDDER + count, true).await?;
    let closed_loop_bidders = &crowd[..bidders];

    let pool = match database_url {
        Some(url) => Some(PgPool::connect(url).await.context("the bench needs the stack's database")?),
        None => None,
    };
    let mut phases = Vec::new();
    for (name, auctions) in [("spread", 100_u32), ("hot", 1)] {
        let closed = seed::create_auctions(api, &sellers, auctions as usize, name).await?;
        let mut drains = vec![drain_follow_ups(pool.as_ref()).await?];
        let done_before = follow_ups_done(pool.as_ref()).await?;
        let mut closed = phase(api, name, closed_loop_bidders, &closed, duration).await;
        drains.push(drain_follow_ups(pool.as_ref()).await?);
        let accepted = closed["accepted"].as_f64().unwrap_or(0.0);
        if let (Some(before), Some(after)) = (done_before, follow_ups_done(pool.as_ref()).await?) {
            closed["follow_ups_per_accepted_bid"] = json!({
                "releases": per_bid(after.0 - before.0, accepted),
                "emails": per_bid(after.1 - before.1, accepted),
            });
        }
        let max_rate = closed["accepted_per_sec"].as_f64().unwrap_or(0.0);
        let rates = if options.rates.is_empty() {
            [0.5, LOADED, 1.0].iter().map(|share| (share * max_rate).max(1.0)).collect()
        } else {
            options.rates.clone()
        };
        let mut open = Vec::new();
        for rate in rates {
            let fresh = seed::create_auctions(api, &sellers, auctions as usize, name).await?;
            open.push(open_loop(api, name, &crowd, &fresh, rate, duration).await);
            drains.push(drain_follow_ups(pool.as_ref()).await?);
        }
        let (reference, engine) = match database_url {
            Some(url) => {
                let reference = super::reference::run(url, auctions, bidders, duration).await?;
                let fresh = seed::create_auctions(api, &sellers, auctions as usize, name).await?;
                let ids: Vec<i64> = fresh.iter().map(|a| a.id).collect();
                let bidder_ids: Vec<i64> = closed_loop_bidders.iter().map(|b| b.user_id).collect();
                eprintln!("{name}: place_bid from pgbench on {} auctions for {duration:?}", ids.len());
                let engine = super::engine::run(url, &ids, &bidder_ids, bidders, duration).await?;
                drains.push(drain_follow_ups(pool.as_ref()).await?);
                (Some(reference), Some(engine))
            }
            None => (None, None),
        };
        let mut judged = judge(name, closed, open, reference, engine, max_rate);
        judged["follow_up_drain_secs"] = json!(drains.into_iter().flatten().collect::<Vec<_>>());
        phases.push(judged);
    }
    let [spread, hot] = <[Value; 2]>::try_from(phases).expect("two phases");

    let audit = match admin_token {
        Some(token) => {
            eprintln!("running the ledger audit");
            Some(match api.audit(token).await {
                Ok(report) => json!({
                    "ok": report["ok"].as_bool() == Some(true),
                    "violations": report["violations"].as_array().map_or(0, Vec::len),
                    "report": report,
                }),
                Err(e) => json!({ "ok": false, "error": format!("{e:#}") }),
            })
        }
        None => None,
    };
    let audit_ok = audit.as_ref().map(|a| a["ok"] == true);
    let pass = spread["pass"] == true && hot["pass"] == true && audit_ok != Some(false);
    Ok(json!({
        "scenario": "bids",
        "duration_secs": duration.as_secs_f64(),
        "bidders": bidders,
        "phases": [spread, hot],
        "audit_ok": audit_ok,
        "audit": audit,
        "pass": pass,
    }))
}

/// Follow-up work still owed by the database: releases of outbid holds and emails due.
const FOLLOW_UPS: &str = "SELECT (SELECT count(*) FROM holds h JOIN auctions a ON a.id = h.auction_id \
                                  WHERE h.status = 'open' AND a.status IN ('scheduled', 'active') \
                                    AND h.id IS DISTINCT FROM a.leader_hold_id) \
                               + (SELECT count(*) FROM notifications WHERE sent_at IS NULL AND email_due_at <= now())";
/// Follow-up work done so far: holds released, and emails recorded for sending.
const FOLLOW_UPS_DONE: &str = "SELECT (SELECT count(*) FROM transfers WHERE kind = 'release'), \
                                      (SELECT count(*) FROM notifications WHERE email_due_at IS NOT NULL)";
/// How long to wait for the previous run's follow-up work before measuring anyway.
const DRAIN_GIVE_UP: Duration = Duration::from_secs(120);

/// (releases, emails) done so far; `None` without a database URL.
async fn follow_ups_done(pool: Option<&PgPool>) -> anyhow::Result<Option<(i64, i64)>> {
    let Some(pool) = pool else { return Ok(None) };
    Ok(Some(sqlx::query_as(FOLLOW_UPS_DONE).fetch_one(pool).await?))
}

/// `count` per accepted bid, rounded to a hundredth.
fn per_bid(count: i64, accepted: f64) -> f64 {
    if accepted > 0.0 { (count as f64 / accepted * 100.0).round() / 100.0 } else { 0.0 }
}

/// Waits until the releases and emails the previous runs caused are done, so that each measured
/// run has the machine to itself and pays for its own follow-up work only (a closed loop otherwise
/// leaves its releases to the open loop after it); returns how long that took. Without a database
/// URL there is nothing to watch and no wait.
async fn drain_follow_ups(pool: Option<&PgPool>) -> anyhow::Result<Option<f64>> {
    let Some(pool) = pool else { return Ok(None) };
    let start = Instant::now();
    loop {
        let owed: i64 = sqlx::query_scalar(FOLLOW_UPS).fetch_one(pool).await?;
        if owed == 0 || start.elapsed() > DRAIN_GIVE_UP {
            if owed > 0 {
                eprintln!("{owed} follow-ups still owed after {DRAIN_GIVE_UP:?}; measuring anyway");
            }
            return Ok(Some(crate::stats::round(start.elapsed().as_secs_f64())));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every bidder bids on `auctions` until `duration` is up; returns the phase report.
async fn phase(api: &Api, name: &str, bidders: &[Session], auctions: &[Auction], duration: Duration) -> Value {
    eprintln!("{name}: {} bidders, closed loop, on {} auctions for {duration:?}", bidders.len(), auctions.len());
    let board = Arc::new(Board::new(auctions));
    let cpu_before = procfs::cpu_ticks_by_program();
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = bidders
        .iter()
        .map(|me| {
            let (api, me, board) = (api.clone(), me.clone(), Arc::clone(&board));
            tokio::spawn(async move { bid_loop(&api, &me, &board, deadline).await })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => tally.merge(t),
            Err(e) => eprintln!("a bidder panicked: {e}"),
        }
    }
    let elapsed = start.elapsed();

    let accepted = tally.accepted_latencies.len() as u64;
    let cpu_ms_per_accepted_bid = procfs::cpu_ms_per(&cpu_before, &procfs::cpu_ticks_by_program(), accepted);
    let attempted = tally.attempt_latencies.len() as u64;
    let accepted_per_sec = rate(accepted, elapsed);
    let accepted_latency = LatencySummary::from_samples(&mut tally.accepted_latencies);
    let attempt_latency = LatencySummary::from_samples(&mut tally.attempt_latencies);
    let errors_5xx: u64 = tally.errors_5xx.values().sum();
    let checks =
        vec![Check::at_most("errors_5xx_plus_transport_errors", 0.0, (errors_5xx + tally.transport_errors) as f64)];
    json!({
        "name": name,
        "auctions": auctions.len(),
        "bidders": bidders.len(),
        "elapsed_secs": crate::stats::round(elapsed.as_secs_f64()),
        "accepted": accepted,
        "attempted": attempted,
        "accepted_per_sec": accepted_per_sec,
        "attempted_per_sec": rate(attempted, elapsed),
        "accepted_latency": accepted_latency,
        "attempt_latency": attempt_latency,
        "lost_races_409": tally.lost_races,
        "errors_5xx": errors_5xx,
        "errors_5xx_by_status": tally.errors_5xx,
        "transport_errors": tally.transport_errors,
        "other_4xx": tally.other_4xx.values().sum::<u64>(),
        "other_4xx_by_code": tally.other_4xx,
        "refresh_gets": tally.refresh_gets,
        "cpu_ms_per_accepted_bid": cpu_ms_per_accepted_bid,
        "checks": checks,
        "pass": all_pass(&checks),
    })
}

/// One bidder's loop: pick an auction it isn't leading, bid the next rung of its ladder, learn from
/// the answer.
async fn bid_loop(api: &Api, me: &Session, board: &Board, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut skips = 0_u32;
    while Instant::now() < deadline {
        let idx = rand::random_range(0..board.ids.len());
        let slot = board.get(idx);
        if !slot.open {
            if board.all_closed() {
                eprintln!("every auction of this phase stopped taking bids");
                break;
            }
            continue;
        }
        if slot.leader == Some(me.user_id) {
            skips += 1;
            if board.ids.len() == 1 || skips.is_multiple_of(64) {
                // Leading the only choice: wait to be outbid, checking the auction now and then.
                tokio::time::sleep(Duration::from_millis(2)).await;
                refresh(api, board, idx, &mut tally).await;
            }
            continue;
        }
        skips = 0;
        let attempt = bid_once(api, me, board, idx, Instant::now()).await;
        let failed = attempt.transport_errors > 0;
        tally.merge(attempt);
        if failed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tally
}

/// One bid of the next rung on auction `idx` by `me`, its latency counted from `since`; learns
/// from the answer.
async fn bid_once(api: &Api, me: &Session, board: &Board, idx: usize, since: Instant) -> Tally {
    let mut tally = Tally::default();
    let amount = board.claim(idx);
    let reply = match api.place_bid(me, board.ids[idx], amount).await {
        Ok(reply) => reply,
        Err(_) => {
            tally.transport_errors += 1;
            return tally;
        }
    };
    let latency = since.elapsed();
    tally.attempt_latencies.push(latency);
    let code = reply.error_code().unwrap_or("");
    match reply.status.as_u16() {
        200..=299 => {
            tally.accepted_latencies.push(latency);
            match Auction::deserialize(&reply.body["auction"]) {
                Ok(a) => board.observe(idx, &a),
                Err(_) => board.raise(idx, amount + 1),
            }
        }
        409 if code == "bid_too_low" => {
            tally.lost_races += 1;
            match reply.minimum() {
                Some(minimum) => board.raise(idx, minimum),
                None => refresh(api, board, idx, &mut tally).await,
            }
        }
        status @ 500.. => *tally.errors_5xx.entry(status).or_default() += 1,
        status => {
            if code == "auction_not_active" {
                board.close(idx);
            }
            *tally.other_4xx.entry(format!("{status} {code}")).or_default() += 1;
        }
    }
    tally
}

/// Reads the auction and records what it says.
async fn refresh(api: &Api, board: &Board, idx: usize, tally: &mut Tally) {
    tally.refresh_gets += 1;
    match api.get_auction(board.ids[idx]).await {
        Ok(reply) if reply.status.is_success() => {
            if let Ok(a) = Auction::deserialize(&reply.body) {
                board.observe(idx, &a);
            }
        }
        Ok(reply) if reply.status.is_server_error() => {
            *tally.errors_5xx.entry(reply.status.as_u16()).or_default() += 1;
        }
        Ok(_) => {}
        Err(_) => tally.transport_errors += 1,
    }
}

/// The phase's verdict: the closed-loop maximum as a share of the reference, and p99 at the
/// loaded open-loop rate; the engine's accepted rate as a share of the reference is reported, not judged.
fn judge(
    name: &str,
    closed: Value,
    open: Vec<Value>,
    reference: Option<Value>,
    engine: Option<Value>,
    max_rate: f64,
) -> Value {
    let mut checks = Vec::new();
    let tps = reference.as_ref().and_then(|r| r["tps"].as_f64()).filter(|tps| *tps > 0.0);
    let share = tps.map(|tps| crate::stats::round(max_rate / tps));
    let engine_share = tps
        .zip(engine.as_ref().and_then(|e| e["accepted_per_sec"].as_f64()))
        .map(|(tps, accepted)| crate::stats::round(accepted / tps));
    if let Some(share) = share {
        checks.push(Check::at_least("share_of_reference", MIN_SHARE_OF_REFERENCE, share));
    }
    let loaded = open.iter().rfind(|o| o["target_rate"].as_f64() <= Some(LOADED * max_rate + 1.0));
    if let Some(loaded) = loaded {
        checks.push(Check::at_most(
            "p99_ms_at_80_percent",
            50.0,
            loaded["attempt_latency"]["p99_ms"].as_f64().unwrap_or(f64::MAX),
        ));
    }
    for run in std::iter::once(&closed).chain(&open) {
        let errors = run["errors_5xx"].as_u64().unwrap_or(0) + run["transport_errors"].as_u64().unwrap_or(0);
        checks.push(Check::at_most("errors_5xx_plus_transport_errors", 0.0, errors as f64));
    }
    json!({
        "name": name,
        "closed_loop": closed,
        "open_loop": open,
        "reference": reference,
        "share_of_reference": share,
        "engine": engine,
        "engine_share_of_reference": engine_share,
        "pass": all_pass(&checks),
        "checks": checks,
    })
}

/// Bids arriving at `rate` a second for `duration`, whatever the answers: each arrival takes the
/// next bidder of `crowd` not leading the auction it picks. Latency counts from when the bid was due.
async fn open_loop(
    api: &Api,
    name: &str,
    crowd: &[Session],
    auctions: &[Auction],
    per_sec: f64,
    duration: Duration,
) -> Value {
    eprintln!("{name}: open loop at {per_sec:.0}/s on {} auctions for {duration:?}", auctions.len());
    let board = Arc::new(Board::new(auctions));
    let start = Instant::now();
    let arrivals = (per_sec * duration.as_secs_f64()).round() as u64;
    let mut tasks = Vec::with_capacity(arrivals as usize);
    for n in 0..arrivals {
        let due = start + Duration::from_secs_f64(n as f64 / per_sec);
        tokio::time::sleep_until(due.into()).await;
        let idx = rand::random_range(0..board.ids.len());
        let leader = board.get(idx).leader;
        let me = (0..crowd.len()).map(|k| &crowd[(n as usize + k) % crowd.len()]).find(|s| Some(s.user_id) != leader);
        let (api, me, board) = (api.clone(), me.expect("two bidders at least").clone(), Arc::clone(&board));
        let second = (n as f64 / per_sec) as usize;
        tasks.push(tokio::spawn(async move { (second, bid_once(&api, &me, &board, idx, due).await) }));
    }
    let mut tally = Tally::default();
    // The slowest answer to the bids due in each second of the run: when the tail happened.
    let mut slowest_by_second = vec![Duration::ZERO; (duration.as_secs_f64().ceil() as usize).max(1)];
    for task in tasks {
        if let Ok((second, t)) = task.await {
            if let Some(slowest) = t.attempt_latencies.iter().max() {
                let last = slowest_by_second.len() - 1;
                let worst = &mut slowest_by_second[second.min(last)];
                *worst = (*worst).max(*slowest);
            }
            tally.merge(t);
        }
    }
    let elapsed = start.elapsed();
    let accepted = tally.accepted_latencies.len() as u64;
    json!({
        "target_rate": crate::stats::round(per_sec),
        "arrivals": arrivals,
        "accepted": accepted,
        "accepted_per_sec": rate(accepted, elapsed),
        "attempt_latency": LatencySummary::from_samples(&mut tally.attempt_latencies),
        "accepted_latency": LatencySummary::from_samples(&mut tally.accepted_latencies),
        "slowest_ms_by_second": slowest_by_second.into_iter().map(|d| crate::stats::round(d.as_secs_f64() * 1_000.0)).collect::<Vec<_>>(),
        "lost_races_409": tally.lost_races,
        "errors_5xx": tally.errors_5xx.values().sum::<u64>(),
        "transport_errors": tally.transport_errors,
        "other_4xx_by_code": tally.other_4xx,
    })
}
