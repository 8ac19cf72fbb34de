//! The bid load a phase runs while its clients watch: bidders climbing a shared ladder per auction
//! (as in the `bids` scenario, simplified), recording when each bid was sent and accepted; as fast
//! as the server answers, or paced to a number of bids a second.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::timings::Timings;
use crate::client::{Api, Auction, Session};
use crate::seed::BID_INCREMENT;
use crate::stats::{merge_counts, micros, rate, round, summarize};

/// The shared view of one auction.
#[derive(Debug, Clone, Copy)]
struct Rung {
    /// The next amount to hand out; distinct for every attempt, so (auction, amount) names a bid.
    ladder: i64,
    seq: i64,
    leader: Option<i64>,
    open: bool,
}

struct Board {
    ids: Vec<i64>,
    rungs: Vec<Mutex<Rung>>,
}

impl Board {
    fn get(&self, idx: usize) -> Rung {
        *self.rungs[idx].lock().unwrap()
    }

    fn claim(&self, idx: usize) -> i64 {
        let mut rung = self.rungs[idx].lock().unwrap();
        let amount = rung.ladder;
        rung.ladder += BID_INCREMENT;
        amount
    }

    fn raise(&self, idx: usize, minimum: i64) {
        let mut rung = self.rungs[idx].lock().unwrap();
        rung.ladder = rung.ladder.max(minimum);
    }

    fn observe(&self, idx: usize, a: &Auction) {
        let mut rung = self.rungs[idx].lock().unwrap();
        rung.ladder = rung.ladder.max(a.min_next_bid);
        if a.seq >= rung.seq {
            rung.seq = a.seq;
            rung.leader = a.leader_id;
            rung.open = a.status == "active";
        }
    }
}

/// Hands out the moments to send a bid: `rate` a second across all bidders, on a fixed schedule
/// (a tick missed because every bidder was busy is skipped, not made up in a burst).
struct Pacer(tokio::sync::Mutex<tokio::time::Interval>);

impl Pacer {
    fn new(rate: f64) -> Self {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Self(tokio::sync::Mutex::new(ticks))
    }

    async fn wait(&self) {
        self.0.lock().await.tick().await;
    }
}

#[derive(Default)]
struct Tally {
    attempted: u64,
    accepted_us: Vec<u32>,
    lost_races: u64,
    errors_5xx: BTreeMap<u16, u64>,
    other_4xx: BTreeMap<String, u64>,
    transport_errors: u64,
}

/// Runs `bidders` against `auctions` for `duration`, sending `pace` bids a second in all (`None`:
/// each bidder bids again as soon as it has its answer); returns the load's report.
pub async fn run(
    api: &Api,
    bidders: &[Session],
    auctions: &[Auction],
    timings: &Arc<Timings>,
    duration: Duration,
    pace: Option<f64>,
) -> Value {
    let pacer = pace.map(|pace| Arc::new(Pacer::new(pace)));
    let board = Arc::new(Board {
        ids: auctions.iter().map(|a| a.id).collect(),
        rungs: auctions
            .iter()
            .map(|a| {
                Mutex::new(Rung { ladder: a.min_next_bid, seq: a.seq, leader: a.leader_id, open: a.status == "active" })
            })
            .collect(),
    });
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = bidders
        .iter()
        .map(|me| {
            let (api, me, board, timings) = (api.clone(), me.clone(), Arc::clone(&board), Arc::clone(timings));
            let pacer = pacer.clone();
            tokio::spawn(async move { bid_loop(&api, &me, &board, &timings, pacer.as_deref(), deadline).await })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => {
                tally.attempted += t.attempted;
                tally.accepted_us.extend(t.accepted_us);
                tally.lost_races += t.lost_races;
                merge_counts(&mut tally.errors_5xx, &t.errors_5xx);
                merge_counts(&mut tally.other_4xx, &t.other_4xx);
                tally.transport_errors += t.transport_errors;
            }
            Err(e) => eprintln!("a bidder panicked: {e}"),
        }
    }
    let elapsed = start.elapsed();
    let accepted = tally.accepted_us.len() as u64;
    json!({
        "bidders": bidders.len(),
        "auctions": auctions.len(),
        "paced_bids_per_sec": pace.map(round),
        "attempted_per_sec": rate(tally.attempted, elapsed),
        "elapsed_secs": round(elapsed.as_secs_f64()),
        "attempted": tally.attempted,
        "accepted": accepted,
        "accepted_per_sec": rate(accepted, elapsed),
        "accepted_latency": summarize(&mut tally.accepted_us),
        "lost_races_409": tally.lost_races,
        "errors_5xx": tally.errors_5xx.values().sum::<u64>(),
        "errors_5xx_by_status": tally.errors_5xx,
        "other_4xx_by_code": tally.other_4xx,
        "transport_errors": tally.transport_errors,
    })
}

async fn bid_loop(
    api: &Api,
    me: &Session,
    board: &Board,
    timings: &Timings,
    pacer: Option<&Pacer>,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut waits = 0_u32;
    while Instant::now() < deadline {
        let idx = rand::random_range(0..board.ids.len());
        let rung = board.get(idx);
        if !rung.open {
            if (0..board.ids.len()).all(|i| !board.get(i).open) {
                eprintln!("every auction of this phase stopped taking bids");
                break;
            }
            continue;
        }
        if rung.leader == Some(me.user_id) {
            // Leading: wait to be outbid, re-reading the auction now and then in case we missed it.
            waits += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
            if waits.is_multiple_of(100) {
                refresh(api, board, idx).await;
            }
            continue;
        }
        if let Some(pacer) = pacer {
            pacer.wait().await;
            if Instant::now() >= deadline {
                break;
            }
        }
        let (id, amount) = (board.ids[idx], board.claim(idx));
        let sent = Instant::now();
        timings.record_sent(id, amount, sent);
        tally.attempted += 1;
        let reply = match api.place_bid(me, id, amount).await {
            Ok(reply) => reply,
            Err(_) => {
                tally.transport_errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let answered = Instant::now();
        let code = reply.error_code().unwrap_or("");
        match reply.status.as_u16() {
            200..=299 => {
                if let Some(bid_id) = reply.body.pointer("/bid/id").and_then(Value::as_i64) {
                    timings.record_accepted(bid_id, answered);
                }
                tally.accepted_us.push(micros(answered - sent));
                match Auction::deserialize(&reply.body["auction"]) {
                    Ok(a) => board.observe(idx, &a),
                    Err(_) => board.raise(idx, amount + BID_INCREMENT),
                }
            }
            409 if code == "bid_too_low" => {
                tally.lost_races += 1;
                match reply.minimum() {
                    Some(minimum) => board.raise(idx, minimum),
                    None => refresh(api, board, idx).await,
                }
            }
            status @ 500.. => *tally.errors_5xx.entry(status).or_default() += 1,
            status => {
                if code == "auction_not_active" {
                    board.rungs[idx].lock().unwrap().open = false;
                }
                *tally.other_4xx.entry(format!("{status} {code}")).or_default() += 1;
            }
        }
    }
    tally
}

async fn refresh(api: &Api, board: &Board, idx: usize) {
    if let Ok(reply) = api.get_auction(board.ids[idx]).await
        && reply.status.is_success()
        && let Ok(a) = Auction::deserialize(&reply.body)
    {
        board.observe(idx, &a);
    }
}
