//! `fanout`: how fast bid events reach many WebSocket watchers, and what the watchers cost the web
//! server.
//!
//! Phase `one_auction_saturated`: 1,000 clients on one hot auction while 50 bidders (`--concurrency`)
//! bid as fast as the server answers: the most bid events a second it fans out to 1,000 sockets.
//! There the server is saturated by construction and latency is queueing, so it is reported, not
//! judged. Phase `one_auction`: the same with bids sent at 80 % of that rate (or `--rate` a second),
//! the latency the target is about. Phase `spread`: 5,000 clients, 10 on each of 500 auctions, the
//! bidders as fast as the server answers (a few events a second per auction: the bid engine, not
//! the fan-out, is saturated), latency and the server's memory judged. Each phase runs for `--duration-secs`; every client times
//! each `bid_placed` from the bid's 201 answer (`from_accept`) and from when its request was sent
//! (`from_send`), and checks `seq` for gaps.

mod clients;
mod load;
mod timings;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use self::clients::{Client, Outcome, Target};
use self::timings::Timings;
use crate::client::{Api, Auction, Session};
use crate::procfs::{self, PeakSampler};
use crate::seed::{self, FIRST_BIDDER, SELLERS};
use crate::stats::{Check, all_pass, round, summarize};
use crate::ws;

const HOT_CLIENTS: usize = 1_000;
const SPREAD_AUCTIONS: usize = 500;
const CLIENTS_PER_SPREAD_AUCTION: usize = 10;
const P50_TARGET_MS: f64 = 10.0;
const P99_TARGET_MS: f64 = 50.0;
const RSS_TARGET_MB: f64 = 150.0;
/// The share of the saturated rate at which the hot auction's latency is judged (as in `bids`).
const LOADED: f64 = 0.8;
/// After the load stops, how long clients get to catch up to each auction's final `seq`.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors beyond the sockets: the HTTP pool, stdio, the runtime.
const SPARE_FDS: u64 = 200;

/// What the phases share.
struct Ctx<'a> {
    api: &'a Api,
    ws_base: String,
    bidders: &'a [Session],
    duration: Duration,
    web_pid: Option<u32>,
}

/// Runs the phases against `base_url` with `bidders` bidders; the hot auction's judged phase sends
/// `hot_rate` bids a second (default: 80 % of the saturated phase's accepted rate).
pub async fn run(
    api: &Api,
    base_url: &str,
    duration: Duration,
    bidders: usize,
    hot_rate: Option<f64>,
    web_pid: Option<u32>,
) -> anyhow::Result<Value> {
    let ws_base = ws::ws_base(base_url);
    anyhow::ensure!(!ws_base.starts_with("wss://"), "fanout speaks plain ws:// only; give an http:// --base-url");
    let needed = (SPREAD_AUCTIONS * CLIENTS_PER_SPREAD_AUCTION) as u64 + SPARE_FDS;
    let fd_limit = procfs::open_files_soft_limit();
    if let Some(limit) = fd_limit.filter(|&l| l < needed) {
        eprintln!(
            "warning: the open-files limit is {limit}, below the ~{needed} this needs: run `ulimit -n 65536` first"
        );
    }
    let web_pid = web_pid.or_else(procfs::find_web_pid);

    let sellers = seed::sign_in_many(api, SELLERS, false).await?;
    let count = u32::try_from(bidders)?;
    let bidders = seed::sign_in_many(api, FIRST_BIDDER..FIRST_BIDDER + count, true).await?;
    let hot = seed::create_auctions(api, &sellers, 1, "fanout-hot").await?;
    let spread = seed::create_auctions(api, &sellers, SPREAD_AUCTIONS, "fanout-spread").await?;

    let ctx = Ctx { api, ws_base, bidders: &bidders, duration, web_pid };
    let saturated = phase(&ctx, "one_auction_saturated", &hot, HOT_CLIENTS, None, &[]).await?;
    let max_rate = saturated["load"]["accepted_per_sec"].as_f64().unwrap_or(0.0);
    let rate = hot_rate.unwrap_or((LOADED * max_rate).max(1.0));
    let one = phase(&ctx, "one_auction", &hot, HOT_CLIENTS, Some(rate), &[Judged::Latency]).await?;
    let spread =
        phase(&ctx, "spread", &spread, CLIENTS_PER_SPREAD_AUCTION, None, &[Judged::Latency, Judged::Rss]).await?;
    let pass = [&saturated, &one, &spread].iter().all(|p| p["pass"] == true);
    Ok(json!({
        "scenario": "fanout",
        "duration_secs": duration.as_secs_f64(),
        "bidders": bidders.len(),
        "web_pid": web_pid,
        "open_files_soft_limit": fd_limit,
        "phases": [saturated, one, spread],
        "pass": pass,
    }))
}

/// What a phase is judged on besides connections, gaps and early closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    /// Event latency (p50, p99).
    Latency,
    /// The web server's peak memory.
    Rss,
}

