//! `flood`: bogus logins from many tasks while legitimate users keep reading and bidding.
//!
//! Setup signs in [`USERS`] funded bidders and [`SELLERS`] sellers, each sending its sign-up and
//! login as its own client (`X-Forwarded-For: 10.77.x.y`, believed when the web runs with
//! `TRUSTED_PROXIES=127.0.0.1`), so the per-address limits never throttle it; a 429 or 503 is still
//! retried after its `Retry-After`. A baseline phase then runs the legitimate traffic alone for
//! [`BASELINE`], and the flood phase runs it again while `concurrency` tasks send bogus logins back
//! to back, never waiting on `Retry-After`. The legitimate traffic is open-loop: a request starts
//! every `1/rate` s whatever the earlier ones do, cycling `GET /me`, `GET /auctions`, `GET /wallet`
//! and a bid.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::client::{Api, Auction, BENCH_PASSWORD, MAX_AMOUNT, Session};
use crate::seed;
use crate::stats::{LatencySummary, rate as per_sec, round};

/// Legitimate bidders (`bench_flood_0` …).
pub const USERS: u32 = 20;
/// Sellers, numbered after the bidders.
pub const SELLERS: u32 = 2;
/// Auctions the bidders bid on.
const AUCTIONS: usize = 10;
/// How long the legitimate traffic runs alone first.
pub const BASELINE: Duration = Duration::from_secs(5);
/// The legitimate traffic's p99 target during the flood.
const P99_TARGET_MS: f64 = 200.0;
/// Tries per setup request before giving up on throttling.
const SETUP_ATTEMPTS: u32 = 6;
/// The flood's fake addresses come from 198.18.0.0/15, the range set aside for benchmarks.
const FLOOD_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// The largest `--flood-ips`: every address of 198.18.0.0/15.
pub const MAX_FLOOD_IPS: u32 = 1 << 17;

/// How the scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long the flood phase lasts.
    pub duration: Duration,
    /// Flood tasks, each with one login in flight.
    pub concurrency: usize,
    /// Flood source addresses: 1 sends no `X-Forwarded-For`; more picks one at random per request.
    pub flood_ips: u32,
    /// Legitimate requests per second, started on schedule (open loop).
    pub rate: u32,
}

/// Requests that may carry `X-Forwarded-For`, which [`Api`] does not send.
#[derive(Clone)]
struct Raw {
    http: reqwest::Client,
    root: String,
}

/// An answer: status, `Retry-After` in seconds when present, parsed body (`Null` unless JSON).
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

/// A client keeping up to `connections` idle keep-alive connections.
fn http_client(connections: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("failed to build an HTTP client")
}

