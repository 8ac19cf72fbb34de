//! Prometheus metrics: the one recorder every binary installs, what it records (the catalogue below,
//! which the README's table mirrors), and the `/metrics` endpoint that renders it.
//!
//! The recorder is process-global (the `metrics` facade has one), so [`install`] is idempotent:
//! tests that start several apps in one process share it. Label values come from small fixed sets
//! (route templates, queue names, error codes), never from ids.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};

/// HTTP requests answered, by `method`, `route` (template) and `status`.
pub const HTTP_REQUESTS: &str = "neighborbid_http_requests_total";
/// HTTP request latency, by `method` and `route`.
pub const HTTP_DURATION: &str = "neighborbid_http_request_duration_seconds";
/// WebSocket connections open now, by `stream` (`auction` or `user`).
pub const WS_CONNECTIONS: &str = "neighborbid_ws_connections";
/// Events written to WebSockets, by `stream`.
pub const WS_EVENTS_SENT: &str = "neighborbid_ws_events_sent_total";
/// Events a WebSocket did not get from the hub, by `reason`.
pub const WS_EVENTS_DROPPED: &str = "neighborbid_ws_events_dropped_total";
/// Bids decided, by `outcome` and, when refused, `reason` (the error code).
pub const BIDS: &str = "neighborbid_bids_total";
/// Bids and buy-nows one statement decided together (the web's bid line).
pub const BID_BATCH_SIZE: &str = "neighborbid_bid_batch_size";
/// Job runs, by `queue` and `outcome`.
pub const JOBS: &str = "neighborbid_jobs_total";
/// Job run time, by `queue` and `outcome`.
pub const JOB_DURATION: &str = "neighborbid_job_duration_seconds";
/// Jobs in a queue, by `queue` and `state`.
pub const QUEUE_JOBS: &str = "neighborbid_queue_jobs";
/// Outbox rows not yet relayed.
pub const OUTBOX_BACKLOG: &str = "neighborbid_outbox_backlog";
/// Age of the oldest unrelayed outbox row.
pub const RELAY_LAG: &str = "neighborbid_relay_lag_seconds";
/// Jobs moved from the outbox to the queues, by `queue`.
pub const RELAYED: &str = "neighborbid_relayed_jobs_total";
/// Auctions ended per closing tick.
pub const CLOSES_PER_TICK: &str = "neighborbid_closes_per_tick";
/// Auctions ended, by `outcome` (`closed` or `unsold`).
pub const AUCTIONS_ENDED: &str = "neighborbid_auctions_ended_total";
/// Time from an auction's `ends_at` to its closing.
pub const CLOSE_LAG: &str = "neighborbid_close_lag_seconds";
/// Time from an auction's closing to its settlement.
pub const SETTLEMENT_LAG: &str = "neighborbid_settlement_lag_seconds";
/// Follow-ups the reconciliation sweep recorded again, by `job`.
pub const SWEEP_RERECORDED: &str = "neighborbid_sweep_rerecorded_total";
/// Scheduler passes that failed, by `task`.
pub const SCHEDULER_FAILURES: &str = "neighborbid_scheduler_failures_total";

/// Every metric: name, Prometheus type, labels and meaning. `describe` sends these to the
/// recorder (they become `# HELP` lines) and a test holds the README's table to them.
pub const CATALOGUE: &[(&str, &str, &str, &str)] = &[
    (HTTP_REQUESTS, "counter", "method, route, status", "HTTP requests answered by the web"),
    (HTTP_DURATION, "histogram", "method, route", "time from request to response head"),
    (WS_CONNECTIONS, "gauge", "stream", "WebSocket connections open now"),
    (WS_EVENTS_SENT, "counter", "stream", "events written to WebSockets"),
    (WS_EVENTS_DROPPED, "counter", "reason", "events a WebSocket did not get from the hub"),
    (BIDS, "counter", "outcome, reason", "bids accepted, and refused by error code"),
    (BID_BATCH_SIZE, "histogram", "", "bids and buy-nows one statement decided together"),
    (JOBS, "counter", "queue, outcome", "job runs (each delivery of a job is one run)"),
    (JOB_DURATION, "histogram", "queue, outcome", "how long a job run took"),
    (SETTLEMENT_LAG, "histogram", "", "from an auction's closing to its settlement"),
    (QUEUE_JOBS, "gauge", "queue, state", "jobs in a Redis queue by state; `state=\"dead\"` is the dead set"),
    (OUTBOX_BACKLOG, "gauge", "", "outbox rows not yet relayed to a queue"),
    (RELAY_LAG, "gauge", "", "age of the oldest unrelayed outbox row (0 when none)"),
    (RELAYED, "counter", "queue", "jobs the relay pushed to their queue"),
    (CLOSES_PER_TICK, "histogram", "", "auctions ended by one closing tick"),
    (AUCTIONS_ENDED, "counter", "outcome", "auctions ended by the closer"),
    (CLOSE_LAG, "histogram", "", "from an auction's `ends_at` to its closing"),
    (SWEEP_RERECORDED, "counter", "job", "follow-ups the reconciliation sweep recorded again"),
    (SCHEDULER_FAILURES, "counter", "task", "scheduler passes that failed (close, sweep, prune, relay, sample)"),
];