/// `per_auction` clients on each of `auctions` while the bidders bid on them: `pace` bids a second
/// in all, or (`None`) each bidder again as soon as it has its answer.
async fn phase(
    ctx: &Ctx<'_>,
    name: &str,
    auctions: &[Auction],
    per_auction: usize,
    pace: Option<f64>,
    judged: &[Judged],
) -> anyhow::Result<Value> {
    let planned = auctions.len() * per_auction;
    eprintln!("{name}: {planned} clients on {} auction(s)", auctions.len());
    let ids: Vec<i64> = auctions.iter().map(|a| a.id).collect();
    let seqs = current(ctx.api, &ids).await?;
    let targets: Vec<Target> = auctions
        .iter()
        .flat_map(|a| std::iter::repeat_n(Target { auction_id: a.id, after_seq: seqs[&a.id].seq }, per_auction))
        .collect();

    let rss_before = ctx.web_pid.and_then(procfs::rss_kib);
    let sampler = ctx.web_pid.map(PeakSampler::start);
    let timings = Arc::new(Timings::new());
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let connected = clients::connect_all(&ctx.ws_base, &targets, &timings, &stopped).await;
    let connect_secs = round(started.elapsed().as_secs_f64());
    let rss_connected = ctx.web_pid.and_then(procfs::rss_kib);
    eprintln!(
        "{name}: {} of {planned} connected in {connect_secs} s (failures: {:?}); bidding for {:?}",
        connected.clients.len(),
        connected.failures,
        ctx.duration
    );

    let fresh: Vec<Auction> = ids.iter().map(|id| seqs[id].clone()).collect();
    let load = load::run(ctx.api, ctx.bidders, &fresh, &timings, ctx.duration, pace).await;
    let behind = drain(ctx.api, &ids, &connected.clients).await;
    let clients_connected = connected.clients.len();
    let outcomes = clients::finish(connected.clients, &stop).await;
    let rss_peak = sampler.and_then(PeakSampler::finish);

    let mut summary = Summary::default();
    for outcome in outcomes {
        summary.add(outcome);
    }
    let from_accept = summarize(&mut summary.from_accept_us);
    let from_send = summarize(&mut summary.from_send_us);
    let early: u64 = summary.ended_early.values().sum();
    let mut checks = vec![
        Check::at_least("clients_connected", planned as f64, clients_connected as f64),
        Check::at_least("latency_samples", 1.0, from_accept.samples as f64),
        Check::at_most("gaps", 0.0, summary.gaps as f64),
        Check::at_most("clients_disconnected_early", 0.0, early as f64),
    ];
    if judged.contains(&Judged::Latency) {
        checks.push(Check::at_most("from_accept_p50_ms", P50_TARGET_MS, from_accept.p50_ms));
        checks.push(Check::at_most("from_accept_p99_ms", P99_TARGET_MS, from_accept.p99_ms));
    }
    if judged.contains(&Judged::Rss) {
        let peak = rss_peak.map_or(f64::INFINITY, procfs::mb);
        checks.push(Check::at_most("web_rss_peak_mb", RSS_TARGET_MB, peak));
    }
    Ok(json!({
        "name": name,
        "auctions": auctions.len(),
        "clients_planned": planned,
        "clients_connected": clients_connected,
        "connect_failures": connected.failures,
        "connect_secs": connect_secs,
        "clients_disconnected_early": early,
        "early_close_reasons": summary.ended_early,
        "clients_behind_at_end": behind,
        "events_received": summary.events,
        "bid_events_received": summary.bid_events,
        "event_latency_from_accept": from_accept,
        "event_latency_from_send": from_send,
        "bid_events_before_accept": summary.before_accept,
        "bid_events_unknown_bid": summary.unknown_bids,
        "gaps": summary.gaps,
        "events_missing_in_gaps": summary.missing_events,
        "repeated_events": summary.repeats,
        "unparsable_messages": summary.unparsable,
        "web_rss_mb": {
            "before_connect": rss_before.map(procfs::mb),
            "all_connected": rss_connected.map(procfs::mb),
            "peak": rss_peak.map(procfs::mb),
        },
        "load": load,
        "checks": checks,
        "pass": all_pass(&checks),
    }))
}

/// Every client's outcome, added up.
#[derive(Default)]
struct Summary {
    events: u64,
    bid_events: u64,
    from_accept_us: Vec<u32>,
    from_send_us: Vec<u32>,
    before_accept: u64,
    unknown_bids: u64,
    gaps: u64,
    missing_events: u64,
    repeats: u64,
    unparsable: u64,
    ended_early: BTreeMap<String, u64>,
}

impl Summary {
    fn add(&mut self, o: Outcome) {
        self.events += o.events;
        self.bid_events += o.bid_events;
        self.from_accept_us.extend(o.from_accept_us);
        self.from_send_us.extend(o.from_send_us);
        self.before_accept += o.before_accept;
        self.unknown_bids += o.unknown_bids;
        self.gaps += o.gaps;
        self.missing_events += o.missing_events;
        self.repeats += o.repeats;
        self.unparsable += o.unparsable;
        if let Some(reason) = o.ended_early {
            *self.ended_early.entry(reason).or_default() += 1;
        }
    }
}

/// The auctions as they are now (`seq`, price, leader), by id.
async fn current(api: &Api, ids: &[i64]) -> anyhow::Result<HashMap<i64, Auction>> {
    stream::iter(ids.iter().copied())
        .map(|id| async move {
            let body = api.get_auction(id).await.context("failed to read an auction")?.ok("reading an auction")?;
            let auction = Auction::deserialize(&body).context("unexpected auction JSON")?;
            anyhow::Ok((id, auction))
        })
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// Waits until every live client has seen its auction's final `seq` (or [`DRAIN_TIMEOUT`]); returns
/// how many had not.
async fn drain(api: &Api, ids: &[i64], clients: &[Client]) -> usize {
    let finals = match current(api, ids).await {
        Ok(finals) => finals,
        Err(e) => {
            eprintln!("could not read the final seqs: {e:#}");
            return 0;
        }
    };
    let behind = || {
        clients
            .iter()
            .filter(|c| !c.task.is_finished())
            .filter(|c| c.last_seq.load(Ordering::Relaxed) < finals[&c.target.auction_id].seq)
            .count()
    };
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let n = behind();
        if n == 0 || Instant::now() >= deadline {
            if n > 0 {
                eprintln!("{n} client(s) still behind their auction's final seq after {DRAIN_TIMEOUT:?}");
            }
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
