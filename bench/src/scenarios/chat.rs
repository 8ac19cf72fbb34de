//! `chat`: how fast a message reaches the other party's `/ws/me`, and what thousands of those
//! sockets cost the web server.
//!
//! 2,000 users (`bench_u10000` on) each hold one `/ws/me` socket, opened at the `event_seq` that
//! `GET /me` reports. 200 of them sell an auction, and every user has conversations with two
//! sellers. Messages go open loop at `--rate` (200/s) for `--duration-secs` between the parties of
//! random conversations, either way. Each recipient notes when every `message_received` arrives and
//! checks its stream's `seq` for gaps; afterwards each accepted message is timed from its 201
//! answer (`from_accept`) and from when its request was sent (`from_send`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;

use crate::client::{Api, Session};
use crate::procfs::{self, PeakSampler};
use crate::seed::{self, auction_body};
use crate::stats::{Check, all_pass, micros, rate, round, summarize};
use crate::ws::{self, Socket};

/// How many users, one socket each.
const USERS: u32 = 2_000;
/// The first chat user's number (`bench_u10000`), clear of the other scenarios' users.
const FIRST_USER: u32 = 10_000;
/// Users who sell one auction each.
const SELLERS: usize = 200;
/// Conversations each user opens, with distinct sellers.
const CONVERSATIONS_PER_USER: usize = 2;
/// Setup requests in flight at once (those that do not hash passwords).
const SETUP_PARALLELISM: usize = 32;
const P50_TARGET_MS: f64 = 10.0;
const P99_TARGET_MS: f64 = 50.0;
/// After the last message is accepted, how long recipients get to receive everything.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors beyond the sockets: the HTTP pool, stdio, the runtime.
const SPARE_FDS: u64 = 200;

/// One conversation, by index into the users.
#[derive(Debug, Clone, Copy)]
struct Conversation {
    id: i64,
    buyer: usize,
    seller: usize,
}

/// What the scenario is run with.
pub struct Options {
    pub duration: Duration,
    /// Messages a second.
    pub rate: u32,
    pub web_pid: Option<u32>,
}