/// Latency buckets for requests and jobs, in seconds.
const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Buckets for lags measured against wall-clock deadlines, in seconds.
const LAG_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0];
/// Buckets for how many auctions one tick ends.
const COUNT_BUCKETS: &[f64] = &[0.0, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0];
/// Buckets for how many requests one bid batch holds (at most 32).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
/// How often histograms are folded in even when nobody scrapes, so memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder on the first call and returns its handle; later calls return
/// the same handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = buckets(PrometheusBuilder::new()).build_recorder();
        let handle = recorder.handle();
        if let Err(err) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread can be spawned at start-up");
        handle
    })
}

fn buckets(builder: PrometheusBuilder) -> PrometheusBuilder {
    let with = |builder: PrometheusBuilder, name: &str, values: &[f64]| {
        builder.set_buckets_for_metric(Matcher::Full(name.into()), values).expect("bucket lists are not empty")
    };
    let builder = with(builder, HTTP_DURATION, DURATION_BUCKETS);
    let builder = with(builder, JOB_DURATION, DURATION_BUCKETS);
    let builder = with(builder, CLOSE_LAG, LAG_BUCKETS);
    let builder = with(builder, SETTLEMENT_LAG, LAG_BUCKETS);
    let builder = with(builder, BID_BATCH_SIZE, BATCH_BUCKETS);
    with(builder, CLOSES_PER_TICK, COUNT_BUCKETS)
}

fn describe() {
    for &(name, kind, _, help) in CATALOGUE {
        match kind {
            "counter" => metrics::describe_counter!(name, help),
            "gauge" => metrics::describe_gauge!(name, help),
            _ => metrics::describe_histogram!(name, help),
        }
    }
}

/// The Prometheus text exposition of everything recorded so far.
#[poem::handler]
pub fn endpoint() -> poem::Response {
    poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(install().render())
}

/// Binds `addr` (the worker's and scheduler's `METRICS_ADDR`) and returns the server of
/// `GET /metrics` there, to be spawned; it runs as long as the process. Binding fails at once.
pub async fn serve(addr: SocketAddr) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    install();
    let acceptor = TcpListener::bind(addr).into_acceptor().await?;
    let local = acceptor.local_addr().first().and_then(|a| a.as_socket_addr().copied()).unwrap_or(addr);
    tracing::info!(metrics.addr = %local, "serving metrics");
    let app = Route::new().at("/metrics", poem::get(endpoint));
    Ok(async move {
        if let Err(err) = Server::new_with_acceptor(acceptor).run(app).await {
            tracing::error!(error = %err, "the metrics listener failed");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table lists every metric, with the catalogue's type and labels, and no other.
    #[test]
    fn the_readme_documents_every_metric() {
        let readme = include_str!("../../README.md");
        let section = readme.split("## Metrics and errors").nth(1).expect("the README has a metrics section");
        let documented: Vec<(String, String, String)> = section
            .lines()
            .take_while(|line| !line.starts_with("## "))
            .filter(|line| line.starts_with("| `neighborbid_"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_owned(), cells[2].to_owned(), cells[3].to_owned())
            })
            .collect();
        let catalogue: Vec<(String, String, String)> = CATALOGUE
            .iter()
            .map(|(name, kind, labels, _)| (name.to_string(), kind.to_string(), labels.to_string()))
            .collect();
        assert_eq!(documented, catalogue);
    }

    #[test]
    fn installing_twice_gives_the_same_recorder() {
        let first: *const PrometheusHandle = install();
        metrics::counter!(BIDS, "outcome" => "accepted").increment(1);
        assert!(std::ptr::eq(first, install()));
        assert!(install().render().contains("neighborbid_bids_total{outcome=\"accepted\"}"));
    }
}
