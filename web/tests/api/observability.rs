//! The real `neighborbid-web` binary: what `/metrics` shows after real traffic, and which failures
//! reach Sentry. A child process has a metrics recorder of its own, so the counts are exact even
//! while other tests run in this process.

use std::process::Command;
use std::time::Duration;

use neighborbid_testkit::db::database_url;
use neighborbid_testkit::process::{Process, metric, scrape};
use neighborbid_testkit::sentry::{SentrySink, exception, message};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::PASSWORD;
use crate::live::next_events;

const BIDS_ROUTE: &str = "/api/v1/auctions/{id}/bids";

struct Web {
    base: String,
    client: reqwest::Client,
    _process: Process,
}

impl Web {
    async fn start(pool: &PgPool, sentry_dsn: &str) -> Self {
        neighborbid_shared::telemetry::install_crypto_provider();
        let mut command = Command::new(env!("CARGO_BIN_EXE_neighborbid-web"));
        command
            .env("DATABASE_URL", database_url(pool).await)
            .env("WEB_ADDR", "127.0.0.1:0")
            .env("SENTRY_DSN", sentry_dsn)
            .env("QUEUE_PREFIX", format!("test-{:016x}", rand::random::<u64>()))
            .env("RATE_LIMITS", "off")
            .env("MEDIA_DIR", std::env::temp_dir().join(format!("neighborbid-web-{:016x}", rand::random::<u64>())));
        let mut process = Process::start(command);
        let listening = process.wait_for_log("listening", Duration::from_secs(60));
        let addr = listening["addr"].as_str().unwrap().trim_start_matches("socket://").to_owned();
        Self { base: format!("http://{addr}"), client: reqwest::Client::new(), _process: process }
    }

    async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if !body.is_null() {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn user(&self, name: &str) -> String {
        let user = json!({ "username": name, "email": format!("{name}@example.com"), "password": PASSWORD });
        assert_eq!(self.send(reqwest::Method::POST, "/api/v1/users", None, user).await.status(), StatusCode::CREATED);
        let login = json!({ "username": name, "password": PASSWORD });
        let session: Value =
            self.send(reqwest::Method::POST, "/api/v1/sessions", None, login).await.json().await.unwrap();
        session["token"].as_str().unwrap().to_owned()
    }

    async fn metrics(&self) -> String {
        scrape(&format!("{}/metrics", self.base)).await
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_web_binary_counts_requests_bids_and_sockets_and_reports_a_panic_and_a_500(pool: PgPool) {
    let sentry = SentrySink::start().await.unwrap();
    let web = Web::start(&pool, &sentry.dsn).await;
    let (seller, bidder) = (web.user("seller").await, web.user("bidder").await);
    let post = reqwest::Method::POST;
    web.send(post.clone(), "/api/v1/wallet/deposits", Some(&bidder), json!({ "amount": 100_000 })).await;
    let ends_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let auction = json!({ "title": "Lamp", "description": "Works.", "category_id": 8, "region_id": 111,
                          "condition": "good", "start_price": 10_000, "ends_at": ends_at });
    let auction: Value = web.send(post.clone(), "/api/v1/auctions", Some(&seller), auction).await.json().await.unwrap();
    let id = auction["id"].as_i64().unwrap();

    let ws = format!("{}/ws/auctions/{id}", web.base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.expect("the upgrade succeeds");
    let bids = format!("/api/v1/auctions/{id}/bids");
    let accepted = web.send(post.clone(), &bids, Some(&bidder), json!({ "amount": 10_000 })).await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
    let refused = web.send(post.clone(), &bids, Some(&bidder), json!({ "amount": 10_000 })).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let events = next_events(&mut socket, 1).await;
    assert_eq!(events[0]["type"], "bid_placed");
    assert_eq!(web.send(reqwest::Method::GET, "/no/such/page/42", None, Value::Null).await.status(), 404);

    let scraped = web.metrics().await;
    let at = |name: &str, labels: &[(&str, &str)]| metric(&scraped, name, labels);
    assert_eq!(at("neighborbid_bids_total", &[("outcome", "accepted")]), Some(1.0), "{scraped}");
    assert_eq!(at("neighborbid_bids_total", &[("outcome", "refused"), ("reason", "bid_too_low")]), Some(1.0));
    let bid_requests = |status| at("neighborbid_http_requests_total", &[("route", BIDS_ROUTE), ("status", status)]);
    assert_eq!((bid_requests("201"), bid_requests("409")), (Some(1.0), Some(1.0)), "{scraped}");
    let timed = at("neighborbid_http_request_duration_seconds_count", &[("method", "POST"), ("route", BIDS_ROUTE)]);
    assert_eq!(timed, Some(2.0));
    let batches = (at("neighborbid_bid_batch_size_count", &[]), at("neighborbid_bid_batch_size_sum", &[]));
    assert_eq!(batches, (Some(2.0), Some(2.0)), "two bids one after the other are two batches of one: {scraped}");
    assert_eq!(at("neighborbid_http_requests_total", &[("route", "unmatched"), ("status", "404")]), Some(1.0));
    assert!(!scraped.contains(&format!("/auctions/{id}")), "raw paths never become labels");
    assert_eq!(at("neighborbid_ws_connections", &[("stream", "auction")]), Some(1.0));
    assert!(at("neighborbid_ws_events_sent_total", &[("stream", "auction")]) >= Some(1.0));
    assert!(scraped.contains("# HELP neighborbid_bids_total"), "metrics are described");

    // A 500: the schema changed under the running server (a table renamed by hand, say).
    sqlx::query("ALTER TABLE categories RENAME TO categories_moved").execute(&pool).await.unwrap();
    let broken = web.send(reqwest::Method::GET, "/api/v1/categories", None, Value::Null).await;
    sqlx::query("ALTER TABLE categories_moved RENAME TO categories").execute(&pool).await.unwrap();
    assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let event = sentry
        .wait_for("the 500", Duration::from_secs(30), |e| {
            message(e) == "request failed" && e["server_name"] == "neighborbid-web"
        })
        .await;
    assert!(event.to_string().contains("categories"), "the cause travels with it: {event}");

    // A panic in a handler: a timestamp beyond what chrono represents (PostgreSQL takes it; the
    // API refuses such dates, so only a hand-made row has one) panics sqlx's decoder mid-request.
    sqlx::query("UPDATE auctions SET ends_at = '294000-01-01' WHERE id = $1").bind(id).execute(&pool).await.unwrap();
    let panicked = web.send(reqwest::Method::GET, &format!("/api/v1/auctions/{id}"), None, Value::Null).await;
    assert_eq!(panicked.status(), StatusCode::INTERNAL_SERVER_ERROR, "a panic is a 500, not a dropped connection");
    let body: Value = panicked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal_error");
    sentry
        .wait_for("the panic", Duration::from_secs(30), |e| {
            exception(e).starts_with("panic:") && e["server_name"] == "neighborbid-web"
        })
        .await;
    let scraped = web.metrics().await;
    assert_eq!(metric(&scraped, "neighborbid_http_requests_total", &[("status", "500")]), Some(2.0), "{scraped}");
}