/// Sets up the users, their conversations and sockets, sends the messages and reports.
pub async fn run(api: &Api, base_url: &str, options: Options) -> anyhow::Result<Value> {
    let ws_base = ws::ws_base(base_url);
    anyhow::ensure!(!ws_base.starts_with("wss://"), "chat speaks plain ws:// only; give an http:// --base-url");
    let needed = u64::from(USERS) + SPARE_FDS;
    let fd_limit = procfs::open_files_soft_limit();
    if let Some(limit) = fd_limit.filter(|&l| l < needed) {
        eprintln!("warning: the open-files limit is {limit}, below the ~{needed} this needs: raise `ulimit -n` first");
    }
    let web_pid = options.web_pid.or_else(procfs::find_web_pid);

    let users = seed::sign_in_many(api, FIRST_USER..FIRST_USER + USERS, false).await?;
    let conversations = open_conversations(api, &users).await?;
    let seqs = event_seqs(api, &users).await?;

    let rss_before = web_pid.and_then(procfs::rss_kib);
    let sampler = web_pid.map(PeakSampler::start);
    let (stop, stopped) = watch::channel(false);
    eprintln!("connecting {} sockets to /ws/me", users.len());
    let started = Instant::now();
    let (recipients, connect_failures) = connect_all(&ws_base, &users, &seqs, &stopped).await;
    let connect_secs = round(started.elapsed().as_secs_f64());
    let rss_connected = web_pid.and_then(procfs::rss_kib);
    eprintln!(
        "{} of {} connected in {connect_secs} s (failures: {connect_failures:?}); sending {}/s for {:?}",
        recipients.len(),
        users.len(),
        options.rate,
        options.duration
    );

    let load = send_messages(api, &users, &conversations, options.rate, options.duration).await;
    let behind = drain(&recipients, &load.expected_per_recipient()).await;
    let clients_connected = recipients.len();
    let _ = stop.send(true);
    let mut arrivals: HashMap<i64, Instant> = HashMap::new();
    let mut streams = StreamTally::default();
    for (_, recipient) in recipients {
        match recipient.task.await {
            Ok(outcome) => streams.add(outcome, &mut arrivals),
            Err(e) => eprintln!("a WebSocket client panicked: {e}"),
        }
    }
    let rss_peak = sampler.and_then(PeakSampler::finish);

    let timed = load.time(&arrivals);
    let (mut from_accept, mut from_send) = (timed.from_accept_us, timed.from_send_us);
    let from_accept = summarize(&mut from_accept);
    let from_send = summarize(&mut from_send);
    let early: u64 = streams.ended_early.values().sum();
    let planned_messages = u64::from(options.rate) * options.duration.as_secs();
    let checks = vec![
        Check::at_least("clients_connected", f64::from(USERS), clients_connected as f64),
        Check::at_least("messages_accepted", planned_messages as f64, load.accepted.len() as f64),
        Check::at_most("from_accept_p50_ms", P50_TARGET_MS, from_accept.p50_ms),
        Check::at_most("from_accept_p99_ms", P99_TARGET_MS, from_accept.p99_ms),
        Check::at_most("messages_never_received", 0.0, timed.missing as f64),
        Check::at_most("gaps", 0.0, streams.gaps as f64),
        Check::at_most("clients_disconnected_early", 0.0, early as f64),
    ];
    let mb = |kib: Option<u64>| kib.map(procfs::mb);
    Ok(json!({
        "scenario": "chat",
        "users": users.len(),
        "conversations": conversations.len(),
        "rate_planned_per_sec": options.rate,
        "duration_secs": options.duration.as_secs_f64(),
        "web_pid": web_pid,
        "open_files_soft_limit": fd_limit,
        "clients_connected": clients_connected,
        "connect_failures": connect_failures,
        "connect_secs": connect_secs,
        "messages_planned": planned_messages,
        "messages_accepted": load.accepted.len(),
        "messages_accepted_per_sec": rate(load.accepted.len() as u64, load.elapsed),
        "send_latency": summarize(&mut load.accepted.iter().map(|m| micros(m.accepted - m.sent)).collect::<Vec<_>>()),
        "send_failures": load.failures,
        "messages_received": streams.messages,
        "messages_never_received": timed.missing,
        "messages_received_before_their_201": timed.before_accept,
        "latency_from_accept": from_accept,
        "latency_from_send": from_send,
        "events_received": streams.events,
        "gaps": streams.gaps,
        "events_missing_in_gaps": streams.missing_events,
        "repeated_events": streams.repeats,
        "unparsable_messages": streams.unparsable,
        "clients_behind_at_end": behind,
        "clients_disconnected_early": early,
        "early_close_reasons": streams.ended_early,
        "web_rss_mb": {
            "before_connect": mb(rss_before),
            "all_connected": mb(rss_connected),
            "peak": mb(rss_peak),
        },
        "checks": checks,
        "pass": all_pass(&checks),
    }))
}

