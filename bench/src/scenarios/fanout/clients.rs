//! WebSocket watchers: connect many with bounded concurrency, read every event, measure how long
//! each `bid_placed` took to arrive and spot gaps in `seq`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::timings::Timings;
use crate::stats::micros;
use crate::ws::{self, Socket};

/// One watcher to open: the auction and the `seq` it already has.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub auction_id: i64,
    pub after_seq: i64,
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: u64,
    pub bid_events: u64,
    /// Latency of each `bid_placed` from the 201 answer, in µs.
    pub from_accept_us: Vec<u32>,
    /// Latency of each `bid_placed` from the moment its request was sent, in µs.
    pub from_send_us: Vec<u32>,
    /// `bid_placed` events that arrived before the bidder had the 201 (so no `from_accept`).
    pub before_accept: u64,
    /// `bid_placed` events for bids this bench did not send.
    pub unknown_bids: u64,
    /// Times `seq` jumped by more than one, and the events skipped by those jumps.
    pub gaps: u64,
    pub missing_events: u64,
    /// Events whose `seq` was not above the last one seen.
    pub repeats: u64,
    pub unparsable: u64,
    /// Why the socket ended before the bench stopped it: a close code, `no_code`, `eof`, or an error.
    pub ended_early: Option<String>,
}

/// A running client: its reader task and the last `seq` it has seen.
pub struct Client {
    pub target: Target,
    pub last_seq: Arc<AtomicI64>,
    pub task: JoinHandle<Outcome>,
}

/// Every client that connected, and why the others did not.
pub struct Connected {
    pub clients: Vec<Client>,
    pub failures: BTreeMap<String, u64>,
}

/// Opens one client per target, [`ws::CONNECT_PARALLELISM`] at a time; each starts reading at once.
pub async fn connect_all(
    ws_base: &str,
    targets: &[Target],
    timings: &Arc<Timings>,
    stop: &watch::Receiver<bool>,
) -> Connected {
    let total = targets.len();
    let results: Vec<Result<Client, String>> = stream::iter(targets.iter().copied().enumerate())
        .map(|(i, target)| {
            let (timings, stop) = (Arc::clone(timings), stop.clone());
            async move {
                let client = connect(ws_base, target, timings, stop).await;
                if (i + 1) % 1_000 == 0 {
                    eprintln!("  {}/{total} connection attempts", i + 1);
                }
                client
            }
        })
        .buffer_unordered(ws::CONNECT_PARALLELISM)
        .collect()
        .await;
    let mut connected = Connected { clients: Vec::with_capacity(total), failures: BTreeMap::new() };
    for result in results {
        match result {
            Ok(client) => connected.clients.push(client),
            Err(reason) => *connected.failures.entry(reason).or_default() += 1,
        }
    }
    connected
}

async fn connect(
    ws_base: &str,
    target: Target,
    timings: Arc<Timings>,
    stop: watch::Receiver<bool>,
) -> Result<Client, String> {
    let url = format!("{ws_base}/ws/auctions/{}?after_seq={}", target.auction_id, target.after_seq);
    let ws = ws::connect(url).await?;
    let last_seq = Arc::new(AtomicI64::new(target.after_seq));
    let task = tokio::spawn(read(ws, target, timings, Arc::clone(&last_seq), stop));
    Ok(Client { target, last_seq, task })
}

async fn read(
    mut ws: Socket,
    target: Target,
    timings: Arc<Timings>,
    last_seq: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut seq = target.after_seq;
    loop {
        let message = tokio::select! {
            biased;
            // Only `true` is ever sent; a dropped sender means stop too.
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return out;
            }
            message = ws.next() => message,
        };
        let now = Instant::now();
        match message {
            Some(Ok(Message::Text(text))) => {
                out.on_event(&text, now, target.auction_id, &timings, &mut seq);
                last_seq.store(seq, Ordering::Relaxed);
            }
            // tungstenite answers pings itself.
            Some(Ok(Message::Close(frame))) => {
                out.ended_early = Some(frame.map_or_else(|| "no_code".to_owned(), |f| u16::from(f.code).to_string()));
                return out;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                out.ended_early = Some(format!("error: {}", ws::describe(&e)));
                return out;
            }
            None => {
                out.ended_early = Some("eof".to_owned());
                return out;
            }
        }
    }
}

/// The event fields the bench reads.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    seq: i64,
    #[serde(default)]
    data: EventData,
}

#[derive(Default, Deserialize)]
struct EventData {
    bid_id: Option<i64>,
    amount: Option<i64>,
}

impl Outcome {
    fn on_event(&mut self, text: &str, now: Instant, auction_id: i64, timings: &Timings, seq: &mut i64) {
        let Ok(event) = serde_json::from_str::<Event<'_>>(text) else {
            self.unparsable += 1;
            return;
        };
        self.events += 1;
        if event.seq <= *seq {
            self.repeats += 1;
            return;
        }
        if event.seq > *seq + 1 {
            self.gaps += 1;
            self.missing_events += u64::try_from(event.seq - *seq - 1).unwrap_or(0);
        }
        *seq = event.seq;
        if event.kind != "bid_placed" {
            return;
        }
        self.bid_events += 1;
        if let Some(sent) = event.data.amount.and_then(|amount| timings.sent_at(auction_id, amount)) {
            self.from_send_us.push(micros(now.saturating_duration_since(sent)));
        } else {
            self.unknown_bids += 1;
            return;
        }
        match event.data.bid_id.and_then(|id| timings.accepted_at(id)) {
            Some(accepted) => self.from_accept_us.push(micros(now.saturating_duration_since(accepted))),
            None => self.before_accept += 1,
        }
    }
}

/// Stops every client and collects what they saw.
pub async fn finish(clients: Vec<Client>, stop: &watch::Sender<bool>) -> Vec<Outcome> {
    let _ = stop.send(true);
    let mut outcomes = Vec::with_capacity(clients.len());
    for client in clients {
        match client.task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => eprintln!("a WebSocket client panicked: {e}"),
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_repeats_and_latencies() {
        let timings = Timings::new();
        let t0 = Instant::now();
        timings.record_sent(5, 2_000, t0);
        timings.record_accepted(9, t0 + Duration::from_millis(3));
        let mut out = Outcome::default();
        let mut seq = 1;
        let later = t0 + Duration::from_millis(4);
        let bid = r#"{"type":"bid_placed","auction_id":5,"seq":2,"at":"x","data":{"bid_id":9,"amount":2000}}"#;
        out.on_event(bid, later, 5, &timings, &mut seq);
        out.on_event(bid, later, 5, &timings, &mut seq);
        out.on_event(r#"{"type":"auction_extended","seq":5,"data":{}}"#, later, 5, &timings, &mut seq);
        assert_eq!((out.events, out.bid_events, out.repeats, out.gaps, out.missing_events), (3, 1, 1, 1, 2));
        assert_eq!((out.from_send_us.as_slice(), out.from_accept_us.as_slice()), (&[4_000][..], &[1_000][..]));
        assert_eq!(seq, 5);
    }
}
