//! `list`: seed the data set, then hammer the auction listing with keep-alive workers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::client::Api;
use crate::seed;
use crate::stats::{Check, LatencySummary, all_pass, merge_counts, rate};

/// Connections are opened and the server's caches warmed before measuring.
const WARMUP: Duration = Duration::from_secs(1);

/// One hammered path.
#[derive(Debug, Serialize)]
struct HammerReport {
    name: &'static str,
    path: String,
    requests: u64,
    elapsed_secs: f64,
    requests_per_sec: f64,
    /// Over every answered request, whatever its status.
    latency: LatencySummary,
    non_2xx: u64,
    errors_5xx: u64,
    /// Requests that got no HTTP answer (connection refused, reset, timeout).
    transport_errors: u64,
    /// Non-2xx answers by status code.
    by_status: BTreeMap<u16, u64>,
    checks: Vec<Check>,
    /// `null` when this path has no targets.
    pass: Option<bool>,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
}

/// Runs the scenario and returns its report.
pub async fn run(
    api: &Api,
    database_url: Option<&str>,
    duration: Duration,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let seed = seed::ensure_list_data(api, database_url, concurrency).await?;
    let mut results = Vec::new();
    for (name, limit, targets) in [("limit_20", 20, true), ("limit_100", 100, false)] {
        let path = format!("/auctions?limit={limit}");
        eprintln!("warming up {path}");
        hammer(api, &path, WARMUP, concurrency).await;
        eprintln!("hammering {path} for {duration:?} with {concurrency} workers");
        let (elapsed, tally) = hammer(api, &path, duration, concurrency).await;
        results.push(summarise(name, path, elapsed, tally, targets));
    }
    let pass = results.iter().filter_map(|r| r.pass).all(|p| p);
    Ok(json!({
        "scenario": "list",
        "duration_secs": duration.as_secs_f64(),
        "concurrency": concurrency,
        "seed": seed,
        "results": results,
        "pass": pass,
    }))
}

/// `concurrency` tasks each send `GET path` back to back until `duration` is up.
async fn hammer(api: &Api, path: &str, duration: Duration, concurrency: usize) -> (Duration, Tally) {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (api, path) = (api.clone(), path.to_owned());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match api.get_discard(&path).await {
                        Ok(status) => {
                            tally.latencies.push(sent.elapsed());
                            if !status.is_success() {
                                *tally.by_status.entry(status.as_u16()).or_default() += 1;
                            }
                        }
                        Err(_) => {
                            tally.transport_errors += 1;
                            // A refused connection fails instantly; don't spin on it.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => {
                total.latencies.extend(t.latencies);
                merge_counts(&mut total.by_status, &t.by_status);
                total.transport_errors += t.transport_errors;
            }
            Err(e) => eprintln!("a worker panicked: {e}"),
        }
    }
    (start.elapsed(), total)
}

fn summarise(
    name: &'static str,
    path: String,
    elapsed: Duration,
    mut tally: Tally,
    with_targets: bool,
) -> HammerReport {
    let requests = tally.latencies.len() as u64;
    let requests_per_sec = rate(requests, elapsed);
    let latency = LatencySummary::from_samples(&mut tally.latencies);
    let non_2xx: u64 = tally.by_status.values().sum();
    let errors_5xx: u64 = tally.by_status.range(500..).map(|(_, n)| n).sum();
    let checks = if with_targets {
        vec![
            Check::at_least("requests_per_sec", 1_500.0, requests_per_sec),
            Check::at_most("p99_ms", 25.0, latency.p99_ms),
            Check::at_most("non_2xx_plus_transport_errors", 0.0, (non_2xx + tally.transport_errors) as f64),
        ]
    } else {
        Vec::new()
    };
    let pass = with_targets.then(|| all_pass(&checks));
    HammerReport {
        name,
        path,
        requests,
        elapsed_secs: crate::stats::round(elapsed.as_secs_f64()),
        requests_per_sec,
        latency,
        non_2xx,
        errors_5xx,
        transport_errors: tally.transport_errors,
        by_status: tally.by_status,
        checks,
        pass,
    }
}