/// The first [`SELLERS`] users each list an auction; every user opens conversations with
/// [`CONVERSATIONS_PER_USER`] other sellers.
async fn open_conversations(api: &Api, users: &[Session]) -> anyhow::Result<Vec<Conversation>> {
    eprintln!("creating {SELLERS} auctions");
    let auctions: Vec<(usize, i64)> = stream::iter(0..SELLERS)
        .map(|seller| async move {
            let auction = api.create_auction(&users[seller], &auction_body("chat")).await?;
            anyhow::Ok((seller, auction.id))
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .try_collect()
        .await?;
    let mut wanted = Vec::with_capacity(users.len() * CONVERSATIONS_PER_USER);
    for buyer in 0..users.len() {
        let others: Vec<&(usize, i64)> = auctions.iter().filter(|(seller, _)| *seller != buyer).collect();
        for picked in rand::seq::index::sample(&mut rand::rng(), others.len(), CONVERSATIONS_PER_USER) {
            let (seller, auction_id) = *others[picked];
            wanted.push((buyer, seller, auction_id));
        }
    }
    eprintln!("opening {} conversations", wanted.len());
    stream::iter(wanted)
        .map(|(buyer, seller, auction_id)| async move {
            let path = format!("/auctions/{auction_id}/conversations");
            let body = api
                .call(Method::POST, &path, Some(&users[buyer].token), None, None)
                .await
                .context("failed to open a conversation")?
                .ok("opening a conversation")?;
            let id = body["id"].as_i64().context("conversation answer has no id")?;
            anyhow::Ok(Conversation { id, buyer, seller })
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .try_collect()
        .await
}

/// Each user's `event_seq` from `GET /me`, so their socket sends only what happens next.
async fn event_seqs(api: &Api, users: &[Session]) -> anyhow::Result<Vec<i64>> {
    let mut seqs = vec![0; users.len()];
    let read: Vec<(usize, i64)> = stream::iter(users.iter().enumerate())
        .map(|(i, user)| async move {
            let me = api
                .call(Method::GET, "/me", Some(&user.token), None, None)
                .await
                .context("failed to read /me")?
                .ok("reading /me")?;
            anyhow::Ok((i, me["event_seq"].as_i64().context("/me has no event_seq")?))
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .try_collect()
        .await?;
    for (i, seq) in read {
        seqs[i] = seq;
    }
    Ok(seqs)
}

/// A user's socket: its reader task and how many messages it has received so far.
struct Recipient {
    received: Arc<AtomicU64>,
    task: JoinHandle<StreamOutcome>,
}

/// Opens every user's `/ws/me`; the recipients by user index, and why the others failed.
async fn connect_all(
    ws_base: &str,
    users: &[Session],
    seqs: &[i64],
    stop: &watch::Receiver<bool>,
) -> (HashMap<usize, Recipient>, BTreeMap<String, u64>) {
    let results: Vec<(usize, Result<Recipient, String>)> = stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let stop = stop.clone();
            async move { (i, connect(ws_base, user, seqs[i], stop).await) }
        })
        .buffer_unordered(ws::CONNECT_PARALLELISM)
        .collect()
        .await;
    let (mut recipients, mut failures) = (HashMap::new(), BTreeMap::new());
    for (i, result) in results {
        match result {
            Ok(recipient) => {
                recipients.insert(i, recipient);
            }
            Err(reason) => *failures.entry(reason).or_default() += 1,
        }
    }
    (recipients, failures)
}

async fn connect(
    ws_base: &str,
    user: &Session,
    after_seq: i64,
    stop: watch::Receiver<bool>,
) -> Result<Recipient, String> {
    let mut request =
        format!("{ws_base}/ws/me?after_seq={after_seq}").into_client_request().map_err(|e| ws::describe(&e))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", user.token)).map_err(|e| e.to_string())?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let socket = ws::connect(request).await?;
    let received = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(read(socket, after_seq, Arc::clone(&received), stop));
    Ok(Recipient { received, task })
}

/// What one socket saw.
#[derive(Debug, Default)]
struct StreamOutcome {
    events: u64,
    /// `message_received`: the message's id and when it arrived.
    messages: Vec<(i64, Instant)>,
    gaps: u64,
    missing_events: u64,
    repeats: u64,
    unparsable: u64,
    /// Why the socket ended before the bench stopped it.
    ended_early: Option<String>,
}

/// The event fields the bench reads.
#[derive(Deserialize)]
struct UserEvent {
    #[serde(rename = "type")]
    kind: String,
    seq: i64,
    #[serde(default)]
    data: EventData,
}

#[derive(Default, Deserialize)]
struct EventData {
    id: Option<i64>,
}

async fn read(
    mut socket: Socket,
    after_seq: i64,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> StreamOutcome {
    let mut out = StreamOutcome::default();
    let mut seq = after_seq;
    loop {
        let message = tokio::select! {
            biased;
            // Only `true` is ever sent; a dropped sender means stop too.
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
                return out;
            }
            message = socket.next() => message,
        };
        let now = Instant::now();
        match message {
            Some(Ok(Message::Text(text))) => {
                if out.on_event(&text, now, &mut seq) {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                out.ended_early = Some(frame.map_or_else(|| "no_code".to_owned(), |f| u16::from(f.code).to_string()));
                return out;
            }
            // tungstenite answers pings itself.
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

impl StreamOutcome {
    /// Counts one event; true when it is a new `message_received`.
    fn on_event(&mut self, text: &str, now: Instant, seq: &mut i64) -> bool {
        let Ok(event) = serde_json::from_str::<UserEvent>(text) else {
            self.unparsable += 1;
            return false;
        };
        self.events += 1;
        if event.seq <= *seq {
            self.repeats += 1;
            return false;
        }
        if event.seq > *seq + 1 {
            self.gaps += 1;
            self.missing_events += u64::try_from(event.seq - *seq - 1).unwrap_or(0);
        }
        *seq = event.seq;
        match (event.kind.as_str(), event.data.id) {
            ("message_received", Some(id)) => {
                self.messages.push((id, now));
                true
            }
            _ => false,
        }
    }
}

/// Every socket's outcome, added up.
#[derive(Default)]
struct StreamTally {
    events: u64,
    messages: u64,
    gaps: u64,
    missing_events: u64,
    repeats: u64,
    unparsable: u64,
    ended_early: BTreeMap<String, u64>,
}

impl StreamTally {
    /// Adds `o` and files its messages' arrivals by message id.
    fn add(&mut self, o: StreamOutcome, arrivals: &mut HashMap<i64, Instant>) {
        self.events += o.events;
        self.messages += o.messages.len() as u64;
        self.gaps += o.gaps;
        self.missing_events += o.missing_events;
        self.repeats += o.repeats;
        self.unparsable += o.unparsable;
        if let Some(reason) = o.ended_early {
            *self.ended_early.entry(reason).or_default() += 1;
        }
        arrivals.extend(o.messages);
    }
}

/// A message the server accepted.
struct Accepted {
    id: i64,
    recipient: usize,
    sent: Instant,
    accepted: Instant,
}

/// What the senders did.
struct Load {
    accepted: Vec<Accepted>,
    /// Failed sends by status and error code, or `transport`.
    failures: BTreeMap<String, u64>,
    elapsed: Duration,
}

/// Latencies of the accepted messages that arrived.
struct Timed {
    from_accept_us: Vec<u32>,
    from_send_us: Vec<u32>,
    before_accept: u64,
    missing: u64,
}

impl Load {
    /// Messages accepted for each recipient.
    fn expected_per_recipient(&self) -> HashMap<usize, u64> {
        let mut expected = HashMap::new();
        for message in &self.accepted {
            *expected.entry(message.recipient).or_default() += 1;
        }
        expected
    }

    /// Times each accepted message by when it arrived; one that arrived before its 201 counts as 0.
    fn time(&self, arrivals: &HashMap<i64, Instant>) -> Timed {
        let mut timed = Timed { from_accept_us: Vec::new(), from_send_us: Vec::new(), before_accept: 0, missing: 0 };
        for message in &self.accepted {
            let Some(&arrived) = arrivals.get(&message.id) else {
                timed.missing += 1;
                continue;
            };
            if arrived < message.accepted {
                timed.before_accept += 1;
            }
            timed.from_accept_us.push(micros(arrived.saturating_duration_since(message.accepted)));
            timed.from_send_us.push(micros(arrived.saturating_duration_since(message.sent)));
        }
        timed
    }
}

/// Sends `rate` messages a second for `duration`, each on its own schedule whatever the answers
/// take (open loop), in a random conversation from a random one of its parties.
async fn send_messages(
    api: &Api,
    users: &[Session],
    conversations: &[Conversation],
    rate: u32,
    duration: Duration,
) -> Load {
    let total = u64::from(rate) * duration.as_secs();
    let start = Instant::now();
    let mut sends = JoinSet::new();
    for n in 0..total {
        tokio::time::sleep_until((start + Duration::from_secs_f64(n as f64 / f64::from(rate))).into()).await;
        let conversation = conversations[rand::random_range(0..conversations.len())];
        let (sender, recipient) = match rand::random::<bool>() {
            true => (conversation.buyer, conversation.seller),
            false => (conversation.seller, conversation.buyer),
        };
        let (api, token) = (api.clone(), users[sender].token.clone());
        sends.spawn(async move {
            let path = format!("/conversations/{}/messages", conversation.id);
            let body = json!({ "body": format!("bench message {n}") });
            let sent = Instant::now();
            let reply = api.call(Method::POST, &path, Some(&token), Some(&body), None).await;
            let accepted = Instant::now();
            match reply {
                Ok(reply) if reply.status == StatusCode::CREATED => match reply.body["id"].as_i64() {
                    Some(id) => Ok(Accepted { id, recipient, sent, accepted }),
                    None => Err("201 without an id".to_owned()),
                },
                Ok(reply) => Err(format!("{} {}", reply.status.as_u16(), reply.error_code().unwrap_or(""))),
                Err(_) => Err("transport".to_owned()),
            }
        });
    }
    let mut load =
        Load { accepted: Vec::with_capacity(total as usize), failures: BTreeMap::new(), elapsed: Duration::ZERO };
    while let Some(joined) = sends.join_next().await {
        match joined {
            Ok(Ok(accepted)) => load.accepted.push(accepted),
            Ok(Err(reason)) => *load.failures.entry(reason).or_default() += 1,
            Err(e) => eprintln!("a sender panicked: {e}"),
        }
    }
    load.elapsed = start.elapsed();
    load
}

/// Waits until every recipient has received every message accepted for it (or [`DRAIN_TIMEOUT`]);
/// returns how many had not.
async fn drain(recipients: &HashMap<usize, Recipient>, expected: &HashMap<usize, u64>) -> usize {
    let behind = || {
        expected
            .iter()
            .filter(|(user, want)| {
                recipients
                    .get(user)
                    .is_some_and(|r| !r.task.is_finished() && r.received.load(Ordering::Relaxed) < **want)
            })
            .count()
    };
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let n = behind();
        if n == 0 || Instant::now() >= deadline {
            if n > 0 {
                eprintln!("{n} recipient(s) still missing messages after {DRAIN_TIMEOUT:?}");
            }
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_repeats_and_messages() {
        let mut out = StreamOutcome::default();
        let mut seq = 3;
        let now = Instant::now();
        let message = r#"{"type":"message_received","seq":4,"at":"x","data":{"id":77,"body":"hi"}}"#;
        assert!(out.on_event(message, now, &mut seq));
        assert!(!out.on_event(message, now, &mut seq));
        assert!(!out.on_event(r#"{"type":"notification","seq":7,"at":"x","data":{"id":5}}"#, now, &mut seq));
        assert!(!out.on_event("not json", now, &mut seq));
        assert_eq!((out.events, out.repeats, out.gaps, out.missing_events, out.unparsable), (3, 1, 1, 2, 1));
        assert_eq!(out.messages, vec![(77, now)]);
        assert_eq!(seq, 7);
    }

    #[test]
    fn timing_counts_early_and_missing_messages() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let load = Load {
            accepted: vec![
                Accepted { id: 1, recipient: 0, sent: t0, accepted: at(4) },
                Accepted { id: 2, recipient: 0, sent: t0, accepted: at(4) },
                Accepted { id: 3, recipient: 1, sent: t0, accepted: at(4) },
            ],
            failures: BTreeMap::new(),
            elapsed: Duration::ZERO,
        };
        let timed = load.time(&HashMap::from([(1, at(6)), (2, at(3))]));
        assert_eq!((timed.before_accept, timed.missing), (1, 1));
        assert_eq!(timed.from_accept_us, vec![2_000, 0]);
        assert_eq!(timed.from_send_us, vec![6_000, 3_000]);
        assert_eq!(load.expected_per_recipient(), HashMap::from([(0, 2), (1, 1)]));
    }
}
