//! `bids`: many funded bidders outbidding each other on fresh auctions.
//!
//! Two phases: "spread" over 100 auctions, then "hot" with every bidder on one auction. Bidders bid
//! the last amount they know to be acceptable (from bid answers and `bid_too_low` details) rather
//! than reading the auction first, so the server sees as many bid attempts as it can take.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{Api, Auction, Session};
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

/// Runs the scenario with `bidders` bidders and returns its report.
pub async fn run(api: &Api, duration: Duration, bidders: usize, admin_token: Option<&str>) -> anyhow::Result<Value> {
    let sellers = seed::sign_in_many(api, SELLERS, false).await?;
    let count = u32::try_from(bidders)?;
    let bidders = seed::sign_in_many(api, FIRST_BIDDER..FIRST_BIDDER + count, true).await?;

    let spread_auctions = seed::create_auctions(api, &sellers, 100, "spread").await?;
    let spread = phase(api, "spread", &bidders, &spread_auctions, duration, 1_000.0).await;
    let hot_auction = seed::create_auctions(api, &sellers, 1, "hot").await?;
    let hot = phase(api, "hot", &bidders, &hot_auction, duration, 500.0).await;

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
        "bidders": bidders.len(),
        "phases": [spread, hot],
        "audit_ok": audit_ok,
        "audit": audit,
        "pass": pass,
    }))
}

/// Every bidder bids on `auctions` until `duration` is up; returns the phase report.
async fn phase(
    api: &Api,
    name: &str,
    bidders: &[Session],
    auctions: &[Auction],
    duration: Duration,
    min_accepted_per_sec: f64,
) -> Value {
    eprintln!("{name}: {} bidders on {} auctions for {duration:?}", bidders.len(), auctions.len());
    let board = Arc::new(Board::new(auctions));
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
    let attempted = tally.attempt_latencies.len() as u64;
    let accepted_per_sec = rate(accepted, elapsed);
    let accepted_latency = LatencySummary::from_samples(&mut tally.accepted_latencies);
    let attempt_latency = LatencySummary::from_samples(&mut tally.attempt_latencies);
    let errors_5xx: u64 = tally.errors_5xx.values().sum();
    let checks = vec![
        Check::at_least("accepted_per_sec", min_accepted_per_sec, accepted_per_sec),
        Check::at_most("accepted_p99_ms", 50.0, accepted_latency.p99_ms),
        Check::at_most("errors_5xx_plus_transport_errors", 0.0, (errors_5xx + tally.transport_errors) as f64),
    ];
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
        let sent = Instant::now();
        let amount = board.claim(idx);
        let reply = match api.place_bid(me, board.ids[idx], amount).await {
            Ok(reply) => reply,
            Err(_) => {
                tally.transport_errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let latency = sent.elapsed();
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