impl Raw {
    async fn send(
        &self,
        method: Method,
        path: &str,
        ip: Option<&str>,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Result<Answer> {
        let mut req = self.http.request(method, format!("{}{path}", self.root));
        if let Some(ip) = ip {
            req = req.header("X-Forwarded-For", ip);
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let retry_after = resp.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let bytes = resp.bytes().await?;
        Ok(Answer { status, retry_after, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
    }
}

/// A signed-in legitimate user and the address it sends from.
struct Legit {
    session: Session,
    ip: String,
}

/// The auctions bid on and, per auction, the next amount to offer.
struct Board {
    ids: Vec<i64>,
    next: Vec<AtomicI64>,
}

/// Runs the scenario against `base_url`; `api` does the deposits and creates the auctions.
pub async fn run(api: &Api, base_url: &str, options: Options) -> anyhow::Result<Value> {
    let raw = Raw { http: http_client(64)?, root: format!("{}/api/v1", base_url.trim_end_matches('/')) };
    let mut users: Vec<Legit> =
        stream::iter(0..USERS + SELLERS).map(|i| sign_in(&raw, i)).buffered(4).try_collect().await?;
    let sellers: Vec<Session> = users.split_off(USERS as usize).into_iter().map(|u| u.session).collect();
    eprintln!("funding {USERS} bidders");
    stream::iter(&users)
        .map(|u| api.ensure_funds(&u.session, MAX_AMOUNT / 10))
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    // Reuse open auctions of earlier runs: sellers may only have so many open at once.
    let mut auctions: Vec<Auction> = Vec::new();
    for seller in &sellers {
        let query = format!("seller_id={}&status=active&limit={AUCTIONS}", seller.user_id);
        auctions.extend(api.list_auctions(&query).await?.items);
    }
    auctions.truncate(AUCTIONS);
    let missing = AUCTIONS - auctions.len();
    if missing > 0 {
        auctions.extend(seed::create_auctions(api, &sellers, missing, "flood").await?);
    }
    let board = Arc::new(Board {
        ids: auctions.iter().map(|a| a.id).collect(),
        next: auctions.iter().map(|a| AtomicI64::new(a.min_next_bid)).collect(),
    });
    let users = Arc::new(users);

    eprintln!("baseline: {} legitimate requests/s for {BASELINE:?}", options.rate);
    let baseline = legit_phase(&raw, &users, &board, BASELINE, options.rate).await;
    eprintln!(
        "flood: {} tasks of bogus logins from {} address(es) for {:?}, legitimate traffic alongside",
        options.concurrency, options.flood_ips, options.duration
    );
    let (flood, legit) = tokio::join!(
        flood(http_client(options.concurrency)?, format!("{}/sessions", raw.root), options),
        legit_phase(&raw, &users, &board, options.duration, options.rate),
    );
    let met = legit["p99_ms"].as_f64().is_some_and(|p| p <= P99_TARGET_MS) && legit["errors"] == 0;
    Ok(json!({
        "scenario": "flood",
        "duration_secs": options.duration.as_secs_f64(),
        "concurrency": options.concurrency,
        "flood_ips": options.flood_ips,
        "rate": options.rate,
        "users": USERS,
        "auctions": board.ids.len(),
        "baseline": { "duration_secs": BASELINE.as_secs_f64(), "legit": baseline },
        "legit": legit,
        "flood": flood,
        "targets": { "p99_ms": P99_TARGET_MS, "errors": 0, "met": met },
        "pass": met,
    }))
}

/// Logs bench user `i` in from its own address, signing it up first when the login is refused.
async fn sign_in(raw: &Raw, i: u32) -> anyhow::Result<Legit> {
    let username = format!("bench_flood_{i}");
    let ip = format!("10.77.{}.{}", i / 250, i % 250 + 1);
    let login = json!({ "username": username, "password": BENCH_PASSWORD });
    let mut answer = post_patiently(raw, "/sessions", &ip, &login).await?;
    if answer.status == StatusCode::UNAUTHORIZED {
        let email = format!("{username}@bench.example.com");
        let signup = json!({ "username": username, "email": email, "password": BENCH_PASSWORD });
        let made = post_patiently(raw, "/users", &ip, &signup).await?;
        if !made.status.is_success() {
            bail!("sign-up of {username} failed: {} {}", made.status, made.body);
        }
        answer = post_patiently(raw, "/sessions", &ip, &login).await?;
    }
    if answer.status != StatusCode::CREATED {
        bail!("login of {username} failed: {} {}", answer.status, answer.body);
    }
    let token = answer.body["token"].as_str().context("login answer has no token")?.to_owned();
    let user_id = answer.body.pointer("/user/id").and_then(Value::as_i64).context("login answer has no user.id")?;
    Ok(Legit { session: Session { user_id, username, token }, ip })
}

/// POSTs `body` as the client at `ip`; a 429 or 503 is retried after its `Retry-After`.
async fn post_patiently(raw: &Raw, path: &str, ip: &str, body: &Value) -> anyhow::Result<Answer> {
    let mut attempt = 1;
    loop {
        let answer = raw
            .send(Method::POST, path, Some(ip), None, Some(body))
            .await
            .with_context(|| format!("POST {path} as {ip} failed"))?;
        if !matches!(answer.status.as_u16(), 429 | 503) || attempt == SETUP_ATTEMPTS {
            return Ok(answer);
        }
        let wait = answer.retry_after.unwrap_or(1).max(1);
        eprintln!(
            "POST {path} as {ip}: {}, retrying in {wait} s (is the web running with TRUSTED_PROXIES=127.0.0.1?)",
            answer.status
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
        attempt += 1;
    }
}

/// Starts `rate` legitimate requests a second for `duration`, waits for all, and summarises them.
async fn legit_phase(raw: &Raw, users: &Arc<Vec<Legit>>, board: &Arc<Board>, duration: Duration, rate: u32) -> Value {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for k in 0_u64.. {
        ticker.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let (raw, users, board) = (raw.clone(), Arc::clone(users), Arc::clone(board));
        tasks.spawn(async move { legit_request(&raw, &users, &board, k).await });
    }
    let (mut latencies, mut by_status, mut transport_errors) = (Vec::new(), BTreeMap::<u16, u64>::new(), 0_u64);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Some((status, latency))) => {
                latencies.push(latency);
                *by_status.entry(status).or_default() += 1;
            }
            Ok(None) => transport_errors += 1,
            Err(e) => eprintln!("a legitimate request panicked: {e}"),
        }
    }
    let elapsed = start.elapsed();
    let requests = latencies.len() as u64 + transport_errors;
    let refused: u64 = by_status.iter().filter(|&(&s, _)| s == 429 || s >= 500).map(|(_, n)| n).sum();
    let latency = LatencySummary::from_samples(&mut latencies);
    json!({
        "requests": requests,
        "rps": per_sec(requests, elapsed),
        "errors": transport_errors + refused,
        "transport_errors": transport_errors,
        "by_status": by_status,
        "p50_ms": latency.p50_ms,
        "p99_ms": latency.p99_ms,
        "max_ms": latency.max_ms,
        "elapsed_secs": round(elapsed.as_secs_f64()),
    })
}

/// Legitimate request `k`: `k % 4` picks `/me`, `/auctions`, `/wallet` or a bid, `k / 4` the user.
/// Returns the status and latency, or `None` when no answer came.
async fn legit_request(raw: &Raw, users: &[Legit], board: &Board, k: u64) -> Option<(u16, Duration)> {
    let user = &users[(k / 4) as usize % users.len()];
    let (ip, token) = (Some(user.ip.as_str()), Some(user.session.token.as_str()));
    let bid_on = (k % 4 == 3).then(|| rand::random_range(0..board.ids.len()));
    let sent = Instant::now();
    let answer = match (k % 4, bid_on) {
        (0, _) => raw.send(Method::GET, "/me", ip, token, None).await,
        (1, _) => raw.send(Method::GET, "/auctions?limit=20", ip, token, None).await,
        (_, None) => raw.send(Method::GET, "/wallet", ip, token, None).await,
        (_, Some(idx)) => {
            let amount = board.next[idx].fetch_add(seed::BID_INCREMENT, Ordering::Relaxed);
            let path = format!("/auctions/{}/bids", board.ids[idx]);
            raw.send(Method::POST, &path, ip, token, Some(&json!({ "amount": amount }))).await
        }
    };
    let latency = sent.elapsed();
    let answer = answer.ok()?;
    if let Some(idx) = bid_on {
        // A 409 `bid_too_low` is a valid answer; its minimum, like an accepted bid's new
        // `min_next_bid`, tells the next bid what to offer.
        let minimum = answer.body.pointer("/error/details/minimum").or(answer.body.pointer("/auction/min_next_bid"));
        if let Some(minimum) = minimum.and_then(Value::as_i64) {
            board.next[idx].fetch_max(minimum, Ordering::Relaxed);
        }
    }
    Some((answer.status.as_u16(), latency))
}

/// `concurrency` tasks send bogus logins back to back until the flood phase ends.
async fn flood(http: reqwest::Client, url: String, options: Options) -> Value {
    // Answers by kind: 201, 401, 429, 503, any other status, no answer.
    let counts = Arc::new(<[AtomicU64; 6]>::default());
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + options.duration);
    let tasks: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let (http, url, counts) = (http.clone(), url.clone(), Arc::clone(&counts));
            // Whatever is in flight at the end is dropped, so the phase ends on time.
            tokio::spawn(tokio::time::timeout_at(deadline, async move {
                while tokio::time::Instant::now() < deadline {
                    let password = format!("flood-password-{:016x}", rand::random::<u64>());
                    let body =
                        json!({ "username": format!("flood_{:016x}", rand::random::<u64>()), "password": password });
                    let mut req = http.post(&url).json(&body);
                    if options.flood_ips > 1 {
                        let ip = Ipv4Addr::from(u32::from(FLOOD_NET) + rand::random_range(0..options.flood_ips));
                        req = req.header("X-Forwarded-For", ip.to_string());
                    }
                    let kind = match req.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            // Read the body so the connection can be reused.
                            let _ = resp.bytes().await;
                            [201, 401, 429, 503].iter().position(|&s| s == status).unwrap_or(4)
                        }
                        Err(_) => 5,
                    };
                    counts[kind].fetch_add(1, Ordering::Relaxed);
                    if kind == 5 {
                        // A refused connection fails at once; don't spin on it.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }))
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            eprintln!("a flood task panicked: {e}");
        }
    }
    let elapsed = start.elapsed();
    let [created, unauthorized, limited, busy, other, transport] = counts.each_ref().map(|n| n.load(Ordering::Relaxed));
    let requests = created + unauthorized + limited + busy + other + transport;
    json!({
        "tasks": options.concurrency,
        "source_addresses": options.flood_ips,
        "requests": requests,
        "rps": per_sec(requests, elapsed),
        "by_status": { "201": created, "401": unauthorized, "429": limited, "503": busy, "other": other },
        "transport_errors": transport,
        "throttled_429_or_503": limited + busy,
    })
}
